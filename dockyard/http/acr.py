"""ACR's metadata API under ``/acr/v1``: repository, tag and manifest attributes, listings and deletes.

Reading needs ``metadata_read`` on the repository, PATCH ``metadata_write``, DELETE
``delete``, and the catalog ``registry:catalog:*``. Lists page with ``n``, ``last``
and a ``Link: <...>; rel="next"`` header, as on /v2.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

from aiohttp import web

from dockyard.http import bodies
from dockyard.http.context import actor_of, registry_of, repository_of, services_of
from dockyard.http.errors import BadRequest
from dockyard.http.listings import page_params
from dockyard.http.identity import require
from dockyard.services.attributes import ORDERS
from dockyard.services.locks import ATTRIBUTES

MAX_BODY_BYTES = 64 << 10


def _json(document, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, body=json.dumps(document).encode(), content_type="application/json", headers=headers
    )


def _orderby(request: web.Request) -> str | None:
    raw = request.query.get("orderby")
    if not raw:
        return None
    value = raw.lower().replace("_", "")  # the CLI's time_asc / time_desc spelling too
    if value not in ORDERS:
        raise BadRequest(f"orderby must be one of {', '.join(ORDERS)}, not {raw[:40]!r}")
    return value


def _link(path: str, params: dict[str, object]) -> dict[str, str]:
    query = urlencode({key: value for key, value in params.items() if value is not None})
    return {"Link": f'<{path}?{query}>; rel="next"'}


async def _attributes(request: web.Request) -> dict[str, bool]:
    """The changeable attributes in a PATCH body; absent or null ones are left as they are."""
    declared = bodies.content_length(request)
    if declared is not None and declared > MAX_BODY_BYTES:
        raise BadRequest("the request body is too large")
    raw = await bodies.read_bounded(request, MAX_BODY_BYTES)
    if len(raw) > MAX_BODY_BYTES:
        raise BadRequest("the request body is too large")
    if not raw.strip():
        return {}
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BadRequest("the request body is not valid JSON") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise BadRequest("the request body must be a JSON object of changeable attributes")
    attributes: dict[str, bool] = {}
    for name in ATTRIBUTES:
        value = document.get(name)
        if value is None:
            continue
        if not isinstance(value, bool):
            raise BadRequest(f"{name} must be true or false")
        attributes[name] = value
    return attributes


# -- catalog -----------------------------------------------------------------


async def catalog(request: web.Request) -> web.Response:
    await require(request, "registry", "catalog", "*")
    n, last = page_params(request)
    page = await services_of(request).listings.catalog(registry_of(request).id, n, last)
    headers = _link("/acr/v1/_catalog", {"last": page.items[-1], "n": len(page.items)}) if page.more else None
    return _json({"repositories": page.items}, headers=headers)


# -- repositories ------------------------------------------------------------


async def get_repository(request: web.Request) -> web.Response:
    name = repository_of(request)
    await require(request, "repository", name, "metadata_read")
    return _json(await services_of(request).attributes.get_repository(registry_of(request), name))


async def patch_repository(request: web.Request) -> web.Response:
    name = repository_of(request)
    await require(request, "repository", name, "metadata_write")
    attributes = await _attributes(request)
    return _json(await services_of(request).attributes.update_repository(registry_of(request), name, attributes))


async def delete_repository(request: web.Request) -> web.Response:
    name = repository_of(request)
    await require(request, "repository", name, "delete")
    deleted = await services_of(request).attributes.delete_repository(registry_of(request), name, actor_of(request))
    return _json(deleted, status=202)


# -- tags --------------------------------------------------------------------


async def list_tags(request: web.Request) -> web.Response:
    name = repository_of(request)
    await require(request, "repository", name, "metadata_read")
    n, last = page_params(request)
    orderby = _orderby(request)
    digest = request.query.get("digest") or None
    listing = await services_of(request).attributes.list_tags(registry_of(request), name, n, last, orderby, digest)
    headers = None
    if listing.last is not None:
        count = len(listing.document["tags"])
        headers = _link(f"/acr/v1/{name}/_tags", {"last": listing.last, "n": count, "orderby": orderby, "digest": digest})
    return _json(listing.document, headers=headers)


async def get_tag(request: web.Request) -> web.Response:
    name = repository_of(request)
    await require(request, "repository", name, "metadata_read")
    return _json(await services_of(request).attributes.get_tag(registry_of(request), name, request.match_info["reference"]))


async def patch_tag(request: web.Request) -> web.Response:
    name = repository_of(request)
    await require(request, "repository", name, "metadata_write")
    attributes = await _attributes(request)
    document = await services_of(request).attributes.update_tag(
        registry_of(request), name, request.match_info["reference"], attributes
    )
    return _json(document)


async def delete_tag(request: web.Request) -> web.Response:
    name = repository_of(request)
    await require(request, "repository", name, "delete")
    await services_of(request).attributes.delete_tag(
        registry_of(request), name, request.match_info["reference"], actor_of(request)
    )
    return web.Response(status=202, headers={"Content-Length": "0"})


# -- manifests ---------------------------------------------------------------


async def list_manifests(request: web.Request) -> web.Response:
    name = repository_of(request)
    await require(request, "repository", name, "metadata_read")
    n, last = page_params(request)
    orderby = _orderby(request)
    listing = await services_of(request).attributes.list_manifests(registry_of(request), name, n, last, orderby)
    headers = None
    if listing.last is not None:
        count = len(listing.document["manifests"])
        headers = _link(f"/acr/v1/{name}/_manifests", {"last": listing.last, "n": count, "orderby": orderby})
    return _json(listing.document, headers=headers)


async def get_manifest(request: web.Request) -> web.Response:
    name = repository_of(request)
    await require(request, "repository", name, "metadata_read")
    document = await services_of(request).attributes.get_manifest(
        registry_of(request), name, request.match_info["reference"]
    )
    return _json(document)


async def patch_manifest(request: web.Request) -> web.Response:
    name = repository_of(request)
    await require(request, "repository", name, "metadata_write")
    attributes = await _attributes(request)
    document = await services_of(request).attributes.update_manifest(
        registry_of(request), name, request.match_info["reference"], attributes
    )
    return _json(document)


async def delete_manifest(request: web.Request) -> web.Response:
    name = repository_of(request)
    await require(request, "repository", name, "delete")
    await services_of(request).attributes.delete_manifest(
        registry_of(request), name, request.match_info["reference"], actor_of(request)
    )
    return web.Response(status=202, headers={"Content-Length": "0"})


def add_routes(router: web.UrlDispatcher, name: str) -> None:
    """Register the /acr/v1 routes; ``name`` is the repository-name pattern. The most specific come first."""
    router.add_get("/acr/v1/_catalog", catalog)
    for suffix, get, patch, delete in (
        ("/_tags/{reference}", get_tag, patch_tag, delete_tag),
        ("/_manifests/{reference}", get_manifest, patch_manifest, delete_manifest),
    ):
        path = f"/acr/v1/{name}{suffix}"
        router.add_get(path, get)
        router.add_patch(path, patch)
        router.add_delete(path, delete)
    router.add_get(f"/acr/v1/{name}/_tags", list_tags)
    router.add_get(f"/acr/v1/{name}/_manifests", list_manifests)
    router.add_get(f"/acr/v1/{name}", get_repository)
    router.add_patch(f"/acr/v1/{name}", patch_repository)
    router.add_delete(f"/acr/v1/{name}", delete_repository)
