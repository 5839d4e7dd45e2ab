"""``dockyard acr``: registries (az acr) through ARM, plus ``acr login`` and ``acr credential``.

Sub-groups live in their own modules: ``repository`` (acr_repository.py), ``manifest``
(acr_manifest.py), ``scope-map`` and ``token`` (acr_tokens.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Annotated, Any, Optional

import typer

from dockyard.cli import acr_manifest, acr_repository, acr_tokens, arguments, console, shapes
from dockyard.cli.acr_common import (
    PROVIDER,
    RegistryName,
    ResourceGroup,
    Yes,
    find_registry,
    list_registries,
    registry_name,
    registry_path,
    resolve_login_server,
    validate_name,
)
from dockyard.cli.client import API_ACR, API_RESOURCES, Client
from dockyard.cli.console import CLIError, UsageError, confirm
from dockyard.cli.dataplane import NULL_GUID, RegistryClient
from dockyard.cli.output import command

app = typer.Typer(help="Manage private registries with Dockyard (az acr).", no_args_is_help=True, add_completion=False)
credential_app = typer.Typer(help="Manage login credentials (the admin user) for a registry.", no_args_is_help=True)
app.add_typer(credential_app, name="credential")
app.add_typer(acr_repository.app, name="repository")
app.add_typer(acr_manifest.app, name="manifest")
app.add_typer(acr_tokens.scope_map_app, name="scope-map")
app.add_typer(acr_tokens.token_app, name="token")

SKUS = ("Basic", "Standard", "Premium")
Sku = Annotated[Optional[str], typer.Option("--sku", help="The SKU of the registry: Basic, Standard, Premium.")]
AdminEnabled = Annotated[Optional[str], typer.Option(
    "--admin-enabled", metavar="{false,true}", help="Enable the admin user (username = registry name).")]
AnonymousPull = Annotated[Optional[str], typer.Option(
    "--anonymous-pull-enabled", metavar="{false,true}", help="Allow pulls without credentials (Standard, Premium).")]
PublicNetwork = Annotated[Optional[str], typer.Option(
    "--public-network-enabled", metavar="{false,true}", help="Allow access from public networks.")]
DefaultAction = Annotated[Optional[str], typer.Option(
    "--default-action", help="Default action when no network rule matches: Allow, Deny.")]
TrustedServices = Annotated[Optional[str], typer.Option(
    "--allow-trusted-services", metavar="{false,true}", help="Let trusted services bypass the network rules.")]
RoleMode = Annotated[Optional[str], typer.Option(
    "--role-assignment-mode", help="rbac (registry permissions) or rbac-abac (registry + ABAC repository permissions).")]
Tags = Annotated[Optional[str], typer.Option(
    "--tags", help='Space-separated tags: key[=value] [key[=value] ...]. Use "" to clear existing tags.')]
_ROLE_MODES = {"rbac": "LegacyRegistryPermissions", "rbac-abac": "AbacRepositoryPermissions"}


def _properties(admin: str | None, anonymous: str | None, public: str | None, action: str | None,
                trusted: str | None, role_mode: str | None) -> dict[str, Any]:
    props: dict[str, Any] = {}
    if (value := arguments.boolean(admin, "--admin-enabled")) is not None:
        props["adminUserEnabled"] = value
    if (value := arguments.boolean(anonymous, "--anonymous-pull-enabled")) is not None:
        props["anonymousPullEnabled"] = value
    if (value := arguments.boolean(public, "--public-network-enabled")) is not None:
        props["publicNetworkAccess"] = "Enabled" if value else "Disabled"
    if action is not None:
        props["networkRuleSet"] = {"defaultAction": arguments.choice(action, "--default-action", ("Allow", "Deny"))}
    if (value := arguments.boolean(trusted, "--allow-trusted-services")) is not None:
        props["networkRuleBypassOptions"] = "AzureServices" if value else "None"
    if role_mode is not None:
        props["roleAssignmentMode"] = _ROLE_MODES[arguments.choice(role_mode, "--role-assignment-mode", tuple(_ROLE_MODES))]
    return props


@command(app, "create", table=shapes.registry_table)
def create(
    name: RegistryName,
    resource_group: Annotated[str, typer.Option("--resource-group", "-g", help="Name of resource group.")],
    sku: Annotated[str, typer.Option("--sku", help="The SKU of the registry: Basic, Standard, Premium.")],
    location: Annotated[Optional[str], typer.Option("--location", "-l", help="Location (default: the resource group's).")] = None,
    admin_enabled: AdminEnabled = None,
    anonymous_pull_enabled: AnonymousPull = None,
    public_network_enabled: PublicNetwork = None,
    default_action: DefaultAction = None,
    allow_trusted_services: TrustedServices = None,
    role_assignment_mode: RoleMode = None,
    dnl_scope: Annotated[Optional[str], typer.Option("--dnl-scope", help="Domain name label scope (Unsecure only).")] = None,
    tags: Tags = None,
) -> Any:
    """Create a container registry. Its login server is <name in lower case>.<domain>."""
    validate_name(name)
    sku = arguments.choice(sku, "--sku", SKUS)
    props = {"adminUserEnabled": False}
    props.update(_properties(admin_enabled, anonymous_pull_enabled, public_network_enabled, default_action,
                             allow_trusted_services, role_assignment_mode))
    if dnl_scope:
        props["autoGeneratedDomainNameLabelScope"] = dnl_scope
    with Client.from_profile() as client:
        if not location:
            location = client.arm("GET", client.subscription_path("resourcegroups", resource_group),
                                  API_RESOURCES)["location"]
        body: dict[str, Any] = {"location": location, "sku": {"name": sku}, "properties": props}
        if (parsed := arguments.tags(tags)) is not None:
            body["tags"] = parsed
        return shapes.flatten(client.arm("PUT", registry_path(client, resource_group, name), API_ACR, body))


@command(app, "show", table=shapes.registry_table)
def show(name: RegistryName, resource_group: ResourceGroup = None) -> Any:
    """Get the details of a container registry."""
    with Client.from_profile() as client:
        return shapes.flatten(find_registry(client, name, resource_group))


@command(app, "list", table=shapes.registry_table)
def list_(resource_group: ResourceGroup = None) -> Any:
    """List container registries (of a resource group, or the subscription)."""
    with Client.from_profile() as client:
        return shapes.flatten(list_registries(client, resource_group))


@command(app, "update", table=shapes.registry_table)
def update(
    name: RegistryName,
    resource_group: ResourceGroup = None,
    sku: Sku = None,
    admin_enabled: AdminEnabled = None,
    anonymous_pull_enabled: AnonymousPull = None,
    public_network_enabled: PublicNetwork = None,
    default_action: DefaultAction = None,
    allow_trusted_services: TrustedServices = None,
    role_assignment_mode: RoleMode = None,
    data_endpoint_enabled: Annotated[Optional[str], typer.Option(
        "--data-endpoint-enabled", metavar="{false,true}", help="Enable dedicated data endpoints (Premium).")] = None,
    tags: Tags = None,
) -> Any:
    """Update a container registry."""
    props = _properties(admin_enabled, anonymous_pull_enabled, public_network_enabled, default_action,
                        allow_trusted_services, role_assignment_mode)
    if (value := arguments.boolean(data_endpoint_enabled, "--data-endpoint-enabled")) is not None:
        props["dataEndpointEnabled"] = value
    body: dict[str, Any] = {}
    if sku:
        body["sku"] = {"name": arguments.choice(sku, "--sku", SKUS)}
    if (parsed := arguments.tags(tags)) is not None:
        body["tags"] = parsed
    if props:
        body["properties"] = props
    if not body:
        raise UsageError("usage error: nothing to update; pass at least one property such as --admin-enabled or --sku")
    with Client.from_profile() as client:
        registry = find_registry(client, name, resource_group)
        return shapes.flatten(client.arm("PATCH", registry["id"], API_ACR, body))


@command(app, "delete")
def delete(name: RegistryName, resource_group: ResourceGroup = None, yes: Yes = False) -> None:
    """Delete a container registry."""
    confirm(f"Are you sure you want to delete the registry '{name}'?", yes)
    with Client.from_profile() as client:
        registry = find_registry(client, name, resource_group)
        client.arm("DELETE", registry["id"], API_ACR)


@command(app, "check-name")
def check_name(name: RegistryName) -> Any:
    """Check whether a registry name is valid and available."""
    with Client.from_profile() as client:
        path = client.subscription_path("providers", "Microsoft.ContainerRegistry", "checkNameAvailability")
        return client.arm("POST", path, API_ACR, {"name": name, "type": PROVIDER})


@command(app, "show-usage", table=shapes.usage_table)
def show_usage(name: RegistryName, resource_group: ResourceGroup = None) -> Any:
    """Get the storage usage and the quotas of a registry."""
    with Client.from_profile() as client:
        registry = find_registry(client, name, resource_group)
        return client.arm("GET", registry["id"] + "/listUsages", API_ACR)


@command(app, "show-endpoints")
def show_endpoints(name: RegistryName, resource_group: ResourceGroup = None) -> Any:
    """Show the endpoints clients must reach: the login server and any data endpoints."""
    with Client.from_profile() as client:
        registry = find_registry(client, name, resource_group)
    props = registry.get("properties") or {}
    data = [{"region": registry.get("location"), "endpoint": host} for host in props.get("dataEndpointHostNames") or []]
    return {"loginServer": props.get("loginServer"), "dataEndpoints": data, "regionalEndpoints": []}


# ----------------------------------------------------------------------------- credentials


def _admin_registry(client: Client, name: str, group: str | None) -> dict[str, Any]:
    registry = find_registry(client, name, group)
    if not (registry.get("properties") or {}).get("adminUserEnabled"):
        raise CLIError(f"Run 'dockyard acr update -n {name} --admin-enabled true' to enable admin first.")
    return registry


@command(credential_app, "show", table=shapes.credential_table)
def credential_show(name: RegistryName, resource_group: ResourceGroup = None) -> Any:
    """Get the admin user's username and passwords."""
    with Client.from_profile() as client:
        registry = _admin_registry(client, name, resource_group)
        return client.arm("POST", registry["id"] + "/listCredentials", API_ACR)


