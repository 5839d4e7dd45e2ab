"""A login server that names no registry (never made, or deleted) answers 404 on the data plane.

In ACR such a name has no DNS record, so nothing can act on it. ``az acr login``/``repository``
with a registry it can't find in ARM builds ``<name><suffix>`` itself and carries on with the data
plane (tests/e2e/test_azure_cli.py); before, Dockyard sent that host to the default registry, so
a typo (or a deleted registry's name) listed, pushed to or deleted from the default registry.
Other hosts (an IP address, the bare domain, names of more labels) still reach the default registry.
"""

from __future__ import annotations

import pytest

from .helpers import NULL_GUID, OTHER, OTHER_HOST, basic, describe, oci_error

UNKNOWN = "nosuchregistry.localhost:5000"  # the tests' domain is "localhost"

DATA_PLANE = [
    ("GET", "/v2/", {}),
    ("GET", "/v2/_catalog", {}),
    ("PUT", "/v2/app/manifests/v1", {"data": b"{}"}),
    ("POST", "/v2/app/blobs/uploads/", {}),
    ("GET", "/oauth2/token?service=nosuchregistry.localhost&scope=registry:catalog:*", {}),
    ("POST", "/oauth2/token", {"data": {"grant_type": "password", "username": "owner", "password": "x",
                                        "service": "nosuchregistry.localhost"}}),
    ("POST", "/oauth2/exchange", {"data": {"grant_type": "access_token", "service": "nosuchregistry.localhost",
                                           "access_token": "x"}}),
    ("GET", "/acr/v1/_catalog", {}),
]


@pytest.mark.parametrize(("method", "path", "extra"), DATA_PLANE)
async def test_unknown_login_server_is_404_even_for_the_owner(anonymous, method, path, extra):
    response = await anonymous.request(method, path, headers={**basic(), "Host": UNKNOWN}, **extra)
    error = await oci_error(response, 404, "NAME_UNKNOWN")
    assert "nosuchregistry.localhost" in error["message"]
    assert "WWW-Authenticate" not in response.headers  # nothing to sign in to


@pytest.mark.parametrize("host", ["NoSuchRegistry.LOCALHOST", "nosuchregistry.localhost:443", "nosuchregistry.localhost."])
async def test_other_spellings_under_the_domain_are_404_too(anonymous, host):
    await oci_error(await anonymous.get("/v2/", headers={"Host": host}), 404, "NAME_UNKNOWN")


async def test_deleted_registry_login_server_is_404(services, anonymous):
    await services.registries.ensure(OTHER)
    response = await anonymous.get("/v2/_catalog", headers={**basic(), "Host": OTHER_HOST})
    assert response.status == 200, await describe(response)
    await services.registries.delete(OTHER)
    response = await anonymous.get("/v2/_catalog", headers={**basic(), "Host": OTHER_HOST})
    await oci_error(response, 404, "NAME_UNKNOWN")
    response = await anonymous.get("/v2/", headers={**basic(NULL_GUID, "stale-refresh-token"), "Host": OTHER_HOST})
    await oci_error(response, 404, "NAME_UNKNOWN")


@pytest.mark.parametrize("host", ["127.0.0.1:5000", "localhost:5000", "registry.example.com", "dockyard.localhost",
                                  "[::1]:5000", "a.b.localhost:5000"])
async def test_hosts_outside_the_domain_and_registries_still_answer(anonymous, host):
    response = await anonymous.get("/v2/", headers={"Host": host})
    assert response.status == 401, await describe(response)
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    response = await anonymous.get("/v2/_catalog", headers={**basic(), "Host": host})
    assert response.status == 200, await describe(response)


async def test_management_and_identity_endpoints_ignore_the_host(anonymous):
    """Only the data plane belongs to a login server: ARM metadata and OIDC answer on any host."""
    response = await anonymous.get("/metadata/endpoints", headers={"Host": UNKNOWN})
    assert response.status == 200, await describe(response)
    response = await anonymous.get("/adfs/.well-known/openid-configuration", headers={"Host": UNKNOWN})
    assert response.status == 200, await describe(response)
