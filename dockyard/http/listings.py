"""The catalog, tag lists and the referrers API, paginated with ``n``, ``last`` and ``Link``."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from aiohttp import web

from dockyard.core import manifests as parsing
from dockyard.core.digests import Digest
from dockyard.http.context import registry_of, repository_of, services_of
from dockyard.http.errors import BadRequest
from dockyard.http.identity import require


def page_params(request: web.Request) -> tuple[int | None, str | None]:
    raw = request.query.get("n")
    n = None
    if raw is not None and raw != "":
        if not raw.isdigit() or len(raw) > 9:
            raise BadRequest(f"n must be a non-negative integer, not {raw[:20]!r}")
        n = int(raw)
    return n, request.query.get("last") or None


def _json(document: dict, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=json.dumps(document).encode(), content_type="application/json", headers=headers)


def _link(path: str, last: str, n: int | None) -> dict[str, str]:
    query = {"last": last} if n is None else {"last": last, "n": n}
    return {"Link": f'<{path}?{urlencode(query)}>; rel="next"'}


async def catalog(request: web.Request) -> web.Response:
    await require(request, "registry", "catalog", "*")
    n, last = page_params(request)
    page = await services_of(request).listings.catalog(registry_of(request).id, n, last)
    headers = _link("/v2/_catalog", page.items[-1], len(page.items)) if page.more else None
    return _json({"repositories": page.items}, headers)


async def tags_list(request: web.Request) -> web.Response:
    repository = repository_of(request)
    await require(request, "repository", repository, "pull")
    n, last = page_params(request)
    page = await services_of(request).listings.tags(registry_of(request).id, repository, n, last)
    # Without n the next page is again a whole one.
    headers = None if page.last is None else _link(f"/v2/{repository}/tags/list", page.last, n)
    return web.Response(body=page.body, content_type="application/json", headers=headers)


async def referrers(request: web.Request) -> web.Response:
    repository = repository_of(request)
    await require(request, "repository", repository, "pull")
    subject = Digest.parse(request.match_info["digest"])
    artifact_type = request.query.get("artifactType") or None
    descriptors = await services_of(request).listings.referrers(
        registry_of(request).id, repository, subject, artifact_type
    )
    response = web.Response(body=parsing.referrers_index(descriptors), content_type="application/vnd.oci.image.index.v1+json")
    if artifact_type:
        response.headers["OCI-Filters-Applied"] = "artifactType"
    return response
