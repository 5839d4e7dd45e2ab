"""The ``uploads`` table: an upload's row while it takes chunks, and its tombstone afterwards.

An upload whose id was only issued has no row (upload_ids.py). Its first chunk writes one
(``open``); a completion claims it (``completing``) and ends it (``done``); a DELETE ends it
as ``cancelled``, the worker as ``expired``. An ended row is the id's tombstone, unique on
the id, so an id is used at most once: an id completed by its first PUT, or cancelled before
any chunk, gets its tombstone as a new row. Tombstones are forgotten once their id would be
refused anyway (older than the upload expiry).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from dockyard.metadata.database import Database, hot, param, utcnow
from dockyard.metadata.schema import uploads

OPEN, COMPLETING, DONE, CANCELLED, EXPIRED = "open", "completing", "done", "cancelled", "expired"
LIVE = (OPEN, COMPLETING)
ENDED = (DONE, CANCELLED, EXPIRED)
FORGET_BATCH = 5000  # tombstones deleted per transaction, so that none holds other writers up long


@dataclass(frozen=True, slots=True)
class Upload:
    id: str
    registry_id: int
    repository: str
    algorithm: str
    size: int
    hash_state: bytes | None = None
    issued_at: datetime | None = None  # when its id was issued (ids from before ids were signed: None)
    fresh: bool = False  # nothing was written of it yet: no row, no stored bytes


# Built once; a request binds its values.
GET = hot(
    sa.select(uploads.c.id, uploads.c.registry_id, uploads.c.repository, uploads.c.algorithm, uploads.c.size,
              uploads.c.hash_state, uploads.c.state)
    .where(uploads.c.id == param(uploads.c.id, "upload_id"), uploads.c.registry_id == param(uploads.c.registry_id),
           uploads.c.repository == param(uploads.c.repository))
)
# A chunk recorded, the upload claimed for completion or given back: only from the state and size read.
MOVE = hot(
    sa.update(uploads)
    .where(uploads.c.id == param(uploads.c.id, "upload_id"), uploads.c.state == param(uploads.c.state, "from_state"),
           uploads.c.size == param(uploads.c.size, "from_size"))
    .values(state=param(uploads.c.state, "to_state"), size=param(uploads.c.size, "to_size"),
            hash_state=param(uploads.c.hash_state, "to_hash"), updated_at=param(uploads.c.updated_at, "now"))
)
# An upload ended (completed or cancelled), its row kept as the id's tombstone: only from the state read.
END = hot(
    sa.update(uploads)
    .where(uploads.c.id == param(uploads.c.id, "upload_id"), uploads.c.state == param(uploads.c.state, "from_state"))
    .values(state=param(uploads.c.state, "to_state"), hash_state=sa.null(),
            updated_at=param(uploads.c.updated_at, "now"))
)
_COLUMNS = ("id", "registry_id", "repository", "algorithm", "size", "hash_state", "state", "created_at", "updated_at")


def insert(db: Database):
    """A new row, unless the id has one (then it changes nothing: rowcount 0): an upload's first
    chunk, or the tombstone of an id that ended before any chunk."""
    return hot(db.insert(uploads).values(**{name: param(uploads.c[name]) for name in _COLUMNS})
               .on_conflict_do_nothing(index_elements=["id"]))


def row(upload: Upload, state: str, size: int = 0, hash_state: bytes | None = None) -> dict:
    """The values of ``insert`` for ``upload``; it dates from its id's issue."""
    now = utcnow()
    return {"id": upload.id, "registry_id": upload.registry_id, "repository": upload.repository,
            "algorithm": upload.algorithm, "size": size, "hash_state": hash_state, "state": state,
            "created_at": upload.issued_at or now, "updated_at": now}


def end(upload_id: str, from_state: str, to_state: str) -> dict:
    """The values of ``END``."""
    return {"upload_id": upload_id, "from_state": from_state, "to_state": to_state, "now": utcnow()}


async def forget_unused(db: Database, upload_id: str) -> None:
    """Remove the row of an upload that never stored a byte (its id is as fresh as before)."""
    async with db.write() as conn:
        await conn.execute(sa.delete(uploads).where(uploads.c.id == upload_id, uploads.c.state == OPEN,
                                                    uploads.c.size == 0))


async def expire(db: Database, older_than: datetime, expiry: timedelta) -> list[str]:
    """Mark the uploads untouched since ``older_than`` expired, and forget the tombstones of ids
    issued more than ``expiry`` ago; the ids expired (whose stored bytes are to be removed)."""
    now = utcnow()
    async with db.write() as conn:
        expired = (await conn.execute(
            sa.update(uploads)
            .where(uploads.c.state.in_(LIVE), uploads.c.updated_at < older_than)
            .values(state=EXPIRED, hash_state=None, updated_at=now)
            .returning(uploads.c.id)
        )).all()
    stale = sa.select(uploads.c.id).where(uploads.c.state.in_(ENDED), uploads.c.created_at < now - expiry)
    while True:
        async with db.write() as conn:
            forgotten = await conn.execute(sa.delete(uploads).where(uploads.c.id.in_(stale.limit(FORGET_BATCH))))
        if forgotten.rowcount < FORGET_BATCH:
            return [upload_id for upload_id, in expired]
        await asyncio.sleep(0)
