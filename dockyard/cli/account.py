"""``dockyard login``, ``dockyard logout`` and ``dockyard account``: who the client CLI acts as.

``login`` gets a token from the endpoint's Entra-shaped token endpoint (``password`` grant for
a user, ``client_credentials`` for ``--service-principal``), finds the tenant (``GET /tenants``)
when ``--tenant`` isn't given, lists the subscriptions, and keeps all of it in the profile
(:mod:`dockyard.cli.profile`). Accounts print in az's shape.
"""

from __future__ import annotations

import getpass
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from dockyard.cli import profile as profile_module
from dockyard.cli.client import API_SUBSCRIPTIONS, Client, error_from, fetch_token
from dockyard.cli.console import CLIError, UsageError
from dockyard.cli.output import command
from dockyard.cli.profile import Profile
from dockyard.cli.transport import Transport

CLOUD_NAME = "Dockyard"

app = typer.Typer(help="Manage the signed-in account and its subscriptions.", no_args_is_help=True,
                  add_completion=False)


def register(root: typer.Typer) -> None:
    command(root, "login", subscription=False)(login)
    command(root, "logout", subscription=False)(logout)
    root.add_typer(app, name="account")


def account_entry(profile: Profile, sub: dict[str, Any], show: bool = False) -> dict[str, Any]:
    entry = {
        "cloudName": CLOUD_NAME,
        "homeTenantId": sub.get("tenantId") or profile.tenant_id,
        "id": sub["id"],
        "isDefault": bool(sub.get("isDefault")),
        "managedByTenants": [],
        "name": sub.get("name", ""),
        "state": sub.get("state", "Enabled"),
        "tenantId": profile.tenant_id,
        "user": {"name": profile.user_name, "type": profile.user_type},
    }
    if show:
        entry["environmentName"] = CLOUD_NAME
    return entry


def _get_json(transport: Transport, token: str, path: str, api_version: str) -> Any:
    response = transport.request("GET", transport.endpoint + path, params={"api-version": api_version},
                                 headers={"Authorization": f"Bearer {token}"})
    if not response.ok:
        raise error_from(response)
    return response.json() or {}


def login(
    endpoint: Annotated[Optional[str], typer.Option(
        "--endpoint", help="Dockyard's URL, e.g. https://registry.example.com:5000 (default: $DOCKYARD_ENDPOINT, "
                           "else the endpoint of the last login).")] = None,
    username: Annotated[Optional[str], typer.Option(
        "--username", "-u", help="User name, or the app id with --service-principal.")] = None,
    password: Annotated[Optional[str], typer.Option(
        "--password", "-p", help="Password, or the client secret with --service-principal. Prompted when omitted.")] = None,
    service_principal: Annotated[bool, typer.Option(
        "--service-principal", help="Sign in with an app id and client secret.")] = False,
    tenant: Annotated[Optional[str], typer.Option(
        "--tenant", "-t", help="The tenant id (default: the server's tenant, from GET /tenants).")] = None,
    ca_bundle: Annotated[Optional[Path], typer.Option(
        "--ca-bundle", help="PEM file of the CAs to trust for https (default: $REQUESTS_CA_BUNDLE, else the "
                            "system's CAs); kept for later commands.")] = None,
    allow_no_subscriptions: Annotated[bool, typer.Option(
        "--allow-no-subscriptions", help="Sign in even when the account can see no subscription.")] = False,
) -> Any:
    """Log in to a Dockyard endpoint, as a user or a service principal (az login)."""
    previous = Profile.load()
    endpoint = (endpoint or os.environ.get("DOCKYARD_ENDPOINT") or (previous.endpoint if previous else "")).rstrip("/")
    if not endpoint:
        raise UsageError("usage error: --endpoint URL is required for the first login")
    if not username:
        raise UsageError("usage error: --username/-u is required")
    if password is None:
        if not sys.stdin.isatty():
            raise UsageError("usage error: --password/-p is required without a terminal")
        password = getpass.getpass("Password: ")
    bundle = str(ca_bundle) if ca_bundle else os.environ.get("REQUESTS_CA_BUNDLE") or (
        previous.ca_bundle if previous and previous.endpoint == endpoint else None)
    if bundle:
        bundle = str(Path(bundle).expanduser().resolve())
        if not Path(bundle).is_file():
            raise UsageError(f"usage error: the CA bundle '{bundle}' is not a file")
    user_type = "servicePrincipal" if service_principal else "user"

    with Transport(endpoint, bundle) as transport:
        token, expires_on = fetch_token(transport, tenant or "organizations", user_type, username, password)
        if not tenant:
            tenants = _get_json(transport, token, "/tenants", API_SUBSCRIPTIONS).get("value", [])
            if not tenants:
                raise CLIError(f"No tenants found for {username}.")
            tenant = tenants[0].get("tenantId") or str(tenants[0].get("id", "")).rsplit("/", 1)[-1]
        subs = _get_json(transport, token, "/subscriptions", API_SUBSCRIPTIONS).get("value", [])
        suffix = _registry_suffix(transport)

    if not subs and not allow_no_subscriptions:
        raise CLIError(f"No subscriptions found for {username}.")
    subscriptions = []
    for sub in subs:
        sub_id = sub.get("subscriptionId") or str(sub.get("id", "")).rsplit("/", 1)[-1]
        subscriptions.append({"id": sub_id, "name": sub.get("displayName", sub_id), "state": sub.get("state", "Enabled"),
                              "tenantId": sub.get("tenantId") or tenant, "isDefault": False})
    enabled = [s for s in subscriptions if s["state"] == "Enabled"] or subscriptions
    if enabled:
        enabled[0]["isDefault"] = True
    profile = Profile(endpoint=endpoint, ca_bundle=bundle, tenant_id=tenant or "", user_name=username,
                      user_type=user_type, secret=password, registry_suffix=suffix, subscriptions=subscriptions)
    profile.cache_token(endpoint + "/", token, expires_on)
    profile.save()
    return [account_entry(profile, s) for s in subscriptions]


