"""ACR's metadata API under /acr/v1: shapes, pagination, orderby, PATCH of attributes, deletes and their events."""

from __future__ import annotations

import json
import re
from datetime import datetime

import pytest
from yarl import URL

from dockyard.services.events import pending

from .helpers import (
    OCI_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
    assert_api_version,
    assert_error,
    bearer,
    fetch_token,
    parse_challenge,
    push_manifest,
    put_manifest,
    sha256,
)

LOGIN_SERVER = "dockyard.localhost"
ATTRIBUTES = ("deleteEnabled", "writeEnabled", "readEnabled", "listEnabled")
ALL_ENABLED = {name: True for name in ATTRIBUTES}
TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


def next_link(response) -> str | None:
    header = response.headers.get("Link")
    if header is None:
        return None
    match = re.match(r'^<([^>]+)>; rel="next"$', header)
    assert match, f"malformed Link header {header!r}"
    url = URL(match.group(1))
    assert not url.absolute
    return match.group(1)


async def walk(client, url: str, key: str, limit: int = 100) -> tuple[list, int]:
    """Every item of a paginated /acr/v1 listing, following Link headers; and the number of pages."""
    items: list = []
    pages = 0
    while url is not None:
        response = await client.get(url)
        assert response.status == 200, await response.text()
        document = await response.json()
        url = next_link(response)
        if url is not None:
            assert document[key], "a page with a next Link should not be empty"
        items += document[key]
        pages += 1
        assert pages <= limit, "pagination does not terminate"
    return items, pages


def parse_time(value: str) -> datetime:
    assert TIME.match(value), value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def all_events(services) -> list:
    async with services.db.read() as conn:
        return await pending(conn, limit=100_000)


async def new_events(services, before: list) -> list[tuple]:
    seen = {row.id for row in before}
    return [
        (row.action, row.repository, row.digest, row.tag, row.actor)
        for row in await all_events(services)
        if row.id not in seen
    ]


async def patch(client, path: str, body) -> dict:
    response = await client.patch(path, json=body)
    assert response.status == 200, await response.text()
    assert response.content_type == "application/json"
    return await response.json()


async def push_index(client, push, repository: str, tag: str) -> tuple[str, list[str]]:
    """An OCI index of two images (amd64 and arm64); returns its digest and the children's."""
    children = []
    entries = []
    for architecture in ("amd64", "arm64"):
        config = await push.blob(repository, json.dumps({"architecture": architecture, "os": "linux"}).encode())
        config["mediaType"] = OCI_CONFIG
        body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": []}).encode()
        digest = sha256(body)
        assert (await put_manifest(client, repository, digest, body)).status == 201
        children.append(digest)
        entries.append(
            {
                "mediaType": OCI_MANIFEST,
                "digest": digest,
                "size": len(body),
                "platform": {"architecture": architecture, "os": "linux"},
            }
        )
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()
    response = await put_manifest(client, repository, tag, index, OCI_INDEX)
    assert response.status == 201, await response.text()
    return response.headers["Docker-Content-Digest"], children


# -- repositories -----------------------------------------------------------------


async def test_repository_attributes_shape(client, push):
    first, _ = await push.image("acr/repo", "v1")
    second, body = await push.image("acr/repo", "v2")
    assert (await put_manifest(client, "acr/repo", "v2-alias", body)).status == 201
    response = await client.get("/acr/v1/acr/repo")
    assert response.status == 200, await response.text()
    assert response.content_type == "application/json"
    assert_api_version(response)
    document = await response.json()
    assert set(document) == {
        "registry", "imageName", "createdTime", "lastUpdateTime", "manifestCount", "tagCount", "changeableAttributes"
    }
    assert document["registry"] == LOGIN_SERVER
    assert document["imageName"] == "acr/repo"
    assert document["manifestCount"] == 2
    assert document["tagCount"] == 3
    assert document["changeableAttributes"] == ALL_ENABLED
    assert parse_time(document["createdTime"]) <= parse_time(document["lastUpdateTime"])


async def test_repository_name_may_be_percent_encoded(client, push):
    await push.image("acr/encoded/name", "v1")
    response = await client.get(URL("/acr/v1/acr%2Fencoded%2Fname", encoded=True))
    assert response.status == 200, await response.text()
    assert (await response.json())["imageName"] == "acr/encoded/name"
    response = await client.get(URL("/acr/v1/acr%2Fencoded%2Fname/_tags", encoded=True))
    assert response.status == 200, await response.text()
    assert [tag["name"] for tag in (await response.json())["tags"]] == ["v1"]


