"""``dockyard acr scope-map`` and ``dockyard acr token``: non-Entra, repository-scoped access.

A scope map lists actions as ``repositories/<repo>/<action>``; a token points at one scope
map and has up to two passwords (``password1``, ``password2``), generated through the
registry's ``generateCredentials`` action and shown only once. Output shapes are az's.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, Optional
from urllib.parse import quote

import typer

from dockyard.cli import arguments, console, shapes
from dockyard.cli.acr_common import RegistryOption, ResourceGroup, Yes, find_registry, login_server_of
from dockyard.cli.client import API_ACR, Client
from dockyard.cli.console import CLIError, NotFoundError, UsageError, confirm
from dockyard.cli.output import command

scope_map_app = typer.Typer(help="Manage scope maps: the repository permissions of tokens.", no_args_is_help=True)
token_app = typer.Typer(help="Manage tokens: credentials limited to a scope map's repositories.", no_args_is_help=True)
credential_app = typer.Typer(help="Manage a token's passwords.", no_args_is_help=True)
token_app.add_typer(credential_app, name="credential")

ACTIONS = ("content/delete", "content/read", "content/write", "metadata/read", "metadata/write")
Name = Annotated[str, typer.Option("--name", "-n", help="The name of the scope map.")]
TokenName = Annotated[str, typer.Option("--name", "-n", help="The name of the token.")]
Repository = Annotated[Optional[list[str]], typer.Option(
    "--repository", metavar="REPO ACTIONS...",
    help=f"A repository and its actions ({', '.join(ACTIONS)}); repeatable.")]
Description = Annotated[Optional[str], typer.Option("--description", help="Description of the scope map (at most 256 characters).")]
ExpirationDays = Annotated[Optional[int], typer.Option(
    "--expiration-in-days", min=1, help="Days until the passwords expire (default: they never do).")]
Expiration = Annotated[Optional[str], typer.Option(
    "--expiration", help="When the passwords expire, e.g. 2030-12-31T23:59:59Z.")]


def repository_actions(raw: list[str] | None, flag: str = "--repository") -> list[str]:
    """``--repository REPO A1 A2`` (repeatable) → ["repositories/REPO/A1", ...]."""
    result: list[str] = []
    for words in arguments.groups(raw):
        if len(words) < 2:
            raise UsageError(f"usage error: {flag} REPO ACTION [ACTION ...]: give the repository and its actions")
        repo, actions = words[0], words[1:]
        for action in actions:
            if action.lower() not in ACTIONS:
                raise UsageError(f"usage error: invalid action '{action}'; valid actions are {', '.join(ACTIONS)}")
            entry = f"repositories/{repo}/{action.lower()}"
            if entry not in result:
                result.append(entry)
    return result


def _token_name(name: str) -> str:
    if not re.match(r"^[a-zA-Z0-9-]{5,50}$", name):
        raise UsageError(f"usage error: the token name '{name}' must be 5 to 50 letters, digits or dashes")
    return name


def _expiry(days: int | None, when: str | None) -> str | None:
    if days and when:
        raise UsageError("usage error: --expiration | --expiration-in-days")
    if days:
        return (datetime.now(timezone.utc) + timedelta(days=days)).isoformat()
    return when


def _child(registry: dict[str, Any], kind: str, name: str) -> str:
    return f"{registry['id']}/{kind}/{quote(name, safe='')}"


def _description(value: str | None) -> str | None:
    if value is not None and len(value) > 256:
        raise UsageError("usage error: --description is at most 256 characters")
    return value


# ----------------------------------------------------------------------------- scope maps


@command(scope_map_app, "create", table=shapes.scope_map_table)
def scope_map_create(name: Name, registry: RegistryOption, repository: Repository = None,
                     description: Description = None, resource_group: ResourceGroup = None) -> Any:
    """Create a scope map for a registry."""
    actions = repository_actions(repository)
    if not actions:
        raise UsageError("usage error: --repository REPO ACTION [ACTION ...] is required")
    properties: dict[str, Any] = {"actions": actions}
    if _description(description) is not None:
        properties["description"] = description
    with Client.from_profile() as client:
        reg = find_registry(client, registry, resource_group)
        return shapes.flatten(client.arm("PUT", _child(reg, "scopeMaps", name), API_ACR, {"properties": properties}))


@command(scope_map_app, "update", table=shapes.scope_map_table)
def scope_map_update(
    name: Name, registry: RegistryOption,
    add_repository: Annotated[Optional[list[str]], typer.Option(
        "--add-repository", metavar="REPO ACTIONS...", help="Add a repository's actions; repeatable.")] = None,
    remove_repository: Annotated[Optional[list[str]], typer.Option(
        "--remove-repository", metavar="REPO ACTIONS...", help="Remove a repository's actions; repeatable.")] = None,
    reset: Annotated[bool, typer.Option("--reset", help="Remove all actions first.")] = False,
    description: Description = None, resource_group: ResourceGroup = None,
) -> Any:
    """Update a scope map's actions or description."""
    add = repository_actions(add_repository, "--add-repository")
    remove = repository_actions(remove_repository, "--remove-repository")
    if not (add or remove or reset or description is not None):
        raise UsageError("usage error: --add-repository | --remove-repository | --reset | --description")
    with Client.from_profile() as client:
        reg = find_registry(client, registry, resource_group)
        path = _child(reg, "scopeMaps", name)
        current = client.arm("GET", path, API_ACR)
        actions = [] if reset else list((current.get("properties") or {}).get("actions") or [])
        actions = [a for a in actions if a not in remove] + [a for a in add if a not in actions]
        properties: dict[str, Any] = {"actions": actions}
        if _description(description) is not None:
            properties["description"] = description
        return shapes.flatten(client.arm("PATCH", path, API_ACR, {"properties": properties}))


