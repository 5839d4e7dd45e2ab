"""Listings: the catalog, tags of a repository, and referrers of a manifest.

Pages are read by key (``name > last ORDER BY name LIMIT n+1``), never by
loading a whole list.

A tag list without ``n`` is one page of up to ``whole_page`` tags (the spec lets a
server answer the whole list; Distribution does). Rendered tag pages are kept
under the repository's ``tag_version``, which the database bumps in the
transaction of every change a tag list could show (migration 0007), so any
process sees another's change on its next request: a repeated listing is one
indexed lookup of the repository row.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from dockyard.core.digests import Digest
from dockyard.core.lru import SizedLRU
from dockyard.metadata.database import Database, hot
from dockyard.metadata.schema import manifests, repositories, tags
from dockyard.services import repositories as repos


@dataclass(frozen=True, slots=True)
class Page:
    items: list[str]
    more: bool


@dataclass(frozen=True, slots=True)
class TagPage:
    body: bytes  # the tags/list document
    last: str | None  # the page's last tag when more follow, else None


_REPOSITORY = hot(
    # created_at tells a repository from an earlier one that had the same id
    sa.select(repositories.c.id, repositories.c.created_at, repositories.c.tag_version).where(
        repositories.c.registry_id == sa.bindparam("registry_id"), repositories.c.name == sa.bindparam("name")
    )
)
# A tag is listed unless it, or the manifest it points at, has listEnabled false.
_TAGS = hot(
    sa.select(tags.c.name)
    .select_from(
        tags.join(
            manifests, sa.and_(manifests.c.repository_id == tags.c.repository_id, manifests.c.digest == tags.c.digest)
        )
    )
    .where(
        tags.c.repository_id == sa.bindparam("repository_id"),
        tags.c.name > sa.bindparam("last"),
        tags.c.list_enabled,
        manifests.c.list_enabled,
    )
    .order_by(tags.c.name)
    .limit(sa.bindparam("limit"))
    .offset(sa.bindparam("offset"))  # always 0: SQLite's LIMIT ? comes with an OFFSET ?, which must be named
)
_NEEDS_ESCAPING = re.compile(r'[\x00-\x1f"\\]')


def render_tags(repository: str, names: list[str]) -> bytes:
    """The tags/list document. Tag names (``[A-Za-z0-9_][A-Za-z0-9._-]*``) need no JSON escaping."""
    joined = '","'.join(names)
    if _NEEDS_ESCAPING.search(joined):
        return json.dumps({"name": repository, "tags": names}).encode()
    items = f'"{joined}"' if names else ""
    return f'{{"name":{json.dumps(repository)},"tags":[{items}]}}'.encode()


class ListingService:
    def __init__(self, db: Database, max_page: int = 1000, whole_page: int = 10_000, cache_bytes: int = 4 << 20) -> None:
        self.db = db
        self.max_page = max_page
        self.whole_page = whole_page
        self._rendered: SizedLRU[TagPage] = SizedLRU(cache_bytes, size=lambda page: len(page.body))  # rendered pages

    def _limit(self, n: int | None) -> int:
        return self.max_page if n is None else min(n, self.max_page)

    async def catalog(self, registry_id: int, n: int | None, last: str | None) -> Page:
        limit = self._limit(n)
        if limit == 0:
            return Page([], False)
        query = sa.select(repositories.c.name).where(
            repositories.c.registry_id == registry_id, repositories.c.list_enabled  # listEnabled false hides it
        )
        if last:
            query = query.where(repositories.c.name > last)
        query = query.order_by(repositories.c.name).limit(limit + 1)
        async with self.db.read() as conn:
            names = list((await conn.execute(query)).scalars())
        return Page(names[:limit], len(names) > limit)

    async def tags(self, registry_id: int, repository: str, n: int | None, last: str | None) -> TagPage:
        """A page of the repository's tags, rendered; without ``n`` up to ``whole_page`` of them."""
        row = await self.db.fetch_one(_REPOSITORY, {"registry_id": registry_id, "name": repository})
        if row is None:
            raise repos.unknown(repository)
        limit = self.whole_page if n is None else min(n, self.max_page)
        # The version is read before the tags: a page is never older than the version it is kept under.
        key = (row.id, row.created_at, row.tag_version, limit, last or "")
        page = self._rendered.get(key)
        if page is None:
            names = []
            if limit:
                params = {"repository_id": row.id, "last": last or "", "limit": limit + 1, "offset": 0}
                names = [name for name, in await self.db.fetch_all(_TAGS, params)]
            more = len(names) > limit
            del names[limit:]
            page = TagPage(render_tags(repository, names), names[-1] if more else None)
            self._rendered.put(key, page)
        return page

    async def referrers(
        self, registry_id: int, repository: str, subject: Digest, artifact_type: str | None
    ) -> list[dict[str, Any]]:
        query = (
            sa.select(
                manifests.c.digest,
                manifests.c.media_type,
                manifests.c.size,
                manifests.c.artifact_type,
                manifests.c.annotations,
            )
            .select_from(manifests.join(repositories, repositories.c.id == manifests.c.repository_id))
            .where(
                repositories.c.registry_id == registry_id,
                repositories.c.name == repository,
                manifests.c.subject == str(subject),
            )
            .order_by(manifests.c.created_at, manifests.c.digest)
        )
        if artifact_type:
            query = query.where(manifests.c.artifact_type == artifact_type)
        async with self.db.read() as conn:
            rows = (await conn.execute(query)).all()
        descriptors = []
        for row in rows:
            descriptor: dict[str, Any] = {"mediaType": row.media_type, "digest": row.digest, "size": row.size}
            if row.artifact_type:
                descriptor["artifactType"] = row.artifact_type
            if row.annotations:
                descriptor["annotations"] = row.annotations
            descriptors.append(descriptor)
        return descriptors
