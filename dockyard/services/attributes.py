"""ACR's metadata API (``/acr/v1``): attributes of repositories, tags and manifests, their listings, and
repository deletion.

Documents come out in ACR's shapes (the azure-containerregistry SDK's generated
models): ``registry``, ``imageName``, ``createdTime``, ``lastUpdateTime``,
``changeableAttributes`` and so on. Listings are read by key, never whole:

- by name (tags) or digest (manifests): ``key > last ORDER BY key LIMIT n+1``;
- by time (``orderby=timeasc|timedesc``): ordered by (last update time, key), and
  ``last`` is the cursor ``<time>&<key>`` of the last item of the previous page, so a
  page stays correct when the item it ended on has been deleted since (as ``acr
  purge`` does). A plain name as ``last`` starts after that item if it still exists,
  else from the first item.

Architecture and OS come from the image config blob, or from an index's entries;
both are derived from immutable content, so they are cached by manifest digest.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.core.digests import Digest, is_digest
from dockyard.core.errors import ManifestUnknown, NameUnknown
from dockyard.core.names import is_tag
from dockyard.metadata.database import Database
from dockyard.metadata.schema import blobs, manifest_references, manifests, repositories, repository_blobs, tags
from dockyard.services import events, locks, repositories as repos
from dockyard.services.manifests import ManifestService
from dockyard.services.platforms import PlatformReader
from dockyard.storage import BlobStore

if TYPE_CHECKING:
    from dockyard.services.registries import Registry

log = logging.getLogger("dockyard.attributes")

TIME_ASC = "timeasc"
TIME_DESC = "timedesc"
ORDERS = (TIME_ASC, TIME_DESC)

_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_IN_BATCH = 500


@dataclass(frozen=True, slots=True)
class Listing:
    document: dict[str, Any]
    last: str | None  # ``last`` of the next page; None when this is the last page


def timestamp(value: datetime) -> str:
    """ACR's time format (RFC 3339, UTC, fractional seconds). Naive values from SQLite are UTC."""
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.strftime(_TIME_FORMAT)


def _cursor(when: datetime, key: str) -> str:
    return f"{timestamp(when)}&{key}"


def _parse_cursor(last: str) -> tuple[datetime, str] | None:
    stamp, separator, key = last.partition("&")  # '&' is in neither tags nor digests
    if not separator or not key:
        return None
    try:
        return datetime.strptime(stamp, _TIME_FORMAT).replace(tzinfo=UTC), key
    except ValueError:
        return None


def _changeable(row) -> dict[str, bool]:
    return {
        "deleteEnabled": bool(row.delete_enabled),
        "writeEnabled": bool(row.write_enabled),
        "readEnabled": bool(row.read_enabled),
        "listEnabled": bool(row.list_enabled),
    }


def _lock_columns(table: sa.Table) -> tuple:
    return (table.c.delete_enabled, table.c.write_enabled, table.c.read_enabled, table.c.list_enabled)


def _values(attributes: Mapping[str, bool]) -> dict[str, bool]:
    """Columns to set from ACR's attribute names; other names (e.g. ``teleportEnabled``) are ignored."""
    return {locks.ATTRIBUTES[name]: bool(value) for name, value in attributes.items() if name in locks.ATTRIBUTES}


def _paged(query, when, key, orderby: str | None, last: str | None, cursor: tuple[datetime, str] | None):
    if orderby == TIME_ASC:
        if cursor is not None:
            query = query.where(sa.or_(when > cursor[0], sa.and_(when == cursor[0], key > cursor[1])))
        return query.order_by(when, key)
    if orderby == TIME_DESC:
        if cursor is not None:
            query = query.where(sa.or_(when < cursor[0], sa.and_(when == cursor[0], key < cursor[1])))
        return query.order_by(when.desc(), key.desc())
    if last:
        query = query.where(key > last)
    return query.order_by(key)


def _tag(row) -> dict[str, Any]:
    return {
        "name": row.name,
        "digest": row.digest,
        "createdTime": timestamp(row.created_at),
        "lastUpdateTime": timestamp(row.updated_at),
        "signed": False,
        "changeableAttributes": _changeable(row),
    }


