"""ACR's token endpoints: /oauth2/exchange and /oauth2/token.

- ``POST /oauth2/exchange`` (grant_type ``access_token``) takes an identity token
  (Dockyard's own OIDC issuer, or a trusted external one) and returns an ACR refresh token.
- ``GET /oauth2/token`` with Basic credentials, or ``POST /oauth2/token`` with
  ``grant_type=password`` or ``grant_type=refresh_token``, returns a short-lived access
  token whose ``access`` claim holds only the actions asked for and allowed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from aiohttp import web

from dockyard.auth import network
from dockyard.auth.issuer import OWN, WELL_KNOWN_AUDIENCES, InvalidIdentityToken
from dockyard.auth.principals import ANONYMOUS, Principal
from dockyard.auth.scopes import parse_scopes
from dockyard.http.context import base_url, registry_of, services_of
from dockyard.http.errors import BadRequest
from dockyard.http.identity import BasicChallenge, basic_credentials

MAX_FORM_BYTES = 64 << 10
REFRESHABLE = ("owner", "user", "sp", "external")


async def _registry(request: web.Request, service: str | None):
    """The registry a token is asked for: the one ``service`` names (behind its own firewall), else the Host's."""
    if service:
        registry = await services_of(request).registries.by_login_server(service)
        if registry is not None:
            network.check_client(registry, request.remote or "")
            return registry
    return registry_of(request)


def _json(document: dict) -> web.Response:
    return web.Response(
        body=json.dumps(document).encode(), content_type="application/json", headers={"Cache-Control": "no-store"}
    )


async def _form(request: web.Request):
    if request.content_type != "application/x-www-form-urlencoded":
        raise BadRequest("send the token request as application/x-www-form-urlencoded")
    if (request.content_length or 0) > MAX_FORM_BYTES:
        raise BadRequest("the token request is too large")
    try:
        return await request.post()
    except ValueError:
        raise BadRequest("the token request is not a valid form") from None


def _refresh_token(services, principal: Principal, registry) -> str:
    return services.tokens.issue_refresh(
        principal.name, registry.login_server, principal.object_id, principal.kind, services.tenancy.tenant_id
    )


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
    if refresh and principal.kind in REFRESHABLE:
        document["refresh_token"] = _refresh_token(services, principal, registry)
    return _json(document)


async def _sign_in(request: web.Request, registry, username: str, password: str) -> Principal:
    principal = await services_of(request).signin.basic(registry, username, password, request.remote or "")
    if principal is None:
        raise BasicChallenge("invalid username or password")
    return principal


async def get_token(request: web.Request) -> web.Response:
    credentials = basic_credentials(request)
    service = request.query.get("service")
    principal = ANONYMOUS
    if credentials is not None:
        principal = await _sign_in(request, await _registry(request, service), *credentials)
    elif request.headers.get("Authorization"):
        raise BasicChallenge("the token endpoint takes Basic credentials")
    return await _respond(request, principal, service, request.query.getall("scope", []), False)


async def post_token(request: web.Request) -> web.Response:
    form = await _form(request)
    services = services_of(request)
    service = str(form.get("service") or "") or None
    registry = await _registry(request, service)
    grant_type = form.get("grant_type")
    if grant_type == "password":
        principal = await _sign_in(request, registry, str(form.get("username", "")), str(form.get("password", "")))
    elif grant_type == "refresh_token":
        principal = await services.signin.from_refresh_token(registry, str(form.get("refresh_token", "")))
        if principal is None:
            raise BasicChallenge("the refresh token is invalid, expired, or not for this registry")
    else:
        raise BadRequest(f"unsupported grant_type {str(grant_type)[:40]!r}; use password or refresh_token")
    scopes = [str(value) for value in form.getall("scope", [])]
    return await _respond(request, principal, service, scopes, grant_type == "password")


async def exchange(request: web.Request) -> web.Response:
    """An identity token for an ACR refresh token of the registry named by ``service``."""
    form = await _form(request)
    services = services_of(request)
    grant_type = form.get("grant_type")
    if grant_type not in ("access_token", "access_token_refresh_token"):
        raise BadRequest(f"unsupported grant_type {str(grant_type)[:40]!r}; use access_token")
    service = str(form.get("service") or "")
    registry = await _registry(request, service or None)
    base = base_url(request)
    try:
        claims = await services.issuer.verify(
            str(form.get("access_token", "")), WELL_KNOWN_AUDIENCES + (base, base + "/")
        )
    except InvalidIdentityToken as error:
        raise BasicChallenge(f"the identity token was refused: {error}") from None
    principal = await principal_from_identity(services, claims)
    if principal is None:
        raise BasicChallenge("the identity token's principal is not known")
    return _json({"refresh_token": _refresh_token(services, principal, registry)})


async def principal_from_identity(services, claims: dict) -> Principal | None:
    """For Dockyard's own tokens, the principal its ``oid`` names (None if since deleted);
    for an external issuer's, an external principal named by its ``oid`` or ``sub``. An external
    token never becomes a local principal, whatever ``oid`` it carries."""
    object_id = claims.get("oid") or ""
    if claims.get(OWN):
        return await services.principals.by_object_id(object_id) if object_id else None
    object_id = object_id or claims.get("sub", "")
    if not object_id or await services.principals.by_object_id(object_id) is not None:
        return None  # an external identity may not pass for a local principal (and its role assignments)
    name = claims.get("preferred_username") or claims.get("upn") or claims.get("sub", "")
    return Principal(-1, name, "external", object_id=object_id)
