"""Appending to a partial upload's file, around the page cache where the file system allows it.

Small writes go to the page cache from the event loop: microseconds, less than a thread hop.

Large writes run in a worker thread. An upload's first ``DIRECT_AFTER`` bytes (16 MiB) go to
the page cache, so small and middling blobs are there for the pulls that tend to follow a push.
Beyond that the bytes go to the device directly (``O_DIRECT``): they are copied into a
page-aligned buffer (a memcpy, without the GIL) and written from there by the device's DMA. That spares the CPU the copy into fresh page-cache pages and the kernel's
writeback work, which cost more than hashing the same bytes, and leaves the fsync at commit
next to nothing to write. ``O_DIRECT`` needs file offsets and lengths in whole blocks, so the
bytes up to the first block boundary (a chunk that starts mid-block) and the last partial
block are written through the page cache, on a second descriptor: a partial block waits in
the buffer for the next write and goes through the page cache when the writer closes. Where
the file system refuses ``O_DIRECT`` or its alignment (``EINVAL``), the writer falls back to
the page cache for good, starting writeback of each write right away (``sync_file_range``)
so that the fsync at commit is short.

Either way nothing is durable until the store's commit fsyncs the file: an ``O_DIRECT``
write may still sit in the device's volatile cache, and what went through the page cache is
lost if the machine crashes. The store's crash checks cover both alike. A blob written
around the page cache is not in it afterwards: its first read comes from the device.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import mmap
import os
import threading
from collections.abc import Sequence

from dockyard.storage.base import UploadWriter

INLINE_WRITE = 64 << 10  # writes below this go to the page cache from the event loop (unless a block is pending)
ALIGN = 4096  # O_DIRECT's unit for offsets, lengths and buffer addresses (larger device blocks: EINVAL, fallback)
DIRECT_BUFFER = 4 << 20  # bytes copied into an aligned buffer before they are written out
KEEP_BUFFERS = 2  # aligned buffers kept for the next uploads, so their pages are not faulted in again
# An upload's first bytes go through the page cache: blobs up to this size (configs, most layers)
# are cached for the pulls that tend to follow a push; only the bulk of bigger ones goes around it.
DIRECT_AFTER = 16 << 20
_IOV_MAX = 512
_SYNC_FILE_RANGE_WRITE = 2
_O_DIRECT = getattr(os, "O_DIRECT", 0)


def _load_sync_file_range():
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_sync_file_range = _load_sync_file_range()


def _write_all(fd: int, pieces: Sequence[bytes], offset: int) -> None:
    """Write ``pieces`` at ``offset``, in as few system calls as the kernel takes."""
    pending = list(pieces)
    while pending:
        batch = pending[:_IOV_MAX]
        written = os.pwritev(fd, batch, offset)
        offset += written
        done = 0
        for piece in batch:
            if written < len(piece):
                break
            written -= len(piece)
            done += 1
        del pending[:done]
        if written:
            pending[0] = memoryview(pending[0])[written:]


class _Buffer:
    """A page-aligned buffer (anonymous memory) and its address, for copies without the GIL."""

    __slots__ = ("memory", "view", "address")

    def __init__(self, size: int) -> None:
        self.memory = mmap.mmap(-1, size)
        self.view = memoryview(self.memory)
        self.address = ctypes.addressof(ctypes.c_char.from_buffer(self.memory))

    def copy_in(self, at: int, piece, start: int, length: int) -> None:
        """Copy ``piece[start:start + length]`` to ``at``."""
        kind = type(piece)
        if kind is bytes:  # ctypes' memmove releases the GIL: the event loop runs meanwhile
            source = ctypes.cast(ctypes.c_char_p(piece), ctypes.c_void_p).value
            ctypes.memmove(self.address + at, source + start, length)
        elif kind is bytearray and len(piece):  # the pieces a body read from its socket comes in
            ctypes.memmove(self.address + at, ctypes.addressof(ctypes.c_char.from_buffer(piece)) + start, length)
        else:
            self.view[at : at + length] = memoryview(piece).cast("B")[start : start + length]


_idle: list[_Buffer] = []
_idle_lock = threading.Lock()


def _take_buffer() -> _Buffer:
    with _idle_lock:
        if _idle:
            return _idle.pop()
    return _Buffer(DIRECT_BUFFER)


def _give_buffer(buffer: _Buffer) -> None:
    with _idle_lock:
        if len(_idle) < KEEP_BUFFERS:
            _idle.append(buffer)
    # otherwise dropped: the mapping goes back to the system with its last reference


class FileWriter(UploadWriter):
    """Writes one at a time; a write in a worker thread holds the lock, so an abort never
    closes the file (whose number the system may then reuse) under it.

    Once a large write has started ``O_DIRECT``, ``_buffer`` holds the ``_fill`` bytes not yet
    written, which belong at ``_base`` (a block boundary); ``_base + _fill`` is where the next
    byte goes. ``_direct`` is the ``O_DIRECT`` descriptor: -1 until the first large write
    opens it, None where the file system refused it.
    """

    def __init__(self, path: str, fd: int, offset: int) -> None:
        self._path = path
        self._fd = fd
        self._direct: int | None = -1 if _O_DIRECT else None
        self._offset = offset
        self._buffer: _Buffer | None = None
        self._base = self._fill = 0
        self._lock = threading.Lock()

    async def write(self, data: bytes) -> None:
        await self.write_pieces((data,))

    async def write_pieces(self, pieces: Sequence[bytes]) -> None:
        size = sum(map(len, pieces))
        if size < INLINE_WRITE and (self._buffer is None or self._fill + size <= len(self._buffer.memory)):
            fd = self._open_fd()
            if self._buffer is None:
                _write_all(fd, pieces, self._offset)
            else:  # after the bytes waiting in the buffer: a few microseconds
                for piece in pieces:
                    self._buffer.copy_in(self._fill, piece, 0, len(piece))
                    self._fill += len(piece)
        else:
            await asyncio.to_thread(self._write_large, pieces, size)
        self._offset += size

    def _open_fd(self) -> int:
        if self._fd < 0:
            raise ValueError("write to a closed upload writer")
        return self._fd

    def _write_large(self, pieces: Sequence[bytes], size: int) -> None:
        with self._lock:
            fd, offset = self._open_fd(), self._offset
            if self._buffer is None and offset + size > DIRECT_AFTER and self._open_direct():
                if offset < DIRECT_AFTER:  # up to the threshold through the page cache
                    first, pieces = _split(pieces, DIRECT_AFTER - offset)
                    _write_all(fd, first, offset)
                    if _sync_file_range is not None:
                        _sync_file_range(fd, offset, DIRECT_AFTER - offset, _SYNC_FILE_RANGE_WRITE)
                    size -= DIRECT_AFTER - offset
                    offset = DIRECT_AFTER
                head = -offset % ALIGN  # the bytes before the first block boundary: through the page cache
                if head >= size:
                    _write_all(fd, pieces, offset)
                    return
                if head:
                    first, pieces = _split(pieces, head)
                    _write_all(fd, first, offset)
                self._buffer, self._base, self._fill = _take_buffer(), offset + head, 0
            if self._buffer is None:
                _write_all(fd, pieces, offset)
                if _sync_file_range is not None:  # so that the fsync at commit finds little left to write
                    _sync_file_range(fd, offset, size, _SYNC_FILE_RANGE_WRITE)
                return
            buffer = self._buffer
            capacity = len(buffer.memory)
            for piece in pieces:
                start, length = 0, len(piece)
                while start < length:
                    taken = min(length - start, capacity - self._fill)
                    buffer.copy_in(self._fill, piece, start, taken)
                    self._fill += taken
                    start += taken
                    if self._fill == capacity:
                        self._flush()
            self._flush()  # all but the last partial block, which waits in the buffer for more
            if self._direct is None:  # refused on the way: the rest through the page cache, for good
                self._flush(everything=True)
                self._release_buffer()

    def _open_direct(self) -> bool:
        if self._direct == -1:
            try:
                self._direct = os.open(self._path, os.O_WRONLY | _O_DIRECT)
            except OSError as error:
                if error.errno != errno.EINVAL:
                    raise
                self._direct = None
        return self._direct is not None

    def _flush(self, everything: bool = False, direct: bool = True) -> None:
        """Write the buffer's whole blocks (``everything``: its last partial block too, through the
        page cache; not ``direct``: all through the page cache) and move what is left to its start."""
        view, fill = self._buffer.view, self._fill
        whole = fill - fill % ALIGN if direct else 0
        written = 0
        if whole and self._direct is not None:
            try:
                written = os.pwrite(self._direct, view[:whole], self._base)
            except OSError as error:
                if error.errno != errno.EINVAL:
                    raise
                os.close(self._direct)
                self._direct = None
        end = fill if everything else whole
        if written < end:  # refused, cut short, or the partial block: through the page cache
            _write_all(self._fd, (view[written:end],), self._base + written)
        if end < fill:
            self._buffer.memory.move(0, end, fill - end)
        self._base += end
        self._fill = fill - end

    def _release_buffer(self) -> None:
        buffer, self._buffer, self._fill = self._buffer, None, 0
        if buffer is not None:
            _give_buffer(buffer)

    def _close(self, keep: bool) -> None:
        with self._lock:
            fd = self._fd
            if fd < 0:
                return
            try:
                if keep and self._fill:  # a few KiB through the page cache, or whole blocks around it too
                    self._flush(everything=True, direct=self._fill >= INLINE_WRITE)
            finally:
                self._fd = -1
                self._release_buffer()
                if self._direct is not None and self._direct >= 0:
                    os.close(self._direct)
                self._direct = None
                os.close(fd)

    async def close(self) -> None:
        if self._lock.locked() or self._fill >= INLINE_WRITE:
            await asyncio.to_thread(self._close, True)
        else:
            self._close(True)

    async def abort(self) -> None:
        """Stop: the bytes still in the buffer are dropped (they were never acknowledged)."""
        if self._lock.locked():
            await asyncio.to_thread(self._close, False)
        else:
            self._close(False)


def _split(pieces: Sequence[bytes], size: int) -> tuple[list, list]:
    """The first ``size`` bytes of ``pieces`` and the rest (``size`` less than their length)."""
    first: list = []
    for index, piece in enumerate(pieces):
        if len(piece) <= size:
            first.append(piece)
            size -= len(piece)
            if not size:
                return first, list(pieces[index + 1 :])
        else:
            view = memoryview(piece)
            return first + [view[:size]], [view[size:], *pieces[index + 1 :]]
    return first, []
