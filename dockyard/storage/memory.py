"""An in-memory blob store: the twin of the real drivers, for tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

from dockyard.storage.base import BlobStore, UploadWriter


class _MemoryWriter(UploadWriter):
    def __init__(self, buffer: bytearray) -> None:
        self._buffer = buffer

    async def write(self, data: bytes) -> None:
        self._buffer.extend(data)

    async def close(self) -> None:
        return None

    async def abort(self) -> None:
        return None


class MemoryStore(BlobStore):
    def __init__(self) -> None:
        self.uploads: dict[str, bytearray] = {}
        self.blobs: dict[str, bytes] = {}

    async def create_upload(self, upload_id: str) -> None:
        self.uploads[upload_id] = bytearray()

    async def open_upload(self, upload_id: str, offset: int) -> UploadWriter:
        buffer = self.uploads[upload_id]
        del buffer[offset:]
        return _MemoryWriter(buffer)

    async def read_upload(self, upload_id: str, length: int) -> AsyncIterator[bytes]:
        yield bytes(self.uploads[upload_id][:length])

    async def commit_upload(self, upload_id: str, digest: str, length: int) -> None:
        data = self.uploads.pop(upload_id)
        self.blobs.setdefault(digest, bytes(data[:length]))

    async def delete_upload(self, upload_id: str) -> None:
        self.uploads.pop(upload_id, None)

    async def put_blob(self, digest: str, data: bytes) -> None:
        self.blobs.setdefault(digest, bytes(data))

    async def blob_size(self, digest: str) -> int | None:
        blob = self.blobs.get(digest)
        return None if blob is None else len(blob)

    async def read_blob(self, digest: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        if digest not in self.blobs:
            raise KeyError(digest)
        end = None if length is None else offset + length
        yield self.blobs[digest][offset:end]

    async def delete_blob(self, digest: str) -> None:
        self.blobs.pop(digest, None)
