"""Manifest media types the registry stores, and content negotiation over Accept."""

from __future__ import annotations

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_SCHEMA1 = frozenset(
    {
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    }
)

IMAGE_MANIFESTS = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEXES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
MANIFESTS = IMAGE_MANIFESTS | INDEXES


def bare(content_type: str | None) -> str:
    """The media type without parameters, lowercased."""
    if not content_type:
        return ""
    return content_type.split(";", 1)[0].strip().lower()


def acceptable(stored: str, accept_headers: list[str]) -> bool:
    """Whether a manifest of type ``stored`` may be served to a client sending these Accept headers.

    No Accept header, a wildcard, or an Accept that names no manifest type at all
    means the client takes what is stored.
    """
    offered: set[str] = set()
    for header in accept_headers:
        for part in header.split(","):
            media = bare(part)
            if media:
                offered.add(media)
    if not offered or "*/*" in offered or "application/*" in offered or stored in offered:
        return True
    return not (offered & (MANIFESTS | DOCKER_SCHEMA1))
