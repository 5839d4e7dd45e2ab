"""Errors the registry's rules raise, named by the OCI Distribution error codes.

Services raise these; each protocol adapter decides how to render them (the
/v2/ adapter turns them into OCI error JSON with the status in ``STATUS``).
"""

from __future__ import annotations

from typing import Any


class RegistryError(Exception):
    code = "UNKNOWN"
    default_message = "unknown error"

    def __init__(self, message: str | None = None, detail: Any = None) -> None:
        self.message = message or self.default_message
        self.detail = detail
        super().__init__(self.message)


class BlobUnknown(RegistryError):
    code, default_message = "BLOB_UNKNOWN", "blob unknown to registry"


class BlobUploadInvalid(RegistryError):
    code, default_message = "BLOB_UPLOAD_INVALID", "blob upload invalid"


class RangeNotSatisfiable(BlobUploadInvalid):
    """A chunk that does not start where the upload ends (416)."""

    default_message = "chunk is out of order"


class BlobUploadUnknown(RegistryError):
    code, default_message = "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry"


class DigestInvalid(RegistryError):
    code, default_message = "DIGEST_INVALID", "provided digest did not match uploaded content"


class ManifestBlobUnknown(RegistryError):
    code, default_message = "MANIFEST_BLOB_UNKNOWN", "manifest references a manifest or blob unknown to registry"


class ManifestInvalid(RegistryError):
    code, default_message = "MANIFEST_INVALID", "manifest invalid"


class ManifestTooLarge(ManifestInvalid):
    """A manifest over the size limit (413)."""

    default_message = "manifest exceeds the size limit"


class ManifestUnknown(RegistryError):
    code, default_message = "MANIFEST_UNKNOWN", "manifest unknown to registry"


class NameInvalid(RegistryError):
    code, default_message = "NAME_INVALID", "invalid repository name"


class NameUnknown(RegistryError):
    code, default_message = "NAME_UNKNOWN", "repository name not known to registry"


class SizeInvalid(RegistryError):
    code, default_message = "SIZE_INVALID", "provided length did not match content length"


class Unauthorized(RegistryError):
    code, default_message = "UNAUTHORIZED", "authentication required"


class Denied(RegistryError):
    code, default_message = "DENIED", "requested access to the resource is denied"


class Unsupported(RegistryError):
    code, default_message = "UNSUPPORTED", "the operation is unsupported"


class TooManyRequests(RegistryError):
    code, default_message = "TOOMANYREQUESTS", "too many requests"


class Unavailable(RegistryError):
    """A dependency (database, blob store) is away; the request may be retried (503)."""

    code, default_message = "UNAVAILABLE", "service temporarily unavailable"
