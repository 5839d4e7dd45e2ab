"""Blob upload sessions: monolithic, chunked, resumable.

Bytes stream to the blob store in constant memory and are hashed as they pass:
each block is written and hashed in worker threads while the next one arrives.
The hash's running state is saved with the upload's size after every chunk, so
any node (or this one after a restart) continues where the last chunk ended.
Where the state can't be kept (no libcrypto, or a digest algorithm other than
the upload's), or the store can't vouch for bytes written before a restart of
its machine, the hash is rebuilt by reading back what was stored.

A chunk's bytes need not be durable when it is acknowledged: the store makes the
whole upload durable when it commits the blob, after checking that it still
holds every acknowledged byte. A committed blob is durable before its 201.
"""

from __future__ import annotations

import asyncio
import uuid
import weakref
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace

import sqlalchemy as sa

from dockyard.core.digests import Digest, check_algorithm, new_hasher
from dockyard.core.errors import (
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    NameUnknown,
    RangeNotSatisfiable,
    SizeInvalid,
)
from dockyard.core.hashstate import resumable
from dockyard.metadata.database import Database, hot, param, utcnow
from dockyard.metadata.schema import uploads
from dockyard.services.blobs import BlobInfo, BlobService
from dockyard.storage import BlobStore
from dockyard.storage.base import UploadLost

# Bytes gathered before a write-and-hash step in worker threads: enough that the thread
# hand-offs cost little, few enough that the last step, which the answer waits for, is
# short. While a step runs the next one gathers up to MAX_BLOCK (memory stays flat).
BLOCK = 2 << 20
MAX_BLOCK = 8 << 20
# Below this a block is hashed inline: cheaper than a thread hop.
INLINE_HASH = 64 << 10


