"""Blob storage: a small content-addressed interface and its drivers.

A driver stores bytes under digests and partial uploads under upload ids; it
knows nothing of registries, repositories or who is asking.
"""

from dockyard.storage.base import BlobStore, UploadWriter

__all__ = ["BlobStore", "UploadWriter", "open_store"]


def open_store(url: str) -> BlobStore:
    """A driver for a storage URL: ``file:///path`` or a bare path, ``memory://``."""
    from urllib.parse import urlparse

    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        from dockyard.storage.filesystem import FilesystemStore

        return FilesystemStore(parsed.path if parsed.scheme else url)
    if parsed.scheme == "memory":
        from dockyard.storage.memory import MemoryStore

        return MemoryStore()
    raise ValueError(f"unsupported storage URL scheme {parsed.scheme!r}")