async def test_unknown_repository_is_name_unknown(client):
    for path in ("/acr/v1/acr/nothing", "/acr/v1/acr/nothing/_tags", "/acr/v1/acr/nothing/_manifests",
                 "/acr/v1/acr/nothing/_tags/v1", f"/acr/v1/acr/nothing/_manifests/{sha256(b'x')}"):
        await assert_error(await client.get(path), 404, "NAME_UNKNOWN")
    await assert_error(await client.delete("/acr/v1/acr/nothing"), 404, "NAME_UNKNOWN")
    await assert_error(await client.patch("/acr/v1/acr/nothing", json={"readEnabled": False}), 404, "NAME_UNKNOWN")


@pytest.mark.parametrize("attribute", ATTRIBUTES)
async def test_patch_repository_attribute(client, push, attribute):
    await push.image("acr/patchrepo", "v1")
    document = await patch(client, "/acr/v1/acr/patchrepo", {attribute: False})
    assert document["imageName"] == "acr/patchrepo"
    assert document["changeableAttributes"] == {**ALL_ENABLED, attribute: False}
    shown = await (await client.get("/acr/v1/acr/patchrepo")).json()
    assert shown["changeableAttributes"] == {**ALL_ENABLED, attribute: False}
    # absent and null attributes are left alone; others are ignored
    document = await patch(client, "/acr/v1/acr/patchrepo", {"teleportEnabled": True, attribute: None})
    assert document["changeableAttributes"] == {**ALL_ENABLED, attribute: False}
    document = await patch(client, "/acr/v1/acr/patchrepo", {attribute: True})
    assert document["changeableAttributes"] == ALL_ENABLED


async def test_patch_with_several_attributes_and_empty_body(client, push):
    await push.image("acr/several", "v1")
    document = await patch(client, "/acr/v1/acr/several", {"deleteEnabled": False, "writeEnabled": False})
    assert document["changeableAttributes"] == {**ALL_ENABLED, "deleteEnabled": False, "writeEnabled": False}
    response = await client.patch("/acr/v1/acr/several", data=b"")
    assert response.status == 200
    assert (await response.json())["changeableAttributes"]["writeEnabled"] is False


async def test_patch_refuses_bad_bodies(client, push):
    await push.image("acr/badpatch", "v1")
    for body in (b"{nope", b"[1]", b'{"readEnabled": "no"}', b'{"writeEnabled": 0}'):
        response = await client.patch("/acr/v1/acr/badpatch", data=body, headers={"Content-Type": "application/json"})
        await assert_error(response, 400, "UNSUPPORTED")
    shown = await (await client.get("/acr/v1/acr/badpatch")).json()
    assert shown["changeableAttributes"] == ALL_ENABLED


async def test_delete_repository(client, push, services):
    first, body = await push.image("acr/gone", "v1")
    assert (await put_manifest(client, "acr/gone", "stable", body)).status == 201
    second, _ = await push.image("acr/gone", None)
    config = json.loads(body)["config"]["digest"]
    await push.image("acr/kept", "v1")
    before = await all_events(services)

    response = await client.delete("/acr/v1/acr/gone")
    assert response.status == 202, await response.text()
    document = await response.json()
    assert sorted(document) == ["manifestsDeleted", "tagsDeleted"]
    assert sorted(document["manifestsDeleted"]) == sorted([first, second])
    assert sorted(document["tagsDeleted"]) == ["stable", "v1"]

    await assert_error(await client.get("/acr/v1/acr/gone"), 404, "NAME_UNKNOWN")
    await assert_error(await client.get("/v2/acr/gone/manifests/v1"), 404, {"NAME_UNKNOWN", "MANIFEST_UNKNOWN"})
    await assert_error(await client.get(f"/v2/acr/gone/blobs/{config}"), 404, "BLOB_UNKNOWN")
    catalog = await (await client.get("/acr/v1/_catalog")).json()
    assert "acr/gone" not in catalog["repositories"] and "acr/kept" in catalog["repositories"]
    assert (await client.get("/v2/acr/kept/manifests/v1")).status == 200

    events = await new_events(services, before)
    tag_events = sorted(e for e in events if e[0] == "tag_delete")
    assert tag_events == [
        ("tag_delete", "acr/gone", first, "stable", "owner"),
        ("tag_delete", "acr/gone", first, "v1", "owner"),
    ]
    assert sorted(e for e in events if e[0] == "delete") == sorted(
        ("delete", "acr/gone", digest, None, "owner") for digest in (first, second)
    )
    assert events[-1] == ("repository_delete", "acr/gone", None, None, "owner")
    assert len(events) == 5

    # the name can be used again from scratch
    await push.image("acr/gone", "fresh")
    again = await (await client.get("/acr/v1/acr/gone")).json()
    assert (again["manifestCount"], again["tagCount"]) == (1, 1)


