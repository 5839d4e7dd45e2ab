"""Registries and repositories are walled off from each other, and refusals don't leak what exists."""

from __future__ import annotations

import pytest

from dockyard.auth import roles

from .helpers import (
    OTHER,
    OTHER_HOST,
    SERVICE,
    Seeder,
    access_of,
    basic,
    bearer,
    claim,
    decode,
    describe,
    get_token,
    oci_error,
    parse_challenge,
    sha256,
)

HERE = "dockyard.localhost"


@pytest.fixture
async def two(services, client):
    """The same repository name in both registries, with different content."""
    await services.registries.ensure(OTHER)
    here = await Seeder(client).image("shared/app", marker="here")
    there = await Seeder(client, host=OTHER_HOST).image("shared/app", marker="there")
    only_there = await Seeder(client, host=OTHER_HOST).image("secret/app", marker="only there")
    assert here["layer"] != there["layer"]
    return {"here": here, "there": there, "only_there": only_there}


async def owner_tokens(http, *scopes: str) -> tuple[str, str]:
    response = await http.post("/oauth2/token", data=[
        ("grant_type", "password"), ("username", "owner"), ("password", "correct horse battery staple"),
        ("service", SERVICE), *[("scope", s) for s in scopes]])
    assert response.status == 200, await describe(response)
    document = await response.json()
    return document["access_token"], document["refresh_token"]


# -- tokens across registries ---------------------------------------------------------------------------


async def test_access_token_of_one_registry_is_refused_on_another(anonymous, two):
    access, _ = await owner_tokens(anonymous, "repository:shared/app:pull,push,delete", "registry:catalog:*")
    assert decode(access)["aud"] == HERE
    there = {"Host": OTHER_HOST}
    for method, path in (("GET", "/v2/shared/app/manifests/v1"), ("GET", f"/v2/shared/app/blobs/{two['there']['layer']}"),
                         ("GET", "/v2/_catalog"), ("POST", "/v2/shared/app/blobs/uploads/"),
                         ("DELETE", f"/v2/shared/app/manifests/{two['there']['digest']}"), ("GET", "/v2/")):
        response = await anonymous.request(method, path, headers={**bearer(access), **there})
        await oci_error(response, 401, "UNAUTHORIZED")
        _, params = parse_challenge(response.headers["WWW-Authenticate"])
        assert params["service"] == f"{OTHER}.localhost"
        assert params.get("error") == "invalid_token"
        # nor as the null GUID's password
        response = await anonymous.request(method, path, headers={**basic("00000000-0000-0000-0000-000000000000", access),
                                                                  **there})
        await oci_error(response, 401, "UNAUTHORIZED")
    # the control: here it works
    response = await anonymous.get("/v2/shared/app/manifests/v1", headers=bearer(access))
    assert response.status == 200 and await response.read() == two["here"]["body"]


async def test_refresh_token_of_one_registry_is_refused_on_another(anonymous, two):
    _, refresh = await owner_tokens(anonymous, "repository:shared/app:pull")
    there = {"Host": OTHER_HOST}
    response = await anonymous.post("/oauth2/token", data={
        "grant_type": "refresh_token", "refresh_token": refresh, "service": OTHER_HOST,
        "scope": "repository:shared/app:pull"}, headers=there)
    await oci_error(response, 401, "UNAUTHORIZED")
    response = await get_token(anonymous, "repository:shared/app:pull", service=OTHER_HOST,
                               headers={**basic("00000000-0000-0000-0000-000000000000", refresh), **there})
    await oci_error(response, 401, "UNAUTHORIZED")
    response = await anonymous.get("/v2/shared/app/manifests/v1",
                                   headers={**basic("00000000-0000-0000-0000-000000000000", refresh), **there})
    await oci_error(response, 401, "UNAUTHORIZED")
    # asked on this registry's host but for the other registry's service: refused as well
    response = await anonymous.post("/oauth2/token", data={
        "grant_type": "refresh_token", "refresh_token": refresh, "service": OTHER_HOST,
        "scope": "repository:shared/app:pull"})
    await oci_error(response, 401, "UNAUTHORIZED")