@command(scope_map_app, "show", table=shapes.scope_map_table)
def scope_map_show(name: Name, registry: RegistryOption, resource_group: ResourceGroup = None) -> Any:
    """Show the details and actions of a scope map."""
    with Client.from_profile() as client:
        reg = find_registry(client, registry, resource_group)
        return shapes.flatten(client.arm("GET", _child(reg, "scopeMaps", name), API_ACR))


@command(scope_map_app, "list", table=shapes.scope_map_table)
def scope_map_list(registry: RegistryOption, resource_group: ResourceGroup = None) -> Any:
    """List the scope maps of a registry (the system ones included)."""
    with Client.from_profile() as client:
        reg = find_registry(client, registry, resource_group)
        return shapes.flatten(client.arm_list(reg["id"] + "/scopeMaps", API_ACR))


@command(scope_map_app, "delete")
def scope_map_delete(name: Name, registry: RegistryOption, resource_group: ResourceGroup = None, yes: Yes = False) -> None:
    """Delete a scope map."""
    confirm(f"Deleting the scope map '{name}' will remove its permissions with associated tokens. Proceed?", yes)
    with Client.from_profile() as client:
        reg = find_registry(client, registry, resource_group)
        client.arm("DELETE", _child(reg, "scopeMaps", name), API_ACR)


# ----------------------------------------------------------------------------- tokens


def _generate(client: Client, reg: dict[str, Any], token_id: str, name: str | None, expiry: str | None) -> Any:
    body: dict[str, Any] = {"tokenId": token_id}
    if name:
        body["name"] = name
    if expiry:
        body["expiry"] = expiry
    return client.arm("POST", reg["id"] + "/generateCredentials", API_ACR, body) or {}


def _credential_warning(reg: dict[str, Any], token: str, result: Any) -> None:
    passwords = (result or {}).get("passwords") or []
    if passwords:
        console.warn("Please store your generated credentials safely. Meanwhile you can use it through "
                     f"\"docker login {login_server_of(reg)} -u {token} -p {passwords[0].get('value')}\".")


def _default_scope_map(client: Client, reg: dict[str, Any], registry: str, token: str, actions: list[str]) -> str:
    """``<token>-scope-map`` with ``actions``: reused if it has exactly them, refused if it has others (as az)."""
    name = f"{token}-scope-map"
    path = _child(reg, "scopeMaps", name)
    try:
        existing = client.arm("GET", path, API_ACR)
    except NotFoundError:
        existing = None
    if existing is not None:
        if sorted((existing.get("properties") or {}).get("actions") or []) == sorted(actions):
            return name
        raise CLIError("The default scope map was already configured with different repository permissions. Please "
                       f"use 'dockyard acr scope-map update -r {registry} -n {name} --add-repository <REPO> <ACTIONS> "
                       "--remove-repository <REPO> <ACTIONS>' to update.")
    client.arm("PUT", path, API_ACR, {"properties": {"actions": actions, "description": f"Created by token: {token}"}})
    return name


@command(token_app, "create", table=shapes.token_table)
def token_create(
    name: TokenName, registry: RegistryOption,
    scope_map: Annotated[Optional[str], typer.Option("--scope-map", help="The scope map the token gets its permissions from.")] = None,
    repository: Repository = None,
    status: Annotated[str, typer.Option("--status", help="enabled or disabled.")] = "enabled",
    expiration_in_days: ExpirationDays = None, expiration: Expiration = None,
    no_passwords: Annotated[bool, typer.Option("--no-passwords", help="Create no passwords now.")] = False,
    resource_group: ResourceGroup = None,
) -> Any:
    """Create a token; with --repository its scope map '<token>-scope-map' is made too."""
    _token_name(name)
    if bool(scope_map) == bool(repository):
        raise UsageError("usage error: --scope-map SCOPE_MAP | --repository REPO ACTIONS...")
    if no_passwords and (expiration_in_days is not None or expiration is not None):
        raise UsageError("usage error: --no-passwords and expiration arguments are mutually exclusive.")
    status = arguments.choice(status, "--status", ("enabled", "disabled"))
    expiry = _expiry(expiration_in_days, expiration)
    actions = repository_actions(repository)
    with Client.from_profile() as client:
        reg = find_registry(client, registry, resource_group)
        if actions:
            scope_map = _default_scope_map(client, reg, registry, name, actions)
        assert scope_map is not None
        scope_map_id = client.arm("GET", _child(reg, "scopeMaps", scope_map), API_ACR)["id"]
        path = _child(reg, "tokens", name)
        token = client.arm("PUT", path, API_ACR, {"properties": {"scopeMapId": scope_map_id, "status": status}})
        if no_passwords:
            return shapes.flatten(token)
        result = _generate(client, reg, token["id"], None, expiry)
        token = shapes.flatten(client.arm("GET", path, API_ACR))
    token.setdefault("credentials", {})
    token["credentials"] = {**(token["credentials"] or {}), "passwords": result.get("passwords") or [],
                            "username": result.get("username") or name}
    _credential_warning(reg, name, result)
    return token


