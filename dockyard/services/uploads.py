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

Starting an upload writes nothing: its id carries its own signed state (upload_ids.py).
A row is written when its first chunk comes (PATCH); an id completed by its first PUT
is stored like a monolithic upload, and one transaction links the blob and leaves the
id's tombstone. Completed, cancelled and expired uploads stay as tombstones, unique
on the id, until the id itself would be refused, so none can be used twice.
"""

from __future__ import annotations

import asyncio
import uuid
import weakref
from collections.abc import AsyncIterator
from contextlib import contextmanager, suppress
from dataclasses import replace
from datetime import datetime, timedelta

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
from dockyard.metadata.database import Database, utcnow
from dockyard.services import upload_rows as rows
from dockyard.services.blobs import BlobInfo, BlobService
from dockyard.services.installation import installation_value
from dockyard.services.streaming import stream_body
from dockyard.services.upload_ids import LENGTH as SIGNED_LENGTH, UPLOAD_ID_KEY, UploadIds, new_key
from dockyard.services.upload_rows import CANCELLED, COMPLETING, DONE, OPEN, Upload
from dockyard.storage import BlobStore
from dockyard.storage.base import UploadLost

DEFAULT_EXPIRY = timedelta(hours=24)  # config.py's upload_expiry_hours
# A whole blob up to this size (its Content-Length) is read into memory, hashed here and stored
# by one call of the store (put_blob): no partial upload to create, write, commit and remove.
SMALL_BLOB = 64 << 10


class UploadService:
    def __init__(self, db: Database, store: BlobStore, blobs: BlobService, expiry: timedelta = DEFAULT_EXPIRY) -> None:
        self.db = db
        self.store = store
        self.blobs = blobs
        self.expiry = expiry  # an id not used within this long is refused; its tombstone is kept as long
        self._ids: UploadIds | None = None
        self._insert = rows.insert(db)
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def _upload_ids(self) -> UploadIds:
        if self._ids is None:
            self._ids = UploadIds(await installation_value(self.db, UPLOAD_ID_KEY, new_key))
        return self._ids

    def _lock(self, upload_id: str) -> asyncio.Lock:
        lock = self._locks.get(upload_id)
        if lock is None:
            lock = self._locks[upload_id] = asyncio.Lock()
        return lock

    async def start(self, registry_id: int, repository: str, algorithm: str = "sha256") -> Upload:
        """A new upload: an id that carries its own signed state. Nothing is written until it is used."""
        check_algorithm(algorithm)
        upload_id, issued = (await self._upload_ids()).issue(registry_id, repository, algorithm, utcnow())
        return Upload(upload_id, registry_id, repository, algorithm, 0, issued_at=issued.at, fresh=True)

    async def get(self, registry_id: int, repository: str, upload_id: str) -> Upload:
        """The open upload ``upload_id`` of this repository: from its row, or fresh (nothing written yet)
        if its id is one issued here for this repository, not expired, and never used."""
        unknown = BlobUploadUnknown(f"upload {upload_id[:80]!r} is not known", detail={"uuid": upload_id[:80]})
        if len(upload_id) > 64:
            raise unknown
        issued = None
        if len(upload_id) == SIGNED_LENGTH:
            issued = (await self._upload_ids()).open(upload_id, registry_id, repository)
            if issued is None:  # forged, damaged, or issued for another repository or registry
                raise unknown
        # Else an id issued before ids were signed: known by its row alone.
        params = {"upload_id": upload_id, "registry_id": registry_id, "repository": repository}
        row = await self.db.fetch_one(rows.GET, params)
        if row is None:
            if issued is None or issued.at < utcnow() - self.expiry:
                raise unknown
            return Upload(upload_id, registry_id, repository, issued.algorithm, 0, issued_at=issued.at, fresh=True)
        if row.state != OPEN:
            raise unknown
        return Upload(row.id, row.registry_id, row.repository, row.algorithm, row.size, row.hash_state,
                      issued.at if issued else None)

    async def _open(self, upload: Upload) -> Upload:
        """Write a fresh upload's row (its first chunk comes) and create its stored bytes."""
        initial = resumable(upload.algorithm)
        opened = replace(upload, hash_state=initial and initial.state(), fresh=False)
        try:
            async with self.db.write() as conn:
                inserted = await conn.execute(self._insert, rows.row(opened, OPEN, 0, opened.hash_state))
        except sa.exc.IntegrityError as error:  # the registry was deleted meanwhile (on another node)
            raise NameUnknown(f"repository {upload.repository!r} is not known to the registry") from error
        if inserted.rowcount != 1:
            raise BlobUploadUnknown("the upload was changed, completed or cancelled by another request")
        try:
            await self.store.create_upload(upload.id)
        except BaseException:
            with suppress(Exception):  # nothing was stored: the id is as fresh as before
                await rows.forget_unused(self.db, upload.id)
            raise
        return opened

    async def append(
        self, upload: Upload, body: AsyncIterator[bytes], start: int | None = None, length: int | None = None
    ) -> Upload:
        async with self._lock(upload.id):
            upload = await self.get(upload.registry_id, upload.repository, upload.id)
            _check_start(upload, start)
            if upload.fresh:
                upload = await self._open(upload)
            hasher = await self._hasher(upload)
            size = upload.size + await self._receive(upload.id, upload.size, body, hasher, length)
            chunked = replace(upload, size=size, hash_state=_state_of(hasher))
            await self._move(upload, OPEN, chunked)
            return chunked

    async def _move(self, upload: Upload, state: str, to: Upload, to_state: str | None = None) -> None:
        """Record ``to`` (size, hash state) and ``to_state`` if the upload still is ``upload`` in ``state``."""
        params = {"upload_id": upload.id, "from_state": state, "from_size": upload.size, "to_size": to.size,
                  "to_state": to_state or state, "to_hash": to.hash_state, "now": utcnow()}
        async with self.db.write() as conn:
            result = await conn.execute(rows.MOVE, params)
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
        """Complete ``upload`` (as ``get``, ``start`` or ``append`` last gave it) with the rest of its
        bytes in ``body``, as the blob ``digest``; the upload's id is used up."""
        async with self._lock(upload.id):
            if not upload.fresh:  # a fresh one needs no second look: its tombstone is unique on the id
                upload = await self.get(upload.registry_id, upload.repository, upload.id)
            if body is not None:
                _check_start(upload, start)
            if upload.fresh:  # the whole blob in this PUT: stored as a monolithic upload is
                if body is None:
                    body, length = _nothing(), 0
                size = await self._store_whole(digest, body, length)
                await self._finish(upload, None, digest, size)
                return BlobInfo(str(digest), size)
            # Claimed (open -> completing) so that no other request, on any node, changes or
            # completes it meanwhile; given back if this one fails.
            await self._move(upload, OPEN, upload, COMPLETING)
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
                    await self._move(claimed, COMPLETING, upload, OPEN)
                raise
            await self._finish(claimed, COMPLETING, digest, upload.size)
            return BlobInfo(str(digest), upload.size)

    async def _finish(self, upload: Upload, state: str | None, digest: Digest, size: int) -> None:
        """In one transaction: link the blob of ``size`` bytes and end the upload, its row left as
        the id's tombstone: from ``state``, or for a fresh id (``None``) a new row, unique on the id."""
        async with self.db.write() as conn:
            await self.blobs.link(conn, upload.registry_id, upload.repository, str(digest), size)
            if state is None:
                ended = await conn.execute(self._insert, rows.row(upload, DONE, size))
            else:
                ended = await conn.execute(rows.END, rows.end(upload.id, state, DONE))
            if ended.rowcount != 1:  # rolls the link back
                raise BlobUploadUnknown("the upload was completed or cancelled by another request")

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
        return await stream_body(body, writer, hasher, length)  # written and hashed as it comes

    async def put_whole(
        self, registry_id: int, repository: str, digest: Digest, body: AsyncIterator[bytes], length: int | None = None
    ) -> BlobInfo:
        """A monolithic upload (``POST ?digest=``): the body is the whole blob.

        It can't be resumed, so it needs no upload row: the bytes are stored (``_store_whole``)
        and one transaction links the blob. A failure leaves nothing behind.
        """
        size = await self._store_whole(digest, body, length)
        async with self.db.write() as conn:
            await self.blobs.link(conn, registry_id, repository, str(digest), size)
        return BlobInfo(str(digest), size)

    async def _store_whole(self, digest: Digest, body: AsyncIterator[bytes], length: int | None) -> int:
        """Store a whole blob under ``digest``, checked: a small one at once, a bigger one through a
        partial upload of its own in the store (removed if anything fails); its size."""
        check_algorithm(digest.algorithm)
        if length is not None and length <= SMALL_BLOB:
            data = await _read_whole(body, length)
            hasher = new_hasher(digest.algorithm)
            hasher.update(data)
            if hasher.hexdigest() != digest.hex:
                raise _mismatch(digest)
            await self.store.put_blob(str(digest), data)
            return length
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
        return size

    async def cancel(self, upload: Upload) -> None:
        """End an upload, its row left as the id's tombstone; its stored bytes removed."""
        async with self._lock(upload.id):
            async with self.db.write() as conn:
                result = await conn.execute(rows.END, rows.end(upload.id, OPEN, CANCELLED))
                stored = result.rowcount == 1
                if not stored and upload.fresh:  # nothing written of it (unless another request did meanwhile)
                    result = await conn.execute(self._insert, rows.row(upload, CANCELLED))
            if result.rowcount != 1:
                raise BlobUploadUnknown("the upload was completed or cancelled by another request")
            if stored:
                await self.store.delete_upload(upload.id)

    async def expire(self, older_than: datetime) -> int:
        """Expire uploads untouched since ``older_than`` (clients that went away): their stored bytes
        are removed, their rows kept as tombstones while their ids would be accepted. Tombstones of
        ids that would be refused are forgotten. The number of uploads expired."""
        expired = await rows.expire(self.db, older_than, self.expiry)
        for upload_id in expired:
            with suppress(KeyError):
                await self.store.delete_upload(upload_id)
        return len(expired)


def _check_start(upload: Upload, start: int | None) -> None:
    if start is not None and start != upload.size:
        raise RangeNotSatisfiable(
            f"chunk starts at {start} but the upload holds {upload.size} bytes",
            detail={"range": f"0-{upload.size - 1}" if upload.size else "0-0"},
        )


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield


async def _read_whole(body: AsyncIterator[bytes], length: int) -> bytes:
    """A body of ``length`` bytes (its Content-Length), checked to be that long."""
    if length == 0:  # nothing more can come (and aiohttp's empty body is not always iterable)
        return b""
    pieces, size = [], 0
    async for piece in body:
        size += len(piece)
        if size > length:
            raise SizeInvalid("the body is longer than Content-Length")
        pieces.append(piece)
    if size != length:
        raise SizeInvalid(f"received {size} bytes but Content-Length said {length}")
    return b"".join(pieces)


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