# -- catalog ----------------------------------------------------------------------


async def test_catalog_walked_with_link(client, push):
    names = [f"acrcat/r{i}" for i in range(5)]
    for name in names:
        await push.blob(name, name.encode())
    response = await client.get("/acr/v1/_catalog")
    assert response.status == 200
    assert set(names) <= set((await response.json())["repositories"])
    repositories, pages = await walk(client, "/acr/v1/_catalog?n=2", "repositories")
    assert repositories == sorted(repositories)
    assert set(names) <= set(repositories)
    assert pages >= 3
    response = await client.get("/acr/v1/_catalog?n=2&last=acrcat/r1")
    assert (await response.json())["repositories"] == ["acrcat/r2", "acrcat/r3"]


# -- tags -------------------------------------------------------------------------


async def test_tag_list_and_tag_shapes(client, push):
    digest, body = await push.image("acr/tags", "v1")
    response = await client.get("/acr/v1/acr/tags/_tags")
    assert response.status == 200
    document = await response.json()
    assert document["registry"] == LOGIN_SERVER and document["imageName"] == "acr/tags"
    [tag] = document["tags"]
    assert set(tag) == {"name", "digest", "createdTime", "lastUpdateTime", "signed", "changeableAttributes"}
    assert tag["name"] == "v1" and tag["digest"] == digest and tag["signed"] is False
    assert tag["changeableAttributes"] == ALL_ENABLED
    parse_time(tag["createdTime"]), parse_time(tag["lastUpdateTime"])

    response = await client.get("/acr/v1/acr/tags/_tags/v1")
    assert response.status == 200
    single = await response.json()
    assert single == {"registry": LOGIN_SERVER, "imageName": "acr/tags", "tag": tag}
    await assert_error(await client.get("/acr/v1/acr/tags/_tags/nope"), 404, "MANIFEST_UNKNOWN")


async def test_tag_move_changes_last_update_time_only(client, push):
    await push.image("acr/move", "v1")
    before = (await (await client.get("/acr/v1/acr/move/_tags/v1")).json())["tag"]
    moved, _ = await push.image("acr/move", "v1", layers=2)
    after = (await (await client.get("/acr/v1/acr/move/_tags/v1")).json())["tag"]
    assert after["digest"] == moved
    assert after["createdTime"] == before["createdTime"]
    assert parse_time(after["lastUpdateTime"]) > parse_time(before["lastUpdateTime"])


TAGS = ["b", "a", "d", "c", "f", "e", "g"]


async def tagged(client, push, repository: str, tags: list[str]) -> dict[str, str]:
    """Push one manifest per tag, in this order; returns tag -> digest."""
    digests = {}
    for tag in tags:
        digests[tag] = (await push_manifest(client, push, repository, tag, name=f"{repository}-{tag}"))[0]
    return digests


