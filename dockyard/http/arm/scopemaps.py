"""A registry's scope maps and tokens (``.../registries/{r}/scopeMaps|tokens/{name}``) and
``POST .../registries/{r}/generateCredentials``, the only answer that carries a token's passwords.

Writes finish before the answer, so PUT answers 201 (new) or 200 with provisioningState
Succeeded, which ends the SDK's long-running-operation polling at once. A token's PUT or PATCH
with ``credentials.passwords`` deletes the passwords it doesn't list.
"""

from __future__ import annotations

from aiohttp import web

from dockyard.auth.scopemaps import ScopeMapNotFound, TokenNotFound
from dockyard.http.arm import auth
from dockyard.http.arm.context import Call, choice, fields, iso, listing, parse_time, respond, text
from dockyard.http.arm.errors import bad_request, not_found
from dockyard.http.arm.registries import ACTION, find_registry, registry_scope

MAP_TYPE = "Microsoft.ContainerRegistry/registries/scopeMaps"
TOKEN_TYPE = "Microsoft.ContainerRegistry/registries/tokens"
PASSWORDS = ("password1", "password2")


def map_body(registry, scope_map) -> dict:
    created = scope_map.created_at or registry.created_at
    return {
        "id": f"{registry.arm_id}/scopeMaps/{scope_map.name}",
        "name": scope_map.name,
        "type": MAP_TYPE,
        "properties": {
            "description": scope_map.description,
            "type": "SystemDefined" if scope_map.system else "UserDefined",
            "creationDate": iso(created),
            "provisioningState": "Succeeded",
            "actions": list(scope_map.actions),
        },
    }


def token_body(registry, token) -> dict:
    return {
        "id": f"{registry.arm_id}/tokens/{token.name}",
        "name": token.name,
        "type": TOKEN_TYPE,
        "properties": {
            "creationDate": iso(token.created_at),
            "provisioningState": "Succeeded",
            "scopeMapId": f"{registry.arm_id}/scopeMaps/{token.scope_map}",
            "status": token.status,
            "credentials": {
                "certificates": [],
                "passwords": [
                    {"name": p["name"], "creationTime": iso(p["creationTime"]), "expiry": iso(p["expiry"])}
                    for p in token.passwords
                ],
            },
        },
    }


def _child_scope(call: Call, kind: str) -> str:
    name = call.params.get("name")
    return f"{registry_scope(call)}/{kind}" + (f"/{name}" if name else "")


def _missing(call: Call, kind: str):
    return not_found(f"The {kind} '{call.params['name']}' was not found in registry '{call.params['reg']}'.")


async def _stored_name(call: Call, registry, kind: str, name: str) -> str:
    """The stored spelling of a scope map's or token's name: ARM matches names without regard to case."""
    scopemaps = call.services.scopemaps
    found = await (scopemaps.list_maps(registry) if kind == "scope map" else scopemaps.list_tokens(registry))
    return next((item.name for item in found if item.name.lower() == name.lower()), name)


async def _registry_and_name(call: Call, kind: str):
    registry = await find_registry(call)
    call.params["name"] = await _stored_name(call, registry, kind, call.params["name"])
    return registry


# -- scope maps ------------------------------------------------------------------
async def list_maps(call: Call) -> web.Response:
    await auth.require(call, registry_scope(call), "read", f"{ACTION}/scopeMaps/read")
    registry = await find_registry(call)
    return listing([map_body(registry, m) for m in await call.services.scopemaps.list_maps(registry)])


async def get_map(call: Call) -> web.Response:
    await auth.require(call, _child_scope(call, "scopeMaps"), "read", f"{ACTION}/scopeMaps/read")
    registry = await _registry_and_name(call, "scope map")
    try:
        scope_map = await call.services.scopemaps.get_map(registry, call.params["name"])
    except ScopeMapNotFound:
        raise _missing(call, "scope map") from None
    return respond(map_body(registry, scope_map))