@command(credential_app, "renew", table=shapes.credential_table)
def credential_renew(
    name: RegistryName,
    password_name: Annotated[str, typer.Option("--password-name", help="The password to regenerate: password, password2.")],
    resource_group: ResourceGroup = None,
) -> Any:
    """Regenerate one of the admin user's passwords."""
    password_name = arguments.choice(password_name, "--password-name", ("password", "password2"))
    with Client.from_profile() as client:
        registry = _admin_registry(client, name, resource_group)
        return client.arm("POST", registry["id"] + "/regenerateCredential", API_ACR, {"name": password_name})


# ----------------------------------------------------------------------------- login


def _docker_command() -> list[str]:
    explicit = os.environ.get("DOCKER_COMMAND")
    if explicit:
        return [explicit]
    for candidate in ("docker", "podman"):
        if shutil.which(candidate):
            return [candidate]
    raise CLIError("Please verify if Docker client is installed and running.", "DOCKER_COMMAND_ERROR")


def _docker_login(docker: list[str], login_server: str, username: str, password: str) -> None:
    result = subprocess.run([*docker, "login", "--username", username, "--password-stdin", login_server],
                            input=password.encode(), capture_output=True)
    if result.stdout:
        print(result.stdout.decode("utf-8", "replace"), end="")
    if result.returncode != 0:
        message = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise CLIError(message[-1] if message else f"docker login exited with {result.returncode}", "DOCKER_LOGIN_ERROR")


