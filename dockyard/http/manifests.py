"""GET, HEAD, PUT and DELETE of manifests by tag or digest."""

from __future__ import annotations

from functools import lru_cache

from aiohttp import web

from dockyard.core import mediatypes
from dockyard.core.errors import ManifestTooLarge, ManifestUnknown
from dockyard.http import bodies, conditional
from dockyard.http.context import actor_of, base_url, registry_of, repository_of, services_of
from dockyard.http.identity import require


async def get_manifest(request: web.Request) -> web.Response:
    services = services_of(request)
    repository = repository_of(request)
    await require(request, "repository", repository, "pull")
    head = request.method == "HEAD"
    reference = request.match_info["reference"]
    record = await services.manifests.get(registry_of(request).id, repository, reference, content=not head)
    if not _acceptable(record.media_type, tuple(request.headers.getall("Accept", ()))):
        raise ManifestUnknown(
            f"the manifest is a {record.media_type}, which the request's Accept header does not allow",
            detail={"mediaType": record.media_type},
        )
    headers = {
        "Docker-Content-Digest": record.digest,
        "ETag": conditional.etag(record.digest),
        "Content-Type": record.media_type,
    }
    if conditional.not_modified(request, record.digest):
        return web.Response(status=304, headers=headers)
    if head:
        headers["Content-Length"] = str(record.size)
        return web.Response(headers=headers)
    return web.Response(body=record.content, headers=headers)


@lru_cache(maxsize=1024)
def _acceptable(media_type: str, accept: tuple[str, ...]) -> bool:
    """``mediatypes.acceptable``, remembered: clients send the same few Accept headers."""
    return mediatypes.acceptable(media_type, accept)


async def put_manifest(request: web.Request) -> web.Response:
    services = services_of(request)
    repository = repository_of(request)
    identity = await require(request, "repository", repository, "push")
    limit = services.manifests.max_bytes
    declared = bodies.content_length(request)
    if declared is not None and declared > limit:
        raise ManifestTooLarge(f"manifest is {declared} bytes; the limit is {limit}")
    content = await bodies.read_bounded(request, limit)
    extra_tags = request.query.getall("tag", [])
    result = await services.manifests.put(
        registry_of(request).id,
        repository,
        request.match_info["reference"],
        content,
        request.headers.get("Content-Type"),
        extra_tags=extra_tags,
        actor=identity.principal.name,
    )
    response = web.Response(
        status=201,
        headers={
            "Location": f"{base_url(request)}/v2/{repository}/manifests/{result.digest}",
            "Docker-Content-Digest": result.digest,
            "Content-Length": "0",
        },
    )
    if result.subject:
        response.headers["OCI-Subject"] = result.subject
    if extra_tags:
        response.headers["OCI-Tag"] = ", ".join(result.tags)
    return response


async def delete_manifest(request: web.Request) -> web.Response:
    services = services_of(request)
    repository = repository_of(request)
    await require(request, "repository", repository, "delete")
    await services.manifests.delete(registry_of(request).id, repository, request.match_info["reference"], actor_of(request))
    return web.Response(status=202, headers={"Content-Length": "0"})