async def test_tokens_are_issued_for_the_registry_named_by_service(anonymous, two):
    response = await get_token(anonymous, "repository:shared/app:pull", headers={**basic(), "Host": OTHER_HOST},
                               service=OTHER_HOST)
    token = (await response.json())["access_token"]
    assert decode(token)["aud"] == OTHER_HOST
    response = await anonymous.get("/v2/shared/app/manifests/v1", headers={**bearer(token), "Host": OTHER_HOST})
    assert response.status == 200 and await response.read() == two["there"]["body"]
    response = await anonymous.get("/v2/shared/app/manifests/v1", headers=bearer(token))
    await oci_error(response, 401, "UNAUTHORIZED")


async def test_content_of_one_registry_is_not_visible_in_another(anonymous, two):
    response = await anonymous.get("/v2/_catalog", headers=basic())
    assert "secret/app" not in (await response.json())["repositories"]
    response = await anonymous.get(f"/v2/shared/app/blobs/{two['there']['layer']}", headers=basic())
    await oci_error(response, 404, "BLOB_UNKNOWN")
    response = await anonymous.get(f"/v2/shared/app/manifests/{two['there']['digest']}", headers=basic())
    await oci_error(response, 404, "MANIFEST_UNKNOWN")
    response = await anonymous.get("/v2/secret/app/manifests/v1", headers=basic())
    assert response.status == 404, await describe(response)


# -- mounts ----------------------------------------------------------------------------------------------


async def test_cross_registry_mount_starts_an_upload_instead(anonymous, two):
    digest = two["only_there"]["layer"]
    for query in (f"mount={digest}&from=secret/app", f"mount={digest}&from=shared/app", f"mount={digest}"):
        response = await anonymous.post(f"/v2/mine/app/blobs/uploads/?{query}", headers=basic())
        assert response.status == 202, f"{query}: {await describe(response)}"
        assert "/v2/mine/app/blobs/uploads/" in response.headers["Location"]
        assert "Docker-Content-Digest" not in response.headers
    response = await anonymous.head(f"/v2/mine/app/blobs/{digest}", headers=basic())
    assert response.status == 404
    # the control: within the other registry the mount works
    response = await anonymous.post(f"/v2/mine/app/blobs/uploads/?mount={digest}&from=secret/app",
                                    headers={**basic(), "Host": OTHER_HOST})
    assert response.status == 201, await describe(response)


async def test_mount_from_a_repository_the_caller_cannot_read_starts_an_upload(services, anonymous, client):
    secret = await Seeder(client).image("secret/app", marker="private")
    alice = await services.principals.create_user("alice", "alice's password")
    registry = await services.registries.default()
    await services.assignments.create(f"{registry.arm_id}/repositories/alice/app", roles.find("AcrPush"), alice.object_id)
    headers = basic("alice", "alice's password")
    for query in (f"mount={secret['layer']}&from=secret/app", f"mount={secret['layer']}"):
        response = await anonymous.post(f"/v2/alice/app/blobs/uploads/?{query}", headers=headers)
        assert response.status == 202, f"{query}: {await describe(response)}"
    response = await anonymous.get(f"/v2/alice/app/blobs/{secret['layer']}", headers=headers)
    await oci_error(response, 404, "BLOB_UNKNOWN")


# -- the catalog ------------------------------------------------------------------------------------------


async def test_repository_scoped_token_cannot_list_the_catalog(anonymous, two):
    access, _ = await owner_tokens(anonymous, "repository:shared/app:pull,push,delete")
    for path in ("/v2/_catalog", "/acr/v1/_catalog"):
        response = await anonymous.get(path, headers=bearer(access))
        await oci_error(response, 403, "DENIED")
        _, params = parse_challenge(response.headers["WWW-Authenticate"])
        assert params["scope"] == "registry:catalog:*" and params["error"] == "insufficient_scope"


async def test_registry_token_cannot_list_the_catalog(services, anonymous, two):
    registry = await services.registries.default()
    await services.scopemaps.put_map(registry, "shared-map", ["repositories/*/content/read"], None)
    await services.scopemaps.put_token(registry, "shared-token", "shared-map", "enabled")
    password = (await services.scopemaps.generate_password(registry, "shared-token", "password1", None))["value"]
    headers = basic("shared-token", password)
    await oci_error(await anonymous.get("/v2/_catalog", headers=headers), 403, "DENIED")
    assert await access_of(anonymous, "registry:catalog:*", "repository:shared/app:pull", headers=headers) == [
        claim("shared/app", "pull")
    ]