# Built once; a request binds its values.
_GET = hot(
    sa.select(uploads.c.id, uploads.c.registry_id, uploads.c.repository, uploads.c.algorithm, uploads.c.size,
              uploads.c.hash_state)
    .where(uploads.c.id == param(uploads.c.id, "upload_id"), uploads.c.registry_id == param(uploads.c.registry_id),
           uploads.c.repository == param(uploads.c.repository), uploads.c.state == param(uploads.c.state))
)
_INSERT = hot(
    sa.insert(uploads).values(
        **{name: param(uploads.c[name]) for name in ("id", "registry_id", "repository", "algorithm", "size",
                                                "hash_state", "state", "created_at", "updated_at")}
    )
)
# A chunk recorded, the upload claimed for completion or given back: only from the state and size read.
_MOVE = hot(
    sa.update(uploads)
    .where(uploads.c.id == param(uploads.c.id, "upload_id"), uploads.c.state == param(uploads.c.state, "from_state"),
           uploads.c.size == param(uploads.c.size, "from_size"))
    .values(state=param(uploads.c.state, "to_state"), size=param(uploads.c.size, "to_size"),
            hash_state=param(uploads.c.hash_state, "to_hash"), updated_at=param(uploads.c.updated_at, "now"))
)
_FINISH = hot(
    sa.delete(uploads).where(uploads.c.id == param(uploads.c.id, "upload_id"), uploads.c.state == param(uploads.c.state),
                             uploads.c.size == param(uploads.c.size))
)


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
        values = {"id": upload.id, "registry_id": registry_id, "repository": repository, "algorithm": algorithm,
                  "size": 0, "hash_state": upload.hash_state, "state": "open", "created_at": now, "updated_at": now}
        try:
            async with self.db.write() as conn:
                await conn.execute(_INSERT, values)
        except sa.exc.IntegrityError as error:  # the registry was deleted meanwhile (on another node)
            await self.store.delete_upload(upload.id)
            raise NameUnknown(f"repository {repository!r} is not known to the registry") from error
        return upload

    async def get(self, registry_id: int, repository: str, upload_id: str) -> Upload:
        unknown = BlobUploadUnknown(f"upload {upload_id[:80]!r} is not known", detail={"uuid": upload_id[:80]})
        if len(upload_id) > 64:
            raise unknown
        params = {"upload_id": upload_id, "registry_id": registry_id, "repository": repository, "state": "open"}
        row = await self.db.fetch_one(_GET, params)
        if row is None:
            raise unknown
        return Upload(row.id, row.registry_id, row.repository, row.algorithm, row.size, row.hash_state)

    async def append(
        self, upload: Upload, body: AsyncIterator[bytes], start: int | None = None, length: int | None = None
    ) -> Upload:
        async with self._lock(upload.id):
            upload = await self.get(upload.registry_id, upload.repository, upload.id)
            _check_start(upload, start)
            hasher = await self._hasher(upload)
            size = upload.size + await self._receive(upload.id, upload.size, body, hasher, length)
            chunked = replace(upload, size=size, hash_state=_state_of(hasher))
            await self._move(upload, "open", chunked)
            return chunked

    async def _move(self, upload: Upload, state: str, to: Upload, to_state: str | None = None) -> None:
        """Record ``to`` (size, hash state) and ``to_state`` if the upload still is ``upload`` in ``state``."""
        params = {"upload_id": upload.id, "from_state": state, "from_size": upload.size, "to_size": to.size,
                  "to_state": to_state or state, "to_hash": to.hash_state, "now": utcnow()}
        async with self.db.write() as conn:
            result = await conn.execute(_MOVE, params)
        if result.rowcount != 1:
            raise BlobUploadUnknown("the upload was changed, completed or cancelled by another request")

    async def _hasher(self, upload: Upload, algorithm: str | None = None, reread: bool = False):
        """The hash of the upload's bytes so far: from its saved state, else by re-reading them."""
        algorithm = algorithm or upload.algorithm
        if not reread and algorithm == upload.algorithm and upload.hash_state is not None:
            try:
                hasher = resumable(algorithm, upload.hash_state)
            except ValueError:
                hasher = None  # a damaged state costs a re-read, never a wrong digest
            if hasher is not None:
                return hasher
        hasher = resumable(algorithm) or new_hasher(algorithm)
        read = 0
        with _stored_bytes():
            async for chunk in self.store.read_upload(upload.id, upload.size):
                read += len(chunk)
                await asyncio.to_thread(hasher.update, chunk)
            if read < upload.size:
                raise UploadLost(upload.id)
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
                _check_start(upload, start)
            # Claimed (open -> completing) so that no other request, on any node, changes or
            # completes it meanwhile; given back if this one fails.
            await self._move(upload, "open", upload, "completing")
            claimed, hasher = upload, None
            try:
                if body is not None:
                    hasher = await self._hasher(upload)
                    size = upload.size + await self._receive(upload.id, upload.size, body, hasher, length)
                    upload = replace(upload, size=size, hash_state=_state_of(hasher))
                await self._verify(upload, digest, hasher)
                with _stored_bytes():
                    await self.store.commit_upload(upload.id, str(digest), upload.size)
            except BaseException:
                with suppress(BlobUploadUnknown):  # expired meanwhile: the first error says more
                    await self._move(claimed, "completing", upload, "open")
                raise
            await self._finish(claimed, "completing", digest, upload.size)
            return BlobInfo(str(digest), upload.size)

    async def _finish(self, upload: Upload, state: str, digest: Digest, size: int) -> None:
        """In one transaction: end the upload (if it still is as ``upload`` in ``state``) and link
        its blob of ``size`` bytes."""
        async with self.db.write() as conn:
            ended = await conn.execute(_FINISH, {"upload_id": upload.id, "state": state, "size": upload.size})
            if ended.rowcount != 1:
                raise BlobUploadUnknown("the upload was completed or cancelled by another request")
            await self.blobs.link(conn, upload.registry_id, upload.repository, str(digest), size)

    async def _verify(self, upload: Upload, digest: Digest, hasher=None) -> None:
        """Check the upload's bytes against ``digest``: by their running hash, or by reading them back
        where there is none of that algorithm or the store can't vouch for them."""
        with _stored_bytes():
            intact = await self.store.upload_intact(upload.id, upload.size)
        if not intact or hasher is None or hasher.name != digest.algorithm:
            hasher = await self._hasher(upload, digest.algorithm, reread=not intact)
        if hasher.hexdigest() != digest.hex:
            raise _mismatch(digest)

    async def _receive(self, upload_id: str, offset: int, body: AsyncIterator[bytes], hasher, length: int | None) -> int:
        with _stored_bytes():
            writer = await self.store.open_upload(upload_id, offset)
        return await _stream(body, writer, hasher, length)

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
            hasher = new_hasher(digest.algorithm)
            size = await self._receive(upload_id, 0, body, hasher, length)
            if hasher.hexdigest() != digest.hex:
                raise _mismatch(digest)
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


