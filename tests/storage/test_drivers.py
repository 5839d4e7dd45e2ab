"""One test suite for every blob store driver (the memory twin included)."""

from __future__ import annotations

import hashlib

import pytest

from dockyard.storage.filesystem import FilesystemStore
from dockyard.storage.memory import MemoryStore


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


async def collect(iterator) -> bytes:
    return b"".join([chunk async for chunk in iterator])


@pytest.fixture(params=["filesystem", "memory"])
def store(request, tmp_path):
    if request.param == "filesystem":
        return FilesystemStore(tmp_path / "blobs")
    return MemoryStore()


async def test_upload_appends_and_commits_a_blob(store):
    await store.create_upload("u1")
    writer = await store.open_upload("u1", 0)
    await writer.write(b"hello ")
    await writer.close()
    writer = await store.open_upload("u1", 6)
    await writer.write(b"world")
    await writer.close()
    assert await collect(store.read_upload("u1", 11)) == b"hello world"
    digest = digest_of(b"hello world")
    await store.commit_upload("u1", digest, 11)
    assert await store.blob_size(digest) == 11
    assert await collect(store.read_blob(digest)) == b"hello world"
    assert await collect(store.read_blob(digest, 6, 3)) == b"wor"


async def test_reopening_an_upload_discards_bytes_past_the_offset(store):
    await store.create_upload("u2")
    writer = await store.open_upload("u2", 0)
    await writer.write(b"0123456789")
    await writer.abort()
    writer = await store.open_upload("u2", 4)
    await writer.write(b"xy")
    await writer.close()
    assert await collect(store.read_upload("u2", 6)) == b"0123xy"
    digest = digest_of(b"0123xy")
    await store.commit_upload("u2", digest, 6)
    assert await collect(store.read_blob(digest)) == b"0123xy"


async def test_commit_of_an_existing_digest_keeps_the_first_blob(store):
    digest = digest_of(b"same")
    await store.put_blob(digest, b"same")
    await store.create_upload("u3")
    writer = await store.open_upload("u3", 0)
    await writer.write(b"same")
    await writer.close()
    await store.commit_upload("u3", digest, 4)
    assert await collect(store.read_blob(digest)) == b"same"


async def test_missing_blob_has_no_size_and_cannot_be_read(store):
    digest = digest_of(b"nothing")
    assert await store.blob_size(digest) is None
    with pytest.raises(KeyError):
        await collect(store.read_blob(digest))


async def test_deleted_upload_and_blob_are_gone(store):
    await store.create_upload("u4")
    await store.delete_upload("u4")
    with pytest.raises(KeyError):
        await store.open_upload("u4", 0)
    digest = digest_of(b"bye")
    await store.put_blob(digest, b"bye")
    await store.delete_blob(digest)
    assert await store.blob_size(digest) is None


async def test_large_blob_streams_in_pieces(store):
    data = bytes(range(256)) * 12_000  # about 3 MiB
    await store.create_upload("u5")
    writer = await store.open_upload("u5", 0)
    for start in range(0, len(data), 100_000):
        await writer.write(data[start : start + 100_000])
    await writer.close()
    digest = digest_of(data)
    await store.commit_upload("u5", digest, len(data))
    assert await collect(store.read_blob(digest)) == data
    assert await collect(store.read_blob(digest, len(data) - 10)) == data[-10:]


async def test_filesystem_blobs_are_whole_files_and_uploads_are_private(tmp_path):
    store = FilesystemStore(tmp_path / "blobs")
    await store.create_upload("u6")
    upload_file = tmp_path / "blobs" / "uploads" / "u6"
    assert upload_file.stat().st_mode & 0o077 == 0
    writer = await store.open_upload("u6", 0)
    await writer.write(b"abc")
    await writer.close()
    digest = digest_of(b"abc")
    await store.commit_upload("u6", digest, 3)
    path = store.local_path(digest)
    assert path is not None and path.read_bytes() == b"abc"
    assert not upload_file.exists()
    with pytest.raises(ValueError):
        await store.create_upload("../escape")
