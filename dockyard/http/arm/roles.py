"""``Microsoft.Authorization``: role assignments (``{scope}/providers/Microsoft.Authorization/
roleAssignments[/{name}]``) and the built-in role definitions (``.../roleDefinitions[/{id}]``).

Scopes are "/", a subscription, a resource group, a registry, or a repository of a registry
(``<registry id>/repositories/<name>``). Reading needs read on the scope; writing needs Owner.
"""

from __future__ import annotations

import re
import uuid

from aiohttp import web

from dockyard.auth import roles
from dockyard.auth.assignments import AssignmentNotFound
from dockyard.core.names import check_repository
from dockyard.http.arm import auth
from dockyard.http.arm.context import Call, choice, fields, listing, respond, text
from dockyard.http.arm.errors import ArmError, bad_request, conflict, not_found, resource_not_found
from dockyard.services.registries import PROVIDER
from dockyard.services.tenancy import ResourceGroupNotFound, SubscriptionNotFound

ASSIGNMENTS = "Microsoft.Authorization/roleAssignments"
PRINCIPAL_TYPES = ("User", "Group", "ServicePrincipal", "ForeignGroup", "Device")
_SCOPE = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)"
    r"(?:/resourcegroups/(?P<rg>[^/]+)"
    r"(?:/providers/microsoft\.containerregistry/registries/(?P<reg>[^/]+)"
    r"(?:/repositories/(?P<repo>.+))?)?)?$",
    re.IGNORECASE,
)
_FILTER = re.compile(
    r"^\s*(?:(?P<at>atScope\(\))|principalId\s+eq\s+'(?P<pid>[^']+)'|assignedTo\('(?P<assigned>[^']+)'\)"
    r"|roleName\s+eq\s+'(?P<role>[^']+)'|type\s+eq\s+'(?P<type>[^']+)')\s*$",
    re.IGNORECASE,
)


def raw_scope(call: Call) -> str:
    return "/" + call.params.get("scope", "").strip("/")


async def canonical_scope(call: Call, scope: str) -> str:
    """The scope as Dockyard spells it, once it is known to exist (404 if not, 400 if no scope)."""
    if scope == "/":
        return "/"
    match = _SCOPE.match(scope)
    if match is None:
        raise bad_request(f"The scope '{scope[:300]}' is not valid for role assignments.", "InvalidScope")
    services = call.services
    try:
        subscription = await services.tenancy.subscription(match["sub"])
        if not match["rg"]:
            return subscription.arm_id
        group = await services.tenancy.group(match["sub"], match["rg"])
    except SubscriptionNotFound:
        raise not_found(f"The subscription '{match['sub']}' could not be found.", "SubscriptionNotFound") from None
    except ResourceGroupNotFound:
        raise not_found(f"Resource group '{match['rg']}' could not be found.", "ResourceGroupNotFound") from None
    if not match["reg"]:
        return group.arm_id
    registry = await services.registries.get(match["reg"])
    if registry is None or registry.resource_group_id != group.id:
        raise resource_not_found(PROVIDER, match["reg"], match["rg"])
    if not match["repo"]:
        return registry.arm_id
    return f"{registry.arm_id}/repositories/{check_repository(match['repo'])}"


def _filters(raw: str | None) -> dict[str, str]:
    found: dict[str, str] = {}
    if not raw:
        return found
    for clause in re.split(r"\s+and\s+", raw.strip(), flags=re.IGNORECASE):
        match = _FILTER.match(clause)
        if match is None:
            raise bad_request(f"The $filter '{raw[:200]}' is not supported.", "InvalidFilterInQueryString")
        found.update({key: value for key, value in match.groupdict().items() if value})
    return found


def _definition_prefix(scope: str) -> str:
    parts = scope.strip("/").split("/")
    return f"/subscriptions/{parts[1]}" if len(parts) >= 2 and parts[0].lower() == "subscriptions" else ""


def assignment_body(assignment) -> dict:
    body = assignment.as_arm()
    body["properties"]["roleDefinitionId"] = roles.definition_id(assignment.role, _definition_prefix(assignment.scope))
    return body


def _same_scope(left: str, right: str) -> bool:
    return left.strip("/").lower() == right.strip("/").lower()


# -- role assignments ---------------------------------------------------------------
async def get_assignment(call: Call) -> web.Response:
    scope = raw_scope(call)
    await auth.require(call, scope, "read", f"{ASSIGNMENTS}/read")
    try:
        assignment = await call.services.assignments.get(call.params["name"])
    except AssignmentNotFound:
        assignment = None
    if assignment is None or not _same_scope(assignment.scope, scope):
        raise not_found(f"The role assignment '{call.params['name'][:60]}' is not found.", "RoleAssignmentNotFound")
    return respond(assignment_body(assignment))


