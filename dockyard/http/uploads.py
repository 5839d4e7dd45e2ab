"""Blob upload endpoints: POST (start, monolithic, mount), PATCH, PUT, GET and DELETE of a session."""

from __future__ import annotations

from aiohttp import web

from dockyard.core.digests import Digest
from dockyard.core.errors import DigestInvalid
from dockyard.core.names import check_repository
from dockyard.http import bodies
from dockyard.http.context import base_url, registry_of, repository_of, services_of
from dockyard.http.identity import may, require
from dockyard.services.uploads import Upload


def _upload_headers(request: web.Request, upload: Upload) -> dict[str, str]:
    return {
        # Relative, as ACR sends it: the azure-containerregistry SDK appends it to its endpoint.
        "Location": f"/v2/{upload.repository}/blobs/uploads/{upload.id}",
        "Docker-Upload-UUID": upload.id,
        "Range": f"0-{upload.size - 1}" if upload.size else "0-0",
        "Content-Length": "0",
    }


def _blob_created(request: web.Request, repository: str, digest: str) -> web.Response:
    return web.Response(
        status=201,
        headers={
            "Location": f"{base_url(request)}/v2/{repository}/blobs/{digest}",
            "Docker-Content-Digest": digest,
            "Content-Length": "0",
        },
    )


def _digest_param(request: web.Request) -> Digest:
    values = request.query.getall("digest", [])
    if len(values) != 1:
        raise DigestInvalid("exactly one digest query parameter is required")
    return Digest.parse(values[0])


async def start_upload(request: web.Request) -> web.Response:
    services = services_of(request)
    repository = repository_of(request)
    await require(request, "repository", repository, "push")
    registry = registry_of(request)

    mount = request.query.get("mount")
    if mount is not None:
        digest = Digest.parse(mount)
        source = request.query.get("from")
        if source is not None:
            check_repository(source)

        async def can_read(name: str) -> bool:
            return await may(request, "repository", name, "pull")

        if source is None or await can_read(source):
            info = await services.blobs.mount(registry.id, repository, digest, source, can_read)
            if info is not None:
                return _blob_created(request, repository, info.digest)

    if "digest" in request.query:
        digest = _digest_param(request)
        info = await services.uploads.put_whole(
            registry.id, repository, digest, bodies.stream(request), length=bodies.content_length(request)
        )
        return _blob_created(request, repository, info.digest)

    algorithm = request.query.get("digest-algorithm", "sha256")
    upload = await services.uploads.start(registry.id, repository, algorithm)
    return web.Response(status=202, headers=_upload_headers(request, upload))


async def _session(request: web.Request) -> Upload:
    services = services_of(request)
    repository = repository_of(request)
    await require(request, "repository", repository, "push")
    return await services.uploads.get(registry_of(request).id, repository, request.match_info["uuid"])


async def upload_status(request: web.Request) -> web.Response:
    upload = await _session(request)
    return web.Response(status=204, headers=_upload_headers(request, upload))


async def patch_upload(request: web.Request) -> web.Response:
    upload = await _session(request)
    span = bodies.content_range(request)
    upload = await services_of(request).uploads.append(
        upload, bodies.stream(request), start=span[0] if span else None, length=bodies.chunk_length(request, span)
    )
    return web.Response(status=202, headers=_upload_headers(request, upload))


async def put_upload(request: web.Request) -> web.Response:
    upload = await _session(request)
    digest = _digest_param(request)
    span = bodies.content_range(request)
    body = bodies.stream(request) if bodies.has_body(request) else None
    info = await services_of(request).uploads.complete(
        upload, digest, body, start=span[0] if span else None, length=bodies.chunk_length(request, span) if body else None
    )
    return _blob_created(request, upload.repository, info.digest)


async def cancel_upload(request: web.Request) -> web.Response:
    upload = await _session(request)
    await services_of(request).uploads.cancel(upload)
    return web.Response(status=204)
