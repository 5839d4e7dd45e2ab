"""Dockyard's OpenID Connect issuer, shaped like Entra ID's v2.0 endpoints (and an /adfs variant,
which MSAL uses without instance discovery):

- ``GET /{tenant}/v2.0/.well-known/openid-configuration`` and ``/adfs/.well-known/openid-configuration``
- ``GET /{tenant}/discovery/v2.0/keys`` (JWKS)
- ``POST /{tenant}/oauth2/v2.0/token`` and ``/adfs/oauth2/token``: the client-credentials grant for
  service principals, the password grant for users; ``scope`` names the audience as ``<audience>/.default``.
Errors are OAuth2's: ``{"error", "error_description"}``.
"""

from __future__ import annotations

import json

from aiohttp import web

from dockyard.auth.issuer import LIFETIME, WELL_KNOWN_AUDIENCES
from dockyard.core.errors import TooManyRequests
from dockyard.http.context import base_url, services_of
from dockyard.http.identity import basic_credentials

MAX_FORM_BYTES = 64 << 10


def _oauth_error(status: int, error: str, description: str) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps({"error": error, "error_description": description}).encode(),
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


def _tenant(request: web.Request) -> str:
    return request.match_info.get("tenant", "adfs")


async def discovery(request: web.Request) -> web.Response:
    services = services_of(request)
    return web.json_response(services.issuer.discovery(base_url(request), _tenant(request)))


async def keys(request: web.Request) -> web.Response:
    return web.json_response(services_of(request).issuer.jwks())


def audience_of(request: web.Request, scope: str) -> str | None:
    """The audience a ``<audience>/.default`` scope names, if Dockyard issues tokens for it."""
    base = base_url(request)
    for item in scope.split():
        audience = item[: -len("/.default")] if item.endswith("/.default") else item
        if audience in WELL_KNOWN_AUDIENCES or audience.rstrip("/") == base:
            return audience if audience.endswith("/") or audience in WELL_KNOWN_AUDIENCES else audience + "/"
    return None


async def token(request: web.Request) -> web.Response:
    services = services_of(request)
    if request.content_type != "application/x-www-form-urlencoded" or (request.content_length or 0) > MAX_FORM_BYTES:
        return _oauth_error(400, "invalid_request", "send the token request as a form")
    try:
        form = await request.post()
    except ValueError:
        return _oauth_error(400, "invalid_request", "the token request is not a valid form")
    grant_type = str(form.get("grant_type", ""))
    audience = audience_of(request, str(form.get("scope", "")))
    if audience is None:
        return _oauth_error(400, "invalid_scope", "the scope must name <audience>/.default of Dockyard or ACR")
    client = request.remote or ""
    if grant_type == "client_credentials":
        client_id, secret = str(form.get("client_id", "")), str(form.get("client_secret", ""))
        basic = basic_credentials(request)
        if basic and not secret:
            client_id, secret = basic
        name = client_id
    elif grant_type == "password":
        name, secret = str(form.get("username", "")), str(form.get("password", ""))
    else:
        return _oauth_error(400, "unsupported_grant_type", "use client_credentials or password")
    try:
        services.signin.throttle.check(client, name)
    except TooManyRequests as error:
        response = _oauth_error(429, "temporarily_unavailable", error.message)
        response.headers["Retry-After"] = str(getattr(error, "retry_after", 60))
        return response
    principal = await services.principals.authenticate(name, secret)
    if principal is None or (grant_type == "client_credentials" and principal.kind != "sp") or (
        grant_type == "password" and principal.kind == "sp"
    ):
        services.signin.throttle.failed(client, name)
        error = "invalid_client" if grant_type == "client_credentials" else "invalid_grant"
        return _oauth_error(401 if error == "invalid_client" else 400, error, "the credentials are not valid")
    issued = services.issuer.issue(
        principal, audience, services.issuer.issuer_url(base_url(request), _tenant(request)),
        self_audience=audience not in WELL_KNOWN_AUDIENCES,
    )
    return web.Response(
        body=json.dumps(
            {"token_type": "Bearer", "expires_in": LIFETIME - 1, "ext_expires_in": LIFETIME - 1, "access_token": issued}
        ).encode(),
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


def register(app: web.Application) -> None:
    r = app.router
    r.add_get("/adfs/.well-known/openid-configuration", discovery)
    r.add_get("/adfs/discovery/keys", keys)
    r.add_post("/adfs/oauth2/token", token)
    r.add_get("/{tenant}/v2.0/.well-known/openid-configuration", discovery)
    r.add_get("/{tenant}/.well-known/openid-configuration", discovery)
    r.add_get("/{tenant}/discovery/v2.0/keys", keys)
    r.add_post("/{tenant}/oauth2/v2.0/token", token)
    r.add_post("/{tenant}/oauth2/token", token)