def _map_fields(body: dict) -> tuple[list[str] | None, str | None]:
    props = fields(fields(body, "body").get("properties"), "properties")
    description = text(props.get("description"), "properties.description", 256)
    actions = props.get("actions")
    if actions is not None and (not isinstance(actions, list) or not all(isinstance(a, str) for a in actions)):
        raise bad_request("'properties.actions' must be a list of strings.")
    return actions, description


async def put_map(call: Call) -> web.Response:
    await auth.require(call, _child_scope(call, "scopeMaps"), "write", f"{ACTION}/scopeMaps/write")
    actions, description = _map_fields(await call.body())
    registry = await _registry_and_name(call, "scope map")
    scopemaps = call.services.scopemaps
    try:
        existing = await scopemaps.get_map(registry, call.params["name"])
    except ScopeMapNotFound:
        existing = None
    if actions is None:
        if existing is None:
            raise bad_request("'properties.actions' is required.")
        actions = list(existing.actions)
    scope_map = await scopemaps.put_map(registry, call.params["name"], actions, description)
    return respond(map_body(registry, scope_map), status=200 if existing else 201)


async def patch_map(call: Call) -> web.Response:
    await auth.require(call, _child_scope(call, "scopeMaps"), "write", f"{ACTION}/scopeMaps/write")
    actions, description = _map_fields(await call.body(required=False))
    registry = await _registry_and_name(call, "scope map")
    scopemaps = call.services.scopemaps
    try:
        existing = await scopemaps.get_map(registry, call.params["name"])
    except ScopeMapNotFound:
        raise _missing(call, "scope map") from None
    scope_map = await scopemaps.put_map(
        registry, existing.name, actions if actions is not None else list(existing.actions), description
    )
    return respond(map_body(registry, scope_map))


async def delete_map(call: Call) -> web.Response:
    await auth.require(call, _child_scope(call, "scopeMaps"), "write", f"{ACTION}/scopeMaps/delete")
    registry = await _registry_and_name(call, "scope map")
    try:
        await call.services.scopemaps.delete_map(registry, call.params["name"])
    except ScopeMapNotFound:
        return respond(status=204)
    return respond(status=200)


# -- tokens ------------------------------------------------------------------------
async def list_tokens(call: Call) -> web.Response:
    await auth.require(call, registry_scope(call), "read", f"{ACTION}/tokens/read")
    registry = await find_registry(call)
    return listing([token_body(registry, t) for t in await call.services.scopemaps.list_tokens(registry)])


async def get_token(call: Call) -> web.Response:
    await auth.require(call, _child_scope(call, "tokens"), "read", f"{ACTION}/tokens/read")
    registry = await _registry_and_name(call, "token")
    try:
        token = await call.services.scopemaps.get_token(registry, call.params["name"])
    except TokenNotFound:
        raise _missing(call, "token") from None
    return respond(token_body(registry, token))


def _scope_map_name(value, registry) -> str | None:
    """The scope map a ``scopeMapId`` names: an ARM id of this registry's scope map, or a bare name."""
    reference = text(value, "properties.scopeMapId", 1024)
    if reference is None:
        return None
    parts = reference.strip().strip("/").split("/")
    if len(parts) == 1:
        return parts[0]
    lowered = [p.lower() for p in parts]
    if len(parts) < 2 or lowered[-2] != "scopemaps" or "registries" not in lowered:
        raise bad_request(f"'{reference[:200]}' is not a scope map id.")
    if parts[lowered.index("registries") + 1].lower() != registry.name.lower():
        raise bad_request(f"The scope map '{reference[:200]}' belongs to another registry.")
    return parts[-1]


