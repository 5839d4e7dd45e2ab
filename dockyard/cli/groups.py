"""``dockyard group``: resource groups (az group), through ARM ``/subscriptions/{sub}/resourcegroups``."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from dockyard.cli import arguments, shapes
from dockyard.cli.client import API_RESOURCES, Client, error_from
from dockyard.cli.console import NotFoundError, UsageError, confirm
from dockyard.cli.output import command

app = typer.Typer(help="Manage resource groups.", no_args_is_help=True, add_completion=False)

Name = Annotated[str, typer.Option("--name", "-n", "--resource-group", "-g", help="Name of the resource group.")]
Tags = Annotated[Optional[str], typer.Option(
    "--tags", help='Space-separated tags: key[=value] [key[=value] ...]. Use "" to clear existing tags.')]


def _path(client: Client, name: str) -> str:
    return client.subscription_path("resourcegroups", name)


@command(app, "create", table=shapes.group_table)
def create(
    name: Name,
    location: Annotated[str, typer.Option("--location", "-l", help="Location, e.g. eastus.")],
    tags: Tags = None,
    managed_by: Annotated[Optional[str], typer.Option("--managed-by", help="The ID of the resource that manages this group.")] = None,
) -> Any:
    """Create a new resource group (or update its location-less settings if it exists)."""
    body: dict[str, Any] = {"location": location}
    parsed = arguments.tags(tags)
    if parsed is not None:
        body["tags"] = parsed
    if managed_by:
        body["managedBy"] = managed_by
    with Client.from_profile() as client:
        return client.arm("PUT", _path(client, name), API_RESOURCES, body)


@command(app, "show", table=shapes.group_table)
def show(name: Name) -> Any:
    """Gets a resource group."""
    with Client.from_profile() as client:
        return client.arm("GET", _path(client, name), API_RESOURCES)


@command(app, "list", table=shapes.group_table)
def list_(
    tag: Annotated[Optional[str], typer.Option("--tag", help="A single tag in 'key[=value]' format to filter by.")] = None,
) -> Any:
    """List resource groups."""
    with Client.from_profile() as client:
        groups = client.arm_list(client.subscription_path("resourcegroups"), API_RESOURCES)
    if tag:
        key, has_value, value = tag.partition("=")
        groups = [g for g in groups if key in (g.get("tags") or {})
                  and (not has_value or (g.get("tags") or {}).get(key) == value)]
    return groups


@command(app, "exists")
def exists(name: Name) -> Any:
    """Check if a resource group exists."""
    with Client.from_profile() as client:
        try:
            client.arm("GET", _path(client, name), API_RESOURCES)
        except NotFoundError:
            return False
    return True


@command(app, "update", table=shapes.group_table)
def update(name: Name, tags: Tags = None) -> Any:
    """Update a resource group's tags."""
    parsed = arguments.tags(tags)
    if parsed is None:
        raise UsageError("usage error: nothing to update; pass --tags")
    with Client.from_profile() as client:
        return client.arm("PATCH", _path(client, name), API_RESOURCES, {"tags": parsed})


@command(app, "delete")
def delete(
    name: Name,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not prompt for confirmation.")] = False,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Do not wait for the long-running operation to finish.")] = False,
) -> None:
    """Delete a resource group and everything in it."""
    confirm("Are you sure you want to perform this operation?", yes)
    with Client.from_profile() as client:
        if no_wait:
            response = client.send("DELETE", _path(client, name), params={"api-version": API_RESOURCES})
            if not response.ok:
                raise error_from(response)
            return None
        client.arm("DELETE", _path(client, name), API_RESOURCES)
    return None
