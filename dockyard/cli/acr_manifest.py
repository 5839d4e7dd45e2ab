"""``dockyard acr manifest``: manifests and their metadata (az acr manifest).

A manifest is named as az names it: ``<login server>/<repo>:<tag>`` or
``<login server>/<repo>@<digest>`` as the argument, or ``-r <registry> -n <repo>:<tag>``.
Repository-level commands take ``<login server>/<repo>`` or ``-r <registry> -n <repo>``.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any, Optional
from urllib.parse import quote

import typer

from dockyard.cli.acr_common import ResourceGroup, Yes, data_client
from dockyard.cli.acr_repository import (
    confirm_manifest_delete,
    image_attributes,
    manifest_digest,
    orderby,
    parse_image,
    q,
)
from dockyard.cli.client import Client
from dockyard.cli.console import UsageError
from dockyard.cli.dataplane import MANIFEST_ACCEPT, RegistryClient, repo_scope
from dockyard.cli.output import command

app = typer.Typer(help="Manage artifact manifests in Dockyard registries.", no_args_is_help=True)

ManifestId = Annotated[Optional[str], typer.Argument(
    metavar="[MANIFEST_ID]", help="'<login server>/<repo>:<tag>' or '<login server>/<repo>@<digest>'.", show_default=False)]
RepoId = Annotated[Optional[str], typer.Argument(
    metavar="[REPO_ID]", help="'<login server>/<repo>'.", show_default=False)]
Registry = Annotated[Optional[str], typer.Option("--registry", "-r", help="The name of the container registry.")]
Name = Annotated[Optional[str], typer.Option("--name", "-n", help="The artifact: 'repo:tag' or 'repo@digest'.")]
RepoName = Annotated[Optional[str], typer.Option("--name", "-n", help="The name of the repository.")]
Top = Annotated[Optional[int], typer.Option("--top", min=1, help="Limit the number of items in the results.")]
OrderBy = Annotated[Optional[str], typer.Option("--orderby", help="Order the items by time: time_asc, time_desc.")]


def split_id(identifier: str | None, registry: str | None, name: str | None) -> tuple[str, str]:
    """(registry name, 'repo...') from a fully qualified id or from -r and -n."""
    if identifier:
        if registry or name:
            raise UsageError("usage error: give either the fully qualified id or --registry and --name, not both")
        login_server, sep, rest = identifier.partition("/")
        if not sep or not rest:
            raise UsageError(f"usage error: '{identifier}' is not '<login server>/<repo>...'")
        return login_server.split(".", 1)[0], rest
    if not registry or not name:
        raise UsageError("usage error: give the fully qualified id, or both --registry and --name")
    return registry, name


def _target(client: Client, identifier: str | None, registry: str | None, name: str | None,
            group: str | None) -> tuple[RegistryClient, str, str]:
    """(data client, repository, reference: a tag or a digest)."""
    registry_name, artifact = split_id(identifier, registry, name)
    repo, tag, digest = parse_image(artifact)
    return data_client(client, registry_name, group), repo, tag or digest or "latest"


@command(app, "show")
def show(manifest_id: ManifestId = None, registry: Registry = None, name: Name = None,
         resource_group: ResourceGroup = None,
         raw: Annotated[bool, typer.Option("--raw", help="Print the manifest's exact bytes, unformatted.")] = False) -> Any:
    """Get a manifest."""
    with Client.from_profile() as client:
        data, repo, reference = _target(client, manifest_id, registry, name, resource_group)
        response = data.request("GET", f"/v2/{q(repo)}/manifests/{quote(reference, safe=':')}",
                                repo_scope(repo, "pull"), headers={"Accept": MANIFEST_ACCEPT})
    if raw:
        sys.stdout.buffer.write(response.body)  # the exact bytes, so their digest is the manifest's
        if sys.stdout.isatty():
            sys.stdout.buffer.write(b"\n")
        sys.stdout.flush()
        return None
    return response.json()


@command(app, "list-metadata")
def list_metadata(repo_id: RepoId = None, registry: Registry = None, name: RepoName = None,
                  resource_group: ResourceGroup = None, top: Top = None, orderby_: OrderBy = None) -> Any:
    """List the metadata of the manifests in a repository."""
    registry_name, repo = split_id(repo_id, registry, name)
    with Client.from_profile() as client:
        data = data_client(client, registry_name, resource_group)
        return data.paged(f"/acr/v1/{q(repo)}/_manifests", repo_scope(repo, "metadata_read"), "manifests",
                          params=orderby(orderby_), top=top)


@command(app, "show-metadata")
def show_metadata(manifest_id: ManifestId = None, registry: Registry = None, name: Name = None,
                  resource_group: ResourceGroup = None) -> Any:
    """Get the metadata of a manifest (by digest) or a tag."""
    registry_name, artifact = split_id(manifest_id, registry, name)
    with Client.from_profile() as client:
        return image_attributes(data_client(client, registry_name, resource_group), artifact)


@command(app, "delete")
def delete(manifest_id: ManifestId = None, registry: Registry = None, name: Name = None,
           resource_group: ResourceGroup = None, yes: Yes = False) -> None:
    """Delete a manifest and every tag that points at it."""
    with Client.from_profile() as client:
        data, repo, reference = _target(client, manifest_id, registry, name, resource_group)
        digest = manifest_digest(data, repo, reference)
        confirm_manifest_delete(data, repo, digest, yes)
        data.request("DELETE", f"/v2/{q(repo)}/manifests/{digest}", repo_scope(repo, "delete"))


def _referrers(data: RegistryClient, repo: str, digest: str, artifact_type: str | None,
               recursive: bool, seen: set[str]) -> dict[str, Any]:
    params = {"artifactType": artifact_type} if artifact_type else None
    index = data.get_json(f"/v2/{q(repo)}/referrers/{digest}", repo_scope(repo, "pull"), params=params) or {}
    if recursive:
        for descriptor in index.get("manifests") or []:
            child = descriptor.get("digest")
            if child and child not in seen:
                seen.add(child)
                nested = _referrers(data, repo, child, None, True, seen)
                descriptor["references"] = nested.get("manifests") or []
    return index


@command(app, "list-referrers")
def list_referrers(
    manifest_id: ManifestId = None, registry: Registry = None, name: Name = None,
    resource_group: ResourceGroup = None,
    artifact_type: Annotated[Optional[str], typer.Option("--artifact-type", help="Only referrers of this artifact type.")] = None,
    recursive: Annotated[bool, typer.Option("--recursive", help="Also list the referrers of the referrers.")] = False,
) -> Any:
    """List the artifacts that refer to a manifest (signatures, SBOMs...), OCI's referrers API."""
    with Client.from_profile() as client:
        data, repo, reference = _target(client, manifest_id, registry, name, resource_group)
        digest = manifest_digest(data, repo, reference)
        return _referrers(data, repo, digest, artifact_type, recursive, {digest})
