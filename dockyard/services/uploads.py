"""Blob upload sessions: monolithic, chunked, resumable.

Bytes stream to the blob store in constant memory and are hashed as they pass.
The hash's running state is saved with the upload's size after every chunk, so
any node (or this one after a restart) continues where the last chunk ended.
Where the state can't be kept (no libcrypto, or a digest algorithm other than
the upload's) the hash is rebuilt by reading back what was stored.
"""

from __future__ import annotations

import asyncio
import uuid
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import sqlalchemy as sa

from dockyard.core.digests import Digest, check_algorithm, new_hasher
from dockyard.core.hashstate import resumable
from dockyard.core.errors import BlobUploadUnknown, DigestInvalid, NameUnknown, RangeNotSatisfiable, SizeInvalid
from dockyard.metadata.database import Database, utcnow
from dockyard.metadata.schema import uploads
from dockyard.services.blobs import BlobInfo, BlobService
from dockyard.storage import BlobStore

# Bytes gathered before one write and hash step: big enough that the thread
# hand-off costs nothing, small enough to keep memory flat.
BUFFER = 1 << 20
# Below this a hash update runs inline: cheaper than a thread hop.
INLINE_HASH = 64 << 10


@dataclass(frozen=True, slots=True)
class Upload:
    id: str
    registry_id: int
    repository: str
    algorithm: str
    size: int
    hash_state: bytes | None = None


