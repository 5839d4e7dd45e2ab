"""Repository and tag names as the OCI Distribution spec defines them."""

from __future__ import annotations

import re

from dockyard.core.errors import ManifestInvalid, NameInvalid

_REPOSITORY = re.compile(r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$")
_TAG = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
_REGISTRY = re.compile(r"^[a-zA-Z0-9]{5,50}$")

MAX_REPOSITORY_LENGTH = 255


def check_repository(name: str) -> str:
    if len(name) > MAX_REPOSITORY_LENGTH:
        raise NameInvalid(f"repository name is longer than {MAX_REPOSITORY_LENGTH} characters")
    if not _REPOSITORY.match(name):
        raise NameInvalid(
            f"invalid repository name {name[:100]!r}: use lowercase letters and digits, "
            "separated by '.', '_', '__', '-' or '/'"
        )
    return name


def is_tag(value: str) -> bool:
    return bool(_TAG.match(value))


def check_tag(value: str) -> str:
    if not _TAG.match(value):
        raise ManifestInvalid(f"invalid tag {value[:140]!r}", detail={"tag": value[:140]})
    return value


def is_registry_name(value: str) -> bool:
    return bool(_REGISTRY.match(value))
