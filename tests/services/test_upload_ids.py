"""Upload ids that carry their own signed state: starting an upload writes nothing, an id is
good only where it was issued and only once, and every node (both databases) honours that."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import timedelta

import pytest
import sqlalchemy as sa

from dockyard.core.digests import Digest
from dockyard.core.errors import BlobUnknown, BlobUploadUnknown, DigestInvalid
from dockyard.metadata.database import utcnow
from dockyard.metadata.schema import uploads
from dockyard.server import open_services
from dockyard.services.upload_ids import LENGTH
from dockyard.services.uploads import DEFAULT_EXPIRY


async def body(*pieces: bytes):
    for piece in pieces:
        yield piece


def digest_of(data: bytes) -> Digest:
    return Digest("sha256", hashlib.sha256(data).hexdigest())


async def rows_of(services) -> dict[str, str]:
    """Every upload row: id -> state."""
    async with services.db.read() as conn:
        return {row.id: row.state for row in await conn.execute(sa.select(uploads.c.id, uploads.c.state))}


def upload_files(services) -> list[str]:
    return sorted(p.name for p in (services.store.root / "uploads").iterdir() if not p.name.startswith("."))


@pytest.fixture
async def second(settings, services):
    """Another node: its own services (database connections, caches, locks) on the same database and store."""
    node, _ = await open_services(settings)
    yield node
    await node.close()


async def issued_at(services, registry_id: int, repository: str, when) -> str:
    """An id issued with this installation's key at ``when``."""
    ids = await services.uploads._upload_ids()
    return ids.issue(registry_id, repository, "sha256", when)[0]


async def test_starting_an_upload_writes_nothing(services):
    registry = await services.registries.default()
    upload = await services.uploads.start(registry.id, "app")
    assert len(upload.id) == LENGTH and upload.fresh and upload.size == 0
    assert await rows_of(services) == {}
    assert upload_files(services) == []
    fresh = await services.uploads.get(registry.id, "app", upload.id)
    assert fresh.fresh and fresh.size == 0 and fresh.algorithm == "sha256"
    sha512 = await services.uploads.start(registry.id, "app", "sha512")
    assert (await services.uploads.get(registry.id, "app", sha512.id)).algorithm == "sha512"


async def test_a_forged_or_altered_id_is_unknown(services):
    registry = await services.registries.default()
    good = (await services.uploads.start(registry.id, "app")).id
    flipped = good[:-1] + ("0" if good[-1] != "0" else "1")  # the signature altered
    algorithm = good[:18] + format(int(good[18:20], 16) ^ 1, "02x") + good[20:]  # the algorithm altered
    older = good[:26] + format(int(good[26:28], 16) ^ 1, "02x") + good[28:]  # the issue time altered
    for upload_id in (flipped, algorithm, older, good.upper(), "z" * LENGTH, " " + good[1:], "0" * LENGTH, good + "0", good[:-2]):
        with pytest.raises(BlobUploadUnknown):
            await services.uploads.get(registry.id, "app", upload_id)
    assert (await services.uploads.get(registry.id, "app", good)).fresh


async def test_an_id_is_good_only_in_its_repository_and_registry(services):
    registry = await services.registries.default()
    other = await services.registries.ensure("otherregistry")
    upload = await services.uploads.start(registry.id, "app")
    for registry_id, repository in ((registry.id, "app2"), (registry.id, "ap"), (other.id, "app")):
        with pytest.raises(BlobUploadUnknown):
            await services.uploads.get(registry_id, repository, upload.id)
        with pytest.raises(BlobUploadUnknown):
            await services.uploads.complete(
                upload.__class__(upload.id, registry_id, repository, "sha256", 0), digest_of(b"x"), body(b"x"), length=1
            )
    with pytest.raises(BlobUnknown):
        await services.blobs.stat(registry.id, "app2", digest_of(b"x"))
    assert (await services.uploads.get(registry.id, "app", upload.id)).fresh


async def test_an_id_older_than_the_upload_expiry_is_unknown(services):
    registry = await services.registries.default()
    stale = await issued_at(services, registry.id, "app", utcnow() - DEFAULT_EXPIRY - timedelta(minutes=1))
    recent = await issued_at(services, registry.id, "app", utcnow() - DEFAULT_EXPIRY + timedelta(minutes=5))
    with pytest.raises(BlobUploadUnknown):
        await services.uploads.get(registry.id, "app", stale)
    assert (await services.uploads.get(registry.id, "app", recent)).fresh


