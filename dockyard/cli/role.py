"""``dockyard role``: role assignments and definitions (az role), through ARM's
``{scope}/providers/Microsoft.Authorization/roleAssignments|roleDefinitions``.

An assignee is an object id, an app id or a user's sign-in name, looked up in the directory;
a role is a name (``AcrPush``, any case) or a definition GUID or id.
"""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any, Optional

import typer

from dockyard.cli import arguments, console, shapes
from dockyard.cli.client import API_AUTHORIZATION, Client, error_from
from dockyard.cli.console import CLIError, UsageError
from dockyard.cli.output import command

app = typer.Typer(help="Manage role assignments and definitions.", no_args_is_help=True)
assignment_app = typer.Typer(help="Manage role assignments.", no_args_is_help=True)
definition_app = typer.Typer(help="Manage role definitions.", no_args_is_help=True)
app.add_typer(assignment_app, name="assignment")
app.add_typer(definition_app, name="definition")

AUTHZ = "/providers/Microsoft.Authorization"
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

Assignee = Annotated[Optional[str], typer.Option("--assignee", help="An object id, app id or user sign-in name.")]
Role = Annotated[Optional[str], typer.Option("--role", help="Role name (e.g. AcrPull) or id.")]
Scope = Annotated[Optional[str], typer.Option("--scope", help="Scope: a subscription, resource group or resource id.")]
Group = Annotated[Optional[str], typer.Option("--resource-group", "-g", help="Use the resource group as the scope.")]


def _scope(client: Client, scope: str | None, group: str | None) -> str | None:
    if scope and group:
        raise UsageError("usage error: --scope | --resource-group")
    if group:
        return client.subscription_path("resourceGroups", group)
    if scope:
        return "/" + scope.strip().strip("/")
    return None


def definitions(client: Client, scope: str | None = None) -> list[dict[str, Any]]:
    return client.arm_list(f"{scope or client.subscription_path()}{AUTHZ}/roleDefinitions", API_AUTHORIZATION)


def resolve_role(client: Client, role: str, scope: str | None = None) -> str:
    """The role definition id for a role name, GUID or id."""
    role = role.strip()
    if f"{AUTHZ}/roleDefinitions/".lower() in role.lower():
        return role
    if _GUID.match(role):
        return f"{client.subscription_path()}{AUTHZ}/roleDefinitions/{role.lower()}"
    for definition in definitions(client, scope):
        props = definition.get("properties") or {}
        if str(props.get("roleName", "")).lower() == role.lower():
            return definition["id"]
    raise CLIError(f"Role '{role}' doesn't exist.", "RoleNotFound")


def resolve_principal(client: Client, assignee: str) -> tuple[str, str]:
    """(object id, principal type) of an object id, app id or user sign-in name."""
    wanted = assignee.strip().lower()
    for sp in client.directory_list("servicePrincipals"):
        if wanted in (str(sp.get("objectId", "")).lower(), str(sp.get("appId", "")).lower()):
            return sp["objectId"], "ServicePrincipal"
    for user in client.directory_list("users"):
        if wanted in (str(user.get("objectId", "")).lower(), str(user.get("name", "")).lower()):
            return user["objectId"], "User"
    raise CLIError(f"Cannot find user or service principal in graph database for '{assignee}'. If the assignee is an "
                   "appId, make sure the corresponding service principal is created with 'dockyard ad sp create-for-rbac'.")


def create_assignment(client: Client, role_id: str, principal_id: str, principal_type: str, scope: str,
                      condition: str | None = None, condition_version: str | None = None,
                      description: str | None = None) -> Any:
    properties: dict[str, Any] = {"roleDefinitionId": role_id, "principalId": principal_id,
                                  "principalType": principal_type}
    if condition:
        properties["condition"] = condition
        properties["conditionVersion"] = condition_version or "2.0"
    if description:
        properties["description"] = description
    path = f"{'/' + scope.strip('/')}{AUTHZ}/roleAssignments/{uuid.uuid4()}"
    return shapes.flatten(client.arm("PUT", path, API_AUTHORIZATION, {"properties": properties}))


@command(assignment_app, "create", table=shapes.role_assignment_table)
def assignment_create(
    role: Annotated[str, typer.Option("--role", help="Role name (e.g. AcrPull) or id.")],
    assignee: Assignee = None,
    assignee_object_id: Annotated[Optional[str], typer.Option("--assignee-object-id", help="The assignee's object id (no directory lookup).")] = None,
    assignee_principal_type: Annotated[Optional[str], typer.Option("--assignee-principal-type", help="User, ServicePrincipal or Group (with --assignee-object-id).")] = None,
    scope: Scope = None, resource_group: Group = None,
    condition: Annotated[Optional[str], typer.Option("--condition", help="An ABAC condition, e.g. on the repository name.")] = None,
    condition_version: Annotated[Optional[str], typer.Option("--condition-version", help="Version of the condition syntax (2.0).")] = None,
    description: Annotated[Optional[str], typer.Option("--description", help="Description of the role assignment.")] = None,
) -> Any:
    """Create a role assignment: give a user or service principal a role on a scope."""
    if bool(assignee) == bool(assignee_object_id):
        raise UsageError("usage error: --assignee ASSIGNEE | --assignee-object-id OBJECT_ID")
    with Client.from_profile() as client:
        target = _scope(client, scope, resource_group)
        if target is None:
            raise UsageError("usage error: --scope is required (or --resource-group)")
        role_id = resolve_role(client, role, target)
        if assignee_object_id:
            principal_id, principal_type = assignee_object_id, assignee_principal_type or "User"
        else:
            principal_id, principal_type = resolve_principal(client, assignee or "")
        return create_assignment(client, role_id, principal_id, principal_type, target, condition,
                                 condition_version, description)


