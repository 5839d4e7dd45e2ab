"""One test suite for every blob store driver (the memory twin included)."""

from __future__ import annotations

import asyncio
import hashlib
import os
from urllib.parse import quote

import aiohttp
import pytest

from dockyard.storage import open_store
from dockyard.storage.filesystem import FilesystemStore
from dockyard.storage.memory import MemoryStore


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


async def collect(iterator) -> bytes:
    return b"".join([chunk async for chunk in iterator])


def _memory_twin(shared: MemoryStore) -> MemoryStore:
    twin = MemoryStore()
    twin.uploads, twin.blobs = shared.uploads, shared.blobs
    return twin


@pytest.fixture(params=["filesystem", "memory", "azure", "s3"])
def driver(request, tmp_path):
    """Makes a new instance of one store each call: a new client of the same storage, as another node has."""
    if request.param == "filesystem":
        return lambda: FilesystemStore(tmp_path / "blobs")
    if request.param == "memory":
        shared = MemoryStore()
        return lambda: _memory_twin(shared)
    if request.param == "azure":
        azurite = request.getfixturevalue("azurite")
        url = f"azure://{azurite.new_container()}?endpoint={quote(azurite.endpoint, safe='')}"
        options = {"azure_account_name": azurite.account_name, "azure_account_key": azurite.account_key}
        return lambda: open_store(url, options)
    if request.param == "s3":
        radosgw = request.getfixturevalue("radosgw")
        query = f"endpoint={quote(radosgw.endpoint, safe='')}&region={radosgw.region}"
        url = f"s3://{radosgw.new_bucket()}?{query}"
        options = {"s3_access_key_id": radosgw.access_key, "s3_secret_access_key": radosgw.secret_key}
        return lambda: open_store(url, options)
    raise AssertionError(request.param)


@pytest.fixture
async def open_another(driver):
    """Opens another instance of the test's store (closed at the end of the test)."""
    opened = []

    def open_():
        opened.append(driver())
        return opened[-1]

    yield open_
    for instance in opened:
        await instance.close()


@pytest.fixture
def store(open_another):
    return open_another()


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
    await writer.write(b"0123")
    await writer.close()
    writer = await store.open_upload("u2", 4)
    await writer.write(b"456789")
    await writer.close()
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


# -- what object stores must get right, held by every driver ----------------------------------


async def test_an_upload_continues_in_another_instance_from_the_committed_offset(store, open_another):
    first = b"a" * (5 << 20) + b"tail of the first chunk"  # more than one block of the object stores
    second = b"and the second chunk"
    await store.create_upload("u7")
    writer = await store.open_upload("u7", 0)
    for start in range(0, len(first), 1 << 20):
        await writer.write(first[start : start + (1 << 20)])
    await writer.close()

    other = open_another()  # another node: knows only the upload id and the committed size
    assert await collect(other.read_upload("u7", len(first))) == first
    writer = await other.open_upload("u7", len(first))
    await writer.write(second)
    await writer.close()
    digest = digest_of(first + second)
    await other.commit_upload("u7", digest, len(first) + len(second))
    assert await store.blob_size(digest) == len(first) + len(second)
    assert await collect(store.read_blob(digest)) == first + second


async def test_a_writer_aborted_mid_chunk_leaves_the_committed_bytes(store, open_another):
    await store.create_upload("u8")
    writer = await store.open_upload("u8", 0)
    await writer.write(b"hello")
    await writer.close()
    writer = await store.open_upload("u8", 5)
    for _ in range(6):  # past a block, so an object store has staged some of it
        await writer.write(b"x" * (1 << 20))
    await writer.abort()

    other = open_another()
    assert await collect(other.read_upload("u8", 5)) == b"hello"
    writer = await other.open_upload("u8", 5)
    await writer.write(b" world")
    await writer.close()
    assert await collect(other.read_upload("u8", 11)) == b"hello world"
    digest = digest_of(b"hello world")
    await other.commit_upload("u8", digest, 11)
    assert await collect(store.read_blob(digest)) == b"hello world"


async def test_reading_ranges_of_a_blob(store):
    data = bytes(range(256)) * 40
    digest = digest_of(data)
    await store.put_blob(digest, data)
    assert await collect(store.read_blob(digest, 0, 5)) == data[:5]
    assert await collect(store.read_blob(digest, 100)) == data[100:]
    assert await collect(store.read_blob(digest, 1000, 24)) == data[1000:1024]
    assert await collect(store.read_blob(digest, len(data) - 1, 1)) == data[-1:]
    assert await collect(store.read_blob(digest, len(data) - 10, 1000)) == data[-10:]
    assert await collect(store.read_blob(digest, 7, 0)) == b""
    assert await collect(store.read_blob(digest, len(data))) == b""


async def test_an_empty_upload_commits_an_empty_blob(store):
    await store.create_upload("u9")
    writer = await store.open_upload("u9", 0)
    await writer.close()
    digest = digest_of(b"")
    await store.commit_upload("u9", digest, 0)
    assert await store.blob_size(digest) == 0
    assert await collect(store.read_blob(digest)) == b""


