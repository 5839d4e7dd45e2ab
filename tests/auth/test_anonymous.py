"""Anonymous pull: registry-wide, data plane only, pull only."""

from __future__ import annotations

import pytest

from .helpers import OTHER, OTHER_HOST, SERVICE, Seeder, bearer, claim, decode, describe, oci_error, parse_challenge, sha256


@pytest.fixture
async def image(client) -> dict:
    return await Seeder(client).image("public/app")


async def enable(services, name: str = "dockyard") -> None:
    registry = await services.registries.update(name, {"anonymous_pull": True})
    assert registry.anonymous_pull


async def assert_challenged(response, scope: str | None) -> None:
    await oci_error(response, 401, "UNAUTHORIZED")
    scheme, params = parse_challenge(response.headers["WWW-Authenticate"])
    assert scheme == "Bearer"
    assert params.get("scope") == scope


async def test_anonymous_pull_is_off_by_default(services, anonymous, image):
    assert (await services.registries.default()).anonymous_pull is False
    await assert_challenged(await anonymous.get("/v2/public/app/manifests/v1"), "repository:public/app:pull")
    await assert_challenged(await anonymous.get(f"/v2/public/app/blobs/{image['layer']}"), "repository:public/app:pull")


async def test_anonymous_pull_of_manifests_and_blobs(services, anonymous, image):
    await enable(services)
    response = await anonymous.get("/v2/public/app/manifests/v1")
    assert response.status == 200 and await response.read() == image["body"]
    assert response.headers["Docker-Content-Digest"] == image["digest"]
    response = await anonymous.head(f"/v2/public/app/manifests/{image['digest']}")
    assert response.status == 200
    for digest in (image["layer"], image["config"]):
        response = await anonymous.get(f"/v2/public/app/blobs/{digest}")
        assert response.status == 200 and sha256(await response.read()) == digest
    response = await anonymous.get("/v2/public/app/tags/list")
    assert response.status == 200 and (await response.json())["tags"] == ["v1"]
    # what does not exist is still 404, not 401
    await oci_error(await anonymous.get("/v2/public/app/manifests/nope"), 404, "MANIFEST_UNKNOWN")


async def test_anonymous_token_flow_as_docker_does_it(services, anonymous, image):
    await enable(services)
    # docker first asks /v2/ and is challenged
    response = await anonymous.get("/v2/")
    await assert_challenged(response, None)
    _, params = parse_challenge(response.headers["WWW-Authenticate"])
    assert params["service"] == SERVICE
    realm = params["realm"]
    assert realm.endswith("/oauth2/token")
    # then fetches a token without credentials for pull and push
    response = await anonymous.get("/oauth2/token", params={"service": SERVICE,
                                                            "scope": "repository:public/app:pull,push"})
    assert response.status == 200, await describe(response)
    token = (await response.json())["access_token"]
    claims = decode(token)
    assert claims["access"] == [claim("public/app", "pull")]
    assert claims["sub"] == ""
    response = await anonymous.get("/v2/public/app/manifests/v1", headers=bearer(token))
    assert response.status == 200 and await response.read() == image["body"]
    response = await anonymous.get(f"/v2/public/app/blobs/{image['layer']}", headers=bearer(token))
    assert response.status == 200
    # push with it is still refused, with a challenge
    response = await anonymous.post("/v2/public/app/blobs/uploads/", headers=bearer(token))
    await assert_challenged(response, "repository:public/app:pull,push")


async def test_anonymous_push_and_delete_are_still_refused(services, anonymous, image):
    await enable(services)
    data = b"anonymous blob"
    await assert_challenged(await anonymous.post("/v2/public/app/blobs/uploads/"), "repository:public/app:pull,push")
    await assert_challenged(await anonymous.post(f"/v2/public/app/blobs/uploads/?digest={sha256(data)}", data=data),
                            "repository:public/app:pull,push")
    await assert_challenged(
        await anonymous.put("/v2/public/app/manifests/v2", data=image["body"],
                            headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"}),
        "repository:public/app:pull,push",
    )
    await assert_challenged(await anonymous.delete(f"/v2/public/app/manifests/{image['digest']}"),
                            "repository:public/app:delete")
    await assert_challenged(await anonymous.delete(f"/v2/public/app/blobs/{image['layer']}"),
                            "repository:public/app:delete")
    response = await anonymous.get("/oauth2/token", params={"service": SERVICE,
                                                            "scope": "repository:public/app:push,delete,*"})
    assert decode((await response.json())["access_token"])["access"] == []


async def test_anonymous_catalog_is_still_refused(services, anonymous, image):
    await enable(services)
    await assert_challenged(await anonymous.get("/v2/_catalog"), "registry:catalog:*")
    await assert_challenged(await anonymous.get("/acr/v1/_catalog"), "registry:catalog:*")
    response = await anonymous.get("/oauth2/token", params={"service": SERVICE, "scope": "registry:catalog:*"})
    token = (await response.json())["access_token"]
    assert decode(token)["access"] == []
    await assert_challenged(await anonymous.get("/v2/_catalog", headers=bearer(token)), "registry:catalog:*")


async def test_anonymous_pull_is_data_plane_only(services, anonymous, image):
    await enable(services)
    # the ACR metadata API (metadata_read) is not pull
    response = await anonymous.get("/acr/v1/public/app/_tags")
    assert response.status == 401, await describe(response)


async def test_anonymous_pull_of_one_registry_does_not_open_another(services, anonymous, client, image):
    await services.registries.ensure(OTHER)
    await Seeder(client, host=OTHER_HOST).image("public/app")
    await enable(services)
    response = await anonymous.get("/v2/public/app/manifests/v1", headers={"Host": OTHER_HOST})
    await assert_challenged(response, "repository:public/app:pull")
    # nor does an anonymous token of the open registry
    response = await anonymous.get("/oauth2/token", params={"service": SERVICE, "scope": "repository:public/app:pull"})
    token = (await response.json())["access_token"]
    response = await anonymous.get("/v2/public/app/manifests/v1", headers={**bearer(token), "Host": OTHER_HOST})
    await oci_error(response, 401, "UNAUTHORIZED")
    # and an anonymous token asked for the other registry's service holds nothing
    response = await anonymous.get("/oauth2/token", params={"service": OTHER_HOST, "scope": "repository:public/app:pull"},
                                   headers={"Host": OTHER_HOST})
    assert decode((await response.json())["access_token"])["access"] == []


async def test_disabling_anonymous_pull_takes_effect_at_once(services, anonymous, image):
    await enable(services)
    assert (await anonymous.get("/v2/public/app/manifests/v1")).status == 200
    await services.registries.update("dockyard", {"anonymous_pull": False})
    await assert_challenged(await anonymous.get("/v2/public/app/manifests/v1"), "repository:public/app:pull")
    response = await anonymous.get("/oauth2/token", params={"service": SERVICE, "scope": "repository:public/app:pull"})
    assert decode((await response.json())["access_token"])["access"] == []