def _search(client: Client, assignee: str | None, role: str | None, scope: str | None, all_: bool,
            include_inherited: bool) -> list[dict[str, Any]]:
    """Assignments as az lists them: at the scope exactly (or above with --include-inherited)."""
    if not scope and not all_:
        scope = client.subscription_path()
    base = scope if scope else client.subscription_path()
    items = shapes.flatten(client.arm_list(f"{base}{AUTHZ}/roleAssignments", API_AUTHORIZATION))
    if scope:
        target = scope.rstrip("/").lower()

        def matches(assignment_scope: str) -> bool:
            own = assignment_scope.rstrip("/").lower()
            return own == target or (include_inherited and (own == "/" or target.startswith(own + "/")))

        items = [a for a in items if matches(str(a.get("scope", "")))]
    if role:
        role_id = resolve_role(client, role, scope).lower().rsplit("/", 1)[-1]
        items = [a for a in items if str(a.get("roleDefinitionId", "")).lower().rsplit("/", 1)[-1] == role_id]
    if assignee:
        principal_id, _ = resolve_principal(client, assignee)
        items = [a for a in items if str(a.get("principalId", "")).lower() == principal_id.lower()]
    return items


def _enrich(client: Client, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add roleDefinitionName and principalName, as az does."""
    names = {str(d.get("id", "")).rsplit("/", 1)[-1].lower(): (d.get("properties") or {}).get("roleName")
             for d in definitions(client)}
    principals: dict[str, str] = {}
    try:
        for sp in client.directory_list("servicePrincipals"):
            principals[str(sp.get("objectId", "")).lower()] = sp.get("appId") or sp.get("displayName")
        for user in client.directory_list("users"):
            principals[str(user.get("objectId", "")).lower()] = user.get("name")
    except CLIError as exc:  # reading the directory may need more rights than reading assignments
        console.debug(f"no principal names: {exc.message}")
    for item in items:
        item.setdefault("roleDefinitionName", names.get(str(item.get("roleDefinitionId", "")).rsplit("/", 1)[-1].lower()))
        if str(item.get("principalId", "")).lower() in principals:
            item.setdefault("principalName", principals[str(item["principalId"]).lower()])
    return items


@command(assignment_app, "list", table=shapes.role_assignment_table)
def assignment_list(
    assignee: Assignee = None, role: Role = None, scope: Scope = None, resource_group: Group = None,
    all_: Annotated[bool, typer.Option("--all", help="Show assignments at every scope of the subscription.")] = False,
    include_inherited: Annotated[bool, typer.Option("--include-inherited", help="Include assignments on the scope's parents.")] = False,
) -> Any:
    """List role assignments (at the subscription scope unless --scope, -g or --all)."""
    with Client.from_profile() as client:
        target = _scope(client, scope, resource_group)
        return _enrich(client, _search(client, assignee, role, target, all_, include_inherited))


@command(assignment_app, "delete")
def assignment_delete(
    assignee: Assignee = None, role: Role = None, scope: Scope = None, resource_group: Group = None,
    ids: Annotated[Optional[str], typer.Option("--ids", help="Space-separated role assignment ids.")] = None,
    include_inherited: Annotated[bool, typer.Option("--include-inherited", help="Also delete matching assignments on the scope's parents.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Accepted for az compatibility.")] = False,
) -> None:
    """Delete role assignments, by id or matching --assignee, --role and --scope."""
    id_list = arguments.values(ids)
    if not (id_list or assignee or role or scope or resource_group):
        raise UsageError("usage error: give --ids, or at least one of --assignee, --role, --scope, --resource-group")
    with Client.from_profile() as client:
        if not id_list:
            target = _scope(client, scope, resource_group)
            id_list = [a["id"] for a in _search(client, assignee, role, target, False, include_inherited)]
        if not id_list:
            console.warn("No matched assignments were found to delete")
            return None
        for assignment_id in id_list:
            response = client.send("DELETE", assignment_id, params={"api-version": API_AUTHORIZATION})
            if not response.ok and response.status != 204:
                raise error_from(response)
    return None


@command(definition_app, "list", table=shapes.role_definition_table)
def definition_list(
    name: Annotated[Optional[str], typer.Option("--name", "-n", help="A role's name or id.")] = None,
    scope: Scope = None, resource_group: Group = None,
    custom_role_only: Annotated[bool, typer.Option("--custom-role-only", help="Only custom roles.")] = False,
) -> Any:
    """List role definitions."""
    with Client.from_profile() as client:
        items = shapes.flatten(definitions(client, _scope(client, scope, resource_group)))
    if name:
        wanted = name.lower()
        items = [d for d in items if wanted in (str(d.get("roleName", "")).lower(), str(d.get("name", "")).lower())]
    if custom_role_only:
        items = [d for d in items if d.get("roleType") == "CustomRole"]
    return items