async def test_an_id_completed_by_its_first_put_is_used_up(services):
    registry = await services.registries.default()
    data = b"one PUT, the whole blob"
    upload = await services.uploads.start(registry.id, "app")
    info = await services.uploads.complete(upload, digest_of(data), body(data), length=len(data))
    assert info.size == len(data)
    assert (await services.blobs.stat(registry.id, "app", digest_of(data))).size == len(data)
    assert await rows_of(services) == {upload.id: "done"}  # the tombstone, nothing else
    assert upload_files(services) == []
    with pytest.raises(BlobUploadUnknown):
        await services.uploads.get(registry.id, "app", upload.id)
    for attempt in (
        services.uploads.complete(upload, digest_of(data), body(data), length=len(data)),
        services.uploads.append(upload, body(b"more"), start=0),
        services.uploads.cancel(upload),
    ):
        with pytest.raises(BlobUploadUnknown):
            await attempt


async def test_a_cancelled_fresh_id_is_unknown_afterwards(services):
    registry = await services.registries.default()
    upload = await services.uploads.start(registry.id, "app")
    await services.uploads.cancel(upload)
    assert await rows_of(services) == {upload.id: "cancelled"}
    for attempt in (
        services.uploads.get(registry.id, "app", upload.id),
        services.uploads.complete(upload, digest_of(b"late"), body(b"late"), length=4),
        services.uploads.append(upload, body(b"late"), start=0),
        services.uploads.cancel(upload),
    ):
        with pytest.raises(BlobUploadUnknown):
            await attempt
    with pytest.raises(BlobUnknown):
        await services.blobs.stat(registry.id, "app", digest_of(b"late"))


async def test_a_wrong_digest_on_a_fresh_id_stores_nothing(services):
    registry = await services.registries.default()
    upload = await services.uploads.start(registry.id, "app")
    with pytest.raises(DigestInvalid):
        await services.uploads.complete(upload, digest_of(b"other"), body(b"data"), length=4)
    with pytest.raises(BlobUnknown):
        await services.blobs.stat(registry.id, "app", digest_of(b"other"))
    assert services.store.local_path(str(digest_of(b"other"))).exists() is False
    assert await rows_of(services) == {}


async def test_patch_then_put_on_a_fresh_id(services):
    registry = await services.registries.default()
    data = bytes(range(256)) * 300
    upload = await services.uploads.start(registry.id, "app")
    upload = await services.uploads.append(upload, body(data[:10_000]), start=0)
    assert upload.size == 10_000 and not upload.fresh
    assert await rows_of(services) == {upload.id: "open"}
    info = await services.uploads.complete(upload, digest_of(data), body(data[10_000:]), start=10_000)
    assert info.size == len(data)
    assert await rows_of(services) == {upload.id: "done"}
    assert upload_files(services) == []


async def test_a_fresh_id_is_honoured_and_used_up_on_every_node(services, second):
    registry = await services.registries.default()
    data = b"started on one node, completed on the other"
    upload = await services.uploads.start(registry.id, "app")
    on_second = await second.uploads.get(registry.id, "app", upload.id)
    assert on_second.fresh
    await second.uploads.complete(on_second, digest_of(data), body(data), length=len(data))
    assert (await services.blobs.stat(registry.id, "app", digest_of(data))).size == len(data)
    for node in (services, second):
        with pytest.raises(BlobUploadUnknown):
            await node.uploads.get(registry.id, "app", upload.id)
    # chunks on one node, the rest on the other
    upload = await second.uploads.start(registry.id, "app")
    upload = await services.uploads.append(await services.uploads.get(registry.id, "app", upload.id), body(b"a" * 100))
    info = await second.uploads.complete(await second.uploads.get(registry.id, "app", upload.id),
                                         digest_of(b"a" * 150), body(b"a" * 50), start=100)
    assert info.size == 150
    # cancelled on one node: unknown on the other
    upload = await services.uploads.start(registry.id, "app")
    await second.uploads.cancel(await second.uploads.get(registry.id, "app", upload.id))
    with pytest.raises(BlobUploadUnknown):
        await services.uploads.get(registry.id, "app", upload.id)


