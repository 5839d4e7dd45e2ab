"""Manifests and tags: push with validation, pull, delete."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.core import manifests as parsing
from dockyard.core.digests import Digest, is_digest
from dockyard.core.errors import DigestInvalid, ManifestBlobUnknown, ManifestInvalid, ManifestTooLarge, ManifestUnknown
from dockyard.core.names import check_tag, is_tag
from dockyard.metadata.database import Database, hot, utcnow
from dockyard.metadata.schema import blobs, manifest_references, manifests, repositories, repository_blobs, tags
from dockyard.services import events, locks, repositories as repos

MAX_MANIFEST_BYTES = 4 << 20
_IN_BATCH = 500


@dataclass(frozen=True, slots=True)
class ManifestRecord:
    digest: str
    media_type: str
    size: int
    content: bytes


@dataclass(frozen=True, slots=True)
class PushResult:
    digest: str
    subject: str | None
    tags: list[str]


_PULL_COLUMNS = (
    manifests.c.digest, manifests.c.media_type, manifests.c.size, manifests.c.content,
    repositories.c.read_enabled.label("repository_read"), manifests.c.read_enabled.label("manifest_read"),
)
_GET_BY_DIGEST = (
    sa.select(*_PULL_COLUMNS, sa.null().label("tag_read"))
    .select_from(manifests.join(repositories, repositories.c.id == manifests.c.repository_id))
    .where(
        repositories.c.registry_id == sa.bindparam("registry_id"),
        repositories.c.name == sa.bindparam("repository"),
        manifests.c.digest == sa.bindparam("reference"),
    )
)
_GET_BY_TAG = (
    sa.select(*_PULL_COLUMNS, tags.c.read_enabled.label("tag_read"))
    .select_from(
        tags.join(repositories, repositories.c.id == tags.c.repository_id).join(
            manifests, sa.and_(manifests.c.repository_id == tags.c.repository_id, manifests.c.digest == tags.c.digest)
        )
    )
    .where(
        repositories.c.registry_id == sa.bindparam("registry_id"),
        repositories.c.name == sa.bindparam("repository"),
        tags.c.name == sa.bindparam("reference"),
    )
)


_ONE_BLOB = hot(
    sa.select(blobs.c.digest, blobs.c.size)
    .select_from(repository_blobs.join(blobs, blobs.c.digest == repository_blobs.c.digest))
    .where(
        repository_blobs.c.repository_id == sa.bindparam("repository_id"),
        repository_blobs.c.digest == sa.bindparam("digest"),
    )
)
_EXISTING = hot(
    sa.select(manifests.c.id).where(
        manifests.c.repository_id == sa.bindparam("repository_id"), manifests.c.digest == sa.bindparam("digest")
    )
)


class ManifestService:
    def __init__(self, db: Database, max_bytes: int = MAX_MANIFEST_BYTES) -> None:
        self.db = db
        self.max_bytes = max_bytes
        self._upsert = None

    # -- pull --------------------------------------------------------------
    async def get(self, registry_id: int, repository: str, reference: str) -> ManifestRecord:
        # The locks come in the same query: a pull stays one round trip. The statements are
        # built once (below); a request only binds its values.
        params = {"registry_id": registry_id, "repository": repository, "reference": reference}
        if is_digest(reference):
            params["reference"] = str(Digest.parse(reference))
            query = _GET_BY_DIGEST
        elif is_tag(reference):
            query = _GET_BY_TAG
        else:
            raise ManifestUnknown(f"{reference[:140]!r} is neither a valid tag nor a digest")
        row = await self.db.fetch_one(query, params)
        if row is None:
            async with self.db.read() as conn:
                await repos.require(conn, registry_id, repository)
                raise ManifestUnknown(
                    f"manifest {reference!r} is not known in repository {repository!r}",
                    detail={"name": repository, "reference": reference},
                )
        locks.check_read(row, repository, reference)
        return ManifestRecord(row.digest, row.media_type, row.size, bytes(row.content))

    # -- push --------------------------------------------------------------
    async def put(
        self,
        registry_id: int,
        repository: str,
        reference: str,
        content: bytes,
        content_type: str | None,
        extra_tags: list[str] = (),
        actor: str | None = None,
    ) -> PushResult:
        if len(content) > self.max_bytes:
            raise ManifestTooLarge(f"manifest is {len(content)} bytes; the limit is {self.max_bytes}")
        if is_digest(reference):
            digest = Digest.parse(reference)
            if Digest.of(content, digest.algorithm) != digest:
                raise DigestInvalid(f"the manifest does not match digest {digest}", detail={"digest": str(digest)})
            new_tags = [check_tag(tag) for tag in extra_tags]
        else:
            digest = Digest.of(content)
            new_tags = [check_tag(reference)] + [check_tag(tag) for tag in extra_tags if tag != reference]
        parsed = parsing.parse(content, content_type)
        subject = parsed.subject.digest if parsed.subject else None

        async with self.db.write() as conn:
            await repos.lock(self.db, conn, registry_id, repository)
            repository_id = await repos.ensure(self.db, conn, registry_id, repository)
            await locks.check_push(conn, repository_id, repository, new_tags)
            await self._check_references(conn, repository_id, parsed)
            manifest_id, created = await self._insert(conn, repository_id, str(digest), content, parsed, subject)
            now = utcnow()
            for tag in new_tags:
                await conn.execute(
                    self._tag_upsert(),
                    {"repository_id": repository_id, "name": tag, "digest": str(digest), "now": now},
                )
            await repos.touch(conn, repository_id)
            for tag in new_tags or [None]:
                if tag is None and not created:
                    continue
                await events.record(
                    conn,
                    registry_id=registry_id,
                    action=events.PUSH,
                    repository=repository,
                    digest=str(digest),
                    tag=tag,
                    media_type=parsed.media_type,
                    size=len(content),
                    actor=actor,
                )
        return PushResult(str(digest), subject, new_tags)

    def _tag_upsert(self):
        """Point a tag at a digest, creating it if need be (built once per database dialect)."""
        if self._upsert is None:
            now = sa.bindparam("now", type_=tags.c.updated_at.type)
            digest = sa.bindparam("digest", type_=tags.c.digest.type)
            self._upsert = hot(
                self.db.insert(tags)
                .values(repository_id=sa.bindparam("repository_id"), name=sa.bindparam("name"), digest=digest,
                        created_at=now, updated_at=now)
                .on_conflict_do_update(index_elements=["repository_id", "name"], set_={"digest": digest, "updated_at": now})
            )
        return self._upsert

    async def _check_references(self, conn: AsyncConnection, repository_id: int, parsed) -> None:
        wanted = {d.digest: d for d in parsed.blobs if not d.has_urls}
        found: dict[str, int] = {}
        for batch in _batches(list(wanted)):
            if len(batch) == 1:  # an image's config, an artifact's one blob: a statement built once
                rows = await conn.execute(_ONE_BLOB, {"repository_id": repository_id, "digest": batch[0]})
            else:
                rows = await conn.execute(
                    sa.select(blobs.c.digest, blobs.c.size)
                    .select_from(repository_blobs.join(blobs, blobs.c.digest == repository_blobs.c.digest))
                    .where(repository_blobs.c.repository_id == repository_id, repository_blobs.c.digest.in_(batch))
                )
            found.update({row.digest: row.size for row in rows})
        for digest, descriptor in wanted.items():
            if digest not in found:
                raise ManifestBlobUnknown(f"blob {digest} is not in the repository", detail={"digest": digest})
            if found[digest] != descriptor.size:
                raise ManifestInvalid(
                    f"descriptor of {digest} says {descriptor.size} bytes; the blob has {found[digest]}",
                    detail={"digest": digest},
                )
        children = {d.digest for d in parsed.children}
        present: set[str] = set()
        for batch in _batches(list(children)):
            query = sa.select(manifests.c.digest).where(
                manifests.c.repository_id == repository_id, manifests.c.digest.in_(batch)
            )
            present.update((await conn.execute(query)).scalars())
        for digest in children - present:
            raise ManifestBlobUnknown(f"manifest {digest} is not in the repository", detail={"digest": digest})

    async def _insert(self, conn, repository_id, digest, content, parsed, subject) -> tuple[int, bool]:
        existing = (await conn.execute(_EXISTING, {"repository_id": repository_id, "digest": digest})).scalar()
        if existing is not None:
            return existing, False
        manifest_id = (
            await conn.execute(
                sa.insert(manifests)
                .values(
                    repository_id=repository_id,
                    digest=digest,
                    media_type=parsed.media_type,
                    size=len(content),
                    content=content,
                    artifact_type=parsed.artifact_type,
                    config_media_type=parsed.config_media_type,
                    subject=subject,
                    annotations=parsed.annotations,
                    created_at=utcnow(),
                )
                .returning(manifests.c.id)
            )
        ).scalar_one()
        references = {(d.digest, "blob") for d in parsed.blobs} | {(d.digest, "manifest") for d in parsed.children}
        if references:
            await conn.execute(
                sa.insert(manifest_references),
                [{"manifest_id": manifest_id, "digest": d, "kind": kind} for d, kind in sorted(references)],
            )
        return manifest_id, True

    # -- delete ------------------------------------------------------------
    async def delete(self, registry_id: int, repository: str, reference: str, actor: str | None = None) -> None:
        async with self.db.write() as conn:
            await repos.lock(self.db, conn, registry_id, repository)
            repository_id = await locks.repository_for_delete(conn, registry_id, repository)
            if is_digest(reference):
                await self._delete_manifest(conn, registry_id, repository, repository_id, Digest.parse(reference), actor)
            else:
                await self._delete_tag(conn, registry_id, repository, repository_id, reference, actor)

    async def _delete_manifest(self, conn, registry_id, repository, repository_id, digest: Digest, actor) -> None:
        row = (
            await conn.execute(
                sa.select(
                    manifests.c.id, manifests.c.digest, manifests.c.media_type, manifests.c.size,
                    manifests.c.delete_enabled, manifests.c.write_enabled,
                ).where(manifests.c.repository_id == repository_id, manifests.c.digest == str(digest))
            )
        ).first()
        if row is None:
            raise ManifestUnknown(f"manifest {digest} is not known in repository {repository!r}")
        await locks.check_manifest_delete(conn, repository_id, repository, row)
        removed = (
            await conn.execute(
                sa.delete(tags)
                .where(tags.c.repository_id == repository_id, tags.c.digest == str(digest))
                .returning(tags.c.name)
            )
        ).scalars().all()
        await conn.execute(sa.delete(manifest_references).where(manifest_references.c.manifest_id == row.id))
        await conn.execute(sa.delete(manifests).where(manifests.c.id == row.id))
        await repos.touch(conn, repository_id)
        for tag in sorted(removed):
            await events.record(
                conn, registry_id=registry_id, action=events.TAG_DELETE, repository=repository,
                digest=str(digest), tag=tag, actor=actor,
            )
        await events.record(
            conn, registry_id=registry_id, action=events.DELETE, repository=repository, digest=str(digest),
            media_type=row.media_type, size=row.size, actor=actor,
        )

    async def _delete_tag(self, conn, registry_id, repository, repository_id, tag: str, actor) -> None:
        if not is_tag(tag):
            raise ManifestUnknown(f"{tag[:140]!r} is neither a valid tag nor a digest")
        await locks.check_tag_delete(conn, repository_id, repository, tag)
        digest = (
            await conn.execute(
                sa.delete(tags).where(tags.c.repository_id == repository_id, tags.c.name == tag).returning(tags.c.digest)
            )
        ).scalar()
        if digest is None:
            raise ManifestUnknown(f"tag {tag!r} is not known in repository {repository!r}")
        await repos.touch(conn, repository_id)
        await events.record(
            conn, registry_id=registry_id, action=events.TAG_DELETE, repository=repository, digest=digest,
            tag=tag, actor=actor,
        )


def _batches(items: list[str]):
    for start in range(0, len(items), _IN_BATCH):
        yield items[start : start + _IN_BATCH]