def _check_start(upload: Upload, start: int | None) -> None:
    if start is not None and start != upload.size:
        raise RangeNotSatisfiable(
            f"chunk starts at {start} but the upload holds {upload.size} bytes",
            detail={"range": f"0-{upload.size - 1}" if upload.size else "0-0"},
        )


def _mismatch(digest: Digest) -> DigestInvalid:
    return DigestInvalid(f"the uploaded content does not match digest {digest}", detail={"digest": str(digest)})


def _state_of(hasher) -> bytes | None:
    return hasher.state() if hasattr(hasher, "state") else None


@contextmanager
def _stored_bytes():
    """The store's answers about a partial upload, as the errors a client is given."""
    try:
        yield
    except UploadLost:
        raise BlobUploadInvalid(
            "the upload lost bytes it had acknowledged (its node restarted before they were stored); "
            "start the upload again"
        ) from None
    except KeyError:
        raise BlobUploadUnknown("the upload's stored bytes are gone") from None


def _update(hasher, pieces: Sequence[bytes]) -> None:
    for piece in pieces:
        hasher.update(piece)


async def _stream(body: AsyncIterator[bytes], writer, hasher, length: int | None) -> int:
    """Write and hash a body; the bytes written (stored, not yet durable) once this returns.

    The pieces received are handed, not joined, to one step at a time that writes and hashes
    them in worker threads while the next pieces arrive: as soon as ``BLOCK`` bytes are in and
    the previous step is done, or once ``MAX_BLOCK`` bytes wait for it. So the hash sees the
    bytes in order, memory stays flat, and little is left to do when the body ends.
    """
    written = size = 0
    pending: list[bytes] = []
    step = None
    try:
        async for piece in body:
            if not piece:
                continue
            written += len(piece)
            if length is not None and written > length:
                raise SizeInvalid("the body is longer than Content-Length")
            pending.append(piece)
            size += len(piece)
            if size >= BLOCK and (step is None or step.done() or size >= MAX_BLOCK):
                if step is not None:
                    await step
                step = _step(writer, hasher, pending, size)
                pending, size = [], 0
        if step is not None:
            await step
            step = None
        if pending:
            await _step(writer, hasher, pending, size)
        if length is not None and written != length:
            raise SizeInvalid(f"received {written} bytes but Content-Length said {length}")
        await writer.close()
    except BaseException:
        if step is not None:
            step.cancel()  # the writer closes its file only once a write under way has ended
        await writer.abort()
        raise
    return written


def _step(writer, hasher, pieces: list[bytes], size: int) -> Awaitable:
    """Write and hash ``pieces``: in worker threads (a future), or here if they are few bytes."""
    if size < INLINE_HASH:
        _update(hasher, pieces)
        return writer.write_pieces(pieces)
    return asyncio.gather(writer.write_pieces(pieces), asyncio.to_thread(_update, hasher, pieces))
