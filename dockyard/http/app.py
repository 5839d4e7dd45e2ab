"""The aiohttp application: routes, middlewares and the headers every answer carries."""

from __future__ import annotations

import logging

from aiohttp import web

from dockyard.core.errors import NameUnknown, RegistryError, Unavailable, Unsupported
from dockyard.auth import network
from dockyard.http import directory, oidc, acr, blobs, health, listings, manifests, oauth, proxies, uploads
from dockyard.http import arm
from dockyard.http.context import REGISTRY, SERVICES, services_of
from dockyard.http.errors import NotFound, internal_error, render
from dockyard.http.identity import BasicChallenge, Challenge, ScopeChallenge, require_signed_in

log = logging.getLogger("dockyard.http")

NAME = r"{name:[^/]+(?:/[^/]+)*}"


async def api_version(request: web.Request) -> web.Response:
    await require_signed_in(request)
    return web.json_response({})


DATA_PLANE = ("/v2", "/oauth2/", "/acr/")


@web.middleware
async def route_registry(request: web.Request, handler):
    if request.path in health.PATHS:
        return await handler(request)
    registries = services_of(request).registries
    registry = await registries.for_host(request.host)
    if request.path.startswith(DATA_PLANE):
        if registry is None:
            raise NameUnknown(f"no registry has the login server {request.host.rsplit(':', 1)[0][:200]!r}")
        network.check_client(registry, request.remote or "")
    request[REGISTRY] = registry or await registries.default()
    return await handler(request)


@web.middleware
async def render_errors(request: web.Request, handler):
    try:
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


async def _api_version_header(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Docker-Distribution-API-Version"] = "registry/2.0"


def create_app(services) -> web.Application:
    middlewares = [render_errors, route_registry]
    trusted = proxies.parse_networks(services.settings.trusted_proxies)
    if trusted:
        middlewares.insert(0, proxies.middleware(trusted))
    app = web.Application(middlewares=middlewares, client_max_size=1 << 20)
    app[SERVICES] = services
    app.on_response_prepare.append(_api_version_header)
    r = app.router
    r.add_get("/v2/", api_version)
    r.add_get("/v2", api_version)
    r.add_get("/v2/_catalog", listings.catalog)
    r.add_get(f"/v2/{NAME}/tags/list", listings.tags_list)
    r.add_get(f"/v2/{NAME}/referrers/{{digest}}", listings.referrers)
    r.add_get(f"/v2/{NAME}/manifests/{{reference}}", manifests.get_manifest)
    r.add_put(f"/v2/{NAME}/manifests/{{reference}}", manifests.put_manifest)
    r.add_delete(f"/v2/{NAME}/manifests/{{reference}}", manifests.delete_manifest)
    for path in (f"/v2/{NAME}/blobs/uploads/", f"/v2/{NAME}/blobs/uploads"):
        r.add_post(path, uploads.start_upload)
    session = f"/v2/{NAME}/blobs/uploads/{{uuid}}"
    r.add_get(session, uploads.upload_status)
    r.add_patch(session, uploads.patch_upload)
    r.add_put(session, uploads.put_upload)
    r.add_delete(session, uploads.cancel_upload)
    r.add_get(f"/v2/{NAME}/blobs/{{digest}}", blobs.get_blob)
    r.add_delete(f"/v2/{NAME}/blobs/{{digest}}", blobs.delete_blob)
    health.register(r)
    r.add_get("/oauth2/token", oauth.get_token)
    r.add_post("/oauth2/token", oauth.post_token)
    r.add_post("/oauth2/exchange", oauth.exchange)
    oidc.register(app)
    directory.register(app)
    acr.add_routes(r, NAME)
    arm.register(app)
    return app