@pytest.mark.parametrize("n", [1, 2, 3, 7, 10])
async def test_tags_walked_by_name(client, push, n):
    await tagged(client, push, "acr/tagpages", TAGS)
    tags, pages = await walk(client, f"/acr/v1/acr/tagpages/_tags?n={n}", "tags")
    assert [tag["name"] for tag in tags] == sorted(TAGS)
    assert pages == -(-len(TAGS) // n)


@pytest.mark.parametrize("order", ["timeasc", "timedesc"])
@pytest.mark.parametrize("n", [1, 2, 3, 10])
async def test_tags_walked_by_time(client, push, order, n):
    await tagged(client, push, "acr/tagtime", TAGS)
    # re-pushing "a" moves it to the end of the time order
    await push_manifest(client, push, "acr/tagtime", "a", name="moved")
    expected = [tag for tag in TAGS if tag != "a"] + ["a"]
    if order == "timedesc":
        expected.reverse()
    tags, _ = await walk(client, f"/acr/v1/acr/tagtime/_tags?n={n}&orderby={order}", "tags")
    assert [tag["name"] for tag in tags] == expected
    times = [tag["lastUpdateTime"] for tag in tags]
    assert times == sorted(times, reverse=order == "timedesc")


async def test_time_link_carries_orderby_and_survives_deleting_the_page(client, push):
    """acr purge lists a page, deletes it, then asks for the next page with the Link's `last`."""
    await tagged(client, push, "acr/purge", TAGS)
    response = await client.get("/acr/v1/acr/purge/_tags?n=2&orderby=timedesc")
    link = next_link(response)
    assert link is not None and URL(link).query["orderby"] == "timedesc" and URL(link).query["n"] == "2"
    page = [tag["name"] for tag in (await response.json())["tags"]]
    assert page == ["g", "e"]
    for tag in page:
        assert (await client.delete(f"/acr/v1/acr/purge/_tags/{tag}")).status == 202
    rest, _ = await walk(client, link, "tags")
    assert [tag["name"] for tag in rest] == ["f", "c", "d", "a", "b"]


async def test_plain_name_as_last_with_orderby(client, push):
    await tagged(client, push, "acr/plainlast", TAGS)
    response = await client.get("/acr/v1/acr/plainlast/_tags?orderby=timeasc&last=d&n=2")
    assert [tag["name"] for tag in (await response.json())["tags"]] == ["c", "f"]


async def test_tags_filtered_by_digest(client, push):
    digest, body = await push.image("acr/bydigest", "v1")
    assert (await put_manifest(client, "acr/bydigest", "v1-alias", body)).status == 201
    await push.image("acr/bydigest", "other")
    response = await client.get(f"/acr/v1/acr/bydigest/_tags?digest={digest}")
    assert [tag["name"] for tag in (await response.json())["tags"]] == ["v1", "v1-alias"]
    response = await client.get(f"/acr/v1/acr/bydigest/_tags?digest={digest}&n=1")
    link = next_link(response)
    assert link is not None and URL(link).query["digest"] == digest
    tags, _ = await walk(client, f"/acr/v1/acr/bydigest/_tags?digest={digest}&n=1", "tags")
    assert [tag["name"] for tag in tags] == ["v1", "v1-alias"]


@pytest.mark.parametrize("attribute", ATTRIBUTES)
async def test_patch_tag_attribute(client, push, attribute):
    await push.image("acr/patchtag", "v1")
    await push.image("acr/patchtag", "v2")
    document = await patch(client, "/acr/v1/acr/patchtag/_tags/v1", {attribute: False})
    assert document["registry"] == LOGIN_SERVER and document["imageName"] == "acr/patchtag"
    assert document["tag"]["name"] == "v1"
    assert document["tag"]["changeableAttributes"] == {**ALL_ENABLED, attribute: False}
    shown = await (await client.get("/acr/v1/acr/patchtag/_tags/v1")).json()
    assert shown["tag"]["changeableAttributes"] == {**ALL_ENABLED, attribute: False}
    other = await (await client.get("/acr/v1/acr/patchtag/_tags/v2")).json()
    assert other["tag"]["changeableAttributes"] == ALL_ENABLED
    document = await patch(client, "/acr/v1/acr/patchtag/_tags/v1", {attribute: True})
    assert document["tag"]["changeableAttributes"] == ALL_ENABLED
    await assert_error(
        await client.patch("/acr/v1/acr/patchtag/_tags/nope", json={attribute: False}), 404, "MANIFEST_UNKNOWN"
    )


async def test_delete_tag(client, push, services):
    digest, body = await push.image("acr/deltag", "v1")
    assert (await put_manifest(client, "acr/deltag", "v2", body)).status == 201
    before = await all_events(services)
    response = await client.delete("/acr/v1/acr/deltag/_tags/v1")
    assert response.status == 202, await response.text()
    await assert_error(await client.get("/acr/v1/acr/deltag/_tags/v1"), 404, "MANIFEST_UNKNOWN")
    assert (await client.get(f"/v2/acr/deltag/manifests/{digest}")).status == 200
    assert await new_events(services, before) == [("tag_delete", "acr/deltag", digest, "v1", "owner")]
    await assert_error(await client.delete("/acr/v1/acr/deltag/_tags/v1"), 404, "MANIFEST_UNKNOWN")


# -- manifests --------------------------------------------------------------------


async def test_manifest_list_and_manifest_shapes(client, push):
    digest, body = await push.image("acr/manifests", "v1", layers=2)
    assert (await put_manifest(client, "acr/manifests", "latest", body)).status == 201
    document = json.loads(body)
    blob_bytes = document["config"]["size"] + sum(layer["size"] for layer in document["layers"])

    response = await client.get("/acr/v1/acr/manifests/_manifests")
    assert response.status == 200
    listing = await response.json()
    assert listing["registry"] == LOGIN_SERVER and listing["imageName"] == "acr/manifests"
    [manifest] = listing["manifests"]
    assert manifest["digest"] == digest
    assert manifest["imageSize"] == len(body) + blob_bytes
    assert manifest["architecture"] == "amd64" and manifest["os"] == "linux"
    assert manifest["mediaType"] == OCI_MANIFEST and manifest["configMediaType"] == OCI_CONFIG
    assert manifest["tags"] == ["latest", "v1"]
    assert manifest["changeableAttributes"] == ALL_ENABLED
    assert "references" not in manifest
    parse_time(manifest["createdTime"]), parse_time(manifest["lastUpdateTime"])

    for reference in (digest, "v1"):
        response = await client.get(f"/acr/v1/acr/manifests/_manifests/{reference}")
        assert response.status == 200, await response.text()
        assert await response.json() == {"registry": LOGIN_SERVER, "imageName": "acr/manifests", "manifest": manifest}
    await assert_error(await client.get(f"/acr/v1/acr/manifests/_manifests/{sha256(b'no')}"), 404, "MANIFEST_UNKNOWN")
    await assert_error(await client.get("/acr/v1/acr/manifests/_manifests/nope"), 404, "MANIFEST_UNKNOWN")


async def test_index_lists_its_references(client, push):
    index, children = await push_index(client, push, "acr/index", "multi")
    response = await client.get(f"/acr/v1/acr/index/_manifests/{index}")
    manifest = (await response.json())["manifest"]
    assert manifest["mediaType"] == OCI_INDEX
    assert manifest["tags"] == ["multi"]
    assert "architecture" not in manifest and "configMediaType" not in manifest
    assert manifest["references"] == [
        {"digest": children[0], "architecture": "amd64", "os": "linux"},
        {"digest": children[1], "architecture": "arm64", "os": "linux"},
    ]
    listing = await (await client.get("/acr/v1/acr/index/_manifests")).json()
    by_digest = {m["digest"]: m for m in listing["manifests"]}
    assert set(by_digest) == {index, *children}
    assert by_digest[children[1]]["architecture"] == "arm64" and by_digest[children[1]]["tags"] == []


@pytest.mark.parametrize("order", [None, "timeasc", "timedesc"])
@pytest.mark.parametrize("n", [1, 3, 10])
async def test_manifests_walked(client, push, order, n):
    digests = await tagged(client, push, "acr/manpages", TAGS)
    query = f"n={n}" + (f"&orderby={order}" if order else "")
    manifests, _ = await walk(client, f"/acr/v1/acr/manpages/_manifests?{query}", "manifests")
    listed = [m["digest"] for m in manifests]
    if order is None:
        assert listed == sorted(digests.values())
    else:
        expected = [digests[tag] for tag in TAGS]
        assert listed == (expected if order == "timeasc" else expected[::-1])


@pytest.mark.parametrize("attribute", ATTRIBUTES)
async def test_patch_manifest_attribute(client, push, attribute):
    digest, _ = await push.image("acr/patchman", "v1")
    document = await patch(client, f"/acr/v1/acr/patchman/_manifests/{digest}", {attribute: False})
    assert document["registry"] == LOGIN_SERVER and document["imageName"] == "acr/patchman"
    assert document["manifest"]["digest"] == digest
    assert document["manifest"]["changeableAttributes"] == {**ALL_ENABLED, attribute: False}
    shown = await (await client.get(f"/acr/v1/acr/patchman/_manifests/{digest}")).json()
    assert shown["manifest"]["changeableAttributes"] == {**ALL_ENABLED, attribute: False}
    # the tag keeps its own attributes
    tag = await (await client.get("/acr/v1/acr/patchman/_tags/v1")).json()
    assert tag["tag"]["changeableAttributes"] == ALL_ENABLED
    document = await patch(client, "/acr/v1/acr/patchman/_manifests/v1", {attribute: True})  # by tag too
    assert document["manifest"]["changeableAttributes"] == ALL_ENABLED


async def test_delete_manifest(client, push, services):
    digest, body = await push.image("acr/delman", "v1")
    assert (await put_manifest(client, "acr/delman", "v2", body)).status == 201
    other, _ = await push.image("acr/delman", "keep")
    before = await all_events(services)
    response = await client.delete(f"/acr/v1/acr/delman/_manifests/{digest}")
    assert response.status == 202, await response.text()
    await assert_error(await client.get(f"/acr/v1/acr/delman/_manifests/{digest}"), 404, "MANIFEST_UNKNOWN")
    tags = await (await client.get("/acr/v1/acr/delman/_tags")).json()
    assert [tag["name"] for tag in tags["tags"]] == ["keep"]
    assert await new_events(services, before) == [
        ("tag_delete", "acr/delman", digest, "v1", "owner"),
        ("tag_delete", "acr/delman", digest, "v2", "owner"),
        ("delete", "acr/delman", digest, None, "owner"),
    ]
    # by tag: the manifest the tag points at
    response = await client.delete("/acr/v1/acr/delman/_manifests/keep")
    assert response.status == 202
    await assert_error(await client.get(f"/v2/acr/delman/manifests/{other}"), 404, "MANIFEST_UNKNOWN")


# -- requests that are refused ----------------------------------------------------


async def test_bad_query_parameters(client, push):
    await push.image("acr/badquery", "v1")
    await assert_error(await client.get("/acr/v1/acr/badquery/_tags?orderby=bogus"), 400, "UNSUPPORTED")
    await assert_error(await client.get("/acr/v1/acr/badquery/_manifests?n=abc"), 400, "UNSUPPORTED")
    await assert_error(await client.get("/acr/v1/_catalog?n=-1"), 400, "UNSUPPORTED")
    response = await client.get("/acr/v1/acr/badquery/_tags?orderby=time_desc")  # the CLI's spelling
    assert response.status == 200


async def test_anonymous_is_challenged_for_the_right_scope(anonymous, push):
    await push.image("acr/anon", "v1")
    for method, path, scope in (
        ("GET", "/acr/v1/_catalog", "registry:catalog:*"),
        ("GET", "/acr/v1/acr/anon", "repository:acr/anon:metadata_read"),
        ("GET", "/acr/v1/acr/anon/_tags", "repository:acr/anon:metadata_read"),
        ("GET", "/acr/v1/acr/anon/_manifests/v1", "repository:acr/anon:metadata_read"),
        ("PATCH", "/acr/v1/acr/anon/_tags/v1", "repository:acr/anon:metadata_write"),
        ("DELETE", "/acr/v1/acr/anon", "repository:acr/anon:delete"),
        ("DELETE", "/acr/v1/acr/anon/_tags/v1", "repository:acr/anon:delete"),
    ):
        response = await anonymous.request(method, path)
        await assert_error(response, 401, "UNAUTHORIZED")
        scheme, params = parse_challenge(response.headers["WWW-Authenticate"])
        assert scheme == "Bearer" and params["scope"] == scope, (path, params)


async def test_bearer_tokens_need_the_metadata_actions(anonymous, push):
    await push.image("acr/tokens", "v1")
    pull_only = await fetch_token(anonymous, "repository:acr/tokens:pull")
    response = await anonymous.get("/acr/v1/acr/tokens/_tags", headers=bearer(pull_only))
    await assert_error(response, 403, "DENIED")
    reader = await fetch_token(anonymous, "repository:acr/tokens:metadata_read")
    response = await anonymous.get("/acr/v1/acr/tokens/_tags", headers=bearer(reader))
    assert response.status == 200
    response = await anonymous.patch("/acr/v1/acr/tokens/_tags/v1", json={"writeEnabled": False}, headers=bearer(reader))
    await assert_error(response, 403, "DENIED")
    writer = await fetch_token(anonymous, "repository:acr/tokens:metadata_write")
    response = await anonymous.patch("/acr/v1/acr/tokens/_tags/v1", json={"writeEnabled": False}, headers=bearer(writer))
    assert response.status == 200
    assert (await response.json())["tag"]["changeableAttributes"]["writeEnabled"] is False
