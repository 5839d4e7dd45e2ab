"""Claiming and settling outbox events.

A worker claims up to ``batch`` unprocessed events whose lease is free
(``claimed_at`` empty or older than ``lease``): on PostgreSQL with
``FOR UPDATE SKIP LOCKED``, so concurrent workers take disjoint batches without
waiting; on SQLite the write lock serializes claims. Each event is then handled
in its own transaction, which first marks it processed, guarded by the claim:
if the lease was lost and another worker settled the event meanwhile, nothing
is done; if a consumer fails, the transaction rolls back and the event stays
claimed until its lease runs out, then is tried again.

A claimed batch is first settled whole, in one transaction (one commit for all of
it, where a busy registry would otherwise commit once an event). If that fails,
because a lease was lost or a consumer failed, it is rolled back and the events
are settled one at a time as above, so one bad event holds back no other.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.core.errors import Unavailable
from dockyard.metadata.database import Database, hot, utcnow
from dockyard.metadata.schema import events

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)

# Settling one event: marked processed, guarded by the claim (one statement per event, built once).
_SETTLE = hot(
    sa.update(events)
    .where(events.c.id == sa.bindparam("event_id"), events.c.claimed_by == sa.bindparam("worker"),
           events.c.processed_at.is_(None))
    .values(processed_at=sa.bindparam("now", type_=events.c.processed_at.type))
)
# Settling a whole batch: the same guard, for every claimed id at once.
_SETTLE_ALL = (
    sa.update(events)
    .where(events.c.id.in_(sa.bindparam("event_ids", expanding=True)), events.c.claimed_by == sa.bindparam("worker"),
           events.c.processed_at.is_(None))
    .values(processed_at=sa.bindparam("now", type_=events.c.processed_at.type))
)


class Consumer(Protocol):
    """Something done for each event, inside the transaction that marks it processed."""

    name: str

    async def handle(self, conn: AsyncConnection, event) -> None: ...

    async def handle_all(self, conn: AsyncConnection, batch: Sequence) -> None:
        """Optional: the same for several events, in order, in one transaction (else ``handle``
        is called for each)."""
        ...


class LeaseLost(Exception):
    pass


class Outbox:
    def __init__(self, db: Database, consumers: Sequence[Consumer], *, worker_id: str | None = None,
                 lease: timedelta = LEASE) -> None:
        self.db = db
        self.consumers = list(consumers)
        self.worker_id = worker_id or uuid.uuid4().hex
        self.lease = lease

    async def claim(self, batch: int = 50) -> list:
        now = utcnow()
        free = sa.or_(events.c.claimed_at.is_(None), events.c.claimed_at < now - self.lease)
        ids = (
            sa.select(events.c.id)
            .where(events.c.processed_at.is_(None), free)
            .order_by(events.c.id)
            .limit(batch)
            .with_for_update(skip_locked=True)  # SQLite has no such clause; its write lock serializes claims
        )
        query = (
            sa.update(events)
            .where(events.c.id.in_(ids.scalar_subquery()))
            .values(claimed_by=self.worker_id, claimed_at=now)
            .returning(*events.c)
        )
        async with self.db.write() as conn:
            rows = (await conn.execute(query)).all()
        return sorted(rows, key=lambda row: row.id)

    async def settle(self, event) -> bool:
        """Run the consumers for one claimed event and mark it processed; False if the lease was lost."""
        try:
            async with self.db.write() as conn:
                # Settle first: on PostgreSQL this also locks the event's row until commit.
                done = await conn.execute(_SETTLE, {"event_id": event.id, "worker": self.worker_id, "now": utcnow()})
                if done.rowcount != 1:
                    raise LeaseLost()
                for consumer in self.consumers:
                    await consumer.handle(conn, event)
        except LeaseLost:
            log.warning("event %s was taken over by another worker; its effects here were rolled back", event.id)
            return False
        return True

    async def settle_all(self, claimed: Sequence) -> bool:
        """Run the consumers for a claimed batch and mark it processed, in one transaction; False
        (and nothing done) if any of it can't be: a lease lost or a consumer failed."""
        try:
            async with self.db.write() as conn:
                params = {"event_ids": [event.id for event in claimed], "worker": self.worker_id, "now": utcnow()}
                done = await conn.execute(_SETTLE_ALL, params)
                if done.rowcount != len(claimed):
                    raise LeaseLost()
                for consumer in self.consumers:
                    handle_all = getattr(consumer, "handle_all", None)
                    if handle_all is not None:
                        await handle_all(conn, claimed)
                    else:
                        for event in claimed:
                            await consumer.handle(conn, event)
        except LeaseLost:
            return False
        except Exception:
            log.debug("settling %d events together failed; settling them one by one", len(claimed), exc_info=True)
            return False
        return True

    async def run_once(self, batch: int = 50) -> int:
        """Claim one batch and settle it; the number of events settled."""
        claimed = await self.claim(batch)
        if len(claimed) > 1 and await self.settle_all(claimed):
            return len(claimed)
        settled = 0
        for event in claimed:
            try:
                if await self.settle(event):
                    settled += 1
            except Unavailable:
                raise
            except Exception:
                log.exception("handling event %s failed; it is tried again once its lease runs out", event.id)
        return settled
