"""What every ``dockyard acr`` command shares: finding a registry by name, its options.

A registry is named case-insensitively, with or without ``-g``: without it the
subscription's registries are listed and matched by name, as az matches the resources list.
A login server (``name.domain``) is accepted too; its suffix is dropped with a warning.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Optional
from urllib.parse import quote

import typer

from dockyard.cli import console
from dockyard.cli.client import API_ACR, Client
from dockyard.cli.console import CLIError, NotFoundError, UsageError
from dockyard.cli.dataplane import RegistryClient

PROVIDER = "Microsoft.ContainerRegistry/registries"
_NAME = re.compile(r"^[a-zA-Z0-9]{5,50}$")
BAD_NAME = "Registry names may contain only alpha numeric characters and must be between 5 and 50 characters"

RegistryName = Annotated[str, typer.Option("--name", "-n", help="The name of the container registry.")]
RegistryOption = Annotated[str, typer.Option("--registry", "-r", help="The name of the container registry.")]
ResourceGroup = Annotated[Optional[str], typer.Option(
    "--resource-group", "-g", help="Name of resource group. Found from the registry name when omitted.")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not prompt for confirmation.")]


def validate_name(name: str) -> str:
    if not _NAME.match(name):
        raise UsageError(BAD_NAME)
    return name


def registry_name(name: str) -> str:
    """A registry name, from a name or a login server (``name.domain[:port]``)."""
    name = name.strip()
    if "." in name:
        short, _, suffix = name.partition(".")
        console.warn(f"The login server endpoint suffix '.{suffix}' is automatically omitted.")
        name = short
    if not re.match(r"^[a-zA-Z0-9-]{1,50}$", name):
        raise UsageError(BAD_NAME)
    return name


def group_path(client: Client, group: str) -> str:
    return client.subscription_path("resourceGroups", group)


def registry_path(client: Client, group: str, name: str) -> str:
    return f"{group_path(client, group)}/providers/{PROVIDER}/{quote(name, safe='')}"


def list_registries(client: Client, group: str | None = None) -> list[dict[str, Any]]:
    base = group_path(client, group) if group else client.subscription_path()
    return client.arm_list(f"{base}/providers/{PROVIDER}", API_ACR)


def find_registry(client: Client, name: str, group: str | None = None) -> dict[str, Any]:
    """The registry's ARM resource (raw: with ``properties``)."""
    name = registry_name(name)
    if group:
        return client.arm("GET", registry_path(client, group, name), API_ACR)
    for registry in list_registries(client):
        if str(registry.get("name", "")).lower() == name.lower():
            return registry
    raise NotFoundError(
        f"The resource with name '{name}' and type '{PROVIDER}' could not be found in subscription "
        f"'{client.subscription_id}'.", "ResourceNotFound")


def login_server_of(registry: dict[str, Any]) -> str:
    return str((registry.get("properties") or {}).get("loginServer") or "").lower()


def resolve_login_server(client: Client, name: str, group: str | None = None) -> str:
    """The registry's login server, from ARM; else guessed as ``<name><suffix>``, as az does.

    A principal with only data-plane roles (AcrPull, AcrPush, a repository role) can't read the
    registry in ARM, so az builds the login server from the name and the cloud's suffix. Dockyard
    routes an unknown host to its default registry, so the guess is kept only if the registry's
    challenge names that very login server as its ``service``.
    """
    try:
        login_server = login_server_of(find_registry(client, name, group))
    except CLIError as error:
        suffix = client.profile.registry_suffix
        if not suffix or error.code not in ("ResourceNotFound", "AuthorizationFailed"):
            raise
        login_server = registry_name(name).lower() + suffix
        _, service = RegistryClient(client, login_server).challenge()
        if service.lower().rsplit(":", 1)[0] != login_server.rsplit(":", 1)[0]:
            raise error from None
        console.warn(f"Registry '{name}' not found in the subscription (or not readable): using its login server "
                     f"{login_server}.")
        return login_server
    if not login_server:
        raise NotFoundError(f"The registry '{name}' has no login server.", "ResourceNotFound")
    return login_server


def data_client(client: Client, name: str, group: str | None = None) -> RegistryClient:
    return RegistryClient(client, resolve_login_server(client, name, group))
