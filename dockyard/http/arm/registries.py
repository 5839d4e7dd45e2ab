"""``Microsoft.ContainerRegistry/registries``: create (long-running), read, list, update, delete,
the name check, admin credentials and usages."""

from __future__ import annotations

import re

from aiohttp import web

from dockyard.http.arm import auth, groups
from dockyard.http.arm.context import Call, choice, fields, listing, respond, text
from dockyard.http.arm.errors import ArmError, bad_request, conflict, resource_not_found
from dockyard.http.arm.operations import accepted
from dockyard.http.arm.registry_body import check_sku_features, read_values, registry_body
from dockyard.services.registries import PROVIDER

_NAME = re.compile(r"^[a-zA-Z0-9]{5,50}$")
_LOCATION = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9 ]{0,63}$")
ACTION = "Microsoft.ContainerRegistry/registries"


def registry_scope(call: Call) -> str:
    return (
        f"/subscriptions/{call.params['sub']}/resourceGroups/{call.params['rg']}"
        f"/providers/{PROVIDER}/{call.params['reg']}"
    )


async def find_registry(call: Call):
    """The registry the path names, in the group the path names (after the rights check)."""
    group = await groups.find_group(call)
    registry = await call.services.registries.get(call.params["reg"])
    if registry is None or registry.resource_group_id != group.id:
        raise resource_not_found(PROVIDER, call.params["reg"], call.params["rg"])
    return registry


async def get_registry(call: Call) -> web.Response:
    await auth.require(call, registry_scope(call), "read", f"{ACTION}/read")
    return respond(registry_body(call, await find_registry(call)))


async def _visible(call: Call, registries) -> list[dict]:
    return [registry_body(call, r) for r in registries if await auth.can(call, r.arm_id, "read")]


async def list_registries(call: Call) -> web.Response:
    await auth.require_subscription(call, call.params["sub"], f"{ACTION}/read")
    group_id = (await groups.find_group(call)).id if "rg" in call.params else None
    return listing(await _visible(call, await call.services.registries.list(call.params["sub"], group_id)))


async def put_registry(call: Call) -> web.Response:
    await auth.require(call, registry_scope(call), "write", f"{ACTION}/write")
    name = call.params["reg"]
    if not _NAME.match(name):
        raise bad_request(
            f"The registry name '{name[:60]}' is invalid: registry names may contain only alpha numeric characters "
            "and must be between 5 and 50 characters.",
            "InvalidResourceName",
        )
    body = await call.body()
    group = await groups.find_group(call)
    location = text(fields(body, "body").get("location"), "location", 64)
    if location is not None and not _LOCATION.match(location):
        raise bad_request(f"The location '{location[:64]}' is invalid.", "InvalidResourceLocation")
    registries = call.services.registries
    existing = await registries.get(name)
    if existing is not None:
        if existing.resource_group_id != group.id:
            raise conflict(f"The registry {name} is already in use.", "AlreadyExists")
        wanted = (location or existing.location).lower().replace(" ", "")
        if wanted != existing.location:
            raise conflict(
                f"The resource '{existing.name}' already exists in location '{existing.location}' in resource group "
                f"'{group.name}'. A resource with the same name cannot be created in location '{wanted}'.",
                "InvalidResourceLocation",
            )
        values = read_values(body, existing)
        check_sku_features(values, existing)
        registry = await registries.update(existing.name, values) if values else existing
        return respond(registry_body(call, registry))
    values = read_values(body, creating=True)
    check_sku_features(values)
    registry = await registries.create(group.id, name, location or group.location, values)
    return await accepted(call, registry.arm_id, registry.location, registry_body(call, registry, "Creating"))


async def patch_registry(call: Call) -> web.Response:
    await auth.require(call, registry_scope(call), "write", f"{ACTION}/write")
    body = await call.body()
    registry = await find_registry(call)
    values = read_values(body, registry)
    check_sku_features(values, registry)
    if values:
        registry = await call.services.registries.update(registry.name, values)
    return respond(registry_body(call, registry))


async def delete_registry(call: Call) -> web.Response:
    await auth.require(call, registry_scope(call), "write", f"{ACTION}/delete")
    try:
        registry = await find_registry(call)
    except ArmError as error:
        if error.code == "ResourceNotFound":
            return respond(status=204)
        raise
    await call.services.registries.delete(registry.name)
    return respond(status=200)


async def check_name(call: Call) -> web.Response:
    await auth.require_subscription(call, call.params["sub"], "Microsoft.ContainerRegistry/checkNameAvailability/read")
    body = fields(await call.body(), "body")
    name = text(body.get("name"), "name", 256)
    if name is None:
        raise bad_request("'name' is required.")
    choice(body.get("type") or PROVIDER, "type", (PROVIDER,))
    available, reason, message = await call.services.registries.check_name(name)
    document = {"nameAvailable": available}
    if not available:
        document.update(reason=reason, message=message)
    return respond(document)


# -- the admin user ------------------------------------------------------------
def _admin_disabled(registry) -> ArmError:
    return bad_request(
        f"Cannot perform credential operations for {registry.arm_id} as admin user is disabled. "
        "Kindly enable admin user (adminUserEnabled) and try again.",
        "UnAuthorizedForCredentialOperations",
    )


async def _credentials(call: Call, registry) -> web.Response:
    first, second = await call.services.registries.admin_passwords(registry)
    if not first or not second:
        raise _admin_disabled(registry)
    return respond(
        {"username": registry.name, "passwords": [{"name": "password", "value": first}, {"name": "password2", "value": second}]}
    )


async def list_credentials(call: Call) -> web.Response:
    await auth.require(call, registry_scope(call), "write", f"{ACTION}/listCredentials/action")
    registry = await find_registry(call)
    if not registry.admin_enabled:
        raise _admin_disabled(registry)
    return await _credentials(call, registry)


async def regenerate_credential(call: Call) -> web.Response:
    await auth.require(call, registry_scope(call), "write", f"{ACTION}/regenerateCredential/action")
    body = fields(await call.body(), "body")
    which = choice(body.get("name"), "name", ("password", "password2"))
    if which is None:
        raise bad_request("'name' is required: 'password' or 'password2'.")
    registry = await find_registry(call)
    if not registry.admin_enabled:
        raise _admin_disabled(registry)
    await call.services.registries.regenerate_admin_password(registry, which)
    return await _credentials(call, registry)


async def list_usages(call: Call) -> web.Response:
    await auth.require(call, registry_scope(call), "read", f"{ACTION}/listUsages/read")
    registry = await find_registry(call)
    return listing(await call.services.registries.usages(registry))