async def _put_token(call: Call, required: bool) -> web.Response:
    await auth.require(call, _child_scope(call, "tokens"), "write", f"{ACTION}/tokens/write")
    props = fields(fields(await call.body(required=required), "body").get("properties"), "properties")
    status = choice(props.get("status"), "properties.status", ("enabled", "disabled"))
    kept = _kept_passwords(props.get("credentials"))
    registry = await _registry_and_name(call, "token")
    scope_map = _scope_map_name(props.get("scopemapid"), registry)
    scopemaps = call.services.scopemaps
    try:
        existing = await scopemaps.get_token(registry, call.params["name"])
    except TokenNotFound:
        existing = None
        if not required:
            raise _missing(call, "token") from None
    if scope_map is not None:
        scope_map = await _stored_name(call, registry, "scope map", scope_map)
        try:
            await scopemaps.get_map(registry, scope_map)
        except ScopeMapNotFound:
            raise bad_request(f"The scope map '{scope_map[:60]}' does not exist in registry '{registry.name}'.") from None
    elif existing is None:
        raise bad_request("'properties.scopeMapId' is required for a new token.")
    token = await scopemaps.put_token(registry, call.params["name"], scope_map, status)
    if kept is not None:
        for password in token.passwords:
            if password["name"] not in kept:
                await scopemaps.delete_password(registry, token.name, password["name"])
        token = await scopemaps.get_token(registry, token.name)
    return respond(token_body(registry, token), status=201 if existing is None else 200)


def _kept_passwords(value) -> set[str] | None:
    """The password names ``credentials.passwords`` lists: those not listed are deleted (how
    ``az acr token credential delete`` works). Passwords are made only by generateCredentials."""
    credentials = fields(value, "properties.credentials")
    passwords = credentials.get("passwords")
    if passwords is None:
        return None
    if not isinstance(passwords, list):
        raise bad_request("'properties.credentials.passwords' must be a list.")
    kept = set()
    for index, entry in enumerate(passwords):
        name = choice(fields(entry, f"credentials.passwords[{index}]").get("name"),
                      f"credentials.passwords[{index}].name", PASSWORDS)
        if name is None:
            raise bad_request(f"'credentials.passwords[{index}].name' is required: password1 or password2.")
        kept.add(name)
    return kept


async def put_token(call: Call) -> web.Response:
    return await _put_token(call, required=True)


async def patch_token(call: Call) -> web.Response:
    return await _put_token(call, required=False)


async def delete_token(call: Call) -> web.Response:
    await auth.require(call, _child_scope(call, "tokens"), "write", f"{ACTION}/tokens/delete")
    registry = await _registry_and_name(call, "token")
    try:
        await call.services.scopemaps.delete_token(registry, call.params["name"])
    except TokenNotFound:
        return respond(status=204)
    return respond(status=200)


async def generate_credentials(call: Call) -> web.Response:
    """New passwords for a token (one, or both when no name is given), shown this once."""
    await auth.require(call, registry_scope(call), "write", f"{ACTION}/generateCredentials/action")
    body = fields(await call.body(), "body")
    token_id = text(body.get("tokenid"), "tokenId", 1024)
    if not token_id:
        raise bad_request("'tokenId' is required: the ARM id of one of this registry's tokens.")
    which = choice(body.get("name"), "name", PASSWORDS)
    expiry = parse_time(body.get("expiry"), "expiry")
    registry = await find_registry(call)
    parts = token_id.strip().strip("/").split("/")
    lowered = [p.lower() for p in parts]
    if len(parts) < 2 or lowered[-2] != "tokens" or (
        "registries" in lowered and parts[lowered.index("registries") + 1].lower() != registry.name.lower()
    ):
        raise bad_request(f"'{token_id[:200]}' is not the id of a token of registry '{registry.name}'.")
    name = await _stored_name(call, registry, "token", parts[-1])
    scopemaps = call.services.scopemaps
    try:
        await scopemaps.get_token(registry, name)
    except TokenNotFound:
        raise not_found(f"The token '{name[:60]}' was not found in registry '{registry.name}'.") from None
    passwords = []
    for password in (which,) if which else PASSWORDS:
        generated = await scopemaps.generate_password(registry, name, password, expiry)
        passwords.append(
            {"name": generated["name"], "value": generated["value"],
             "creationTime": iso(generated["creationTime"]), "expiry": iso(generated["expiry"])}
        )
    return respond({"username": name, "passwords": passwords})
