"""``dockyard acr repository``: repositories, tags and their attributes (az acr repository).

Reads ``/v2/_catalog`` and ACR's ``/acr/v1`` API on the login server; deletes through
``/acr/v1/{repo}``, ``/acr/v1/{repo}/_tags/{tag}`` and ``/v2/{repo}/manifests/{digest}``.
"""

from __future__ import annotations

from typing import Annotated, Any, Optional
from urllib.parse import quote

import typer

from dockyard.cli import arguments, console
from dockyard.cli.acr_common import RegistryName, ResourceGroup, Yes, data_client
from dockyard.cli.client import Client
from dockyard.cli.console import UsageError, confirm
from dockyard.cli.dataplane import MANIFEST_ACCEPT, RegistryClient, catalog_scope, repo_scope
from dockyard.cli.output import command

app = typer.Typer(help="Manage repositories (image names) for Dockyard registries.", no_args_is_help=True)

Repository = Annotated[Optional[str], typer.Option("--repository", help="The name of the repository.")]
Image = Annotated[Optional[str], typer.Option(
    "--image", "-t", help="The name of the image: 'repo:tag' or 'repo@digest' (tag defaults to latest).")]
OrderBy = Annotated[Optional[str], typer.Option("--orderby", help="Order the items by time: time_asc, time_desc.")]
Top = Annotated[Optional[int], typer.Option("--top", min=1, help="Limit the number of items in the results.")]
Detail = Annotated[bool, typer.Option("--detail", help="Show detailed information.")]
_ORDER = {"time_asc": "timeasc", "time_desc": "timedesc"}
_ATTRIBUTES = (("delete_enabled", "deleteEnabled"), ("write_enabled", "writeEnabled"),
               ("list_enabled", "listEnabled"), ("read_enabled", "readEnabled"))


def parse_image(image: str) -> tuple[str, str | None, str | None]:
    """``repo:tag`` / ``repo@digest`` / ``repo`` → (repository, tag, digest); tag defaults to latest."""
    if "@" in image:
        repository, _, digest = image.partition("@")
        if not repository or ":" not in digest:
            raise UsageError(f"usage error: invalid image '{image}': expected repo@sha256:...")
        return repository, None, digest
    head, sep, tag = image.rpartition(":")
    if sep and "/" not in tag:
        return head, tag, None
    return image, "latest", None


def orderby(value: str | None) -> dict[str, str]:
    if value is None:
        return {}
    return {"orderby": _ORDER[arguments.choice(value, "--orderby", tuple(_ORDER))]}


def q(name: str) -> str:
    return quote(name, safe="/")


def manifest_digest(registry: RegistryClient, repository: str, reference: str) -> str:
    """The digest a tag points at (HEAD on the manifest); a digest is returned as is."""
    if reference.startswith("sha256:") or ":" in reference:
        return reference
    response = registry.request("HEAD", f"/v2/{q(repository)}/manifests/{quote(reference, safe='')}",
                                repo_scope(repository, "pull"), headers={"Accept": MANIFEST_ACCEPT})
    digest = response.headers.get("docker-content-digest")
    if not digest:
        raise console.CLIError(f"the registry didn't say which digest {repository}:{reference} has")
    return digest


def _image_path(repo: str, tag: str | None, digest: str | None) -> tuple[str, str]:
    """The /acr/v1 path of a tag or a manifest, and the key its attributes come under."""
    if tag is not None:
        return f"/acr/v1/{q(repo)}/_tags/{quote(tag, safe='')}", "tag"
    return f"/acr/v1/{q(repo)}/_manifests/{digest}", "manifest"


def _unwrap(body: Any, key: str) -> Any:
    return body[key] if isinstance(body, dict) and isinstance(body.get(key), dict) else body


def image_attributes(registry: RegistryClient, image: str) -> Any:
    repo, tag, digest = parse_image(image)
    path, key = _image_path(repo, tag, digest)
    return _unwrap(registry.get_json(path, repo_scope(repo, "metadata_read")), key)


def confirm_manifest_delete(registry: RegistryClient, repo: str, digest: str, yes: bool) -> None:
    """az's confirmation: name the manifest and every tag that goes with it."""
    tags = registry.paged(f"/acr/v1/{q(repo)}/_tags", repo_scope(repo, "metadata_read"), "tags")
    named = [f"'{repo}:{t.get('name')}'" for t in tags if t.get("digest") == digest]
    message = f"This operation will delete the manifest '{digest}'"
    if named:
        message += f" and all the following images: {', '.join(named)}"
    if yes:
        console.warn(message)
    confirm(f"{message}.\nAre you sure you want to continue?", yes)


def _one_target(repository: str | None, image: str | None) -> None:
    if bool(repository) == bool(image):
        raise UsageError("usage error: --image IMAGE | --repository REPOSITORY")


@command(app, "list")
def list_(name: RegistryName, resource_group: ResourceGroup = None, top: Top = None) -> Any:
    """List the repositories in a registry."""
    with Client.from_profile() as client:
        return data_client(client, name, resource_group).paged("/v2/_catalog", catalog_scope(), "repositories", top=top)


@command(app, "show")
def show(name: RegistryName, repository: Repository = None, image: Image = None,
         resource_group: ResourceGroup = None) -> Any:
    """Get the attributes of a repository, or of an image (a tag or a manifest)."""
    _one_target(repository, image)
    with Client.from_profile() as client:
        registry = data_client(client, name, resource_group)
        if repository:
            return registry.get_json(f"/acr/v1/{q(repository)}", repo_scope(repository, "metadata_read"))
        repo, tag, digest = parse_image(image or "")
        path, key = _image_path(repo, tag, digest)
        return _unwrap(registry.get_json(path, repo_scope(repo, "metadata_read")), key)


