"""The admin user of a registry: its name with one of two passwords, off by default."""

from __future__ import annotations

import pytest

from .helpers import OTHER, OTHER_HOST, Seeder, access_of, basic, bearer, claim, decode, describe, get_token, oci_error

REGISTRY = "dockyard"
ALL = ["repository:admin/repo:pull,push,delete", "registry:catalog:*"]


async def enable(services, name: str = REGISTRY) -> tuple[str, str]:
    registry = await services.registries.update(name, {"admin_enabled": True})
    assert registry.admin_enabled
    first, second = await services.registries.admin_passwords(registry)
    assert first and second and first != second
    return first, second


async def assert_refused(http, headers: dict[str, str]) -> None:
    """Basic on /v2/ and on the token endpoint both refuse these credentials."""
    response = await http.get("/v2/", headers=headers)
    await oci_error(response, 401, "UNAUTHORIZED")
    response = await http.get("/v2/admin/repo/manifests/v1", headers=headers)
    await oci_error(response, 401, "UNAUTHORIZED")
    response = await get_token(http, "repository:admin/repo:pull", headers=headers)
    await oci_error(response, 401, "UNAUTHORIZED")
    assert response.headers["WWW-Authenticate"].startswith("Basic ")


async def assert_full_access(http, headers: dict[str, str], tag: str) -> dict:
    image = await Seeder(http, headers=headers).image("admin/repo", tag)
    response = await http.get(f"/v2/admin/repo/manifests/{tag}", headers=headers)
    assert response.status == 200 and await response.read() == image["body"]
    response = await http.get("/v2/_catalog", headers=headers)
    assert response.status == 200, await describe(response)
    assert "admin/repo" in (await response.json())["repositories"]
    response = await http.get("/acr/v1/_catalog", headers=headers)
    assert response.status == 200, await describe(response)
    assert await access_of(http, *ALL, headers=headers) == [
        claim("admin/repo", "pull", "push", "delete"), claim("catalog", "*", kind="registry")
    ]
    return image


async def test_admin_user_is_off_by_default(services, anonymous):
    registry = await services.registries.default()
    assert registry.admin_enabled is False
    for password in ("", "password", "admin", "dockyard"):
        response = await anonymous.get("/v2/", headers=basic(REGISTRY, password))
        await oci_error(response, 401, "UNAUTHORIZED")
    await assert_refused(anonymous, basic(REGISTRY, "anything at all"))


async def test_enabled_admin_pushes_pulls_and_lists_with_either_password(services, anonymous):
    first, second = await enable(services)
    one = await assert_full_access(anonymous, basic(REGISTRY, first), "one")
    await assert_full_access(anonymous, basic(REGISTRY, second), "two")
    response = await anonymous.delete(f"/v2/admin/repo/manifests/{one['digest']}", headers=basic(REGISTRY, second))
    assert response.status == 202, await describe(response)


async def test_admin_token_from_password_grant(services, anonymous):
    first, _ = await enable(services)
    response = await anonymous.post("/oauth2/token", data={
        "grant_type": "password", "username": REGISTRY, "password": first,
        "service": "dockyard.localhost", "scope": "repository:admin/repo:pull,push",
    })
    assert response.status == 200, await describe(response)
    document = await response.json()
    assert decode(document["access_token"])["access"] == [claim("admin/repo", "pull", "push")]
    assert decode(document["access_token"])["sub"] == REGISTRY


async def test_wrong_admin_password_is_refused(services, anonymous):
    first, _ = await enable(services)
    await assert_refused(anonymous, basic(REGISTRY, first + "x"))
    await assert_refused(anonymous, basic(REGISTRY, first[:-1]))
    await assert_refused(anonymous, basic(REGISTRY, ""))


async def test_disabling_the_admin_user_refuses_its_passwords_at_once(services, anonymous):
    first, second = await enable(services)
    await assert_full_access(anonymous, basic(REGISTRY, first), "v1")
    await services.registries.update(REGISTRY, {"admin_enabled": False})
    await assert_refused(anonymous, basic(REGISTRY, first))
    await assert_refused(anonymous, basic(REGISTRY, second))
    # enabled again: the same passwords (ACR keeps them)
    again = await enable(services)
    assert again == (first, second)
    await assert_full_access(anonymous, basic(REGISTRY, first), "v2")


@pytest.mark.parametrize("which", ["password", "password2"])
async def test_regenerated_password_refuses_the_old_one_at_once(services, anonymous, which):
    first, second = await enable(services)
    old, kept = (first, second) if which == "password" else (second, first)
    # used successfully just before, on every path, so any cache has seen it
    await assert_full_access(anonymous, basic(REGISTRY, old), "before")
    access = await access_of(anonymous, "repository:admin/repo:pull", headers=basic(REGISTRY, old))
    assert access == [claim("admin/repo", "pull")]

    registry = await services.registries.default()
    await services.registries.regenerate_admin_password(registry, which)
    new_first, new_second = await services.registries.admin_passwords(registry)
    new = new_first if which == "password" else new_second
    assert new != old
    assert (new_second if which == "password" else new_first) == kept

    await assert_refused(anonymous, basic(REGISTRY, old))
    response = await anonymous.post("/oauth2/token", data={
        "grant_type": "password", "username": REGISTRY, "password": old, "service": "dockyard.localhost",
    })
    await oci_error(response, 401, "UNAUTHORIZED")
    await assert_full_access(anonymous, basic(REGISTRY, new), "after")
    await assert_full_access(anonymous, basic(REGISTRY, kept), "kept")


async def test_admin_of_one_registry_is_refused_on_another(services, anonymous):
    await services.registries.ensure(OTHER)
    first, second = await enable(services)
    other_first, _ = await enable(services, OTHER)
    here = {"Host": OTHER_HOST}
    # A's name and password on B; B's name with A's password
    for headers in (basic(REGISTRY, first), basic(REGISTRY, second), basic(OTHER, first), basic(OTHER, second)):
        response = await anonymous.get("/v2/", headers={**headers, **here})
        await oci_error(response, 401, "UNAUTHORIZED")
        response = await anonymous.get("/v2/_catalog", headers={**headers, **here})
        await oci_error(response, 401, "UNAUTHORIZED")
        response = await anonymous.get(
            "/oauth2/token", params={"service": OTHER_HOST, "scope": "registry:catalog:*"}, headers={**headers, **here}
        )
        await oci_error(response, 401, "UNAUTHORIZED")
        # nor can A's host be used to get a token for B with them
        response = await get_token(anonymous, "registry:catalog:*", headers=headers, service=OTHER_HOST)
        await oci_error(response, 401, "UNAUTHORIZED")
    # B's admin on A
    response = await anonymous.get("/v2/_catalog", headers=basic(OTHER, other_first))
    await oci_error(response, 401, "UNAUTHORIZED")
    # the control: B's admin works on B
    response = await anonymous.get("/v2/_catalog", headers={**basic(OTHER, other_first), **here})
    assert response.status == 200, await describe(response)


async def test_admin_access_token_of_one_registry_is_refused_on_another(services, anonymous):
    await services.registries.ensure(OTHER)
    first, _ = await enable(services)
    response = await get_token(anonymous, "registry:catalog:*", "repository:admin/repo:pull", headers=basic(REGISTRY, first))
    token = (await response.json())["access_token"]
    response = await anonymous.get("/v2/_catalog", headers={**bearer(token), "Host": OTHER_HOST})
    await oci_error(response, 401, "UNAUTHORIZED")
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    response = await anonymous.get("/v2/_catalog", headers=bearer(token))
    assert response.status == 200, await describe(response)