class AttributeService:
    def __init__(self, db: Database, store: BlobStore, manifest_service: ManifestService, max_page: int = 1000) -> None:
        self.db = db
        self.store = store
        self.manifests = manifest_service
        self.max_page = max_page
        self.platforms = PlatformReader(store)

    def _limit(self, n: int | None) -> int:
        return self.max_page if n is None else min(n, self.max_page)

    # -- repositories --------------------------------------------------------
    async def get_repository(self, registry: Registry, name: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            return await self._repository(conn, registry, name)

    async def _repository(self, conn: AsyncConnection, registry: Registry, name: str) -> dict[str, Any]:
        manifest_count = (
            sa.select(sa.func.count()).select_from(manifests).where(manifests.c.repository_id == repositories.c.id)
        ).scalar_subquery()
        tag_count = (
            sa.select(sa.func.count()).select_from(tags).where(tags.c.repository_id == repositories.c.id)
        ).scalar_subquery()
        query = sa.select(
            repositories.c.created_at,
            repositories.c.updated_at,
            *_lock_columns(repositories),
            manifest_count.label("manifest_count"),
            tag_count.label("tag_count"),
        ).where(repositories.c.registry_id == registry.id, repositories.c.name == name)
        row = (await conn.execute(query)).first()
        if row is None:
            raise NameUnknown(f"repository {name!r} is not known to the registry", detail={"name": name})
        return {
            "registry": registry.login_server,
            "imageName": name,
            "createdTime": timestamp(row.created_at),
            "lastUpdateTime": timestamp(row.updated_at),
            "manifestCount": row.manifest_count,
            "tagCount": row.tag_count,
            "changeableAttributes": _changeable(row),
        }

    async def update_repository(self, registry: Registry, name: str, attributes: Mapping[str, bool]) -> dict[str, Any]:
        values = _values(attributes)
        async with self.db.write() as conn:
            await repos.lock(self.db, conn, registry.id, name)
            repository_id = await repos.require(conn, registry.id, name)
            if values:
                await conn.execute(sa.update(repositories).where(repositories.c.id == repository_id).values(**values))
            return await self._repository(conn, registry, name)

    async def delete_repository(self, registry: Registry, name: str, actor: str | None = None) -> dict[str, list[str]]:
        """Delete a repository with its manifests, tags and blob links; ACR's ``{manifestsDeleted, tagsDeleted}``."""
        async with self.db.write() as conn:
            await repos.lock(self.db, conn, registry.id, name)
            repository_id = await locks.repository_for_delete(conn, registry.id, name)
            await locks.check_repository_delete(conn, repository_id, name)
            tag_rows = (
                await conn.execute(
                    sa.select(tags.c.name, tags.c.digest).where(tags.c.repository_id == repository_id).order_by(tags.c.name)
                )
            ).all()
            manifest_rows = (
                await conn.execute(
                    sa.select(manifests.c.digest, manifests.c.media_type, manifests.c.size)
                    .where(manifests.c.repository_id == repository_id)
                    .order_by(manifests.c.digest)
                )
            ).all()
            ids = sa.select(manifests.c.id).where(manifests.c.repository_id == repository_id)
            await conn.execute(sa.delete(manifest_references).where(manifest_references.c.manifest_id.in_(ids)))
            await conn.execute(sa.delete(tags).where(tags.c.repository_id == repository_id))
            await conn.execute(sa.delete(manifests).where(manifests.c.repository_id == repository_id))
            await conn.execute(sa.delete(repository_blobs).where(repository_blobs.c.repository_id == repository_id))
            await conn.execute(sa.delete(repositories).where(repositories.c.id == repository_id))

            tags_of: dict[str, list[str]] = {}
            for row in tag_rows:
                tags_of.setdefault(row.digest, []).append(row.name)
            for row in manifest_rows:
                for tag in tags_of.pop(row.digest, []):
                    await events.record(
                        conn, registry_id=registry.id, action=events.TAG_DELETE, repository=name,
                        digest=row.digest, tag=tag, actor=actor,
                    )
                await events.record(
                    conn, registry_id=registry.id, action=events.DELETE, repository=name, digest=row.digest,
                    media_type=row.media_type, size=row.size, actor=actor,
                )
            for digest, names in sorted(tags_of.items()):  # tags of no stored manifest (should not happen)
                for tag in names:
                    await events.record(
                        conn, registry_id=registry.id, action=events.TAG_DELETE, repository=name,
                        digest=digest, tag=tag, actor=actor,
                    )
            await events.record(conn, registry_id=registry.id, action=events.REPOSITORY_DELETE, repository=name, actor=actor)
        return {"manifestsDeleted": [row.digest for row in manifest_rows], "tagsDeleted": [row.name for row in tag_rows]}

    # -- tags ----------------------------------------------------------------
    def _tag_query(self):
        return sa.select(tags.c.name, tags.c.digest, tags.c.created_at, tags.c.updated_at, *_lock_columns(tags))

    async def list_tags(
        self,
        registry: Registry,
        name: str,
        n: int | None = None,
        last: str | None = None,
        orderby: str | None = None,
        digest: str | None = None,
    ) -> Listing:
        limit = self._limit(n)
        rows: list = []
        async with self.db.read() as conn:
            repository_id = await repos.require(conn, registry.id, name)
            if limit:
                query = (
                    self._tag_query()
                    .select_from(
                        tags.join(
                            manifests,
                            sa.and_(manifests.c.repository_id == tags.c.repository_id, manifests.c.digest == tags.c.digest),
                        )
                    )
                    .where(tags.c.repository_id == repository_id, tags.c.list_enabled, manifests.c.list_enabled)
                )
                if digest:
                    query = query.where(tags.c.digest == digest)
                cursor = None
                if orderby and last:
                    cursor = _parse_cursor(last) or await self._tag_cursor(conn, repository_id, last)
                query = _paged(query, tags.c.updated_at, tags.c.name, orderby, last, cursor)
                rows = list((await conn.execute(query.limit(limit + 1))).all())
        more = len(rows) > limit
        rows = rows[:limit]
        next_last = None
        if more:
            next_last = _cursor(rows[-1].updated_at, rows[-1].name) if orderby else rows[-1].name
        document = {"registry": registry.login_server, "imageName": name, "tags": [_tag(row) for row in rows]}
        return Listing(document, next_last)

    async def _tag_cursor(self, conn: AsyncConnection, repository_id: int, name: str) -> tuple[datetime, str] | None:
        when = (
            await conn.execute(
                sa.select(tags.c.updated_at).where(tags.c.repository_id == repository_id, tags.c.name == name)
            )
        ).scalar()
        return None if when is None else (when, name)

    async def get_tag(self, registry: Registry, name: str, tag: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            return await self._tag_document(conn, registry, name, tag)

    async def _tag_document(self, conn: AsyncConnection, registry: Registry, name: str, tag: str) -> dict[str, Any]:
        repository_id = await repos.require(conn, registry.id, name)
        row = None
        if is_tag(tag):
            query = self._tag_query().where(tags.c.repository_id == repository_id, tags.c.name == tag)
            row = (await conn.execute(query)).first()
        if row is None:
            raise _tag_unknown(name, tag)
        return {"registry": registry.login_server, "imageName": name, "tag": _tag(row)}

    async def update_tag(self, registry: Registry, name: str, tag: str, attributes: Mapping[str, bool]) -> dict[str, Any]:
        values = _values(attributes)
        async with self.db.write() as conn:
            await repos.lock(self.db, conn, registry.id, name)
            repository_id = await repos.require(conn, registry.id, name)
            if values and is_tag(tag):
                await conn.execute(
                    sa.update(tags).where(tags.c.repository_id == repository_id, tags.c.name == tag).values(**values)
                )
            return await self._tag_document(conn, registry, name, tag)

    async def delete_tag(self, registry: Registry, name: str, tag: str, actor: str | None = None) -> None:
        if not is_tag(tag):
            raise _tag_unknown(name, tag)
        await self.manifests.delete(registry.id, name, tag, actor)

    # -- manifests -----------------------------------------------------------
    @staticmethod
    def _manifest_query():
        blob_bytes = (
            sa.select(sa.func.coalesce(sa.func.sum(blobs.c.size), 0))
            .select_from(manifest_references.join(blobs, blobs.c.digest == manifest_references.c.digest))
            .where(manifest_references.c.manifest_id == manifests.c.id, manifest_references.c.kind == "blob")
            .scalar_subquery()
        )
        return sa.select(
            manifests.c.digest,
            manifests.c.media_type,
            manifests.c.config_media_type,
            manifests.c.created_at,
            sa.func.coalesce(manifests.c.updated_at, manifests.c.created_at).label("updated"),
            (manifests.c.size + blob_bytes).label("image_size"),
            *_lock_columns(manifests),
        )

    async def list_manifests(
        self, registry: Registry, name: str, n: int | None = None, last: str | None = None, orderby: str | None = None
    ) -> Listing:
        limit = self._limit(n)
        rows: list = []
        tags_of: dict[str, list[str]] = {}
        contents: dict[str, tuple[str, bytes]] = {}
        async with self.db.read() as conn:
            repository_id = await repos.require(conn, registry.id, name)
            if limit:
                updated = sa.func.coalesce(manifests.c.updated_at, manifests.c.created_at)
                query = self._manifest_query().where(manifests.c.repository_id == repository_id, manifests.c.list_enabled)
                cursor = None
                if orderby and last:
                    cursor = _parse_cursor(last) or await self._manifest_cursor(conn, repository_id, last)
                query = _paged(query, updated, manifests.c.digest, orderby, last, cursor)
                rows = list((await conn.execute(query.limit(limit + 1))).all())
            more = len(rows) > limit
            rows = rows[:limit]
            digests = [row.digest for row in rows]
            tags_of = await self._tags_of(conn, repository_id, digests, listed_only=True)
            contents = await self._contents(conn, repository_id, [d for d in digests if not self.platforms.known(d)])
        next_last = None
        if more:
            next_last = _cursor(rows[-1].updated, rows[-1].digest) if orderby else rows[-1].digest
        items = [await self._manifest(row, tags_of.get(row.digest, []), contents) for row in rows]
        return Listing({"registry": registry.login_server, "imageName": name, "manifests": items}, next_last)

    async def _manifest_cursor(self, conn: AsyncConnection, repository_id: int, digest: str) -> tuple[datetime, str] | None:
        when = (
            await conn.execute(
                sa.select(sa.func.coalesce(manifests.c.updated_at, manifests.c.created_at)).where(
                    manifests.c.repository_id == repository_id, manifests.c.digest == digest
                )
            )
        ).scalar()
        return None if when is None else (when, digest)

    async def get_manifest(self, registry: Registry, name: str, reference: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            row, tag_names, contents = await self._manifest_row(conn, registry, name, reference)
        return {"registry": registry.login_server, "imageName": name, "manifest": await self._manifest(row, tag_names, contents)}

    async def update_manifest(
        self, registry: Registry, name: str, reference: str, attributes: Mapping[str, bool]
    ) -> dict[str, Any]:
        values = _values(attributes)
        async with self.db.write() as conn:
            await repos.lock(self.db, conn, registry.id, name)
            repository_id = await repos.require(conn, registry.id, name)
            digest = await self._resolve(conn, repository_id, name, reference)
            if values:
                await conn.execute(
                    sa.update(manifests)
                    .where(manifests.c.repository_id == repository_id, manifests.c.digest == digest)
                    .values(**values)
                )
            row, tag_names, contents = await self._manifest_row(conn, registry, name, digest)
        return {"registry": registry.login_server, "imageName": name, "manifest": await self._manifest(row, tag_names, contents)}

    async def delete_manifest(self, registry: Registry, name: str, reference: str, actor: str | None = None) -> None:
        """Delete a manifest (and its tags) by digest, or the manifest a tag points at."""
        digest = reference
        if not is_digest(reference):
            async with self.db.read() as conn:
                repository_id = await repos.require(conn, registry.id, name)
                digest = await self._resolve(conn, repository_id, name, reference)
        await self.manifests.delete(registry.id, name, digest, actor)

    async def _resolve(self, conn: AsyncConnection, repository_id: int, name: str, reference: str) -> str:
        """The digest of a manifest named by digest or tag, known in the repository."""
        if is_digest(reference):
            digest = str(Digest.parse(reference))
            query = sa.select(manifests.c.digest).where(
                manifests.c.repository_id == repository_id, manifests.c.digest == digest
            )
        elif is_tag(reference):
            query = sa.select(tags.c.digest).where(tags.c.repository_id == repository_id, tags.c.name == reference)
        else:
            raise ManifestUnknown(f"{reference[:140]!r} is neither a valid tag nor a digest")
        found = (await conn.execute(query)).scalar()
        if found is None:
            raise ManifestUnknown(
                f"manifest {reference!r} is not known in repository {name!r}",
                detail={"name": name, "reference": reference},
            )
        return found

    async def _manifest_row(self, conn: AsyncConnection, registry: Registry, name: str, reference: str):
        repository_id = await repos.require(conn, registry.id, name)
        digest = await self._resolve(conn, repository_id, name, reference)
        row = (
            await conn.execute(
                self._manifest_query().where(manifests.c.repository_id == repository_id, manifests.c.digest == digest)
            )
        ).one()
        tag_names = (await self._tags_of(conn, repository_id, [digest], listed_only=False)).get(digest, [])
        contents = await self._contents(conn, repository_id, [] if self.platforms.known(digest) else [digest])
        return row, tag_names, contents

    async def _tags_of(
        self, conn: AsyncConnection, repository_id: int, digests: list[str], listed_only: bool
    ) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for start in range(0, len(digests), _IN_BATCH):
            query = sa.select(tags.c.digest, tags.c.name).where(
                tags.c.repository_id == repository_id, tags.c.digest.in_(digests[start : start + _IN_BATCH])
            )
            if listed_only:
                query = query.where(tags.c.list_enabled)
            for row in await conn.execute(query.order_by(tags.c.name)):
                found.setdefault(row.digest, []).append(row.name)
        return found

    async def _contents(self, conn: AsyncConnection, repository_id: int, digests: list[str]) -> dict[str, tuple[str, bytes]]:
        """Stored bytes of manifests whose platform isn't cached yet."""
        found: dict[str, tuple[str, bytes]] = {}
        for start in range(0, len(digests), _IN_BATCH):
            query = sa.select(manifests.c.digest, manifests.c.media_type, manifests.c.content).where(
                manifests.c.repository_id == repository_id, manifests.c.digest.in_(digests[start : start + _IN_BATCH])
            )
            for row in await conn.execute(query):
                found[row.digest] = (row.media_type, bytes(row.content))
        return found

    async def _manifest(self, row, tag_names: list[str], contents: dict[str, tuple[str, bytes]]) -> dict[str, Any]:
        platform = await self.platforms.of(row.digest, contents.get(row.digest))
        document: dict[str, Any] = {
            "digest": row.digest,
            "imageSize": int(row.image_size),
            "createdTime": timestamp(row.created_at),
            "lastUpdateTime": timestamp(row.updated),
        }
        if platform.architecture:
            document["architecture"] = platform.architecture
        if platform.os:
            document["os"] = platform.os
        document["mediaType"] = row.media_type
        if row.config_media_type:
            document["configMediaType"] = row.config_media_type
        document["tags"] = tag_names
        document["changeableAttributes"] = _changeable(row)
        if platform.references is not None:
            document["references"] = list(platform.references)
        return document

def _tag_unknown(name: str, tag: str) -> ManifestUnknown:
    return ManifestUnknown(
        f"tag {tag[:140]!r} is not known in repository {name!r}", detail={"name": name, "tag": tag[:140]}
    )