async def test_a_blob_of_many_blocks_round_trips(store):
    piece = 1 << 20
    await store.create_upload("u10")
    writer = await store.open_upload("u10", 0)
    hasher = hashlib.sha256()
    for i in range(20):  # 20 MiB in 1 MiB writes, each different
        data = i.to_bytes(4, "big") * (piece // 4)
        hasher.update(data)
        await writer.write(data)
    await writer.close()
    digest = "sha256:" + hasher.hexdigest()
    await store.commit_upload("u10", digest, 20 * piece)
    assert await store.blob_size(digest) == 20 * piece
    check, size = hashlib.sha256(), 0
    async for chunk in store.read_blob(digest):
        check.update(chunk)
        size += len(chunk)
    assert size == 20 * piece and "sha256:" + check.hexdigest() == digest
    tail = await collect(store.read_blob(digest, 19 * piece + 8, 8))
    assert tail == (19).to_bytes(4, "big") * 2


async def test_blob_url_reads_the_blob_until_it_expires(store):
    digest = digest_of(b"redirect me")
    await store.put_blob(digest, b"redirect me")
    url = await store.blob_url(digest, expires_in=2)
    if isinstance(store, (FilesystemStore, MemoryStore)):
        assert url is None
        return
    assert url is not None
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as response:
            assert response.status == 200
            assert await response.read() == b"redirect me"
        await asyncio.sleep(3.5)  # past the expiry (SAS times have whole seconds)
        async with session.get(url) as response:
            assert response.status == 403


async def test_chunks_around_the_part_minimum_continue_and_commit(store, open_another):
    """3 MiB, 1 byte, 7 MiB, each closed on its own (object stores' parts are 5 MiB at least)."""
    chunks = [b"a" * (3 << 20), b"b", bytes(range(256)) * (7 << 12)]
    await store.create_upload("u11")
    size = 0
    for i, chunk in enumerate(chunks):
        instance = store if i % 2 == 0 else open_another()  # every other chunk on another node
        writer = await instance.open_upload("u11", size)
        await writer.write(chunk)
        await writer.close()
        size += len(chunk)
        assert await collect(instance.read_upload("u11", size)) == b"".join(chunks[: i + 1])
    data = b"".join(chunks)
    writer = await store.open_upload("u11", size)  # a session that writes nothing
    await writer.close()
    digest = digest_of(data)
    await open_another().commit_upload("u11", digest, size)
    assert await store.blob_size(digest) == size
    assert await collect(store.read_blob(digest)) == data
    assert await collect(store.read_blob(digest, (3 << 20) - 1, 3)) == b"ab" + data[(3 << 20) + 1 : (3 << 20) + 2]
    with pytest.raises(KeyError):
        await store.open_upload("u11", 0)


async def test_an_upload_goes_back_to_the_size_before_its_last_close(store):
    """A chunk whose new size never reached the database is written again from the old size."""
    first = b"1" * (6 << 20)
    await store.create_upload("u12")
    writer = await store.open_upload("u12", 0)
    await writer.write(first)
    await writer.close()
    writer = await store.open_upload("u12", len(first))
    await writer.write(b"2" * (6 << 20))
    await writer.close()  # ...and the size update failed: the upload goes on from len(first)
    writer = await store.open_upload("u12", len(first))
    await writer.write(b"3" * 10)
    await writer.close()
    data = first + b"3" * 10
    assert await collect(store.read_upload("u12", len(data))) == data
    digest = digest_of(data)
    await store.commit_upload("u12", digest, len(data))
    assert await collect(store.read_blob(digest)) == data


async def test_closed_chunks_are_intact_and_a_lost_tail_is_noticed(store, open_another, tmp_path):
    """What a commit relies on: a store vouches for the bytes of closed chunks, and the filesystem
    store (which fsyncs only at commit) notices acknowledged bytes that a machine crash lost."""
    from dockyard.storage.base import UploadLost

    await store.create_upload("u13")
    writer = await store.open_upload("u13", 0)
    await writer.write_pieces([b"abc", b"def" * 30_000])
    await writer.close()
    assert await open_another().upload_intact("u13", 90_003) is True
    if isinstance(store, FilesystemStore):
        os.truncate(tmp_path / "blobs" / "uploads" / "u13", 50_000)
        with pytest.raises(UploadLost):
            await store.upload_intact("u13", 90_003)
        with pytest.raises(UploadLost):
            await store.open_upload("u13", 90_003)
        with pytest.raises(UploadLost):
            await store.commit_upload("u13", digest_of(b"abc" + b"def" * 30_000), 90_003)
        assert await store.blob_size(digest_of(b"abc" + b"def" * 30_000)) is None


async def test_a_small_blob_is_read_in_one_piece(store):
    data = bytes(range(256)) * 16 + b"tail"
    digest = digest_of(data)
    await store.put_blob(digest, data)
    assert await store.read_small(digest, len(data)) == data
    assert await store.read_small(digest, 100) == data[:100]
    with pytest.raises(KeyError):
        await store.read_small(digest_of(b"absent"), 4)