async def test_two_nodes_completing_one_fresh_id_yield_one_blob(services, second):
    registry = await services.registries.default()
    for round in range(4):
        first_data, second_data = b"first %d" % round, b"second %d" % round
        upload = await services.uploads.start(registry.id, "app")
        results = await asyncio.gather(
            services.uploads.complete(upload, digest_of(first_data), body(first_data), length=len(first_data)),
            second.uploads.complete(upload, digest_of(second_data), body(second_data), length=len(second_data)),
            return_exceptions=True,
        )
        assert sorted(type(r).__name__ for r in results) == ["BlobInfo", "BlobUploadUnknown"], results
        winner, loser = (first_data, second_data) if not isinstance(results[0], Exception) else (second_data, first_data)
        assert (await services.blobs.stat(registry.id, "app", digest_of(winner))).size == len(winner)
        with pytest.raises(BlobUnknown):  # its bytes may be stored, but no repository sees them
            await services.blobs.stat(registry.id, "app", digest_of(loser))


async def test_an_upload_begun_before_ids_were_signed_still_completes(services):
    """A row written by the code before signed ids (a random 32-digit id) is honoured by its row."""
    registry = await services.registries.default()
    legacy = "0123456789abcdef0123456789abcdef"
    await services.store.create_upload(legacy)
    now = utcnow()
    async with services.db.write() as conn:
        await conn.execute(sa.insert(uploads).values(id=legacy, registry_id=registry.id, repository="app",
                                                     algorithm="sha256", size=0, state="open",
                                                     created_at=now, updated_at=now))
    upload = await services.uploads.get(registry.id, "app", legacy)
    assert not upload.fresh
    upload = await services.uploads.append(upload, body(b"old "), start=0)
    await services.uploads.complete(upload, digest_of(b"old upload"), body(b"upload"), start=4)
    with pytest.raises(BlobUploadUnknown):
        await services.uploads.get(registry.id, "app", legacy)
    with pytest.raises(BlobUploadUnknown):  # an unsigned id without a row
        await services.uploads.get(registry.id, "app", "fedcba9876543210fedcba9876543210")


async def test_expiry_removes_stored_bytes_and_forgets_tombstones_once_their_ids_are_refused(services):
    registry = await services.registries.default()
    uploads_service = services.uploads
    abandoned = await uploads_service.append(await uploads_service.start(registry.id, "app"), body(b"abandoned"))
    active = await uploads_service.append(await uploads_service.start(registry.id, "app"), body(b"active"))
    used = await uploads_service.start(registry.id, "app")
    await uploads_service.complete(used, digest_of(b"used"), body(b"used"), length=4)
    old = await issued_at(services, registry.id, "app", utcnow() - DEFAULT_EXPIRY - timedelta(hours=2))
    async with services.db.write() as conn:  # abandoned an hour ago; a tombstone of an id now refused
        await conn.execute(sa.update(uploads).where(uploads.c.id == abandoned.id)
                           .values(updated_at=utcnow() - timedelta(hours=1)))
        await conn.execute(sa.insert(uploads).values(id=old, registry_id=registry.id, repository="app",
                                                     algorithm="sha256", size=0, state="done",
                                                     created_at=utcnow() - DEFAULT_EXPIRY - timedelta(hours=2),
                                                     updated_at=utcnow() - DEFAULT_EXPIRY))
    assert await uploads_service.expire(utcnow() - timedelta(minutes=30)) == 1
    assert await rows_of(services) == {abandoned.id: "expired", active.id: "open", used.id: "done"}
    assert upload_files(services) == [active.id]
    with pytest.raises(BlobUploadUnknown):  # its id is still within its time, but the upload is over
        await uploads_service.get(registry.id, "app", abandoned.id)
    assert (await uploads_service.get(registry.id, "app", active.id)).size == 6
    with pytest.raises(BlobUploadUnknown):
        await uploads_service.get(registry.id, "app", old)


async def test_a_small_body_of_another_length_than_announced_stores_nothing(services):
    """Small whole blobs are read into memory and stored at once: still checked against Content-Length."""
    from dockyard.core.errors import SizeInvalid

    registry = await services.registries.default()
    upload = await services.uploads.start(registry.id, "app")
    for length in (3, 5):
        with pytest.raises(SizeInvalid):
            await services.uploads.complete(upload, digest_of(b"data"), body(b"da", b"ta"), length=length)
        with pytest.raises(SizeInvalid):
            await services.uploads.put_whole(registry.id, "app", digest_of(b"data"), body(b"data"), length=length)
    assert services.store.local_path(str(digest_of(b"data"))).exists() is False
    assert (await services.uploads.get(registry.id, "app", upload.id)).fresh
    info = await services.uploads.complete(upload, digest_of(b"data"), body(b"da", b"ta"), length=4)
    assert info.size == 4 and services.store.local_path(str(digest_of(b"data"))).read_bytes() == b"data"
