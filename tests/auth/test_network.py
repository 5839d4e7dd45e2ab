"""A registry's firewall: public network access and IP rules, on the data plane and the token endpoints.

The test client connects from 127.0.0.1.
"""

from __future__ import annotations

import pytest

from .helpers import OTHER, OTHER_HOST, Seeder, basic, bearer, describe, get_token, oci_error

MESSAGE = "client with IP '127.0.0.1' is not allowed access"
DISABLED = {"public_network_access": "Disabled"}


def rules(*values: str, action: str = "Allow") -> dict:
    return {"network_rule_set": {"defaultAction": "Deny", "ipRules": [{"action": action, "value": v} for v in values]}}


@pytest.fixture
async def image(client) -> dict:
    return await Seeder(client).image("net/app")


async def assert_blocked(http, image: dict, headers: dict[str, str] | None = None, host: str | None = None) -> None:
    headers = dict(headers if headers is not None else basic())
    if host:
        headers["Host"] = host
    attempts = [
        ("GET", "/v2/", {}),
        ("GET", "/v2/net/app/manifests/v1", {}),
        ("GET", f"/v2/net/app/blobs/{image['layer']}", {}),
        ("GET", "/v2/_catalog", {}),
        ("POST", "/v2/net/app/blobs/uploads/", {}),
        ("GET", "/acr/v1/_catalog", {}),
        ("GET", "/oauth2/token?service=dockyard.localhost&scope=repository:net/app:pull", {}),
        ("POST", "/oauth2/token", {"data": {"grant_type": "password", "username": "owner",
                                            "password": "correct horse battery staple", "service": "dockyard.localhost"}}),
        ("POST", "/oauth2/exchange", {"data": {"grant_type": "access_token", "service": "dockyard.localhost",
                                               "access_token": "x"}}),
    ]
    for method, path, extra in attempts:
        response = await http.request(method, path, headers=headers, **extra)
        entry = await oci_error(response, 403, "DENIED")
        assert entry["message"].startswith(MESSAGE), f"{method} {path}: {entry}"
        body = await response.read()
        assert image["body"] not in body and b"access_token" not in body


async def test_public_network_access_disabled(services, anonymous, image):
    await services.registries.update("dockyard", DISABLED)
    await assert_blocked(anonymous, image)
    await assert_blocked(anonymous, image, headers={})  # anonymous callers get 403 too, not a challenge
    response = await anonymous.get("/v2/")
    entry = await oci_error(response, 403, "DENIED")
    assert entry["message"] == f"{MESSAGE}: public network access is disabled"
    assert "WWW-Authenticate" not in response.headers


async def test_disabled_refuses_tokens_issued_before(services, anonymous, image):
    response = await get_token(anonymous, "repository:net/app:pull", headers=basic())
    token = (await response.json())["access_token"]
    assert (await anonymous.get("/v2/net/app/manifests/v1", headers=bearer(token))).status == 200
    await services.registries.update("dockyard", DISABLED)
    await assert_blocked(anonymous, image, headers=bearer(token))
    # enabled again: at once
    await services.registries.update("dockyard", {"public_network_access": "Enabled"})
    response = await anonymous.get("/v2/net/app/manifests/v1", headers=bearer(token))
    assert response.status == 200, await describe(response)


@pytest.mark.parametrize("allowed", [("10.0.0.0/8",), ("192.168.1.7",), ("10.0.0.0/8", "172.16.0.0/12"), ()])
async def test_deny_by_default_without_a_matching_rule(services, anonymous, image, allowed):
    await services.registries.update("dockyard", rules(*allowed))
    await assert_blocked(anonymous, image)


@pytest.mark.parametrize("allowed", [("127.0.0.0/8",), ("127.0.0.1",), ("10.0.0.0/8", "127.0.0.1/32"),
                                     ("not an address", "127.0.0.0/8")])
