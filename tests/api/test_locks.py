"""The changeable attributes as locks, enforced on /v2 and /acr/v1; a refused request changes nothing stored."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from dockyard.metadata.schema import events, manifest_references, manifests, repositories, repository_blobs, tags

from .helpers import assert_error, manifest_bytes, push_manifest, put_manifest, sha256

DISALLOWED = "the operation is disallowed"


async def stored(services) -> dict[str, list]:
    """Everything a refused request must leave as it was."""
    state = {}
    async with services.db.read() as conn:
        for table in (repositories, repository_blobs, manifests, manifest_references, tags, events):
            rows = (await conn.execute(sa.select(table).order_by(*table.primary_key.columns))).all()
            state[table.name] = [tuple(row) for row in rows]
    return state


async def refused(response, *fragments: str) -> None:
    await assert_error(response, 403, "DENIED")
    message = (await response.json())["errors"][0]["message"]
    assert DISALLOWED in message, message
    for fragment in fragments:
        assert fragment in message, message


async def lock(client, path: str, **attributes: bool) -> None:
    response = await client.patch(path, json=attributes)
    assert response.status == 200, await response.text()


async def tag_names(client, repository: str) -> list[str]:
    response = await client.get(f"/v2/{repository}/tags/list")
    assert response.status == 200
    return (await response.json())["tags"]


async def acr_tag_names(client, repository: str) -> list[str]:
    response = await client.get(f"/acr/v1/{repository}/_tags")
    assert response.status == 200
    return [tag["name"] for tag in (await response.json())["tags"]]


async def acr_manifest_digests(client, repository: str) -> list[str]:
    response = await client.get(f"/acr/v1/{repository}/_manifests")
    assert response.status == 200
    return [manifest["digest"] for manifest in (await response.json())["manifests"]]


async def catalogs(client) -> tuple[list[str], list[str]]:
    v2 = (await (await client.get("/v2/_catalog")).json())["repositories"]
    acr = (await (await client.get("/acr/v1/_catalog")).json())["repositories"]
    return v2, acr


# -- writeEnabled -----------------------------------------------------------------


async def test_write_locked_tag_refuses_pushes_and_deletes(client, push, services):
    digest, body = await push.image("lock/tagw", "v1")
    newer, newer_body = await push_manifest(client, push, "lock/tagw", None, name="newer")
    await lock(client, "/acr/v1/lock/tagw/_tags/v1", writeEnabled=False)
    before = await stored(services)

    await refused(await put_manifest(client, "lock/tagw", "v1", newer_body), "tag", "lock/tagw:v1", "write-locked")
    await refused(await put_manifest(client, "lock/tagw", newer, newer_body, params={"tag": "v1"}), "write-locked")
    await refused(await put_manifest(client, "lock/tagw", "v1", body))  # even to the same manifest
    await refused(await client.delete("/v2/lock/tagw/manifests/v1"))
    await refused(await client.delete("/acr/v1/lock/tagw/_tags/v1"))
    await refused(await client.delete(f"/v2/lock/tagw/manifests/{digest}"), "lock/tagw:v1")  # it would delete the tag
    await refused(await client.delete(f"/acr/v1/lock/tagw/_manifests/{digest}"))
    await refused(await client.delete("/acr/v1/lock/tagw"), "lock/tagw:v1")
    assert await stored(services) == before

    # the tag still points where it did; other tags and pulls are unaffected
    response = await client.get("/v2/lock/tagw/manifests/v1")
    assert response.status == 200 and response.headers["Docker-Content-Digest"] == digest
    assert (await put_manifest(client, "lock/tagw", "v2", newer_body)).status == 201

    await lock(client, "/acr/v1/lock/tagw/_tags/v1", writeEnabled=True)
    assert (await put_manifest(client, "lock/tagw", "v1", newer_body)).status == 201
    assert (await client.delete("/v2/lock/tagw/manifests/v1")).status == 202


async def test_write_locked_manifest_refuses_deletes(client, push, services):
    digest, body = await push.image("lock/manw", "v1")
    await lock(client, f"/acr/v1/lock/manw/_manifests/{digest}", writeEnabled=False)
    before = await stored(services)
    await refused(await client.delete(f"/v2/lock/manw/manifests/{digest}"), "manifest", "write-locked")
    await refused(await client.delete(f"/acr/v1/lock/manw/_manifests/{digest}"))
    await refused(await client.delete("/acr/v1/lock/manw"), "manifest")
    assert await stored(services) == before
    # the manifest's tags are the tags' business: they may move and be deleted
    assert (await put_manifest(client, "lock/manw", "v2", body)).status == 201
    assert (await client.delete("/v2/lock/manw/manifests/v2")).status == 202
    assert (await client.get(f"/v2/lock/manw/manifests/{digest}")).status == 200


async def test_write_locked_repository_refuses_pushes_and_deletes(client, push, services):
    digest, body = await push.image("lock/repow", "v1")
    layer = await push.blob("lock/repow", b"a layer for later")
    await lock(client, "/acr/v1/lock/repow", writeEnabled=False)
    before = await stored(services)

    await refused(await put_manifest(client, "lock/repow", "v2", body), "repository", "lock/repow", "write-locked")
    await refused(await put_manifest(client, "lock/repow", digest, body))
    await refused(await client.delete("/v2/lock/repow/manifests/v1"))
    await refused(await client.delete(f"/v2/lock/repow/manifests/{digest}"))
    await refused(await client.delete(f"/v2/lock/repow/blobs/{layer['digest']}"))
    await refused(await client.delete("/acr/v1/lock/repow/_tags/v1"))
    await refused(await client.delete(f"/acr/v1/lock/repow/_manifests/{digest}"))
    await refused(await client.delete("/acr/v1/lock/repow"))
    assert await stored(services) == before

    assert (await client.get("/v2/lock/repow/manifests/v1")).status == 200  # reads go on
    await lock(client, "/acr/v1/lock/repow", writeEnabled=True)
    assert (await put_manifest(client, "lock/repow", "v2", body)).status == 201


# -- deleteEnabled ----------------------------------------------------------------


async def test_delete_locked_tag_may_move_but_not_go(client, push, services):
    digest, body = await push.image("lock/tagd", "v1")
    await lock(client, "/acr/v1/lock/tagd/_tags/v1", deleteEnabled=False)
    before = await stored(services)
    await refused(await client.delete("/v2/lock/tagd/manifests/v1"), "delete-locked", "deleteEnabled")
    await refused(await client.delete("/acr/v1/lock/tagd/_tags/v1"))
    await refused(await client.delete(f"/v2/lock/tagd/manifests/{digest}"))
    await refused(await client.delete("/acr/v1/lock/tagd"))
    assert await stored(services) == before
    moved, _ = await push_manifest(client, push, "lock/tagd", "v1", name="moved")
    tag = await (await client.get("/acr/v1/lock/tagd/_tags/v1")).json()
    assert tag["tag"]["digest"] == moved
    assert tag["tag"]["changeableAttributes"]["deleteEnabled"] is False
    assert (await client.delete(f"/v2/lock/tagd/manifests/{digest}")).status == 202  # no longer tagged


async def test_delete_locked_manifest(client, push, services):
    digest, _ = await push.image("lock/mand", "v1")
    await lock(client, f"/acr/v1/lock/mand/_manifests/{digest}", deleteEnabled=False)
    before = await stored(services)
    await refused(await client.delete(f"/v2/lock/mand/manifests/{digest}"), "delete-locked")
    await refused(await client.delete("/acr/v1/lock/mand/_manifests/v1"))
    await refused(await client.delete("/acr/v1/lock/mand"))
    assert await stored(services) == before
    assert (await client.delete("/v2/lock/mand/manifests/v1")).status == 202  # the tag isn't locked


async def test_delete_locked_repository_still_takes_pushes(client, push, services):
    digest, body = await push.image("lock/repod", "v1")
    blob = await push.blob("lock/repod", b"some blob")
    await lock(client, "/acr/v1/lock/repod", deleteEnabled=False)
    before = await stored(services)
    await refused(await client.delete("/acr/v1/lock/repod"), "repository", "delete-locked")
    await refused(await client.delete("/v2/lock/repod/manifests/v1"))
    await refused(await client.delete(f"/v2/lock/repod/manifests/{digest}"))
    await refused(await client.delete(f"/v2/lock/repod/blobs/{blob['digest']}"))
    assert await stored(services) == before
    assert (await put_manifest(client, "lock/repod", "v2", body)).status == 201


# -- readEnabled ------------------------------------------------------------------


async def test_read_locked_tag_refuses_pulls_by_that_tag(client, push, services):
    digest, body = await push.image("lock/tagr", "v1")
    assert (await put_manifest(client, "lock/tagr", "v2", body)).status == 201
    await lock(client, "/acr/v1/lock/tagr/_tags/v1", readEnabled=False)
    before = await stored(services)
    await refused(await client.get("/v2/lock/tagr/manifests/v1"), "read-locked", "readEnabled")
    assert (await client.head("/v2/lock/tagr/manifests/v1")).status == 403
    assert (await client.get("/v2/lock/tagr/manifests/v2")).status == 200
    assert (await client.get(f"/v2/lock/tagr/manifests/{digest}")).status == 200
    assert await stored(services) == before
    await lock(client, "/acr/v1/lock/tagr/_tags/v1", readEnabled=True)
    assert (await client.get("/v2/lock/tagr/manifests/v1")).status == 200


async def test_read_locked_manifest_refuses_pulls_by_digest_and_tag(client, push):
    digest, _ = await push.image("lock/manr", "v1")
    other, _ = await push.image("lock/manr", "other")
    await lock(client, f"/acr/v1/lock/manr/_manifests/{digest}", readEnabled=False)
    await refused(await client.get(f"/v2/lock/manr/manifests/{digest}"), "manifest", "read-locked")
    await refused(await client.get("/v2/lock/manr/manifests/v1"), "manifest")
    assert (await client.get(f"/v2/lock/manr/manifests/{other}")).status == 200
    # its metadata is still readable
    assert (await client.get(f"/acr/v1/lock/manr/_manifests/{digest}")).status == 200


async def test_read_locked_repository_refuses_every_manifest_pull(client, push):
    digest, _ = await push.image("lock/repor", "v1")
    await lock(client, "/acr/v1/lock/repor", readEnabled=False)
    await refused(await client.get("/v2/lock/repor/manifests/v1"), "repository", "read-locked")
    await refused(await client.get(f"/v2/lock/repor/manifests/{digest}"), "repository")
    assert (await client.get("/acr/v1/lock/repor")).status == 200
    await assert_error(await client.get("/v2/lock/repor/manifests/nope"), 404, "MANIFEST_UNKNOWN")


# -- listEnabled ------------------------------------------------------------------


async def test_list_disabled_tag_is_hidden_but_usable(client, push):
    digest, body = await push.image("lock/tagl", "v1")
    assert (await put_manifest(client, "lock/tagl", "v2", body)).status == 201
    await lock(client, "/acr/v1/lock/tagl/_tags/v1", listEnabled=False)
    assert await tag_names(client, "lock/tagl") == ["v2"]
    assert await acr_tag_names(client, "lock/tagl") == ["v2"]
    manifest = (await (await client.get("/acr/v1/lock/tagl/_manifests")).json())["manifests"][0]
    assert manifest["tags"] == ["v2"]
    assert (await client.get("/v2/lock/tagl/manifests/v1")).status == 200
    assert (await client.get("/acr/v1/lock/tagl/_tags/v1")).status == 200
    await lock(client, "/acr/v1/lock/tagl/_tags/v1", listEnabled=True)
    assert await tag_names(client, "lock/tagl") == ["v1", "v2"]


async def test_list_disabled_tags_do_not_break_pagination(client, push):
    digest, body = await push.image("lock/tagpages", "a")
    for tag in ("b", "c", "d", "e"):
        assert (await put_manifest(client, "lock/tagpages", tag, body)).status == 201
    for tag in ("b", "c"):
        await lock(client, f"/acr/v1/lock/tagpages/_tags/{tag}", listEnabled=False)
    response = await client.get("/v2/lock/tagpages/tags/list?n=1&last=a")
    assert (await response.json())["tags"] == ["d"]
    response = await client.get("/acr/v1/lock/tagpages/_tags?n=2")
    assert [tag["name"] for tag in (await response.json())["tags"]] == ["a", "d"]


async def test_list_disabled_manifest_and_its_tags_are_hidden(client, push):
    digest, _ = await push.image("lock/manl", "v1")
    other, _ = await push.image("lock/manl", "v2")
    await lock(client, f"/acr/v1/lock/manl/_manifests/{digest}", listEnabled=False)
    assert await acr_manifest_digests(client, "lock/manl") == [other]
    assert await tag_names(client, "lock/manl") == ["v2"]
    assert await acr_tag_names(client, "lock/manl") == ["v2"]
    assert (await client.get("/v2/lock/manl/manifests/v1")).status == 200
    assert (await client.get(f"/acr/v1/lock/manl/_manifests/{digest}")).status == 200


async def test_list_disabled_repository_leaves_the_catalogs(client, push):
    await push.image("lock/repol", "v1")
    await push.image("lock/repol2", "v1")
    await lock(client, "/acr/v1/lock/repol", listEnabled=False)
    v2, acr = await catalogs(client)
    assert "lock/repol" not in v2 and "lock/repol" not in acr
    assert "lock/repol2" in v2 and "lock/repol2" in acr
    assert (await client.get("/v2/lock/repol/manifests/v1")).status == 200
    assert (await client.get("/acr/v1/lock/repol")).status == 200
    await lock(client, "/acr/v1/lock/repol", listEnabled=True)
    v2, acr = await catalogs(client)
    assert "lock/repol" in v2 and "lock/repol" in acr


# -- locks and the lock metadata itself -------------------------------------------


@pytest.mark.parametrize("attribute", ["writeEnabled", "deleteEnabled"])
async def test_locked_items_can_still_be_unlocked(client, push, attribute):
    digest, _ = await push.image("lock/unlock", "v1")
    for path in ("/acr/v1/lock/unlock", "/acr/v1/lock/unlock/_tags/v1", f"/acr/v1/lock/unlock/_manifests/{digest}"):
        await lock(client, path, **{attribute: False})
    await refused(await client.delete("/acr/v1/lock/unlock"))
    for path in ("/acr/v1/lock/unlock", "/acr/v1/lock/unlock/_tags/v1", f"/acr/v1/lock/unlock/_manifests/{digest}"):
        await lock(client, path, **{attribute: True})
    response = await client.delete("/acr/v1/lock/unlock")
    assert response.status == 202
    assert (await response.json())["manifestsDeleted"] == [digest]


async def test_refused_push_of_a_new_manifest_stores_nothing(client, push, services):
    await push.image("lock/nothing", "v1")
    await push_manifest(client, push, "lock/nothing", "v2", name="kept")
    await lock(client, "/acr/v1/lock/nothing/_tags/v1", writeEnabled=False)
    fresh = await push.blob("lock/nothing", b'{"architecture": "amd64", "os": "linux", "fresh": 1}')
    fresh["mediaType"] = "application/vnd.oci.image.config.v1+json"
    manifest = manifest_bytes(fresh, [])
    before = await stored(services)
    await refused(await put_manifest(client, "lock/nothing", "v1", manifest))
    assert await stored(services) == before
    await assert_error(await client.get(f"/v2/lock/nothing/manifests/{sha256(manifest)}"), 404, "MANIFEST_UNKNOWN")
