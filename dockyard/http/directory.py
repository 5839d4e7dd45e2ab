"""A small directory API for the `dockyard ad` commands: users and service principals.

Only the owner, or a principal holding Owner at the installation's root ("/"), may use it.
"""

from __future__ import annotations

import json

from aiohttp import web

from dockyard.auth.issuer import WELL_KNOWN_AUDIENCES, InvalidIdentityToken
from dockyard.auth.principals import Principal, PrincipalExists
from dockyard.http.context import base_url, services_of
from dockyard.http.oauth import principal_from_identity


def _error(status: int, code: str, message: str) -> web.Response:
    return web.Response(status=status, body=json.dumps({"error": {"code": code, "message": message}}).encode(),
                        content_type="application/json")


async def _caller(request: web.Request) -> Principal | web.Response:
    services = services_of(request)
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return _error(401, "InvalidAuthenticationToken", "a bearer token from Dockyard's issuer is required")
    base = base_url(request)
    try:
        claims = await services.issuer.verify(token.strip(), WELL_KNOWN_AUDIENCES + (base, base + "/"))
    except InvalidIdentityToken as error:
        return _error(401, "InvalidAuthenticationToken", str(error))
    principal = await principal_from_identity(services, claims)
    if principal is None or not await services.authorizer.control(principal, "/", "owner"):
        return _error(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
    return principal


async def _body(request: web.Request) -> dict | web.Response:
    try:
        body = await request.json() if request.can_read_body else {}
    except (ValueError, UnicodeDecodeError):
        return _error(400, "Request_BadRequest", "the body is not valid JSON")
    return body if isinstance(body, dict) else _error(400, "Request_BadRequest", "the body must be a JSON object")


def _years(body: dict) -> float | web.Response:
    years = body.get("years", 1)
    if isinstance(years, bool) or not isinstance(years, (int, float)) or not 0 < years <= 100:
        return _error(400, "Request_BadRequest", "years must be a number between 0 and 100")
    return float(years)


async def _authorized_body(request: web.Request, with_years: bool = False):
    """(body, years) of a call by an owner, or the error Response to send instead."""
    caller = await _caller(request)
    if isinstance(caller, web.Response):
        return caller
    body = await _body(request)
    if isinstance(body, web.Response) or not with_years:
        return body if isinstance(body, web.Response) else (body, None)
    years = _years(body)
    return years if isinstance(years, web.Response) else (body, years)


async def create_service_principal(request: web.Request) -> web.Response:
    checked = await _authorized_body(request, with_years=True)
    if isinstance(checked, web.Response):
        return checked
    body, years = checked
    name = str(body.get("displayName") or "")[:255] or "dockyard-sp"
    services = services_of(request)
    principal, secret = await services.principals.create_service_principal(name, years)
    return web.json_response(
        {"appId": principal.app_id, "displayName": name, "password": secret, "tenant": services.tenancy.tenant_id,
         "objectId": principal.object_id},
        status=201,
    )


async def reset_credentials(request: web.Request) -> web.Response:
    checked = await _authorized_body(request, with_years=True)
    if isinstance(checked, web.Response):
        return checked
    body, years = checked
    services = services_of(request)
    principal = await services.principals.by_app_id(request.match_info["app_id"])
    if principal is None or principal.kind != "sp":
        return _error(404, "Request_ResourceNotFound", "no service principal has that appId")
    secret = await services.principals.add_secret(principal, years=years, append=bool(body.get("append")))
    return web.json_response({"appId": principal.app_id, "password": secret, "tenant": services.tenancy.tenant_id})


async def create_user(request: web.Request) -> web.Response:
    checked = await _authorized_body(request)
    if isinstance(checked, web.Response):
        return checked
    body, _ = checked
    name, password = str(body.get("name") or ""), str(body.get("password") or "")
    if not name or len(password) < 8:
        return _error(400, "Request_BadRequest", "a user needs a name and a password of at least 8 characters")
    try:
        user = await services_of(request).principals.create_user(name, password, display_name=body.get("displayName"))
    except PrincipalExists as error:
        return _error(409, "Request_MultipleObjectsWithSameKeyValue", error.message)
    return web.json_response({"objectId": user.object_id, "name": user.name, "displayName": user.display_name}, status=201)


async def list_principals(request: web.Request) -> web.Response:
    caller = await _caller(request)
    if isinstance(caller, web.Response):
        return caller
    kind = "sp" if request.match_info["kind"] == "servicePrincipals" else "user"
    found = await services_of(request).principals.list(kind)
    return web.json_response({"value": [
        {"objectId": p.object_id, "appId": p.app_id or None, "name": p.name if kind == "user" else None,
         "displayName": p.display_name} for p in found
    ]})


def register(app: web.Application) -> None:
    r = app.router
    r.add_post("/directory/v1/servicePrincipals", create_service_principal)
    r.add_post("/directory/v1/servicePrincipals/{app_id}/credentials", reset_credentials)
    r.add_post("/directory/v1/users", create_user)
    r.add_get("/directory/v1/{kind:servicePrincipals|users}", list_principals)
