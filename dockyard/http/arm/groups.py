"""Resource groups (``/subscriptions/{sub}/resourcegroups/{rg}``) and the generic resource list
``GET /subscriptions/{sub}/resources?$filter=resourceType eq '...'`` that ``az acr`` uses to find
a registry by name."""

from __future__ import annotations

import re

from aiohttp import web

from dockyard.http.arm import auth
from dockyard.http.arm.context import Call, fields, listing, respond, tags, text
from dockyard.http.arm.errors import ArmError, bad_request, conflict, not_found
from dockyard.services.registries import PROVIDER
from dockyard.services.tenancy import ResourceGroupNotFound, SubscriptionNotFound

GROUP_TYPE = "Microsoft.Resources/resourceGroups"
READ = "Microsoft.Resources/subscriptions/resourceGroups/read"
WRITE = "Microsoft.Resources/subscriptions/resourceGroups/write"
DELETE = "Microsoft.Resources/subscriptions/resourceGroups/delete"


def group_scope(call: Call) -> str:
    return f"/subscriptions/{call.params['sub']}/resourceGroups/{call.params['rg']}"


def group_body(group) -> dict:
    return {
        "id": group.arm_id,
        "name": group.name,
        "type": GROUP_TYPE,
        "location": group.location,
        "tags": group.tags or {},
        "properties": {"provisioningState": "Succeeded"},
    }


async def find_group(call: Call):
    """The group the path names (after the caller's rights were checked); 404s name what is missing."""
    await existing_subscription(call)
    try:
        return await call.services.tenancy.group(call.params["sub"], call.params["rg"])
    except ResourceGroupNotFound:
        raise not_found(f"Resource group '{call.params['rg']}' could not be found.", "ResourceGroupNotFound") from None


async def existing_subscription(call: Call):
    try:
        return await call.services.tenancy.subscription(call.params["sub"])
    except SubscriptionNotFound:
        raise not_found(f"The subscription '{call.params['sub']}' could not be found.", "SubscriptionNotFound") from None


async def list_groups(call: Call) -> web.Response:
    await auth.require_subscription(call, call.params["sub"], READ)
    found = []
    for group in await call.services.tenancy.groups(call.params["sub"]):
        if await auth.can(call, group.arm_id, "read"):
            found.append(group_body(group))
    return listing(found)


async def get_group(call: Call) -> web.Response:
    await auth.require(call, group_scope(call), "read", READ)
    return respond(group_body(await find_group(call)))


async def head_group(call: Call) -> web.Response:
    await auth.require(call, group_scope(call), "read", READ)
    try:
        await find_group(call)
    except ArmError as error:
        if error.status == 404:
            return respond(status=404)
        raise
    return respond(status=204)


async def put_group(call: Call) -> web.Response:
    await auth.require(call, group_scope(call), "write", WRITE)
    body = fields(await call.body(), "body")
    location = text(body.get("location"), "location", 64)
    if not location or not location.strip():
        raise bad_request("The location of a resource group is required.", "LocationRequired")
    group_tags = tags(body.get("tags"))
    await existing_subscription(call)
    try:
        existing = await call.services.tenancy.group(call.params["sub"], call.params["rg"])
    except ResourceGroupNotFound:
        existing = None
    wanted = location.lower().replace(" ", "")
    if existing is not None and existing.location != wanted:
        raise conflict(
            f"Invalid resource group location '{location}'. The Resource group already exists in location "
            f"'{existing.location}'.",
            "InvalidResourceGroupLocation",
        )
    group, created = await call.services.tenancy.put_group(call.params["sub"], call.params["rg"], location, group_tags)
    return respond(group_body(group), status=201 if created else 200)


async def patch_group(call: Call) -> web.Response:
    await auth.require(call, group_scope(call), "write", WRITE)
    body = fields(await call.body(), "body")
    group_tags = tags(body.get("tags"))
    group = await find_group(call)
    if group_tags is not None:
        group = await call.services.tenancy.update_group_tags(call.params["sub"], group.name, group_tags)
    return respond(group_body(group))


async def delete_group(call: Call) -> web.Response:
    """Deletes every registry in the group, then the group; done before answering (200)."""
    await auth.require(call, group_scope(call), "write", DELETE)
    group = await find_group(call)
    services = call.services
    for name in await services.tenancy.registries_in_group(group.id):
        await services.registries.delete(name)
    await services.tenancy.delete_group_row(group.id)
    return respond(status=200)


# -- the generic resource list ---------------------------------------------
_CLAUSE = re.compile(
    r"^\s*(?:(?P<field>resourceType|name)\s+eq\s+'(?P<value>[^']*)'"
    r"|substringof\(\s*'(?P<part>[^']*)'\s*,\s*name\s*\))\s*$",
    re.IGNORECASE,
)


def _filters(raw: str | None) -> list[tuple[str, str]]:
    if not raw:
        return []
    clauses = []
    for clause in re.split(r"\s+and\s+", raw.strip(), flags=re.IGNORECASE):
        match = _CLAUSE.match(clause)
        if match is None:
            raise bad_request(
                f"The $filter '{raw[:200]}' is not supported: use resourceType eq '...', name eq '...' or "
                "substringof('...', name), joined with 'and'.",
                "InvalidFilterInQueryString",
            )
        if match.group("part") is not None:
            clauses.append(("substring", match.group("part").lower()))
        else:
            clauses.append((match.group("field").lower(), match.group("value").lower()))
    return clauses


def _matches(registry, clauses: list[tuple[str, str]]) -> bool:
    for field, value in clauses:
        if field == "resourcetype" and value != PROVIDER.lower():
            return False
        if field == "name" and value != registry.name.lower():
            return False
        if field == "substring" and value not in registry.name.lower():
            return False
    return True


def resource_body(registry) -> dict:
    return {
        "id": registry.arm_id,
        "name": registry.name,
        "type": PROVIDER,
        "sku": {"name": registry.sku, "tier": registry.sku},
        "location": registry.location,
        "tags": registry.tags or {},
    }


async def list_resources(call: Call) -> web.Response:
    clauses = _filters(call.request.query.get("$filter"))
    group_id = None
    if "rg" in call.params:
        await auth.require(call, group_scope(call), "read", "Microsoft.Resources/subscriptions/resourceGroups/resources/read")
        group_id = (await find_group(call)).id
    else:
        await auth.require_subscription(call, call.params["sub"], "Microsoft.Resources/subscriptions/resources/read")
    found = []
    for registry in await call.services.registries.list(call.params["sub"], group_id):
        if _matches(registry, clauses) and await auth.can(call, registry.arm_id, "read"):
            found.append(resource_body(registry))
    return listing(found)
