"""Blobs as files: ``blobs/<alg>/<2 hex>/<hex>`` and partial uploads in ``uploads/<id>``.

Every file operation runs in a worker thread, never on the event loop. A blob
appears only by an atomic rename of a fully written, fsynced file.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from dockyard.storage.base import BlobStore, UploadWriter

READ_CHUNK = 1 << 20


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _FileWriter(UploadWriter):
    def __init__(self, fd: int) -> None:
        self._fd = fd

    async def write(self, data: bytes) -> None:
        await asyncio.to_thread(self._write_all, data)

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]

    async def close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            await asyncio.to_thread(self._sync_close, fd)

    @staticmethod
    def _sync_close(fd: int) -> None:
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    async def abort(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)


class FilesystemStore(BlobStore):
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._uploads = self.root / "uploads"
        self._blobs = self.root / "blobs"
        self._uploads.mkdir(parents=True, exist_ok=True)
        self._blobs.mkdir(parents=True, exist_ok=True)

    def _upload_path(self, upload_id: str) -> Path:
        if not upload_id or "/" in upload_id or upload_id.startswith("."):
            raise ValueError("bad upload id")
        return self._uploads / upload_id

    def _blob_path(self, digest: str) -> Path:
        algorithm, _, hexdigest = digest.partition(":")
        return self._blobs / algorithm / hexdigest[:2] / hexdigest

    def local_path(self, digest: str) -> Path | None:
        return self._blob_path(digest)

    # -- uploads -----------------------------------------------------------
    async def create_upload(self, upload_id: str) -> None:
        path = self._upload_path(upload_id)
        await asyncio.to_thread(lambda: os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600)))

    async def open_upload(self, upload_id: str, offset: int) -> UploadWriter:
        path = self._upload_path(upload_id)

        def _open() -> int:
            fd = os.open(path, os.O_WRONLY)
            os.ftruncate(fd, offset)
            os.lseek(fd, offset, os.SEEK_SET)
            return fd

        try:
            return _FileWriter(await asyncio.to_thread(_open))
        except FileNotFoundError:
            raise KeyError(upload_id) from None

    async def read_upload(self, upload_id: str, length: int) -> AsyncIterator[bytes]:
        async for chunk in self._read_file(self._upload_path(upload_id), 0, length):
            yield chunk

    async def commit_upload(self, upload_id: str, digest: str, length: int) -> None:
        source, target = self._upload_path(upload_id), self._blob_path(digest)

        def _commit() -> None:
            if target.exists():
                source.unlink(missing_ok=True)
                return
            with open(source, "r+b") as handle:
                handle.truncate(length)
                handle.flush()
                os.fsync(handle.fileno())
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
            _fsync_dir(target.parent)

        await asyncio.to_thread(_commit)

    async def delete_upload(self, upload_id: str) -> None:
        await asyncio.to_thread(self._upload_path(upload_id).unlink, True)

    # -- blobs -------------------------------------------------------------
    async def put_blob(self, digest: str, data: bytes) -> None:
        target = self._blob_path(digest)

        def _put() -> None:
            if target.exists():
                return
            target.parent.mkdir(parents=True, exist_ok=True)
            temp = self._uploads / f".put-{uuid.uuid4().hex}"
            with open(temp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, target)
            _fsync_dir(target.parent)

        await asyncio.to_thread(_put)

    async def blob_size(self, digest: str) -> int | None:
        try:
            return (await asyncio.to_thread(os.stat, self._blob_path(digest))).st_size
        except FileNotFoundError:
            return None

    async def read_blob(self, digest: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        async for chunk in self._read_file(self._blob_path(digest), offset, length):
            yield chunk

    async def delete_blob(self, digest: str) -> None:
        await asyncio.to_thread(self._blob_path(digest).unlink, True)

    @staticmethod
    async def _read_file(path: Path, offset: int, length: int | None) -> AsyncIterator[bytes]:
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
