"""The aiohttp application: routes, middlewares and the headers every answer carries."""

from __future__ import annotations

import logging

from aiohttp import web

from dockyard.core.errors import NameUnknown, RegistryError, Unavailable, Unsupported
from dockyard.auth import network
from dockyard.http import directory, oidc, acr, blobs, health, listings, manifests, oauth, proxies, uploads
from dockyard.http import arm, direct
from dockyard.http.context import REGISTRY, SERVICES, services_of
from dockyard.http.errors import NotFound, internal_error, render
from dockyard.http.identity import BasicChallenge, Challenge, ScopeChallenge, require_signed_in

log = logging.getLogger("dockyard.http")

# A repository name: segments without "/". Possessive (a segment is never given back in part:
# what follows a name starts with "/"), so a path that doesn't match fails at once rather than
# backtracking through every character of a digest.
NAME = r"{name:[^/]++(?:/[^/]++)*}"


async def api_version(request: web.Request) -> web.Response:
    await require_signed_in(request)
    return web.json_response({})


DATA_PLANE = ("/v2", "/oauth2/", "/acr/")  # never an ARM path: ARM's first segments are arm.ROOTS


@web.middleware
async def front(request: web.Request, handler):
    """The one middleware: the registry the Host names, ARM's paths, and errors rendered the OCI way.

    One layer rather than three: every layer is a call and a coroutine on every request.
    """
    try:
        path = request.path
        if path in health.PATHS:
            return await handler(request)
        await _route_registry(request, path)
        if not path.startswith(DATA_PLANE):
            normalised = arm.arm_path(path)
            if normalised is not None:
                return await arm.dispatch(request, normalised)
        return await handler(request)
    except (Challenge, BasicChallenge, ScopeChallenge) as error:
        return render(error, {"WWW-Authenticate": error.header(request)})
    except RegistryError as error:
        return render(error)
    except web.HTTPNotFound:
        return render(NotFound(f"no endpoint at {request.path[:200]}"))
    except web.HTTPMethodNotAllowed:
        return render(Unsupported(f"{request.method} is not allowed on {request.path[:200]}"))
    except web.HTTPException:
        raise
    except Exception as error:
        if services_of(request).store.is_outage(error):
            log.warning("blob store unavailable on %s %s: %r", request.method, request.path[:200], error)
            return render(Unavailable("the blob store is unavailable; retry shortly"))
        log.exception("unhandled error on %s %s", request.method, request.path[:200])
        return internal_error()


async def _route_registry(request: web.Request, path: str) -> None:
    """Find the registry by the Host (its firewall applies to the data plane); else the default registry."""
    registries = services_of(request).registries
    registry = await registries.for_host(request.host)
    if path.startswith(DATA_PLANE):
        if registry is None:
            raise NameUnknown(f"no registry has the login server {request.host.rsplit(':', 1)[0][:200]!r}")
        network.check_client(registry, request.remote or "")
    request[REGISTRY] = registry or await registries.default()


async def _prepare_answer(request: web.Request, response: web.StreamResponse) -> None:
    """Every answer: the API version header; and a connection whose body was read from its socket is closed."""
    response.headers["Docker-Distribution-API-Version"] = "registry/2.0"
    direct.close_if_taken(request, response)


def create_app(services) -> web.Application:
    middlewares = [front]
    trusted = proxies.parse_networks(services.settings.trusted_proxies)
    if trusted:
        middlewares.insert(0, proxies.middleware(trusted))
    app = web.Application(middlewares=middlewares, client_max_size=1 << 20)
    app[SERVICES] = services
    app.on_response_prepare.append(_prepare_answer)
    r = app.router
    r.add_get("/v2/", api_version)
    r.add_get("/v2", api_version)
    # The router tries the /v2/<name>/... patterns in this order (each a regular expression), and
    # no path matches two of them for the same method: the pulls' routes come first.
    r.add_get(f"/v2/{NAME}/manifests/{{reference}}", manifests.get_manifest)
    r.add_put(f"/v2/{NAME}/manifests/{{reference}}", manifests.put_manifest)
    r.add_delete(f"/v2/{NAME}/manifests/{{reference}}", manifests.delete_manifest)
    r.add_get(f"/v2/{NAME}/blobs/{{digest}}", blobs.get_blob)
    r.add_delete(f"/v2/{NAME}/blobs/{{digest}}", blobs.delete_blob)
    r.add_get("/v2/_catalog", listings.catalog)
    r.add_get(f"/v2/{NAME}/tags/list", listings.tags_list)
    r.add_get(f"/v2/{NAME}/referrers/{{digest}}", listings.referrers)
    for path in (f"/v2/{NAME}/blobs/uploads/", f"/v2/{NAME}/blobs/uploads"):
        r.add_post(path, uploads.start_upload)
    session = f"/v2/{NAME}/blobs/uploads/{{uuid}}"
    r.add_get(session, uploads.upload_status)
    r.add_patch(session, uploads.patch_upload)
    r.add_put(session, uploads.put_upload)
    r.add_delete(session, uploads.cancel_upload)
    health.register(r)
    r.add_get("/oauth2/token", oauth.get_token)
    r.add_post("/oauth2/token", oauth.post_token)
    r.add_post("/oauth2/exchange", oauth.exchange)
    oidc.register(app)
    directory.register(app)
    acr.add_routes(r, NAME)
    return app