@command(token_app, "update", table=shapes.token_table)
def token_update(
    name: TokenName, registry: RegistryOption,
    scope_map: Annotated[Optional[str], typer.Option("--scope-map", help="The new scope map.")] = None,
    status: Annotated[Optional[str], typer.Option("--status", help="enabled or disabled.")] = None,
    resource_group: ResourceGroup = None,
) -> Any:
    """Change a token's scope map or status."""
    if not scope_map and not status:
        raise UsageError("usage error: --scope-map | --status")
    properties: dict[str, Any] = {}
    if status:
        properties["status"] = arguments.choice(status, "--status", ("enabled", "disabled"))
    with Client.from_profile() as client:
        reg = find_registry(client, registry, resource_group)
        if scope_map:
            properties["scopeMapId"] = client.arm("GET", _child(reg, "scopeMaps", scope_map), API_ACR)["id"]
        return shapes.flatten(client.arm("PATCH", _child(reg, "tokens", name), API_ACR, {"properties": properties}))


@command(token_app, "show", table=shapes.token_table)
def token_show(name: TokenName, registry: RegistryOption, resource_group: ResourceGroup = None) -> Any:
    """Show a token (its passwords' values are never shown again)."""
    with Client.from_profile() as client:
        reg = find_registry(client, registry, resource_group)
        return shapes.flatten(client.arm("GET", _child(reg, "tokens", name), API_ACR))


@command(token_app, "list", table=shapes.token_table)
def token_list(registry: RegistryOption, resource_group: ResourceGroup = None) -> Any:
    """List the tokens of a registry."""
    with Client.from_profile() as client:
        reg = find_registry(client, registry, resource_group)
        return shapes.flatten(client.arm_list(reg["id"] + "/tokens", API_ACR))


@command(token_app, "delete")
def token_delete(name: TokenName, registry: RegistryOption, resource_group: ResourceGroup = None, yes: Yes = False) -> None:
    """Delete a token."""
    confirm(f"Deleting the token '{name}' will invalidate access to anyone using its credentials. Proceed?", yes)
    with Client.from_profile() as client:
        reg = find_registry(client, registry, resource_group)
        client.arm("DELETE", _child(reg, "tokens", name), API_ACR)


Password1 = Annotated[bool, typer.Option("--password1", help="The first password.")]
Password2 = Annotated[bool, typer.Option("--password2", help="The second password.")]


@command(credential_app, "generate")
def credential_generate(
    name: TokenName, registry: RegistryOption, password1: Password1 = False, password2: Password2 = False,
    expiration_in_days: ExpirationDays = None, expiration: Expiration = None, resource_group: ResourceGroup = None,
) -> Any:
    """Generate a token's password(s): --password1 or --password2, both when neither is given."""
    which = "password1" if password1 and not password2 else "password2" if password2 and not password1 else None
    expiry = _expiry(expiration_in_days, expiration)
    with Client.from_profile() as client:
        reg = find_registry(client, registry, resource_group)
        token = client.arm("GET", _child(reg, "tokens", name), API_ACR)
        result = _generate(client, reg, token["id"], which, expiry)
    _credential_warning(reg, name, result)
    return result


@command(credential_app, "delete")
def credential_delete(name: TokenName, registry: RegistryOption, password1: Password1 = False,
                      password2: Password2 = False, resource_group: ResourceGroup = None) -> Any:
    """Delete a token's password(s)."""
    if not (password1 or password2):
        raise UsageError("usage error: --password1 | --password2")
    dropped = {n for n, flag in (("password1", password1), ("password2", password2)) if flag}
    with Client.from_profile() as client:
        reg = find_registry(client, registry, resource_group)
        path = _child(reg, "tokens", name)
        token = client.arm("GET", path, API_ACR)
        passwords = ((token.get("properties") or {}).get("credentials") or {}).get("passwords") or []
        names = {p.get("name") for p in passwords}
        for missing in sorted(dropped - names):
            raise CLIError(f"Unable to perform operation. {missing.capitalize()} credential doesn't exist.")
        kept = [{"name": p["name"]} for p in passwords if p.get("name") not in dropped]
        body = {"properties": {"credentials": {"passwords": kept}}}
        return shapes.flatten(client.arm("PATCH", path, API_ACR, body))
