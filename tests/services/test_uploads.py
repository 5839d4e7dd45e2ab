"""Upload sessions at the service level: resuming, racing, and what a failure leaves behind."""

from __future__ import annotations

import asyncio
import hashlib
import os

import pytest

from dockyard.core.digests import Digest
from dockyard.core.errors import BlobUnknown, BlobUploadInvalid, BlobUploadUnknown, DigestInvalid, RangeNotSatisfiable
from dockyard.services.blobs import BlobService
from dockyard.services.uploads import UploadService


async def body(*pieces: bytes):
    for piece in pieces:
        yield piece


def digest_of(data: bytes) -> Digest:
    return Digest("sha256", hashlib.sha256(data).hexdigest())


class NoReadBack:
    """A blob store that fails if anyone reads a partial upload back."""

    def __init__(self, store) -> None:
        self._store = store

    def read_upload(self, upload_id, length):
        raise AssertionError("the upload was re-read instead of resuming its saved hash state")

    def __getattr__(self, name):
        return getattr(self._store, name)


async def test_upload_continues_on_another_node_from_the_saved_hash_state(services):
    registry = await services.registries.default()
    data = bytes(range(256)) * 4099  # not a whole number of hash blocks
    upload = await services.uploads.start(registry.id, "app", "sha256")
    upload = await services.uploads.append(upload, body(data[:333_333]), start=0)
    # Another node: its own services, a store that must not be read back.
    store = NoReadBack(services.store)
    other = UploadService(services.db, store, BlobService(services.db, store))
    upload = await other.get(registry.id, "app", upload.id)
    assert upload.size == 333_333 and upload.hash_state
    upload = await other.append(upload, body(data[333_333:700_001]), start=333_333)
    upload = await services.uploads.append(
        await services.uploads.get(registry.id, "app", upload.id), body(data[700_001:]), start=700_001
    )
    info = await other.complete(await other.get(registry.id, "app", upload.id), digest_of(data))
    assert info.size == len(data)


async def test_a_damaged_hash_state_costs_a_re_read_not_a_wrong_digest(services):
    import sqlalchemy as sa

    from dockyard.metadata.schema import uploads

    registry = await services.registries.default()
    upload = await services.uploads.append(await services.uploads.start(registry.id, "app"), body(b"abc" * 1000))
    state = bytearray(upload.hash_state)
    state[9 + 104] = 200  # `num` past the block size: OpenSSL would read out of bounds
    async with services.db.write() as conn:
        await conn.execute(sa.update(uploads).where(uploads.c.id == upload.id).values(hash_state=bytes(state)))
    upload = await services.uploads.get(registry.id, "app", upload.id)
    upload = await services.uploads.append(upload, body(b"def"), start=3000)
    info = await services.uploads.complete(upload, digest_of(b"abc" * 1000 + b"def"))
    assert info.size == 3003


async def test_an_upload_without_saved_hash_state_resumes_by_rehashing(services):
    """Uploads begun before hash states were saved (or with no libcrypto) still complete."""
    import sqlalchemy as sa

    from dockyard.metadata.schema import uploads

    registry = await services.registries.default()
    upload = await services.uploads.start(registry.id, "app", "sha256")
    upload = await services.uploads.append(upload, body(b"first half, "), start=0)
    async with services.db.write() as conn:
        await conn.execute(sa.update(uploads).where(uploads.c.id == upload.id).values(hash_state=None))
    fresh = UploadService(services.db, services.store, BlobService(services.db, services.store))
    upload = await fresh.get(registry.id, "app", upload.id)
    assert upload.size == 12 and upload.hash_state is None
    upload = await fresh.append(upload, body(b"second half"), start=12)
    info = await fresh.complete(upload, digest_of(b"first half, second half"))
    assert info.size == 23
    assert (await services.blobs.stat(registry.id, "app", digest_of(b"first half, second half"))).size == 23


async def test_out_of_order_chunk_is_refused_and_changes_nothing(services):
    registry = await services.registries.default()
    upload = await services.uploads.append(await services.uploads.start(registry.id, "app"), body(b"abc"), start=0)
    with pytest.raises(RangeNotSatisfiable):
        await services.uploads.append(upload, body(b"zzz"), start=10)
    assert (await services.uploads.get(registry.id, "app", upload.id)).size == 3


async def test_wrong_digest_leaves_upload_open_and_blob_invisible(services):
    registry = await services.registries.default()
    upload = await services.uploads.append(await services.uploads.start(registry.id, "app"), body(b"data"))
    with pytest.raises(DigestInvalid):
        await services.uploads.complete(upload, digest_of(b"other"))
    with pytest.raises(BlobUnknown):
        await services.blobs.stat(registry.id, "app", digest_of(b"other"))
    info = await services.uploads.complete(upload, digest_of(b"data"))
    assert info.size == 4


async def test_two_completions_of_one_upload_yield_one_blob(services):
    registry = await services.registries.default()
    upload = await services.uploads.append(await services.uploads.start(registry.id, "app"), body(b"x" * 5000))
    results = await asyncio.gather(
        services.uploads.complete(upload, digest_of(b"x" * 5000)),
        services.uploads.complete(upload, digest_of(b"x" * 5000)),
        return_exceptions=True,
    )
    assert sum(1 for r in results if not isinstance(r, Exception)) == 1
    assert sum(1 for r in results if isinstance(r, BlobUploadUnknown)) == 1
    assert (await services.blobs.stat(registry.id, "app", digest_of(b"x" * 5000))).size == 5000


