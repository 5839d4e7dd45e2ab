"""Architecture and OS of manifests, for ACR's manifest attributes.

They come from the image config blob, or from an index's entries. Both derive from
immutable content, so they are cached by manifest digest.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from dataclasses import dataclass

from dockyard.core import mediatypes as mt
from dockyard.storage import BlobStore

log = logging.getLogger("dockyard.attributes")

IMAGE_CONFIGS = frozenset({"application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json"})
MAX_CONFIG_BYTES = 4 << 20
PLATFORM_CACHE_SIZE = 10_000


@dataclass(frozen=True, slots=True)
class Platform:
    architecture: str | None = None
    os: str | None = None
    references: tuple[dict[str, str], ...] | None = None  # an index's children



class PlatformReader:
    def __init__(self, store: BlobStore) -> None:
        self.store = store
        self._platforms: OrderedDict[str, Platform] = OrderedDict()

    def known(self, digest: str) -> bool:
        """Whether the platform of ``digest`` is cached (its content need not be read)."""
        return digest in self._platforms

    async def of(self, digest: str, content: tuple[str, bytes] | None) -> Platform:
        """The platform of the manifest ``digest`` whose (media type, bytes) are ``content``."""
        cached = self._platforms.get(digest)
        if cached is not None:
            self._platforms.move_to_end(digest)
            return cached
        if content is None:
            return Platform()
        media_type, raw = content
        platform, final = await self._read_platform(media_type, raw)
        if final:
            self._platforms[digest] = platform
            while len(self._platforms) > PLATFORM_CACHE_SIZE:
                self._platforms.popitem(last=False)
        return platform

    async def _read_platform(self, media_type: str, raw: bytes) -> tuple[Platform, bool]:
        """The manifest's platform, and whether it may be cached (False when the config could not be read)."""
        try:
            document = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return Platform(), True
        if not isinstance(document, dict):
            return Platform(), True
        if media_type in mt.INDEXES:
            references = []
            for entry in document.get("manifests") or []:
                if not isinstance(entry, dict) or not isinstance(entry.get("digest"), str):
                    continue
                reference = {"digest": entry["digest"]}
                platform = entry.get("platform")
                if isinstance(platform, dict):
                    for field in ("architecture", "os"):
                        if isinstance(platform.get(field), str):
                            reference[field] = platform[field]
                references.append(reference)
            return Platform(references=tuple(references)), True
        config = document.get("config")
        if not isinstance(config, dict) or config.get("mediaType") not in IMAGE_CONFIGS:
            return Platform(), True
        digest = config.get("digest")
        if not isinstance(digest, str):
            return Platform(), True
        data = await self._read_config(digest)
        if data is None:
            return Platform(), False
        try:
            image = json.loads(data)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return Platform(), True
        if not isinstance(image, dict):
            return Platform(), True
        architecture, os_name = image.get("architecture"), image.get("os")
        return Platform(
            architecture=architecture if isinstance(architecture, str) else None,
            os=os_name if isinstance(os_name, str) else None,
        ), True

    async def _read_config(self, digest: str) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in self.store.read_blob(digest, 0, MAX_CONFIG_BYTES + 1):
                chunks.append(chunk)
                size += len(chunk)
        except Exception:  # missing or unreadable: leave architecture and OS out, and don't cache that
            log.warning("could not read config blob %s", digest, exc_info=True)
            return None
        return b"" if size > MAX_CONFIG_BYTES else b"".join(chunks)  # too large to be an image config
