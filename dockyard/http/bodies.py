"""Reading request bodies: streamed for blobs, bounded for manifests, and cut-off bodies named as such."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from dockyard.core.errors import BlobUploadInvalid, RangeNotSatisfiable, SizeInvalid
from dockyard.http import direct

_BROKEN = (aiohttp.ClientPayloadError, ConnectionError, asyncio.IncompleteReadError, aiohttp.http_exceptions.HttpProcessingError)
_CONTENT_RANGE = re.compile(r"^(?:bytes[ =])?(\d{1,19})-(\d{1,19})(?:/(?:\d+|\*))?$")


# How much a blob body is read in at a time: from the socket (asyncio's selector transport reads
# 256 KiB by default) and buffered before reading pauses (aiohttp's default pauses past 128 KiB,
# i.e. after every read). Fewer, larger pieces cost the event loop less per byte.
READ_SIZE = 1 << 20
_DEFAULT_READ = 256 << 10  # the selector transport's own read size, set back after a body


async def stream(request: web.Request) -> AsyncIterator[bytes]:
    """The body's pieces as they arrive, as aiohttp received them (never joined: no copy), or, for
    a big body with a declared length, read from the socket by a thread (``direct``)."""
    rest = direct.rest_to_take(request, content_length(request))
    if rest:
        try:
            async for piece in direct.take(request, rest):
                yield piece
        except OSError:  # the connection broke or went silent (TimeoutError is an OSError)
            raise BlobUploadInvalid("the request body ended before it was complete") from None
        return
    content = request.content
    content.set_read_chunk_size(READ_SIZE)
    transport = _larger_reads(request.transport)
    try:
        # readchunk, not iter_chunks: aiohttp's shared empty-body reader answers (b"", True) after its
        # first call, on which iter_chunks would never end; at_eof is what says the body is over.
        while True:
            chunk, _ = await content.readchunk()
            if chunk:
                yield chunk
            elif content.at_eof():
                break
    except _BROKEN:
        raise BlobUploadInvalid("the request body ended before it was complete") from None
    finally:
        if transport is not None:
            transport.max_size = _DEFAULT_READ



def _larger_reads(transport):
    """Let the transport read ``READ_SIZE`` at a time while a body streams, if it is asyncio's
    selector transport (its ``max_size``); the transport it was, to set back afterwards."""
    if transport is not None and getattr(transport, "max_size", None) == _DEFAULT_READ:
        transport.max_size = READ_SIZE
        return transport
    return None


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