async def test_many_clients_pushing_the_same_blob_end_consistent(services):
    registry = await services.registries.default()
    data = b"shared layer" * 1000

    async def push(repository: str):
        upload = await services.uploads.start(registry.id, repository)
        return await services.uploads.complete(upload, digest_of(data), body(data))

    results = await asyncio.gather(*(push(f"app{i % 3}") for i in range(12)))
    assert {r.digest for r in results} == {str(digest_of(data))}
    for i in range(3):
        assert (await services.blobs.stat(registry.id, f"app{i}", digest_of(data))).size == len(data)
    chunks = [chunk async for chunk in services.blobs.read(str(digest_of(data)))]
    assert b"".join(chunks) == data


async def test_cancelled_upload_is_gone(services):
    registry = await services.registries.default()
    upload = await services.uploads.start(registry.id, "app")
    await services.uploads.cancel(upload)
    with pytest.raises(BlobUploadUnknown):
        await services.uploads.get(registry.id, "app", upload.id)


async def test_upload_is_bound_to_its_repository_and_registry(services):
    registry = await services.registries.default()
    other = await services.registries.ensure("otherregistry")
    upload = await services.uploads.start(registry.id, "app")
    with pytest.raises(BlobUploadUnknown):
        await services.uploads.get(registry.id, "elsewhere", upload.id)
    with pytest.raises(BlobUploadUnknown):
        await services.uploads.get(other.id, "app", upload.id)


async def test_a_monolithic_upload_with_a_wrong_digest_leaves_nothing_behind(services):
    registry = await services.registries.default()
    with pytest.raises(DigestInvalid):
        await services.uploads.put_whole(registry.id, "app", digest_of(b"other"), body(b"data"), length=4)
    with pytest.raises(BlobUnknown):
        await services.blobs.stat(registry.id, "app", digest_of(b"other"))
    uploads_dir = services.store.root / "uploads"
    assert [p for p in uploads_dir.iterdir() if not p.name.startswith(".")] == []
    info = await services.uploads.put_whole(registry.id, "app", digest_of(b"data"), body(b"data"), length=4)
    assert (await services.blobs.stat(registry.id, "app", digest_of(b"data"))).size == info.size == 4


# -- a chunk acknowledged but not yet durable, then a crash of the machine ----------------------
# (the filesystem store fsyncs an upload's bytes only when it commits the blob)


def _upload_file(services, upload):
    return services.store.root / "uploads" / upload.id


async def test_an_upload_that_lost_acknowledged_bytes_is_refused_not_committed(services):
    registry = await services.registries.default()
    data = bytes(range(256)) * 800
    upload = await services.uploads.append(await services.uploads.start(registry.id, "app"), body(data[:150_000]))
    os.truncate(_upload_file(services, upload), 100_000)  # the machine crashed before writeback
    with pytest.raises(BlobUploadInvalid, match="start the upload again"):
        await services.uploads.append(upload, body(data[150_000:]), start=150_000)
    with pytest.raises(BlobUploadInvalid, match="start the upload again"):
        await services.uploads.complete(upload, digest_of(data[:150_000]))
    with pytest.raises(BlobUploadInvalid, match="start the upload again"):
        await services.uploads.complete(upload, digest_of(data), body(data[150_000:]), start=150_000)
    with pytest.raises(BlobUnknown):
        await services.blobs.stat(registry.id, "app", digest_of(data[:150_000]))
    assert services.store.local_path(str(digest_of(data[:150_000]))).exists() is False


async def test_bytes_written_before_the_machine_restarted_are_re_hashed(services):
    """Of the right length but damaged (the page cache lost, the disk holding something else):
    found by re-hashing them, because the file was last written before the machine booted."""
    from dockyard.storage import filesystem

    registry = await services.registries.default()
    data = b"first chunk " * 10_000
    damaged = await services.uploads.append(await services.uploads.start(registry.id, "app"), body(data))
    intact = await services.uploads.append(await services.uploads.start(registry.id, "app"), body(data))
    path = _upload_file(services, damaged)
    path.write_bytes(b"\0" * len(data))
    for upload in (damaged, intact):
        os.utime(_upload_file(services, upload), (filesystem.BOOT_TIME - 60, filesystem.BOOT_TIME - 60))
    with pytest.raises(DigestInvalid):
        await services.uploads.complete(damaged, digest_of(data))
    with pytest.raises(BlobUnknown):
        await services.blobs.stat(registry.id, "app", digest_of(data))
    assert (await services.uploads.complete(intact, digest_of(data))).size == len(data)


async def test_a_chunk_appended_after_a_restart_does_not_vouch_for_the_bytes_before_it(services):
    from dockyard.storage import filesystem

    registry = await services.registries.default()
    head, tail = b"h" * 70_000, b"t" * 70_000
    upload = await services.uploads.append(await services.uploads.start(registry.id, "app"), body(head))
    path = _upload_file(services, upload)
    path.write_bytes(b"\0" * len(head))
    os.utime(path, (filesystem.BOOT_TIME - 60, filesystem.BOOT_TIME - 60))
    upload = await services.uploads.append(upload, body(tail), start=len(head))  # the file is new again
    with pytest.raises(DigestInvalid):
        await services.uploads.complete(upload, digest_of(head + tail))
    with pytest.raises(BlobUnknown):
        await services.blobs.stat(registry.id, "app", digest_of(head + tail))


async def test_a_completed_upload_leaves_no_files_behind(services):
    registry = await services.registries.default()
    small, big = b"s" * 100, bytes(range(256)) * 20_000
    upload = await services.uploads.start(registry.id, "app")
    await services.uploads.complete(upload, digest_of(small), body(small))  # the whole blob in the PUT
    upload = await services.uploads.append(await services.uploads.start(registry.id, "app"), body(big[:9999]))
    await services.uploads.complete(upload, digest_of(big), body(big[9999:]), start=9999)
    assert list((services.store.root / "uploads").iterdir()) == []
    for data in (small, big):
        assert services.store.local_path(str(digest_of(data))).read_bytes() == data
