"""Reading request bodies: streamed for blobs, bounded for manifests, and cut-off bodies named as such."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from dockyard.core.errors import BlobUploadInvalid, RangeNotSatisfiable, SizeInvalid

_BROKEN = (aiohttp.ClientPayloadError, ConnectionError, asyncio.IncompleteReadError, aiohttp.http_exceptions.HttpProcessingError)
_CONTENT_RANGE = re.compile(r"^(?:bytes[ =])?(\d{1,19})-(\d{1,19})(?:/(?:\d+|\*))?$")


async def stream(request: web.Request) -> AsyncIterator[bytes]:
    try:
        async for chunk in request.content.iter_any():
            yield chunk
    except _BROKEN:
        raise BlobUploadInvalid("the request body ended before it was complete") from None


async def read_bounded(request: web.Request, limit: int) -> bytes:
    """The whole body, or at most ``limit + 1`` bytes so the caller can tell it was too long."""
    pieces: list[bytes] = []
    size = 0
    try:
        async for chunk in request.content.iter_any():
            pieces.append(chunk)
            size += len(chunk)
            if size > limit:
                break
    except _BROKEN:
        raise BlobUploadInvalid("the request body ended before it was complete") from None
    return b"".join(pieces)


def content_length(request: web.Request) -> int | None:
    raw = request.headers.get("Content-Length")
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 19:
        raise SizeInvalid(f"invalid Content-Length {raw[:40]!r}")
    return int(raw)


def has_body(request: web.Request) -> bool:
    length = content_length(request)
    return bool(length) or (length is None and request.body_exists)


def content_range(request: web.Request) -> tuple[int, int] | None:
    raw = request.headers.get("Content-Range")
    if raw is None:
        return None
    match = _CONTENT_RANGE.match(raw.strip())
    if not match:
        raise BlobUploadInvalid(f"invalid Content-Range {raw[:60]!r}; expected <start>-<end>")
    start, end = int(match.group(1)), int(match.group(2))
    if end < start:
        raise RangeNotSatisfiable(f"Content-Range {raw[:60]!r} ends before it starts")
    length = content_length(request)
    if length is not None and length != end - start + 1:
        raise SizeInvalid(f"Content-Range covers {end - start + 1} bytes but Content-Length is {length}")
    return start, end


def chunk_length(request: web.Request, span: tuple[int, int] | None) -> int | None:
    """How many bytes the body must hold: from Content-Length, else from Content-Range."""
    length = content_length(request)
    if length is None and span is not None:
        return span[1] - span[0] + 1
    return length
