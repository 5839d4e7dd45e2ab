"""Blobs as files: ``blobs/<alg>/<2 hex>/<hex>`` and partial uploads in ``uploads/<id>``.

A blob appears only by an atomic rename of a fully written, fsynced file, and the
rename is fsynced (with any directory it needed) before ``commit_upload`` returns.

Chunks of an upload are not fsynced when their writer closes: their bytes went
to the device around the page cache (``O_DIRECT``, see ``filewriter``) or into the
page cache, and either way may be lost if the machine (not just the process)
crashes; little is left for the fsync at commit to write. What a machine crash can
leave is caught before a commit: an upload shorter than its acknowledged size is
refused (``UploadLost``), and one written before the machine last booted is
reported not intact, so its bytes are re-hashed before they are trusted
(``upload_intact``).

What waits on the device (fsync, large writes, reads, truncation, unlinking a big
file) runs in a worker thread. Metadata operations and small writes run inline:
microseconds on a local disk, less than a thread hop.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from dockyard.storage.base import BlobStore, UploadLost, UploadWriter
from dockyard.storage.filewriter import FileWriter
from dockyard.storage.pagecache import read_if_cached

READ_CHUNK = 1 << 20
INLINE_UNLINK = 1 << 20  # files below this are unlinked from the event loop


def _boot_time() -> float:
    """When the machine booted (seconds since the epoch), 0 where unknown."""
    try:
        with open("/proc/stat", "rb") as handle:
            for line in handle:
                if line.startswith(b"btime "):
                    return float(line.split()[1])
    except OSError:
        pass
    return 0.0


BOOT_TIME = _boot_time()


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _read_at_most(path: str, size: int) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(size)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FilesystemStore(BlobStore):
    def __init__(self, root: str | os.PathLike[str]) -> None:
        # Paths as strings: pathlib's objects cost more than the system calls on a small blob's path.
        self.root = Path(root)
        self._uploads = os.path.join(root, "uploads")
        self._blobs = os.path.join(root, "blobs")
        os.makedirs(self._uploads, exist_ok=True)
        os.makedirs(self._blobs, exist_ok=True)

    def _upload_path(self, upload_id: str) -> str:
        if not upload_id or "/" in upload_id or upload_id.startswith("."):
            raise ValueError("bad upload id")
        return f"{self._uploads}/{upload_id}"

    def _suspect_path(self, upload_id: str) -> str:
        """Marks an upload whose bytes from before a machine restart are still to be verified."""
        return f"{self._uploads}/.unverified-{upload_id}"

    def _blob_path(self, digest: str) -> str:
        algorithm, _, hexdigest = digest.partition(":")
        return f"{self._blobs}/{algorithm}/{hexdigest[:2]}/{hexdigest}"

    def local_path(self, digest: str) -> Path | None:
        return Path(self._blob_path(digest))

    @staticmethod
    def _ensure_dir(directory: str) -> None:
        """Create a blob directory durably: a new directory's entry is fsynced in its parent."""
        if os.path.isdir(directory):
            return
        missing = [directory]
        while not os.path.isdir(os.path.dirname(missing[-1])):
            missing.append(os.path.dirname(missing[-1]))
        os.makedirs(directory, exist_ok=True)
        for created in missing:
            _fsync_dir(os.path.dirname(created))

    # -- uploads -----------------------------------------------------------
    async def create_upload(self, upload_id: str) -> None:
        os.close(os.open(self._upload_path(upload_id), os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600))

    async def open_upload(self, upload_id: str, offset: int) -> UploadWriter:
        path = self._upload_path(upload_id)
        try:
            fd = os.open(path, os.O_WRONLY)
        except FileNotFoundError:
            raise KeyError(upload_id) from None
        try:
            stat = os.fstat(fd)
            if stat.st_size < offset:
                raise UploadLost(upload_id)
            if stat.st_mtime < BOOT_TIME + 1 and offset:
                # bytes written before the machine restarted, maybe not all durable: once
                # appended to, the file's time no longer tells, so remember it
                os.close(os.open(self._suspect_path(upload_id), os.O_CREAT | os.O_WRONLY, 0o600))
            if stat.st_size > offset:
                await asyncio.to_thread(os.ftruncate, fd, offset)
        except BaseException:
            os.close(fd)
            raise
        return FileWriter(path, fd, offset)

    async def read_upload(self, upload_id: str, length: int) -> AsyncIterator[bytes]:
        async for chunk in self._read_file(self._upload_path(upload_id), 0, length):
            yield chunk

    async def upload_intact(self, upload_id: str, length: int) -> bool:
        try:
            stat = os.stat(self._upload_path(upload_id))
        except FileNotFoundError:
            raise KeyError(upload_id) from None
        if stat.st_size < length:
            raise UploadLost(upload_id)
        return not (length and (stat.st_mtime < BOOT_TIME + 1 or os.path.exists(self._suspect_path(upload_id))))

    async def commit_upload(self, upload_id: str, digest: str, length: int) -> None:
        source, target = self._upload_path(upload_id), self._blob_path(digest)

        def _commit() -> None:
            if not os.path.exists(target):
                try:
                    fd = os.open(source, os.O_RDWR)
                except FileNotFoundError:
                    if os.path.exists(target):  # another request committed this upload meanwhile
                        return
                    raise KeyError(upload_id) from None
                try:
                    size = os.fstat(fd).st_size
                    if size < length:
                        raise UploadLost(upload_id)
                    if size > length:
                        os.ftruncate(fd, length)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                self._ensure_dir(os.path.dirname(target))
                try:
                    os.replace(source, target)
                except FileNotFoundError:
                    if not os.path.exists(target):
                        raise KeyError(upload_id) from None
                _fsync_dir(os.path.dirname(target))
            else:  # the blob exists already: keep it (and make sure its name is durable too)
                _unlink(source)
                _fsync_dir(os.path.dirname(target))
            _unlink(self._suspect_path(upload_id))

        await asyncio.to_thread(_commit)

    async def delete_upload(self, upload_id: str) -> None:
        path = self._upload_path(upload_id)
        _unlink(self._suspect_path(upload_id))
        try:
            size = os.stat(path).st_size
        except FileNotFoundError:
            return
        if size < INLINE_UNLINK:
            _unlink(path)
        else:
            await asyncio.to_thread(_unlink, path)

    # -- blobs -------------------------------------------------------------
    async def put_blob(self, digest: str, data: bytes) -> None:
        target = self._blob_path(digest)

        def _put() -> None:
            if os.path.exists(target):  # kept; its name made durable, as a commit of it would
                _fsync_dir(os.path.dirname(target))
                return
            self._ensure_dir(os.path.dirname(target))
            temp = f"{self._uploads}/.put-{uuid.uuid4().hex}"
            with open(temp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, target)
            _fsync_dir(os.path.dirname(target))

        await asyncio.to_thread(_put)

    async def blob_size(self, digest: str) -> int | None:
        try:
            return (await asyncio.to_thread(os.stat, self._blob_path(digest))).st_size
        except FileNotFoundError:
            return None

    async def read_blob(self, digest: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        async for chunk in self._read_file(self._blob_path(digest), offset, length):
            yield chunk

    async def read_small(self, digest: str, length: int) -> bytes:
        """From the page cache on the loop where it holds the bytes, else in a worker thread."""
        path = self._blob_path(digest)
        try:
            cached = read_if_cached(path, length)
            if cached is not None:
                return cached
            return await asyncio.to_thread(_read_at_most, path, length)
        except FileNotFoundError:
            raise KeyError(digest) from None

    async def delete_blob(self, digest: str) -> None:
        await asyncio.to_thread(_unlink, self._blob_path(digest))

    @staticmethod
    async def _read_file(path: str, offset: int, length: int | None) -> AsyncIterator[bytes]:
        try:
            handle = await asyncio.to_thread(open, path, "rb")
        except FileNotFoundError:
            raise KeyError(str(path)) from None
        try:
            await asyncio.to_thread(handle.seek, offset)
            remaining = length
            while remaining is None or remaining > 0:
                size = READ_CHUNK if remaining is None else min(READ_CHUNK, remaining)
                chunk = await asyncio.to_thread(handle.read, size)
                if not chunk:
                    break
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk
        finally:
            await asyncio.to_thread(handle.close)