async def put_assignment(call: Call) -> web.Response:
    scope = raw_scope(call)
    await auth.require(call, scope, "owner", f"{ASSIGNMENTS}/write")
    name = call.params["name"]
    try:
        name = str(uuid.UUID(name))
    except ValueError:
        raise bad_request(f"The role assignment ID '{name[:60]}' is not valid: it must be a GUID.",
                          "InvalidRoleAssignmentId") from None
    props = fields(fields(await call.body(), "body").get("properties"), "properties")
    reference = text(props.get("roledefinitionid"), "properties.roleDefinitionId", 1024)
    role = roles.find(reference) if reference else None
    if role is None:
        raise bad_request(f"The specified role definition with ID '{(reference or '')[:200]}' does not exist.",
                          "RoleDefinitionDoesNotExist")
    principal_id = text(props.get("principalid"), "properties.principalId", 255)
    if not principal_id or not principal_id.strip():
        raise bad_request("'properties.principalId' is required.", "InvalidPrincipalId")
    principal_id = principal_id.strip().lower()
    principal_type = choice(props.get("principaltype"), "properties.principalType", PRINCIPAL_TYPES)
    condition = text(props.get("condition"), "properties.condition", 8192)
    description = text(props.get("description"), "properties.description", 2048)
    services = call.services
    principal = await services.principals.by_object_id(principal_id)
    if principal is None and not services.settings.oidc_issuer_list:
        raise bad_request(
            f"Principal {principal_id} does not exist in the directory {services.tenancy.tenant_id}.",
            "PrincipalNotFound",
        )
    if principal_type is None:
        principal_type = "ServicePrincipal" if principal is not None and principal.kind == "sp" else "User"
    canonical = await canonical_scope(call, scope)
    try:
        existing = await services.assignments.get(name)
    except AssignmentNotFound:
        existing = None
    if existing is not None:
        if (existing.scope.lower(), existing.role.id, existing.principal_object_id.lower()) != (
            canonical.lower(), role.id, principal_id
        ):
            raise conflict("Tenant ID, application ID, principal ID, and scope are not allowed to be updated.",
                           "RoleAssignmentUpdateNotPermitted")
        return respond(assignment_body(existing))
    if condition and not role.abac:
        raise bad_request(f"The role '{role.name}' does not support conditions.", "InvalidRoleAssignmentRequest")
    created = await services.assignments.create(
        canonical, role, principal_id, principal_type, condition=condition, assignment_id=name,
        description=description, created_by=call.principal.object_id or None,
    )
    return respond(assignment_body(created), status=201)


async def delete_assignment(call: Call) -> web.Response:
    scope = raw_scope(call)
    await auth.require(call, scope, "owner", f"{ASSIGNMENTS}/delete")
    try:
        assignment = await call.services.assignments.get(call.params["name"])
    except AssignmentNotFound:
        return respond(status=204)
    if not _same_scope(assignment.scope, scope):
        return respond(status=204)
    await call.services.assignments.delete(assignment.id)
    return respond(assignment_body(assignment))


async def list_assignments(call: Call) -> web.Response:
    scope = raw_scope(call)
    await auth.require(call, scope, "read", f"{ASSIGNMENTS}/read")
    wanted = _filters(call.request.query.get("$filter"))
    if "role" in wanted or "type" in wanted:
        raise bad_request("Role assignments filter on atScope(), principalId eq '...' or assignedTo('...').",
                          "InvalidFilterInQueryString")
    canonical = await canonical_scope(call, scope)
    principal_id = wanted.get("pid") or wanted.get("assigned")
    service = call.services.assignments
    found = await service.list(canonical, principal_id, at_or_above=True)
    if "at" not in wanted:
        seen = {a.id for a in found}
        found += [a for a in await service.list(canonical, principal_id) if a.id not in seen]
    return listing([assignment_body(a) for a in found])


# -- role definitions ------------------------------------------------------------------
async def list_definitions(call: Call) -> web.Response:
    scope = raw_scope(call)
    if scope != "/" and _SCOPE.match(scope) is None:
        raise bad_request(f"The scope '{scope[:300]}' is not valid for role definitions.", "InvalidScope")
    wanted = _filters(call.request.query.get("$filter"))
    if {"at", "pid", "assigned"} & wanted.keys():
        raise bad_request("Role definitions filter on roleName eq '...' or type eq '...'.", "InvalidFilterInQueryString")
    found = [
        role for role in roles.ROLES
        if ("role" not in wanted or role.name.lower() == wanted["role"].lower())
        and ("type" not in wanted or wanted["type"].lower() == "builtinrole")
    ]
    return listing([roles.as_arm(role, _definition_prefix(scope)) for role in found])


async def get_definition(call: Call) -> web.Response:
    scope = raw_scope(call)
    role = roles.BY_ID.get(call.params["id"].lower())
    if role is None:
        raise ArmError(404, "RoleDefinitionDoesNotExist",
                       f"The role definition '{call.params['id'][:60]}' could not be found.")
    return respond(roles.as_arm(role, _definition_prefix(scope)))