def _registry_suffix(transport: Transport) -> str | None:
    """The login-server suffix from ARM metadata (``suffixes.acrLoginServer``), when served."""
    try:
        response = transport.request("GET", transport.endpoint + "/metadata/endpoints",
                                     params={"api-version": "2022-09-01"})
    except CLIError:
        return None
    body = response.json() if response.ok else None
    suffix = ((body or {}).get("suffixes") or {}).get("acrLoginServer") if isinstance(body, dict) else None
    return suffix or None


def logout(
    username: Annotated[Optional[str], typer.Option("--username", help="The account to log out (default: the current one).")] = None,
) -> None:
    """Forget the signed-in account, its secret and its cached tokens."""
    current = Profile.load()
    if current is None or not current.user_name:
        raise CLIError("There are no active accounts.")
    if username and username.lower() != current.user_name.lower():
        raise CLIError(f"Account '{username}' was not logged in.")
    profile_module.remove()


@command(app, "show", subscription=False)
def show(
    subscription: Annotated[Optional[str], typer.Option("--subscription", "-s", help="Name or ID of subscription.")] = None,
) -> Any:
    """Get the details of a subscription (the default one unless --subscription)."""
    profile = Profile.require()
    return account_entry(profile, profile.subscription(subscription), show=True)


@command(app, "list", subscription=False)
def list_(
    all_: Annotated[bool, typer.Option("--all", help="List all subscriptions, not just the enabled ones.")] = False,
) -> Any:
    """Get a list of subscriptions for the logged in account."""
    profile = Profile.require()
    return [account_entry(profile, s) for s in profile.subscriptions if all_ or s.get("state", "Enabled") == "Enabled"]


@command(app, "set", subscription=False)
def set_(
    subscription: Annotated[str, typer.Option("--subscription", "-s", "--name", "-n", help="Name or ID of subscription.")],
) -> None:
    """Set a subscription to be the current active subscription."""
    profile = Profile.require()
    profile.set_default(subscription)
    profile.save()


@command(app, "get-access-token", subscription=False)
def get_access_token(
    subscription: Annotated[Optional[str], typer.Option("--subscription", "-s", help="Name or ID of subscription.")] = None,
    resource: Annotated[Optional[str], typer.Option(
        "--resource", help="The audience, e.g. https://containerregistry.azure.net (default: the endpoint's).")] = None,
) -> Any:
    """Get a token for the endpoint (ARM and the directory), or for --resource."""
    with Client.from_profile() as client:
        sub = client.profile.subscription(subscription)
        audience = resource or client.audience
        token = client.access_token(audience=audience)
        expires_on = int(client.profile.tokens.get(audience, {}).get("expiresOn", time.time()))
        return {
            "accessToken": token,
            "expiresOn": datetime.fromtimestamp(expires_on).strftime("%Y-%m-%d %H:%M:%S.%f"),
            "expires_on": expires_on,
            "subscription": sub["id"],
            "tenant": client.tenant_id,
            "tokenType": "Bearer",
        }