LOGIN_HELP = (
    "Log in to a registry through the signed-in account (runs docker login).\n\n"
    "The account's token is exchanged for a registry refresh token (valid 3 hours), given to "
    f"'docker login --username {NULL_GUID} --password-stdin <login server>'.\n\n"
    "docker reaches the login server by its own name and port, unlike dockyard, which reaches every "
    "login server through --endpoint. For docker the name must resolve on this machine (DNS, or an "
    "/etc/hosts line such as '127.0.0.1 myregistry.dockyard.localhost') and the server must listen on "
    "the login server's port (443 unless the login server names one). Otherwise use --expose-token "
    "and log the client in yourself."
)


@command(app, "login", help=LOGIN_HELP)
def login(
    name: RegistryName,
    resource_group: ResourceGroup = None,
    username: Annotated[Optional[str], typer.Option("--username", "-u", help="Log docker in with this user name (skips the token exchange).")] = None,
    password: Annotated[Optional[str], typer.Option("--password", "-p", help="The password of --username.")] = None,
    expose_token: Annotated[bool, typer.Option("--expose-token", "-t", help="Print the access token instead of running docker login.")] = False,
    suffix: Annotated[Optional[str], typer.Option("--suffix", help="The tenant suffix of login servers named '<registry>-<suffix>.<domain>'.")] = None,
) -> Any:
    """Log in to a registry through the signed-in account (runs docker login)."""
    if expose_token and (username or password):
        raise UsageError("usage error: --expose-token cannot be used with --username or --password")
    if bool(username) != bool(password):
        raise UsageError("usage error: --username and --password go together")
    docker = None if expose_token else _docker_command()
    if docker is not None:
        check = subprocess.run([*docker, "ps"], capture_output=True)
        if check.returncode != 0:
            raise CLIError("Please verify if Docker client is installed and running.", "DOCKER_COMMAND_ERROR")
    with Client.from_profile() as client:
        if suffix:
            domain = (client.profile.registry_suffix or "").lstrip(".")
            if not domain:
                raise CLIError("--suffix needs the registry domain, which the server didn't announce at login.")
            login_server = f"{registry_name(name).lower()}-{suffix.lower()}.{domain}"
        else:
            login_server = resolve_login_server(client, name, resource_group)
        if username and password and docker is not None:
            _docker_login(docker, login_server, username, password)
            return None
        token = RegistryClient(client, login_server).refresh_token(fresh=True)
    if expose_token:
        console.warn("You can perform manual login using the provided access token below, for example: "
                     f"'docker login {login_server} -u {NULL_GUID} -p accessToken'")
        return {"accessToken": token, "loginServer": login_server, "username": NULL_GUID}
    assert docker is not None
    _docker_login(docker, login_server, NULL_GUID, token)
    return None
