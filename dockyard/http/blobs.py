"""GET, HEAD and DELETE of blobs.

Small blobs are answered from memory once read (``BlobService.small_content``), bigger
ones leave by sendfile where the store has a file. On an object store a GET,
once authorized, is redirected (307) to a short-lived SAS or presigned URL, as
ACR and Distribution do, unless ``blob_delivery`` is ``proxy``: then this node
streams the bytes, for clients that cannot reach the store.
"""

from __future__ import annotations

import asyncio
import os

from aiohttp import web

from dockyard.core.digests import Digest
from dockyard.core.errors import BlobUnknown
from dockyard.http import conditional
from dockyard.http.context import actor_of, registry_of, repository_of, services_of
from dockyard.http.identity import require

CACHE_CONTROL = "max-age=31536000"
SEGMENT = 32 << 20  # bytes of a big blob sent by one sendfile, the next ones read ahead meanwhile


def _read_ahead(fd: int, offset: int, length: int) -> None:
    """Start reading a file's range into the page cache (it returns once the reads are queued)."""
    try:
        os.posix_fadvise(fd, offset, length, os.POSIX_FADV_WILLNEED)
    except (AttributeError, OSError):  # not on this system or file system: plain reads then
        pass


class _SendfileResponse(web.StreamResponse):
    """A slice of an already opened file, sent with the kernel's sendfile."""

    def __init__(self, handle, offset: int, count: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self._handle, self._offset, self._count = handle, offset, count
        self.content_length = count

    async def prepare(self, request):
        try:
            writer = await super().prepare(request)
            transport = request.transport
            if transport is None:
                raise ConnectionResetError("connection lost")
            loop = asyncio.get_running_loop()
            try:
                await self._sendfile(loop, transport)
            except NotImplementedError:  # a transport without sendfile (TLS): copy in chunks
                await self._copy(writer)
            await super().write_eof()
            return writer
        finally:
            self._handle.close()

    async def _sendfile(self, loop, transport) -> None:
        """In segments, asking the kernel to read the next one from the device while this one is
        sent: a blob not in the page cache (written around it, or evicted) would otherwise be read
        a little at a time, each wait on the device holding up the event loop."""
        fd, offset, end = self._handle.fileno(), self._offset, self._offset + self._count
        if self._count > SEGMENT:
            _read_ahead(fd, offset, SEGMENT)
        while offset < end:
            count = min(SEGMENT, end - offset)
            if offset + count < end:
                _read_ahead(fd, offset + count, SEGMENT)
            await loop.sendfile(transport, self._handle, offset, count)
            offset += count

    async def _copy(self, writer) -> None:
        remaining, offset = self._count, self._offset
        while remaining:
            chunk = await asyncio.to_thread(os.pread, self._handle.fileno(), min(remaining, 1 << 20), offset)
            if not chunk:
                break
            await writer.write(chunk)
            remaining -= len(chunk)
            offset += len(chunk)


async def get_blob(request: web.Request) -> web.StreamResponse:
    services = services_of(request)
    repository = repository_of(request)
    await require(request, "repository", repository, "pull")
    digest = Digest.parse(request.match_info["digest"])
    info = await services.blobs.stat(registry_of(request).id, repository, digest)
    headers = {
        "Docker-Content-Digest": info.digest,
        "ETag": conditional.etag(info.digest),
        "Accept-Ranges": "bytes",
        "Cache-Control": CACHE_CONTROL,
        "Content-Type": "application/octet-stream",
    }
    if conditional.not_modified(request, info.digest):
        return web.Response(status=304, headers=headers)
    span = conditional.byte_range(request, info.size)
    status, (offset, count) = (206, span) if span else (200, (0, info.size))
    if span:
        headers["Content-Range"] = f"bytes {offset}-{offset + count - 1}/{info.size}"
    if request.method == "HEAD" or count == 0:
        headers["Content-Length"] = str(count)
        return web.Response(status=status, headers=headers)
    if services.settings.blob_delivery != "proxy":
        url = await services.blobs.direct_url(info.digest)
        if url is not None:
            return web.Response(
                status=307,
                headers={"Location": url, "Docker-Content-Digest": info.digest, "Content-Length": "0"},
            )
    content = await services.blobs.small_content(info)
    if content is not None:
        return web.Response(status=status, body=content[offset : offset + count] if span else content, headers=headers)
    path = services.blobs.local_path(info.digest)
    if path is not None:
        try:
            handle = await asyncio.to_thread(open, path, "rb")
        except FileNotFoundError:
            raise BlobUnknown(f"blob {digest} is missing from storage") from None
        return _SendfileResponse(handle, offset, count, status=status, headers=headers)
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = count
    await response.prepare(request)
    async for chunk in services.blobs.read(info.digest, offset, count):
        await response.write(chunk)
    await response.write_eof()
    return response


async def delete_blob(request: web.Request) -> web.Response:
    services = services_of(request)
    repository = repository_of(request)
    await require(request, "repository", repository, "delete")
    digest = Digest.parse(request.match_info["digest"])
    await services.blobs.delete(registry_of(request).id, repository, digest, actor_of(request))
    return web.Response(status=202, headers={"Content-Length": "0"})
