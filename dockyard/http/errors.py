"""Rendering errors in the OCI Distribution error format."""

from __future__ import annotations

import json
import logging

from aiohttp import web

from dockyard.core import errors as e

log = logging.getLogger("dockyard.http")

# Most specific first: the first class in an error's MRO found here wins.
STATUS: dict[type[e.RegistryError], int] = {
    e.RangeNotSatisfiable: 416,
    e.ManifestTooLarge: 413,
    e.BlobUnknown: 404,
    e.BlobUploadInvalid: 400,
    e.BlobUploadUnknown: 404,
    e.DigestInvalid: 400,
    e.ManifestBlobUnknown: 400,
    e.ManifestInvalid: 400,
    e.ManifestUnknown: 404,
    e.NameInvalid: 400,
    e.NameUnknown: 404,
    e.SizeInvalid: 400,
    e.Unauthorized: 401,
    e.Denied: 403,
    e.Unsupported: 405,
    e.TooManyRequests: 429,
    e.Unavailable: 503,
}


class BadRequest(e.Unsupported):
    """A request the registry can't make sense of (a bad query parameter): 400 UNSUPPORTED."""


class NotFound(e.Unsupported):
    """No such endpoint: 404 UNSUPPORTED."""


STATUS_OVERRIDES = {BadRequest: 400, NotFound: 404}


def status_of(error: e.RegistryError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS_OVERRIDES:
            return STATUS_OVERRIDES[cls]
        if cls in STATUS:
            return STATUS[cls]
    return 400


def body(code: str, message: str, detail=None) -> bytes:
    entry = {"code": code, "message": message}
    if detail is not None:
        entry["detail"] = detail
    return json.dumps({"errors": [entry]}).encode()


def render(error: e.RegistryError, headers: dict[str, str] | None = None) -> web.Response:
    response = web.Response(
        status=status_of(error),
        body=body(error.code, error.message, error.detail),
        content_type="application/json",
        headers=headers,
    )
    if isinstance(error, e.Unavailable):
        response.headers["Retry-After"] = "5"
    if isinstance(error, e.TooManyRequests):
        response.headers["Retry-After"] = str(getattr(error, "retry_after", 60))
    return response


def internal_error() -> web.Response:
    return web.Response(
        status=500,
        body=body("UNKNOWN", "internal error; it has been logged"),
        content_type="application/json",
    )
