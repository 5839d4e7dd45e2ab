"""The outbox: every change of content writes an event row in the same transaction."""

from __future__ import annotations

import json

import pytest

from dockyard.services.events import pending

from .helpers import OCI_LAYER, OCI_MANIFEST, assert_error, push_manifest, put_manifest, sha256


async def all_events(services) -> list:
    async with services.db.read() as conn:
        return await pending(conn, limit=10_000)


async def new_events(services, before: list) -> list[dict]:
    seen = {row.id for row in before}
    rows = [row for row in await all_events(services) if row.id not in seen]
    return [
        {k: getattr(row, k) for k in ("action", "repository", "digest", "tag", "media_type", "size", "actor")}
        for row in rows
    ]


@pytest.fixture
async def image(client, push):
    digest, body = await push.image("ev/repo", "v1")
    return digest, body


async def test_push_with_tag_records_push_event(client, push, services):
    before = await all_events(services)
    digest, body = await push_manifest(client, push, "ev/first", "v1")
    events = await new_events(services, before)
    assert events == [
        {
            "action": "push",
            "repository": "ev/first",
            "digest": digest,
            "tag": "v1",
            "media_type": OCI_MANIFEST,
            "size": len(body),
            "actor": "owner",
        }
    ]


async def test_push_by_digest_records_untagged_push_event(client, push, services):
    before = await all_events(services)
    digest, body = await push_manifest(client, push, "ev/untagged", None)
    events = await new_events(services, before)
    assert [(e["action"], e["digest"], e["tag"]) for e in events] == [("push", digest, None)]


async def test_push_with_tag_parameters_records_one_event_per_tag(client, push, services, image):
    _, body = image
    before = await all_events(services)
    response = await client.put(
        f"/v2/ev/repo/manifests/{sha256(body)}?tag=a&tag=b", data=body, headers={"Content-Type": OCI_MANIFEST}
    )
    assert response.status == 201
    events = await new_events(services, before)
    assert sorted((e["action"], e["tag"], e["digest"]) for e in events) == [
        ("push", "a", sha256(body)),
        ("push", "b", sha256(body)),
    ]


async def test_tag_moved_records_push_event_with_new_digest(client, push, services, image):
    old, _ = image
    before = await all_events(services)
    new, body = await push_manifest(client, push, "ev/repo", "v1", name="newer")
    assert new != old
    events = await new_events(services, before)
    assert [(e["action"], e["repository"], e["digest"], e["tag"]) for e in events] == [("push", "ev/repo", new, "v1")]
    assert events[0]["size"] == len(body)


async def test_tag_delete_records_tag_delete_event(client, services, image):
    digest, _ = image
    before = await all_events(services)
    response = await client.delete("/v2/ev/repo/manifests/v1")
    assert response.status == 202
    events = await new_events(services, before)
    assert events == [
        {
            "action": "tag_delete",
            "repository": "ev/repo",
            "digest": digest,
            "tag": "v1",
            "media_type": None,
            "size": None,
            "actor": "owner",
        }
    ]


async def test_manifest_delete_records_tag_deletes_and_delete(client, services, image):
    digest, body = image
    assert (await put_manifest(client, "ev/repo", "v2", body)).status == 201
    before = await all_events(services)
    response = await client.delete(f"/v2/ev/repo/manifests/{digest}")
    assert response.status == 202
    events = await new_events(services, before)
    assert [(e["action"], e["digest"], e["tag"]) for e in events] == [
        ("tag_delete", digest, "v1"),
        ("tag_delete", digest, "v2"),
        ("delete", digest, None),
    ]
    assert events[-1]["media_type"] == OCI_MANIFEST
    assert events[-1]["size"] == len(body)
    assert all(e["repository"] == "ev/repo" and e["actor"] == "owner" for e in events)


async def test_blob_delete_records_blob_delete_event(client, push, services):
    descriptor = await push.blob("ev/blobs", b"to delete")
    before = await all_events(services)
    response = await client.delete(f"/v2/ev/blobs/blobs/{descriptor['digest']}")
    assert response.status == 202
    events = await new_events(services, before)
    assert [(e["action"], e["repository"], e["digest"]) for e in events] == [
        ("blob_delete", "ev/blobs", descriptor["digest"])
    ]


async def test_failed_changes_record_no_event(client, push, services, image):
    digest, body = image
    before = await all_events(services)
    await assert_error(await client.delete("/v2/ev/repo/manifests/nope"), 404, "MANIFEST_UNKNOWN")
    await assert_error(await client.delete(f"/v2/ev/repo/manifests/{sha256(b'x')}"), 404, "MANIFEST_UNKNOWN")
    await assert_error(await client.delete(f"/v2/ev/repo/blobs/{sha256(b'x')}"), 404, "BLOB_UNKNOWN")
    document = json.loads(body)
    document["layers"].append({"mediaType": OCI_LAYER, "digest": sha256(b"gone"), "size": 4})
    missing = json.dumps(document).encode()
    await assert_error(await put_manifest(client, "ev/repo", "v9", b"{nope"), 400, "MANIFEST_INVALID")
    await assert_error(await put_manifest(client, "ev/repo", sha256(body + b"x"), body), 400, "DIGEST_INVALID")
    await assert_error(await put_manifest(client, "ev/repo", "v9", missing), 400, "MANIFEST_BLOB_UNKNOWN")
    assert await new_events(services, before) == []


async def test_every_event_of_a_session_in_order(client, push, services):
    before = await all_events(services)
    first, body1 = await push_manifest(client, push, "ev/story", "latest", name="one")
    second, body2 = await push_manifest(client, push, "ev/story", "latest", name="two")
    assert (await put_manifest(client, "ev/story", "stable", body2)).status == 201
    assert (await client.delete("/v2/ev/story/manifests/stable")).status == 202
    assert (await client.delete(f"/v2/ev/story/manifests/{second}")).status == 202
    assert (await client.delete(f"/v2/ev/story/manifests/{first}")).status == 202
    events = await new_events(services, before)
    assert [(e["action"], e["digest"], e["tag"]) for e in events] == [
        ("push", first, "latest"),
        ("push", second, "latest"),
        ("push", second, "stable"),
        ("tag_delete", second, "stable"),
        ("tag_delete", second, "latest"),
        ("delete", second, None),
        ("delete", first, None),
    ]
