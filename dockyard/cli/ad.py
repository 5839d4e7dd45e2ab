"""``dockyard ad``: service principals and users in Dockyard's directory (az ad sp / az ad user).

The directory API lives at ``<endpoint>/directory/v1``: ``servicePrincipals`` (create, list,
``{appId}/credentials`` to reset a secret) and ``users`` (create, list).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Optional
from urllib.parse import quote

import typer

from dockyard.cli import arguments, console
from dockyard.cli.client import Client
from dockyard.cli.console import NotFoundError, UsageError
from dockyard.cli.output import command

app = typer.Typer(help="Manage service principals and users in Dockyard's directory.", no_args_is_help=True)
sp_app = typer.Typer(help="Manage service principals.", no_args_is_help=True)
sp_credential_app = typer.Typer(help="Manage a service principal's secrets.", no_args_is_help=True)
user_app = typer.Typer(help="Manage users.", no_args_is_help=True)
app.add_typer(sp_app, name="sp")
app.add_typer(user_app, name="user")
sp_app.add_typer(sp_credential_app, name="credential")

Years = Annotated[Optional[float], typer.Option("--years", min=0.01, help="Years the secret is valid (default 1).")]
_CREDENTIAL_WARNING = ("The output includes credentials that you must protect. Be sure that you do not include these "
                       "credentials in your code or check the credentials into your source control.")


def service_principal_shape(sp: dict[str, Any]) -> dict[str, Any]:
    shaped = dict(sp)
    if sp.get("objectId"):
        shaped.setdefault("id", sp["objectId"])
    shaped.setdefault("servicePrincipalType", "Application")
    return shaped


def user_shape(user: dict[str, Any]) -> dict[str, Any]:
    shaped = dict(user)
    if user.get("objectId"):
        shaped.setdefault("id", user["objectId"])
    if user.get("name"):
        shaped.setdefault("userPrincipalName", user["name"])
    return shaped


def _find(items: list[dict[str, Any]], reference: str, keys: tuple[str, ...]) -> dict[str, Any] | None:
    wanted = reference.strip().lower()
    for item in items:
        if any(str(item.get(k) or "").lower() == wanted for k in keys):
            return item
    return None


# ----------------------------------------------------------------------------- service principals


@command(sp_app, "create-for-rbac")
def create_for_rbac(
    name: Annotated[Optional[str], typer.Option("--name", "-n", "--display-name", help="Display name of the service principal.")] = None,
    role: Annotated[Optional[str], typer.Option("--role", help="Role of the service principal, e.g. AcrPush.")] = None,
    scopes: Annotated[Optional[str], typer.Option("--scopes", help="Space-separated scopes the role assignment applies to.")] = None,
    years: Years = None,
) -> Any:
    """Create a service principal with a client secret, optionally assigning it a role on scopes."""
    scope_list = arguments.values(scopes)
    if bool(role) != bool(scope_list):
        raise UsageError("usage error: To create role assignments, specify both --role and --scopes.")
    name = name or f"dockyard-cli-{datetime.now().strftime('%Y-%m-%d-%H-%M-%S')}"
    body: dict[str, Any] = {"displayName": name}
    if years is not None:
        body["years"] = years
    with Client.from_profile() as client:
        if role:
            from dockyard.cli.role import create_assignment, resolve_role

            role_id = resolve_role(client, role, scope_list[0])  # fail before creating anything
        created = client.directory("POST", "servicePrincipals", body) or {}
        if role:
            for scope in scope_list:
                console.warn(f"Creating '{role}' role assignment under scope '{scope}'")
                create_assignment(client, role_id, created["objectId"], "ServicePrincipal", scope)
    console.warn(_CREDENTIAL_WARNING)
    return {"appId": created.get("appId"), "displayName": created.get("displayName", name),
            "password": created.get("password"), "tenant": created.get("tenant")}


@command(sp_credential_app, "reset")
def credential_reset(
    id_: Annotated[str, typer.Option("--id", help="The app id (or object id) of the service principal.")],
    append: Annotated[bool, typer.Option("--append", help="Keep the existing secrets; add a new one.")] = False,
    years: Years = None,
) -> Any:
    """Reset a service principal's client secret (or add one with --append)."""
    body: dict[str, Any] = {"append": append}
    if years is not None:
        body["years"] = years
    with Client.from_profile() as client:
        app_id = id_
        sp = _find(client.directory_list("servicePrincipals"), id_, ("appId", "objectId", "id"))
        if sp is not None:
            app_id = sp.get("appId") or id_
        result = client.directory("POST", f"servicePrincipals/{quote(app_id, safe='')}/credentials", body) or {}
    console.warn(_CREDENTIAL_WARNING)
    return {"appId": result.get("appId", app_id), "password": result.get("password"), "tenant": result.get("tenant")}


@command(sp_app, "list")
def sp_list(
    display_name: Annotated[Optional[str], typer.Option("--display-name", help="Only those whose display name starts with this.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="List all (accepted for az compatibility; all are listed).")] = False,
) -> Any:
    """List service principals."""
    with Client.from_profile() as client:
        sps = [service_principal_shape(sp) for sp in client.directory_list("servicePrincipals")]
    if display_name:
        sps = [sp for sp in sps if str(sp.get("displayName") or "").lower().startswith(display_name.lower())]
    return sps


@command(sp_app, "show")
def sp_show(id_: Annotated[str, typer.Option("--id", help="The app id or object id.")]) -> Any:
    """Get the details of a service principal."""
    with Client.from_profile() as client:
        sp = _find(client.directory_list("servicePrincipals"), id_, ("appId", "objectId", "id"))
    if sp is None:
        raise NotFoundError(f"Service principal '{id_}' doesn't exist", "Request_ResourceNotFound")
    return service_principal_shape(sp)


# ----------------------------------------------------------------------------- users


@command(user_app, "create")
def user_create(
    display_name: Annotated[str, typer.Option("--display-name", help="Object's display name.")],
    user_principal_name: Annotated[str, typer.Option("--user-principal-name", help="The user's sign-in name.")],
    password: Annotated[str, typer.Option("--password", help="The password.")],
    force_change_password_next_sign_in: Annotated[bool, typer.Option(
        "--force-change-password-next-sign-in", help="Accepted for az compatibility; ignored.")] = False,
) -> Any:
    """Create a user who signs in with a password."""
    body = {"name": user_principal_name, "password": password, "displayName": display_name}
    with Client.from_profile() as client:
        return user_shape(client.directory("POST", "users", body) or {})


@command(user_app, "list")
def user_list(
    display_name: Annotated[Optional[str], typer.Option("--display-name", help="Only those whose display name starts with this.")] = None,
    upn: Annotated[Optional[str], typer.Option("--upn", help="Only the user with this sign-in name.")] = None,
) -> Any:
    """List users."""
    with Client.from_profile() as client:
        users = [user_shape(u) for u in client.directory_list("users")]
    if display_name:
        users = [u for u in users if str(u.get("displayName") or "").lower().startswith(display_name.lower())]
    if upn:
        users = [u for u in users if str(u.get("userPrincipalName") or "").lower() == upn.lower()]
    return users


@command(user_app, "show")
def user_show(id_: Annotated[str, typer.Option("--id", help="The object id or sign-in name.")]) -> Any:
    """Get the details of a user."""
    with Client.from_profile() as client:
        user = _find(client.directory_list("users"), id_, ("objectId", "id", "name", "userPrincipalName"))
    if user is None:
        raise NotFoundError(f"User '{id_}' does not exist or one of its queried reference-property objects are not present.",
                            "Request_ResourceNotFound")
    return user_shape(user)