@command(app, "show-tags")
def show_tags(name: RegistryName, repository: Annotated[str, typer.Option("--repository", help="The name of the repository.")],
              resource_group: ResourceGroup = None, top: Top = None, orderby_: OrderBy = None,
              detail: Detail = False) -> Any:
    """Show the tags of a repository."""
    with Client.from_profile() as client:
        registry = data_client(client, name, resource_group)
        tags = registry.paged(f"/acr/v1/{q(repository)}/_tags", repo_scope(repository, "metadata_read"), "tags",
                              params=orderby(orderby_), top=top)
    return tags if detail else [t.get("name") for t in tags]


@command(app, "show-manifests")
def show_manifests(name: RegistryName, repository: Annotated[str, typer.Option("--repository", help="The name of the repository.")],
                   resource_group: ResourceGroup = None, top: Top = None, orderby_: OrderBy = None,
                   detail: Detail = False) -> Any:
    """Show the manifests of a repository (deprecated: use 'acr manifest list-metadata')."""
    console.warn("This command has been deprecated and will be removed in a future release. "
                 "Use 'acr manifest list-metadata' instead.")
    with Client.from_profile() as client:
        registry = data_client(client, name, resource_group)
        manifests = registry.paged(f"/acr/v1/{q(repository)}/_manifests", repo_scope(repository, "metadata_read"),
                                   "manifests", params=orderby(orderby_), top=top)
    if detail:
        return manifests
    return [{"digest": m.get("digest"), "tags": m.get("tags"), "timestamp": m.get("lastUpdateTime")} for m in manifests]


def _attribute_flags(values: dict[str, str | None]) -> dict[str, bool]:
    flags = {}
    for param, field in _ATTRIBUTES:
        flag = "--" + param.replace("_", "-")
        if (value := arguments.boolean(values.get(param), flag)) is not None:
            flags[field] = value
    return flags


DeleteEnabled = Annotated[Optional[str], typer.Option("--delete-enabled", metavar="{false,true}", help="Whether it may be deleted.")]
WriteEnabled = Annotated[Optional[str], typer.Option(
    "--write-enabled", metavar="{false,true}", help="Whether it may be written (pushed, retagged).")]
ListEnabled = Annotated[Optional[str], typer.Option("--list-enabled", metavar="{false,true}", help="Whether it shows in listings.")]
ReadEnabled = Annotated[Optional[str], typer.Option("--read-enabled", metavar="{false,true}", help="Whether it may be read (pulled).")]


@command(app, "update")
def update(
    name: RegistryName,
    repository: Repository = None,
    image: Image = None,
    resource_group: ResourceGroup = None,
    delete_enabled: DeleteEnabled = None,
    write_enabled: WriteEnabled = None,
    list_enabled: ListEnabled = None,
    read_enabled: ReadEnabled = None,
) -> Any:
    """Update the attributes of a repository or an image (lock it against deletes or writes, hide it...)."""
    _one_target(repository, image)
    body = _attribute_flags({"delete_enabled": delete_enabled, "write_enabled": write_enabled,
                             "list_enabled": list_enabled, "read_enabled": read_enabled})
    if not body:
        raise UsageError("usage error: specify at least one of --delete-enabled, --write-enabled, "
                         "--list-enabled, --read-enabled")
    with Client.from_profile() as client:
        registry = data_client(client, name, resource_group)
        if repository:
            return registry.request("PATCH", f"/acr/v1/{q(repository)}", repo_scope(repository, "metadata_write"),
                                    json_body=body).json()
        repo, tag, digest = parse_image(image or "")
        path, key = _image_path(repo, tag, digest)
        return _unwrap(registry.request("PATCH", path, repo_scope(repo, "metadata_write"), json_body=body).json(), key)


@command(app, "untag")
def untag(name: RegistryName, image: Annotated[str, typer.Option("--image", "-t", help="The image to untag: 'repo:tag'.")],
          resource_group: ResourceGroup = None) -> None:
    """Untag an image: remove the tag, keep the manifest and its other tags."""
    repo, tag, _ = parse_image(image)
    if tag is None:
        raise UsageError("usage error: --image must be 'repo:tag'")
    with Client.from_profile() as client:
        registry = data_client(client, name, resource_group)
        registry.request("DELETE", f"/acr/v1/{q(repo)}/_tags/{quote(tag, safe='')}", repo_scope(repo, "delete"))


@command(app, "delete")
def delete(name: RegistryName, repository: Repository = None, image: Image = None,
           resource_group: ResourceGroup = None, yes: Yes = False) -> None:
    """Delete a repository (with all its images and tags), or an image's manifest (with all its tags)."""
    _one_target(repository, image)
    with Client.from_profile() as client:
        registry = data_client(client, name, resource_group)
        if repository:
            confirm(f"Are you sure you want to delete the repository '{repository}' and all images under it?", yes)
            registry.request("DELETE", f"/acr/v1/{q(repository)}", repo_scope(repository, "delete"))
            return None
        repo, tag, digest = parse_image(image or "")
        digest = manifest_digest(registry, repo, tag or digest or "")
        confirm_manifest_delete(registry, repo, digest, yes)
        registry.request("DELETE", f"/v2/{q(repo)}/manifests/{digest}", repo_scope(repo, "delete"))
    return None
