"""Listings: the catalog, tags of a repository, and referrers of a manifest.

Pages are read by key (``name > last ORDER BY name LIMIT n+1``), never by
loading a whole list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from dockyard.core.digests import Digest
from dockyard.metadata.database import Database
from dockyard.metadata.schema import manifests, repositories, tags
from dockyard.services import repositories as repos


@dataclass(frozen=True, slots=True)
class Page:
    items: list[str]
    more: bool


class ListingService:
    def __init__(self, db: Database, max_page: int = 1000) -> None:
        self.db = db
        self.max_page = max_page

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

    async def tags(self, registry_id: int, repository: str, n: int | None, last: str | None) -> Page:
        limit = self._limit(n)
        async with self.db.read() as conn:
            repository_id = await repos.require(conn, registry_id, repository)
            if limit == 0:
                return Page([], False)
            # A tag is listed unless it, or the manifest it points at, has listEnabled false.
            query = (
                sa.select(tags.c.name)
                .select_from(
                    tags.join(
                        manifests,
                        sa.and_(manifests.c.repository_id == tags.c.repository_id, manifests.c.digest == tags.c.digest),
                    )
                )
                .where(tags.c.repository_id == repository_id, tags.c.list_enabled, manifests.c.list_enabled)
            )
            if last:
                query = query.where(tags.c.name > last)
            query = query.order_by(tags.c.name).limit(limit + 1)
            names = list((await conn.execute(query)).scalars())
        return Page(names[:limit], len(names) > limit)

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