class UploadService:
    def __init__(self, db: Database, store: BlobStore, blobs: BlobService) -> None:
        self.db = db
        self.store = store
        self.blobs = blobs
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def _lock(self, upload_id: str) -> asyncio.Lock:
        lock = self._locks.get(upload_id)
        if lock is None:
            lock = self._locks[upload_id] = asyncio.Lock()
        return lock

    async def start(self, registry_id: int, repository: str, algorithm: str = "sha256") -> Upload:
        check_algorithm(algorithm)
        initial = resumable(algorithm)
        upload = Upload(uuid.uuid4().hex, registry_id, repository, algorithm, 0, initial and initial.state())
        await self.store.create_upload(upload.id)
        now = utcnow()
        try:
            async with self.db.write() as conn:
                await conn.execute(
                    sa.insert(uploads).values(
                        id=upload.id,
                        registry_id=registry_id,
                        repository=repository,
                        algorithm=algorithm,
                        size=0,
                        hash_state=upload.hash_state,
                        state="open",
                        created_at=now,
                        updated_at=now,
                    )
                )
        except sa.exc.IntegrityError as error:  # the registry was deleted meanwhile (on another node)
            await self.store.delete_upload(upload.id)
            raise NameUnknown(f"repository {repository!r} is not known to the registry") from error
        return upload

    async def get(self, registry_id: int, repository: str, upload_id: str) -> Upload:
        unknown = BlobUploadUnknown(f"upload {upload_id[:80]!r} is not known", detail={"uuid": upload_id[:80]})
        if len(upload_id) > 64:
            raise unknown
        query = sa.select(uploads).where(
            uploads.c.id == upload_id,
            uploads.c.registry_id == registry_id,
            uploads.c.repository == repository,
            uploads.c.state == "open",
        )
        async with self.db.read() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            raise unknown
        return Upload(row.id, row.registry_id, row.repository, row.algorithm, row.size, row.hash_state)

    async def append(
        self, upload: Upload, body: AsyncIterator[bytes], start: int | None = None, length: int | None = None
    ) -> Upload:
        async with self._lock(upload.id):
            upload = await self.get(upload.registry_id, upload.repository, upload.id)
            return await self._append(upload, body, start, length)

    async def _append(
        self, upload: Upload, body: AsyncIterator[bytes], start: int | None, length: int | None
    ) -> Upload:
        if start is not None and start != upload.size:
            raise RangeNotSatisfiable(
                f"chunk starts at {start} but the upload holds {upload.size} bytes",
                detail={"range": f"0-{upload.size - 1}" if upload.size else "0-0"},
            )
        hasher = await self._hasher(upload)
        writer = await self.store.open_upload(upload.id, upload.size)
        written = await _stream(body, writer, hasher, length)
        size = upload.size + written
        state = hasher.state() if hasattr(hasher, "state") else None
        async with self.db.write() as conn:
            result = await conn.execute(
                sa.update(uploads)
                .where(uploads.c.id == upload.id, uploads.c.size == upload.size, uploads.c.state == "open")
                .values(size=size, hash_state=state, updated_at=utcnow())
            )
        if result.rowcount != 1:
            raise BlobUploadUnknown("the upload changed or ended while this chunk was written")
        return replace(upload, size=size, hash_state=state)

    async def _hasher(self, upload: Upload, algorithm: str | None = None):
        """The hash of the upload's bytes so far: from its saved state, else by re-reading them."""
        algorithm = algorithm or upload.algorithm
        if algorithm == upload.algorithm and upload.hash_state is not None:
            try:
                hasher = resumable(algorithm, upload.hash_state)
            except ValueError:
                hasher = None  # a damaged state costs a re-read, never a wrong digest
            if hasher is not None:
                return hasher
        hasher = resumable(algorithm) or new_hasher(algorithm)
        async for chunk in self.store.read_upload(upload.id, upload.size):
            await asyncio.to_thread(hasher.update, chunk)
        return hasher

    async def complete(
        self,
        upload: Upload,
        digest: Digest,
        body: AsyncIterator[bytes] | None = None,
        start: int | None = None,
        length: int | None = None,
    ) -> BlobInfo:
        async with self._lock(upload.id):
            upload = await self.get(upload.registry_id, upload.repository, upload.id)
            if body is not None:
                upload = await self._append(upload, body, start, length)
            async with self.db.write() as conn:
                claimed = await conn.execute(
                    sa.update(uploads)
                    .where(uploads.c.id == upload.id, uploads.c.state == "open")
                    .values(state="completing", updated_at=utcnow())
                )
            if claimed.rowcount != 1:
                raise BlobUploadUnknown("the upload was completed or cancelled by another request")
            try:
                hasher = await self._hasher(upload, digest.algorithm)
                if hasher.hexdigest() != digest.hex:
                    raise DigestInvalid(
                        f"the uploaded content does not match digest {digest}", detail={"digest": str(digest)}
                    )
                await self.store.commit_upload(upload.id, str(digest), upload.size)
            except BaseException:
                async with self.db.write() as conn:
                    await conn.execute(sa.update(uploads).where(uploads.c.id == upload.id).values(state="open"))
                raise
            async with self.db.write() as conn:
                await self.blobs.link(conn, upload.registry_id, upload.repository, str(digest), upload.size)
                await conn.execute(sa.delete(uploads).where(uploads.c.id == upload.id))
            return BlobInfo(str(digest), upload.size)

    async def put_whole(
        self, registry_id: int, repository: str, digest: Digest, body: AsyncIterator[bytes], length: int | None = None
    ) -> BlobInfo:
        """A monolithic upload (``POST ?digest=``): the body is the whole blob.

        It can't be resumed, so it needs no upload row: the bytes go to a partial upload
        in the store, are checked against the digest and committed, and one transaction
        links the blob. A failure leaves nothing behind but the partial upload, removed here.
        """
        check_algorithm(digest.algorithm)
        upload_id = uuid.uuid4().hex
        await self.store.create_upload(upload_id)
        try:
            writer = await self.store.open_upload(upload_id, 0)
            hasher = new_hasher(digest.algorithm)
            size = await _stream(body, writer, hasher, length)
            if hasher.hexdigest() != digest.hex:
                raise DigestInvalid(
                    f"the uploaded content does not match digest {digest}", detail={"digest": str(digest)}
                )
            await self.store.commit_upload(upload_id, str(digest), size)
        except BaseException:
            await self.store.delete_upload(upload_id)
            raise
        async with self.db.write() as conn:
            await self.blobs.link(conn, registry_id, repository, str(digest), size)
        return BlobInfo(str(digest), size)

    async def cancel(self, upload: Upload) -> None:
        async with self._lock(upload.id):
            async with self.db.write() as conn:
                result = await conn.execute(
                    sa.delete(uploads).where(uploads.c.id == upload.id, uploads.c.state == "open")
                )
            if result.rowcount != 1:
                raise BlobUploadUnknown("the upload was completed or cancelled by another request")
            await self.store.delete_upload(upload.id)

    async def expire(self, older_than) -> int:
        """Drop uploads untouched since ``older_than`` (clients that went away)."""
        async with self.db.write() as conn:
            rows = (
                await conn.execute(
                    sa.delete(uploads).where(uploads.c.updated_at < older_than).returning(uploads.c.id)
                )
            ).all()
        for row in rows:
            await self.store.delete_upload(row.id)
        return len(rows)


async def _stream(body: AsyncIterator[bytes], writer, hasher, length: int | None) -> int:
    """Write and hash a body; the bytes written, durable once this returns."""
    written = 0
    try:
        async for buffer in _gather(body):
            written += len(buffer)
            if length is not None and written > length:
                raise SizeInvalid("the body is longer than Content-Length")
            if len(buffer) < INLINE_HASH:
                hasher.update(buffer)
                await writer.write(buffer)
            else:
                await asyncio.gather(writer.write(buffer), asyncio.to_thread(hasher.update, buffer))
        if length is not None and written != length:
            raise SizeInvalid(f"received {written} bytes but Content-Length said {length}")
        await writer.close()
    except BaseException:
        await writer.abort()
        raise
    return written


async def _gather(body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Regroup a body's pieces into buffers of about ``BUFFER`` bytes."""
    pending: list[bytes] = []
    size = 0
    async for piece in body:
        if not piece:
            continue
        pending.append(piece)
        size += len(piece)
        if size >= BUFFER:
            yield pending[0] if len(pending) == 1 else b"".join(pending)
            pending, size = [], 0
    if pending:
        yield pending[0] if len(pending) == 1 else b"".join(pending)