# -- refusals say nothing about existence -------------------------------------------------------------------


async def shape(response, missing: str, existing: str) -> tuple:
    """What a refusal shows, with the repository name made neutral."""
    body = (await response.text()).replace(existing, "REPO").replace(missing, "REPO")
    challenge = response.headers.get("WWW-Authenticate", "").replace(existing, "REPO").replace(missing, "REPO")
    return response.status, body, challenge


def requests_for(name: str, digest: str, blob: str) -> list[tuple[str, str, dict]]:
    data = b"probe"
    return [
        ("GET", f"/v2/{name}/manifests/v1", {}),
        ("HEAD", f"/v2/{name}/manifests/v1", {}),
        ("GET", f"/v2/{name}/manifests/{digest}", {}),
        ("GET", f"/v2/{name}/blobs/{blob}", {}),
        ("HEAD", f"/v2/{name}/blobs/{blob}", {}),
        ("GET", f"/v2/{name}/tags/list", {}),
        ("GET", f"/v2/{name}/referrers/{digest}", {}),
        ("POST", f"/v2/{name}/blobs/uploads/", {}),
        ("POST", f"/v2/{name}/blobs/uploads/?digest={sha256(data)}", {"data": data}),
        ("DELETE", f"/v2/{name}/manifests/{digest}", {}),
        ("DELETE", f"/v2/{name}/blobs/{blob}", {}),
        ("GET", f"/acr/v1/{name}", {}),
        ("GET", f"/acr/v1/{name}/_tags", {}),
        ("GET", f"/acr/v1/{name}/_manifests", {}),
        ("DELETE", f"/acr/v1/{name}", {}),
    ]


@pytest.fixture
async def callers(services, anonymous, client):
    """Callers that may do nothing on secret/app (which exists) nor on secret/none (which does not)."""
    secret = await Seeder(client).image("secret/app", marker="exists")
    await Seeder(client).image("visible/app")
    registry = await services.registries.default()
    alice = await services.principals.create_user("alice", "alice's password")
    await services.assignments.create(f"{registry.arm_id}/repositories/visible/app", roles.find("AcrPull"),
                                      alice.object_id)
    await services.scopemaps.put_map(registry, "visible-map", ["repositories/visible/*/content/read"], None)
    await services.scopemaps.put_token(registry, "visible-token", "visible-map", "enabled")
    password = (await services.scopemaps.generate_password(registry, "visible-token", "password1", None))["value"]
    token, _ = await owner_tokens(anonymous, "repository:visible/app:pull,push,delete")
    anonymous_token = (await (await get_token(anonymous, "repository:secret/app:pull")).json())["access_token"]
    return secret, {
        "anonymous": {},
        "anonymous token": bearer(anonymous_token),
        "user without a role there": basic("alice", "alice's password"),
        "registry token": basic("visible-token", password),
        "bearer token for another repository": bearer(token),
    }


@pytest.mark.parametrize("who", ["anonymous", "anonymous token", "user without a role there", "registry token",
                                 "bearer token for another repository"])
async def test_refusals_are_the_same_for_existing_and_missing_repositories(anonymous, callers, who):
    secret, headers_of = callers
    headers = headers_of[who]
    existing, missing = "secret/app", "secret/none"
    for (method, path, extra), (_, missing_path, missing_extra) in zip(
        requests_for(existing, secret["digest"], secret["layer"]),
        requests_for(missing, secret["digest"], secret["layer"]),
    ):
        there = await anonymous.request(method, path, headers=headers, **extra)
        absent = await anonymous.request(method, missing_path, headers=headers, **missing_extra)
        assert there.status in (401, 403), f"{who}: {await describe(there)}"
        assert await shape(there, missing, existing) == await shape(absent, missing, existing), (
            f"{who}: {method} {path}\n  existing: {await describe(there)}\n  missing:  {await describe(absent)}"
        )
    # nor does the token endpoint tell them apart
    if "Authorization" in headers and headers["Authorization"].startswith("Basic"):
        assert await access_of(anonymous, f"repository:{existing}:pull,push,delete", headers=headers) == []
        assert await access_of(anonymous, f"repository:{missing}:pull,push,delete", headers=headers) == []