async def test_a_matching_rule_lets_the_client_in(services, anonymous, image, allowed):
    await services.registries.update("dockyard", rules(*allowed))
    response = await anonymous.get("/v2/net/app/manifests/v1", headers=basic())
    assert response.status == 200 and await response.read() == image["body"]
    response = await get_token(anonymous, "repository:net/app:pull", headers=basic())
    assert response.status == 200, await describe(response)


async def test_a_deny_rule_for_the_client_is_not_an_allow(services, anonymous, image):
    await services.registries.update("dockyard", rules("127.0.0.0/8", action="Deny"))
    await assert_blocked(anonymous, image)


async def test_allow_by_default_ignores_the_rules(services, anonymous, image):
    await services.registries.update(
        "dockyard", {"network_rule_set": {"defaultAction": "Allow", "ipRules": [{"action": "Allow", "value": "10.0.0.0/8"}]}}
    )
    assert (await anonymous.get("/v2/net/app/manifests/v1", headers=basic())).status == 200


@pytest.mark.parametrize("settings_", [DISABLED, rules("10.0.0.0/8")])
async def test_another_registry_is_unaffected(services, anonymous, client, image, settings_):
    await services.registries.ensure(OTHER)
    there = await Seeder(client, host=OTHER_HOST).image("net/app")
    await services.registries.update("dockyard", settings_)
    await assert_blocked(anonymous, image)
    response = await anonymous.get("/v2/net/app/manifests/v1", headers={**basic(), "Host": OTHER_HOST})
    assert response.status == 200 and await response.read() == there["body"]
    response = await anonymous.get("/oauth2/token", params={"service": OTHER_HOST, "scope": "repository:net/app:pull"},
                                   headers={**basic(), "Host": OTHER_HOST})
    assert response.status == 200, await describe(response)
    # and the other way round
    await services.registries.update("dockyard", {"public_network_access": "Enabled", "network_rule_set": None})
    await services.registries.update(OTHER, settings_)
    assert (await anonymous.get("/v2/net/app/manifests/v1", headers=basic())).status == 200
    await assert_blocked(anonymous, there, host=OTHER_HOST)


@pytest.mark.parametrize("settings_", [DISABLED, rules("10.0.0.0/8")])
async def test_another_registrys_host_does_not_get_around_the_firewall(services, anonymous, client, settings_):
    """A token for a blocked registry must not be had by asking another registry's host for it.

    The token endpoint picks the registry by its `service` parameter; the firewall is checked for
    the registry the Host header names. The credentials of the blocked registry (here its admin
    user, which exists only there) must not be checkable, nor its tokens obtainable, from a
    blocked address.
    """
    await services.registries.ensure(OTHER)
    other = await services.registries.update(OTHER, {"admin_enabled": True})
    password, _ = await services.registries.admin_passwords(other)
    await services.registries.update(OTHER, settings_)
    response = await anonymous.get(
        "/oauth2/token", params={"service": OTHER_HOST, "scope": "repository:net/app:pull"},
        headers=basic(OTHER, password),  # Host: the default registry, which is not blocked
    )
    text = await response.text()
    assert response.status in (400, 401, 403) and "access_token" not in text, await describe(response)
    response = await anonymous.post("/oauth2/token", data={
        "grant_type": "password", "username": OTHER, "password": password, "service": OTHER_HOST,
        "scope": "repository:net/app:pull"})
    text = await response.text()
    assert response.status in (400, 401, 403) and "access_token" not in text, await describe(response)


async def test_the_identity_endpoints_are_not_the_registrys(services, anonymous):
    # the OIDC issuer belongs to the installation, not to a registry: a registry's firewall leaves it alone
    await services.registries.update("dockyard", DISABLED)
    tenant = services.tenancy.tenant_id
    response = await anonymous.get(f"/{tenant}/v2.0/.well-known/openid-configuration")
    assert response.status == 200, await describe(response)
