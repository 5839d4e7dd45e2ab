"""The filesystem store's upload writer: O_DIRECT for the bulk, the page cache for the unaligned
head and tail, and the page cache alone where O_DIRECT is refused."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import random

import pytest

from dockyard.storage import filewriter
from dockyard.storage.filesystem import FilesystemStore

ALIGN = filewriter.ALIGN
BUFFER = filewriter.DIRECT_BUFFER


def _data(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def _pieces(data: bytes, seed: int) -> list[bytes | bytearray]:
    """``data`` cut at random places, as a network hands a body over: bytes from aiohttp's parser,
    bytearrays from a body read straight from its socket (``http.direct``), mixed."""
    rng = random.Random(seed)
    pieces, start = [], 0
    while start < len(data):
        size = rng.choice((1, 7, ALIGN - 1, ALIGN + 1, 100_000, 1 << 20, 3 << 20))
        piece = data[start : start + size]
        pieces.append(bytearray(piece) if rng.random() < 0.5 else piece)
        start += size
    return pieces


THRESHOLD = filewriter.DIRECT_AFTER


@pytest.fixture(autouse=True)
def direct_from_the_start(monkeypatch):
    """These tests write a few MiB: O_DIRECT from the first byte (one test sets the threshold back)."""
    monkeypatch.setattr(filewriter, "DIRECT_AFTER", 0)


@pytest.fixture
def direct_writes(monkeypatch):
    """Counts the bytes written through O_DIRECT descriptors, and checks they are whole blocks."""
    counted = {"bytes": 0, "calls": 0}
    pwrite = os.pwrite

    def spy(fd, data, offset):
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT:
            assert offset % ALIGN == 0 and len(data) % ALIGN == 0, (offset, len(data))
            counted["bytes"] += len(data)
            counted["calls"] += 1
        return pwrite(fd, data, offset)

    monkeypatch.setattr(filewriter.os, "pwrite", spy)
    return counted


async def _write_chunks(store: FilesystemStore, upload_id: str, data: bytes, cuts: list[int], seed: int) -> None:
    """Write ``data`` as chunks ending at ``cuts``, each by a new writer from where the last one closed."""
    await store.create_upload(upload_id)
    start = 0
    for index, end in enumerate([*cuts, len(data)]):
        writer = await store.open_upload(upload_id, start)
        pieces = _pieces(data[start:end], seed + index)
        # Sometimes all at once (a step of the upload service), sometimes piece by piece.
        if index % 2:
            await writer.write_pieces(pieces)
        else:
            for piece in pieces:
                await writer.write(piece)
        await writer.close()
        start = end


async def _commit_and_read(store: FilesystemStore, upload_id: str, data: bytes) -> bytes:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    await store.commit_upload(upload_id, digest, len(data))
    return store.local_path(digest).read_bytes()


@pytest.mark.parametrize(
    "size, cuts",
    [
        (ALIGN * 300 + 1, []),
        (BUFFER * 2 + ALIGN + 3, []),  # more than the buffer holds, a partial block at the end
        (BUFFER, [1]),  # a 1-byte first chunk: the second starts 1 byte into a block
        (3 << 20, [ALIGN - 1, ALIGN + 5, (1 << 20) + 17]),  # chunk boundaries just around blocks
        (3 << 20, [ALIGN, 2 * ALIGN, 65_536, (1 << 20) + ALIGN]),  # chunk boundaries on blocks
        ((1 << 20) + 100, [70_000, 70_001, 70_002]),  # tiny chunks between big ones
        (ALIGN * 2, [ALIGN - 1]),  # a chunk that ends before the first block boundary
        (65_535, [1000]),  # below the size that goes to a worker thread
    ],
)
async def test_any_size_and_chunk_offsets_read_back_exactly(tmp_path, direct_writes, size, cuts):
    store = FilesystemStore(tmp_path)
    data = _data(size, size)
    await _write_chunks(store, "u", data, cuts, seed=len(cuts))
    assert await _commit_and_read(store, "u", data) == data


async def test_the_bulk_of_a_large_upload_goes_around_the_page_cache(tmp_path, direct_writes):
    store = FilesystemStore(tmp_path)
    data = _data(3 * BUFFER + 12_345, 1)
    await _write_chunks(store, "u", data, [777], seed=3)
    assert await _commit_and_read(store, "u", data) == data
    # All but the 777 bytes, the head of the second chunk up to the next block and its last partial block.
    assert direct_writes["bytes"] >= len(data) - 777 - 2 * ALIGN
    assert direct_writes["calls"] >= 3


async def test_small_writes_after_a_large_one_keep_their_order(tmp_path, direct_writes):
    store = FilesystemStore(tmp_path)
    await store.create_upload("u")
    writer = await store.open_upload("u", 0)
    parts = [_data((1 << 20) + 5, 1), b"x" * 10, _data(100_000, 2), b"y", _data(2 << 20, 3), b"z" * 3]
    for part in parts:
        await writer.write(part)
    await writer.close()
    data = b"".join(parts)
    assert await _commit_and_read(store, "u", data) == data


async def test_o_direct_refused_on_open_falls_back_to_the_page_cache(tmp_path, monkeypatch, direct_writes):
    opened = os.open

    def refuse(path, flags, *args):
        if flags & os.O_DIRECT:
            raise OSError(errno.EINVAL, "O_DIRECT not supported")
        return opened(path, flags, *args)

    monkeypatch.setattr(filewriter.os, "open", refuse)
    store = FilesystemStore(tmp_path)
    data = _data(BUFFER + 3 * ALIGN + 1, 7)
    await _write_chunks(store, "u", data, [ALIGN + 1], seed=5)
    assert direct_writes["calls"] == 0
    assert await _commit_and_read(store, "u", data) == data


async def test_o_direct_refused_on_write_falls_back_without_losing_bytes(tmp_path, monkeypatch):
    """A file system that opens O_DIRECT but refuses the writes (EINVAL), after some succeeded or from the start."""
    pwrite = os.pwrite
    refused = {"after": 1, "writes": 0}

    def refuse(fd, data, offset):
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT:
            refused["writes"] += 1
            if refused["writes"] > refused["after"]:
                raise OSError(errno.EINVAL, "Invalid argument")
        return pwrite(fd, data, offset)

    monkeypatch.setattr(filewriter.os, "pwrite", refuse)
    store = FilesystemStore(tmp_path)
    for after in (0, 1):
        refused.update(after=after, writes=0)
        data = _data(2 * BUFFER + 5 * ALIGN + 3, after)
        await _write_chunks(store, f"u{after}", data, [BUFFER + 9], seed=after)
        assert await _commit_and_read(store, f"u{after}", data) == data
        assert refused["writes"] > after  # it was tried, and refused


async def test_other_write_errors_are_raised_not_hidden(tmp_path, monkeypatch):
    pwrite = os.pwrite

    def full(fd, data, offset):
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT:
            raise OSError(errno.ENOSPC, "No space left on device")
        return pwrite(fd, data, offset)

    monkeypatch.setattr(filewriter.os, "pwrite", full)
    store = FilesystemStore(tmp_path)
    await store.create_upload("u")
    writer = await store.open_upload("u", 0)
    with pytest.raises(OSError) as raised:
        await writer.write(_data(BUFFER, 1))
    assert raised.value.errno == errno.ENOSPC
    await writer.abort()


async def test_an_aborted_writer_gives_its_buffer_back_and_idle_buffers_are_bounded(tmp_path):
    store = FilesystemStore(tmp_path)
    writers = []
    for index in range(filewriter.KEEP_BUFFERS + 3):
        await store.create_upload(f"u{index}")
        writer = await store.open_upload(f"u{index}", 0)
        await writer.write(_data(ALIGN * 20 + 1, index))  # leaves a partial block in the buffer
        writers.append(writer)
    for index, writer in enumerate(writers):
        await (writer.abort() if index % 2 else writer.close())
    assert len(filewriter._idle) <= filewriter.KEEP_BUFFERS
    # the closed ones have all their bytes, the aborted ones at least none wrong
    for index in range(0, len(writers), 2):
        data = _data(ALIGN * 20 + 1, index)
        assert (tmp_path / "uploads" / f"u{index}").read_bytes() == data


async def test_a_closed_writer_refuses_more_writes(tmp_path):
    store = FilesystemStore(tmp_path)
    await store.create_upload("u")
    writer = await store.open_upload("u", 0)
    await writer.write(_data(1 << 20, 1))
    await writer.close()
    with pytest.raises(ValueError):
        await writer.write(b"late")
    with pytest.raises(ValueError):
        await writer.write(_data(1 << 20, 2))


def _cached(path, size: int) -> float:
    """The share of the file's first ``size`` bytes in the page cache (mincore on a mapping that is never
    touched: asking does not read anything in)."""
    import ctypes
    import mmap

    libc = ctypes.CDLL(None, use_errno=True)
    pages = -(-size // mmap.PAGESIZE)
    with open(path, "rb") as handle:
        mapping = mmap.mmap(handle.fileno(), size, access=mmap.ACCESS_COPY)
    try:
        anchor = ctypes.c_char.from_buffer(mapping)
        vector = (ctypes.c_ubyte * pages)()
        assert libc.mincore(ctypes.c_void_p(ctypes.addressof(anchor)), ctypes.c_size_t(size), vector) == 0
        del anchor
        return sum(v & 1 for v in vector) / pages
    finally:
        mapping.close()


def _file_system(path) -> str:
    """The type of the file system ``path`` is on (the longest mount point above it)."""
    path, best, kind = os.path.realpath(path), "", ""
    with open("/proc/self/mounts") as mounts:
        for line in mounts:
            fields = line.split()
            mount = fields[1].replace("\\040", " ")
            if (path == mount or path.startswith(mount.rstrip("/") + "/")) and len(mount) >= len(best):
                best, kind = mount, fields[2]
    return kind


async def test_the_bulk_of_a_large_upload_is_not_left_in_the_page_cache(tmp_path):
    """What O_DIRECT is for: the bytes went to the device without a copy in the page cache."""
    if not filewriter._O_DIRECT or _file_system(tmp_path) in ("tmpfs", "ramfs"):
        pytest.skip("no O_DIRECT here, or memory is where the file lives")
    store = FilesystemStore(tmp_path)
    data = _data(3 * BUFFER + 5, 9)
    await _write_chunks(store, "u", data, [], seed=9)
    path = tmp_path / "uploads" / "u"
    assert _cached(path, len(data)) < 0.01
    assert path.read_bytes() == data


async def test_an_uploads_first_bytes_stay_in_the_page_cache_and_only_its_bulk_goes_around(tmp_path, monkeypatch,
                                                                                           direct_writes):
    threshold = THRESHOLD
    monkeypatch.setattr(filewriter, "DIRECT_AFTER", threshold)
    assert threshold % ALIGN == 0
    store = FilesystemStore(tmp_path)
    small, big = _data(threshold - 5, 11), _data(threshold + 3 * BUFFER + 123, 12)
    for upload_id, data in (("small", small), ("big", big)):
        await _write_chunks(store, upload_id, data, [], 13)
        with open(store._upload_path(upload_id), "rb") as handle:
            assert hashlib.sha256(handle.read()).digest() == hashlib.sha256(data).digest()
        if upload_id == "small":
            assert direct_writes["bytes"] == 0  # all of a blob under the threshold went through the cache
    # of the big one, everything past the threshold but its last partial block went around it
    assert direct_writes["bytes"] == (len(big) - threshold) // ALIGN * ALIGN
