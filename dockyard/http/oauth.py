"""The token endpoint of Docker's token protocol, as ACR serves it at /oauth2/token.

GET with Basic credentials, or POST with ``grant_type=password`` or
``grant_type=refresh_token``, returns a short-lived access token whose
``access`` claim holds only the actions asked for and allowed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from aiohttp import web

from dockyard.auth.principals import ANONYMOUS, Principal
from dockyard.auth.scopes import parse_scopes
from dockyard.auth.tokens import InvalidToken
from dockyard.http.context import registry_of, services_of
from dockyard.http.errors import BadRequest
from dockyard.http.identity import BasicChallenge, basic_credentials

MAX_FORM_BYTES = 64 << 10


async def _registry(request: web.Request, service: str | None):
    if service:
        registry = await services_of(request).registries.by_login_server(service)
        if registry is not None:
            return registry
    return registry_of(request)


async def _respond(request, principal: Principal, service: str | None, scope_values: list[str], refresh: bool):
    services = services_of(request)
    registry = await _registry(request, service)
    granted = await services.authorizer.grant(principal, registry, parse_scopes(scope_values))
    token = services.tokens.issue_access(principal.name, registry.login_server, [s.as_claim() for s in granted])
    document = {
        "access_token": token,
        "token": token,
        "expires_in": services.tokens.access_lifetime,
        "issued_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }
    if refresh and not principal.is_anonymous:
        document["refresh_token"] = services.tokens.issue_refresh(principal.name, registry.login_server)
    return web.Response(
        body=json.dumps(document).encode(), content_type="application/json", headers={"Cache-Control": "no-store"}
    )


async def get_token(request: web.Request) -> web.Response:
    credentials = basic_credentials(request)
    principal = ANONYMOUS
    if credentials is not None:
        principal = await services_of(request).principals.authenticate(*credentials)
        if principal is None:
            raise BasicChallenge("invalid username or password")
    elif request.headers.get("Authorization"):
        raise BasicChallenge("the token endpoint takes Basic credentials")
    return await _respond(request, principal, request.query.get("service"), request.query.getall("scope", []), False)


async def post_token(request: web.Request) -> web.Response:
    if request.content_type != "application/x-www-form-urlencoded":
        raise BadRequest("send the token request as application/x-www-form-urlencoded")
    if (request.content_length or 0) > MAX_FORM_BYTES:
        raise BadRequest("the token request is too large")
    try:
        form = await request.post()
    except ValueError:
        raise BadRequest("the token request is not a valid form") from None
    services = services_of(request)
    service = form.get("service")
    grant_type = form.get("grant_type")
    if grant_type == "password":
        principal = await services.principals.authenticate(str(form.get("username", "")), str(form.get("password", "")))
        if principal is None:
            raise BasicChallenge("invalid username or password")
    elif grant_type == "refresh_token":
        registry = await _registry(request, str(service) if service else None)
        try:
            claims = services.tokens.verify(str(form.get("refresh_token", "")), registry.login_server, "refresh_token")
        except InvalidToken:
            raise BasicChallenge("the refresh token is invalid or expired") from None
        principal = await services.principals.by_name(claims["sub"])
        if principal is None:
            raise BasicChallenge("the refresh token's principal no longer exists")
    else:
        raise BadRequest(f"unsupported grant_type {str(grant_type)[:40]!r}; use password or refresh_token")
    scopes = [str(value) for value in form.getall("scope", [])]
    return await _respond(request, principal, str(service) if service else None, scopes, grant_type == "password")
