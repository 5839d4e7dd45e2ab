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
_PARSED_ENTRIES, _PARSED_BYTES = 256, 64 << 10  # parsed manifests remembered: how many, up to what size


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


def _pull_query(by_tag: bool, with_content: bool) -> sa.Select:
    """A pull's one query: the manifest (its bytes only when wanted: a HEAD needs none) and the
    read locks of the repository, the manifest and (by tag) the tag."""
    content = manifests.c.content if with_content else sa.null()
    columns = (
        manifests.c.digest, manifests.c.media_type, manifests.c.size, content.label("content"),
        repositories.c.read_enabled.label("repository_read"), manifests.c.read_enabled.label("manifest_read"),
    )
    if by_tag:
        query = sa.select(*columns, tags.c.read_enabled.label("tag_read")).select_from(
            tags.join(repositories, repositories.c.id == tags.c.repository_id).join(
                manifests, sa.and_(manifests.c.repository_id == tags.c.repository_id, manifests.c.digest == tags.c.digest)
            )
        )
        reference = tags.c.name
    else:
        query = sa.select(*columns, sa.null().label("tag_read")).select_from(
            manifests.join(repositories, repositories.c.id == manifests.c.repository_id)
        )
        reference = manifests.c.digest
    return query.where(
        repositories.c.registry_id == sa.bindparam("registry_id"),
        repositories.c.name == sa.bindparam("repository"),
        reference == sa.bindparam("reference"),
    )


# (by tag, with content) -> the query, built once; a request only binds its values.
_PULLS = {(tag, content): _pull_query(tag, content) for tag in (False, True) for content in (False, True)}


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
        self._parsed: dict[tuple[str, str | None], parsing.ParsedManifest] = {}

    # -- pull --------------------------------------------------------------
    async def get(self, registry_id: int, repository: str, reference: str, content: bool = True) -> ManifestRecord:
        """The manifest a tag or digest names; with ``content=False`` (a HEAD) its ``content`` is empty."""
        # The locks come in the same query: a pull stays one round trip.
        params = {"registry_id": registry_id, "repository": repository, "reference": reference}
        if is_digest(reference):
            params["reference"] = str(Digest.parse(reference))
            query = _PULLS[False, content]
        elif is_tag(reference):
            query = _PULLS[True, content]
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
        return ManifestRecord(row.digest, row.media_type, row.size, b"" if row.content is None else bytes(row.content))

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
        parsed = self._parse(str(digest), content, content_type)
        subject = parsed.subject.digest if parsed.subject else None

        async with self.db.write() as conn:
            await repos.lock(self.db, conn, registry_id, repository)
            repository_id = await repos.ensure(self.db, conn, registry_id, repository)
            await locks.check_push(conn, repository_id, repository, new_tags)
            # A manifest is immutable by digest: one already here had its references checked and
            # recorded when it came, so pushing it again (under a new tag) only moves tags.
            existing = (await conn.execute(_EXISTING, {"repository_id": repository_id, "digest": str(digest)})).scalar()
            created = existing is None
            if created:
                await self._check_references(conn, repository_id, parsed)
                await self._insert(conn, repository_id, str(digest), content, parsed, subject)
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

    def _parse(self, digest: str, content: bytes, content_type: str | None) -> parsing.ParsedManifest:
        """``parsing.parse``, remembered for small manifests: the same bytes under the same
        Content-Type parse the same (a manifest pushed under many tags, or to many repositories)."""
        key = (digest, content_type)
        parsed = self._parsed.get(key)
        if parsed is None:
            parsed = parsing.parse(content, content_type)
            if len(content) <= _PARSED_BYTES:
                if len(self._parsed) >= _PARSED_ENTRIES:
                    del self._parsed[next(iter(self._parsed))]  # the oldest
                self._parsed[key] = parsed
        return parsed

    async def _insert(self, conn, repository_id, digest, content, parsed, subject) -> None:
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
