"""Blob storage: a small content-addressed interface and its drivers.

A driver stores bytes under digests and partial uploads under upload ids; it
knows nothing of registries, repositories or who is asking.
"""

from collections.abc import Mapping

from dockyard.storage.base import BlobStore, UploadWriter

__all__ = ["BlobStore", "UploadWriter", "open_store"]


def open_store(url: str, options: Mapping[str, str] | None = None) -> BlobStore:
    """A driver for a storage URL: ``file:///path`` or a bare path, ``memory://``.

    ``options`` carries driver settings from the configuration (credentials and
    the like); environment variables the cloud SDKs read are honoured too.
    """
    from urllib.parse import urlparse

    options = dict(options or {})
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        from dockyard.storage.filesystem import FilesystemStore

        return FilesystemStore(parsed.path if parsed.scheme else url)
    if parsed.scheme == "memory":
        from dockyard.storage.memory import MemoryStore

        return MemoryStore()
    if parsed.scheme == "azure":  # azure://<container>[?endpoint=<blob service URL>]
        from dockyard.storage.azure import AzureBlobStore

        return AzureBlobStore.from_url(url, options)
    if parsed.scheme == "s3":  # s3://<bucket>[/<prefix>][?endpoint=<S3-compatible URL>&region=<region>]
        from dockyard.storage.s3 import S3Store

        return S3Store.from_url(url, options)
    raise ValueError(f"unsupported storage URL scheme {parsed.scheme!r}")
