"""Blobs as a repository sees them: linked, mounted, read and unlinked."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.core.digests import Digest, new_hasher
from dockyard.core.errors import BlobUnknown
from dockyard.core.lru import SizedLRU
from dockyard.metadata.database import Database, hot, param, utcnow
from dockyard.metadata.schema import blobs, repositories, repository_blobs
from dockyard.services import events, locks, repositories as repos
from dockyard.storage import BlobStore


@dataclass(frozen=True, slots=True)
class BlobInfo:
    digest: str
    size: int


# How long a redirect to the store stays usable: long enough to start a slow pull,
# short enough that a leaked URL soon stops working (a download under way continues).
DIRECT_URL_SECONDS = 20 * 60


# Built once; a request binds its values.
_STAT = (
    sa.select(blobs.c.size)
    .select_from(
        repository_blobs.join(repositories, repositories.c.id == repository_blobs.c.repository_id).join(
            blobs, blobs.c.digest == repository_blobs.c.digest
        )
    )
    .where(
        repositories.c.registry_id == sa.bindparam("registry_id"),
        repositories.c.name == sa.bindparam("repository"),
        repository_blobs.c.digest == sa.bindparam("digest"),
    )
)


def _exactly(data: bytes, info: BlobInfo) -> bytes | None:
    """``data`` if it is the blob's bytes (its size and digest), else None."""
    algorithm, _, expected = info.digest.partition(":")
    hasher = new_hasher(algorithm)
    hasher.update(data)
    return data if len(data) == info.size and hasher.hexdigest() == expected else None


SMALL_BLOB_BYTES = 64 << 10  # blobs up to this size are remembered ...
SMALL_CACHE_BYTES = 16 << 20  # ... up to this many bytes in all


class BlobService:
    def __init__(self, db: Database, store: BlobStore) -> None:
        self.db = db
        self.store = store
        self._link = None
        # The bytes of small blobs by digest, so a pull of one opens no file. Safe to share between
        # repositories, registries and across deletes: it holds bytes, never rights (the database is
        # asked whether the repository may see the blob, ``stat``, on every request before this).
        self._small: SizedLRU[bytes] = SizedLRU(SMALL_CACHE_BYTES, entry=SMALL_BLOB_BYTES)

    async def stat(self, registry_id: int, repository: str, digest: Digest) -> BlobInfo:
        params = {"registry_id": registry_id, "repository": repository, "digest": str(digest)}
        row = await self.db.fetch_one(_STAT, params)
        size = None if row is None else row.size
        if size is None:
            raise BlobUnknown(f"blob {digest} is not known in repository {repository!r}", detail={"digest": str(digest)})
        return BlobInfo(str(digest), size)

    def local_path(self, digest: str) -> Path | None:
        return self.store.local_path(digest)

    async def direct_url(self, digest: str) -> str | None:
        """A short-lived URL of the store itself for the blob, where the store can give one."""
        return await self.store.blob_url(digest, expires_in=DIRECT_URL_SECONDS)

    def read(self, digest: str, offset: int = 0, length: int | None = None):
        return self.store.read_blob(digest, offset, length)

    async def small_content(self, info: BlobInfo) -> bytes | None:
        """The bytes of a small blob, from memory once read; None for a big one, or where the
        store doesn't hold exactly the blob's bytes. Only after ``stat`` answered ``info`` for
        the caller's repository: the cache holds bytes, the database says who may see them."""
        if info.size > self._small.entry:
            return None
        data = self._small.get(info.digest)
        if data is None:
            try:
                data = _exactly(await self.store.read_small(info.digest, info.size), info)
            except (FileNotFoundError, KeyError):
                raise BlobUnknown(f"blob {info.digest} is missing from storage") from None
            if data is None:
                return None
            self._small.put(info.digest, data)
        return data

    async def link(self, conn: AsyncConnection, registry_id: int, repository: str, digest: str, size: int) -> None:
        """Record a stored blob and make it visible in a repository (inside the caller's transaction)."""
        await repos.lock(self.db, conn, registry_id, repository)
        now = utcnow()
        add_blob, add_link = self._link_statements()
        await conn.execute(add_blob, {"digest": digest, "size": size, "now": now})
        repository_id = await repos.ensure(self.db, conn, registry_id, repository)
        await conn.execute(add_link, {"repository_id": repository_id, "digest": digest, "now": now})

    def _link_statements(self):
        """The two inserts of ``link``, built once per database dialect."""
        if self._link is None:
            self._link = (
                hot(self.db.insert(blobs).values(
                    digest=param(blobs.c.digest), size=param(blobs.c.size),
                    created_at=param(blobs.c.created_at, "now")).on_conflict_do_nothing()),
                hot(self.db.insert(repository_blobs).values(
                    repository_id=param(repository_blobs.c.repository_id), digest=param(repository_blobs.c.digest),
                    created_at=param(repository_blobs.c.created_at, "now")).on_conflict_do_nothing()),
            )
        return self._link

    async def mount(
        self,
        registry_id: int,
        repository: str,
        digest: Digest,
        source: str | None,
        can_read: Callable[[str], Awaitable[bool]],
    ) -> BlobInfo | None:
        """Link a blob that another repository of the same registry holds; None if it can't be."""
        query = (
            sa.select(repositories.c.name, blobs.c.size)
            .select_from(
                repository_blobs.join(repositories, repositories.c.id == repository_blobs.c.repository_id).join(
                    blobs, blobs.c.digest == repository_blobs.c.digest
                )
            )
            .where(repositories.c.registry_id == registry_id, repository_blobs.c.digest == str(digest))
        )
        query = query.where(repositories.c.name == source) if source else query.limit(100)
        async with self.db.read() as conn:
            holders = (await conn.execute(query)).all()
        for holder in holders:
            if holder.name == repository or await can_read(holder.name):
                async with self.db.write() as conn:
                    await self.link(conn, registry_id, repository, str(digest), holder.size)
                return BlobInfo(str(digest), holder.size)
        return None

    async def delete(self, registry_id: int, repository: str, digest: Digest, actor: str | None = None) -> None:
        async with self.db.write() as conn:
            await repos.lock(self.db, conn, registry_id, repository)
            repository_id = await locks.repository_for_delete(conn, registry_id, repository)
            result = await conn.execute(
                sa.delete(repository_blobs).where(
                    repository_blobs.c.repository_id == repository_id, repository_blobs.c.digest == str(digest)
                )
            )
            if result.rowcount == 0:
                raise BlobUnknown(f"blob {digest} is not known in repository {repository!r}", detail={"digest": str(digest)})
            await events.record(
                conn,
                registry_id=registry_id,
                action=events.BLOB_DELETE,
                repository=repository,
                digest=str(digest),
                actor=actor,
            )
