"""Tag lists are kept rendered under the repository's tag version (services/listings.py): a change
made through another Database (another process, another node on PostgreSQL) must show in the very
next listing of this one, whatever made it."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from dockyard.core.errors import ManifestInvalid, NameUnknown
from dockyard.metadata.database import utcnow
from dockyard.metadata.schema import repositories, tags
from dockyard.server import open_services
from tests.conftest import sha256

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture
async def nodes(settings):
    """Two services on one data dir and database, as two server processes would have."""
    first, _ = await open_services(settings)
    second, _ = await open_services(settings)
    yield first, second
    await first.close()
    await second.close()


async def manifest(services, registry_id: int, repository: str, note: str) -> bytes:
    """A manifest whose blobs are linked in the repository."""
    config, layer = b"config " + note.encode(), b"layer " + note.encode()
    async with services.db.write() as conn:
        for data in (config, layer):
            await services.blobs.link(conn, registry_id, repository, sha256(data), len(data))

    def descriptor(data: bytes) -> dict:
        return {"mediaType": "application/octet-stream", "digest": sha256(data), "size": len(data)}

    return json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptor(config), "layers": [descriptor(layer)],
        "annotations": {"note": note},
    }).encode()


async def listed(services, registry_id: int, repository: str, n: int | None = None, last: str | None = None):
    page = await services.listings.tags(registry_id, repository, n, last)
    return json.loads(page.body)["tags"], page.last


async def test_a_change_through_another_node_shows_in_the_next_listing(nodes):
    a, b = nodes
    registry = await a.registries.default()
    rid, repo = registry.id, "cache/tags"
    one = await manifest(b, rid, repo, "one")
    two = await manifest(b, rid, repo, "two")
    await b.manifests.put(rid, repo, "v1", one, OCI_MANIFEST)
    assert await listed(a, rid, repo) == (["v1"], None)
    assert await listed(a, rid, repo) == (["v1"], None)  # kept

    await b.manifests.put(rid, repo, "v2", one, OCI_MANIFEST)  # added
    assert await listed(a, rid, repo) == (["v1", "v2"], None)
    assert await listed(a, rid, repo, n=1) == (["v1"], "v1")
    assert await listed(a, rid, repo, n=1, last="v1") == (["v2"], None)

    await b.attributes.update_manifest(registry, repo, "v1", {"listEnabled": False})
    assert await listed(a, rid, repo) == ([], None)  # both tags point at the unlisted manifest
    await b.manifests.put(rid, repo, "v2", two, OCI_MANIFEST)  # moved to a listed one
    assert await listed(a, rid, repo) == (["v2"], None)
    await b.attributes.update_tag(registry, repo, "v2", {"listEnabled": False})
    assert await listed(a, rid, repo) == ([], None)
    await b.attributes.update_tag(registry, repo, "v2", {"listEnabled": True})
    await b.attributes.update_manifest(registry, repo, "v1", {"listEnabled": True})
    assert await listed(a, rid, repo) == (["v1", "v2"], None)

    await b.manifests.delete(rid, repo, "v1")  # tag deleted
    assert await listed(a, rid, repo) == (["v2"], None)
    await b.manifests.delete(rid, repo, sha256(two))  # manifest deleted, with its tag
    assert await listed(a, rid, repo) == ([], None)


async def test_a_repository_deleted_and_made_again_is_listed_anew(nodes):
    a, b = nodes
    registry = await a.registries.default()
    rid, repo = registry.id, "cache/again"
    await b.manifests.put(rid, repo, "old", await manifest(b, rid, repo, "old"), OCI_MANIFEST)
    assert await listed(a, rid, repo) == (["old"], None)
    await b.attributes.delete_repository(registry, repo)
    with pytest.raises(NameUnknown):
        await listed(a, rid, repo)
    await b.manifests.put(rid, repo, "new", await manifest(b, rid, repo, "new"), OCI_MANIFEST)
    assert await listed(a, rid, repo) == (["new"], None)


async def test_tags_written_straight_into_the_database_are_listed(nodes):
    """The version is bumped by the database itself (triggers), not only by the services."""
    a, b = nodes
    registry = await a.registries.default()
    rid, repo = registry.id, "cache/bulk"
    body = await manifest(b, rid, repo, "bulk")
    await b.manifests.put(rid, repo, "first", body, OCI_MANIFEST)
    assert await listed(a, rid, repo) == (["first"], None)
    async with b.db.write() as conn:
        repository_id = (await conn.execute(sa.select(repositories.c.id).where(repositories.c.name == repo))).scalar_one()
        now = utcnow()
        await conn.execute(sa.insert(tags), [
            {"repository_id": repository_id, "name": name, "digest": sha256(body), "created_at": now, "updated_at": now}
            for name in ("bulk-a", "bulk-b")
        ])
    assert await listed(a, rid, repo) == (["bulk-a", "bulk-b", "first"], None)
    async with b.db.write() as conn:
        await conn.execute(sa.delete(tags).where(tags.c.repository_id == repository_id, tags.c.name == "bulk-a"))
    assert await listed(a, rid, repo) == (["bulk-b", "first"], None)


async def test_a_whole_list_without_n_is_one_page_up_to_its_limit(services):
    registry = await services.registries.default()
    rid, repo = registry.id, "cache/whole"
    body = await manifest(services, rid, repo, "whole")
    names = [f"t{i:03d}" for i in range(7)]
    for name in names:
        await services.manifests.put(rid, repo, name, body, OCI_MANIFEST)
    assert await listed(services, rid, repo) == (names, None)
    services.listings.whole_page = 3
    assert await listed(services, rid, repo) == (names[:3], names[2])
    assert await listed(services, rid, repo, last=names[2]) == (names[3:6], names[5])
    assert await listed(services, rid, repo, last=names[5]) == (names[6:], None)


async def test_a_manifest_pushed_again_is_still_checked_against_its_content_type(services):
    """Pushing stored bytes under a new tag skips their references, not the Content-Type check."""
    registry = await services.registries.default()
    rid, repo = registry.id, "cache/again-typed"
    body = await manifest(services, rid, repo, "typed")
    await services.manifests.put(rid, repo, "v1", body, OCI_MANIFEST)
    await services.manifests.put(rid, repo, "v2", body, OCI_MANIFEST)
    with pytest.raises(ManifestInvalid):
        await services.manifests.put(rid, repo, "v3", body, "application/vnd.docker.distribution.manifest.v2+json")
    assert await listed(services, rid, repo) == (["v1", "v2"], None)
