"""Manifests and tags at the service level: concurrent tag moves, tenancy, and the outbox."""

from __future__ import annotations

import asyncio
import hashlib
import json

import pytest
import sqlalchemy as sa

from dockyard.core.digests import Digest
from dockyard.core.errors import ManifestBlobUnknown, ManifestUnknown, NameUnknown
from dockyard.metadata.schema import events

OCI = "application/vnd.oci.image.manifest.v1+json"


async def body(data: bytes):
    yield data


async def put_blob(services, registry_id: int, repository: str, data: bytes) -> dict:
    digest = Digest("sha256", hashlib.sha256(data).hexdigest())
    upload = await services.uploads.start(registry_id, repository)
    await services.uploads.complete(upload, digest, body(data))
    return {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": str(digest), "size": len(data)}


async def image(services, registry_id: int, repository: str, marker: str) -> bytes:
    config = await put_blob(services, registry_id, repository, json.dumps({"marker": marker}).encode())
    return json.dumps({"schemaVersion": 2, "mediaType": OCI, "config": config, "layers": []}).encode()


async def event_rows(services):
    async with services.db.read() as conn:
        return (await conn.execute(sa.select(events).order_by(events.c.id))).all()


async def test_concurrent_tag_moves_leave_the_tag_on_one_pushed_manifest(services):
    registry = await services.registries.default()
    manifests = [await image(services, registry.id, "app", str(i)) for i in range(8)]
    results = await asyncio.gather(
        *(services.manifests.put(registry.id, "app", "latest", m, OCI) for m in manifests)
    )
    current = await services.manifests.get(registry.id, "app", "latest")
    assert current.digest in {r.digest for r in results}
    pushes = [row for row in await event_rows(services) if row.action == "push" and row.tag == "latest"]
    assert len(pushes) == 8


async def test_registries_do_not_see_each_others_content(services):
    first = await services.registries.default()
    second = await services.registries.ensure("secondregistry")
    manifest = await image(services, first.id, "app", "a")
    await services.manifests.put(first.id, "app", "v1", manifest, OCI)
    with pytest.raises(NameUnknown):
        await services.manifests.get(second.id, "app", "v1")
    # The same blobs can't be referenced from the other registry without being pushed there.
    with pytest.raises(ManifestBlobUnknown):
        await services.manifests.put(second.id, "app", "v1", manifest, OCI)
    assert (await services.listings.catalog(second.id, None, None)).items == []


async def test_a_refused_push_writes_no_event_and_no_repository(services):
    registry = await services.registries.default()
    missing = {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + "0" * 64, "size": 1}
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI, "config": missing, "layers": []}).encode()
    with pytest.raises(ManifestBlobUnknown):
        await services.manifests.put(registry.id, "ghost", "v1", manifest, OCI)
    assert await event_rows(services) == []
    assert (await services.listings.catalog(registry.id, None, None)).items == []


async def test_delete_writes_events_in_order(services):
    registry = await services.registries.default()
    manifest = await image(services, registry.id, "app", "x")
    result = await services.manifests.put(registry.id, "app", "v1", manifest, OCI, extra_tags=["v1.0"])
    await services.manifests.delete(registry.id, "app", result.digest, actor="owner")
    with pytest.raises(ManifestUnknown):
        await services.manifests.get(registry.id, "app", "v1")
    actions = [(row.action, row.tag) for row in await event_rows(services)]
    assert actions == [
        ("push", "v1"),
        ("push", "v1.0"),
        ("tag_delete", "v1"),
        ("tag_delete", "v1.0"),
        ("delete", None),
    ]
