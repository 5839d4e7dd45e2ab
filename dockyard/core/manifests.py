"""Parsing and checking manifests (OCI image-spec manifest.md and image-index.md, Docker schema 2).

A manifest is stored exactly as pushed; this module only reads it to find what
it references and how it describes itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from dockyard.core import mediatypes as mt
from dockyard.core.digests import Digest
from dockyard.core.errors import DigestInvalid, ManifestInvalid


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    has_urls: bool = False


@dataclass(slots=True)
class ParsedManifest:
    media_type: str
    blobs: list[Descriptor] = field(default_factory=list)  # config and layers
    children: list[Descriptor] = field(default_factory=list)  # manifests of an index
    subject: Descriptor | None = None
    artifact_type: str | None = None
    config_media_type: str | None = None
    annotations: dict[str, str] | None = None


def _descriptor(raw: Any, where: str) -> Descriptor:
    if not isinstance(raw, dict):
        raise ManifestInvalid(f"{where} is not a descriptor object")
    media_type, digest, size = raw.get("mediaType"), raw.get("digest"), raw.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise ManifestInvalid(f"{where} has no mediaType")
    if not isinstance(digest, str):
        raise ManifestInvalid(f"{where} has no digest")
    try:
        Digest.parse(digest)
    except DigestInvalid as exc:
        raise ManifestInvalid(f"{where}: {exc.message}") from None
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ManifestInvalid(f"{where} has no valid size")
    urls = raw.get("urls")
    return Descriptor(media_type, digest, size, bool(urls))


def _string_map(raw: Any, where: str) -> dict[str, str] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
        raise ManifestInvalid(f"{where} must map strings to strings")
    return raw


def parse(content: bytes, content_type: str | None) -> ParsedManifest:
    """Check a pushed manifest and return what it references."""
    try:
        doc = json.loads(content)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ManifestInvalid("manifest is not valid JSON") from None
    if not isinstance(doc, dict):
        raise ManifestInvalid("manifest is not a JSON object")

    declared = doc.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise ManifestInvalid("mediaType must be a string")
    header = mt.bare(content_type)
    if header in mt.DOCKER_SCHEMA1 or declared in mt.DOCKER_SCHEMA1 or doc.get("schemaVersion") == 1:
        raise ManifestInvalid(
            "Docker image manifest schema 1 is not supported; push schema 2 or OCI manifests "
            "(any current docker, podman or skopeo does)"
        )
    if doc.get("schemaVersion") != 2:
        raise ManifestInvalid("schemaVersion must be 2")
    if declared and header and header not in ("application/json", "application/octet-stream") and declared != header:
        raise ManifestInvalid(f"Content-Type {header!r} does not match the manifest's mediaType {declared!r}")

    media_type = declared or (header if header in mt.MANIFESTS else "")
    if not media_type:
        media_type = mt.OCI_INDEX if "manifests" in doc else mt.OCI_MANIFEST
    if media_type not in mt.MANIFESTS:
        raise ManifestInvalid(f"unsupported manifest media type {media_type[:100]!r}")

    artifact_type = doc.get("artifactType")
    if artifact_type is not None and (not isinstance(artifact_type, str) or not artifact_type):
        raise ManifestInvalid("artifactType must be a non-empty string")
    parsed = ParsedManifest(media_type=media_type, annotations=_string_map(doc.get("annotations"), "annotations"))
    if "subject" in doc and doc["subject"] is not None:
        parsed.subject = _descriptor(doc["subject"], "subject")

    if media_type in mt.IMAGE_MANIFESTS:
        if "config" not in doc:
            raise ManifestInvalid("image manifest has no config")
        config = _descriptor(doc["config"], "config")
        layers = doc.get("layers", [])
        if not isinstance(layers, list):
            raise ManifestInvalid("layers must be a list")
        parsed.blobs = [config] + [_descriptor(layer, f"layers[{i}]") for i, layer in enumerate(layers)]
        parsed.config_media_type = config.media_type
        parsed.artifact_type = artifact_type or config.media_type
    else:
        children = doc.get("manifests")
        if not isinstance(children, list):
            raise ManifestInvalid("index has no manifests list")
        parsed.children = [_descriptor(child, f"manifests[{i}]") for i, child in enumerate(children)]
        parsed.artifact_type = artifact_type
    return parsed


def referrers_index(descriptors: list[dict[str, Any]]) -> bytes:
    return json.dumps(
        {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": descriptors}, separators=(",", ":")
    ).encode()
