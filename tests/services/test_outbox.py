"""Outbox consumers: every event handled once, by one worker, even when workers race or die."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import sqlalchemy as sa

from dockyard.metadata.database import Database
from dockyard.metadata.schema import audit_log, events
from dockyard.services import events as outbox_events
from dockyard.worker.audit import AuditLog
from dockyard.worker.outbox import Outbox


async def record_events(db: Database, count: int, repository: str = "app") -> None:
    async with db.write() as conn:
        for i in range(count):
            await outbox_events.record(
                conn, registry_id=1, action=outbox_events.PUSH, repository=repository, tag=f"v{i}",
                digest="sha256:" + f"{i:064x}", size=i, actor="owner",
            )


async def audit_rows(db: Database) -> list:
    async with db.read() as conn:
        return list((await conn.execute(sa.select(audit_log).order_by(audit_log.c.event_id))).all())


async def unprocessed(db: Database) -> int:
    async with db.read() as conn:
        return (await conn.execute(sa.select(sa.func.count()).where(events.c.processed_at.is_(None)))).scalar()


async def test_a_push_is_logged_once_as_acr_logs_repository_events(client, push, services):
    await push.image("audited/app", "v1")
    outbox = Outbox(services.db, [AuditLog()])
    while await outbox.run_once():
        pass
    rows = [row for row in await audit_rows(services.db) if row.repository == "audited/app"]
    assert [(row.operation, row.tag, row.identity) for row in rows] == [("Push", "v1", "owner")]
    assert await outbox.run_once() == 0  # nothing is handled twice


async def test_workers_racing_on_one_database_handle_each_event_once(services):
    await record_events(services.db, 120)
    already = len(await audit_rows(services.db))
    # Three workers, each with its own connection pool, as separate processes would have.
    nodes = [Database(services.settings.database_url) for _ in range(3)]
    try:
        workers = [Outbox(db, [AuditLog()], worker_id=f"w{i}") for i, db in enumerate(nodes)]

        async def drain(outbox: Outbox) -> int:
            total = 0
            while settled := await outbox.run_once(batch=7):
                total += settled
            return total

        counts = await asyncio.gather(*(drain(w) for w in workers))
    finally:
        for db in nodes:
            await db.close()
    rows = await audit_rows(services.db)
    assert sum(counts) == len(rows) - already
    assert len({row.event_id for row in rows}) == len(rows)
    assert await unprocessed(services.db) == 0


async def test_a_dead_workers_events_are_claimed_again_after_its_lease(services):
    await record_events(services.db, 5, repository="lease")
    dead = Outbox(services.db, [AuditLog()], worker_id="dead", lease=timedelta(seconds=1))
    claimed = await dead.claim()
    assert len(claimed) >= 5
    alive = Outbox(services.db, [AuditLog()], worker_id="alive", lease=timedelta(seconds=1))
    assert await alive.claim() == []  # the lease holds
    await asyncio.sleep(1.2)
    assert await alive.run_once() == len(claimed)
    # The dead worker wakes up and tries to finish: its transaction is rolled back.
    assert await dead.settle(claimed[0]) is False
    rows = await audit_rows(services.db)
    assert len({row.event_id for row in rows}) == len(rows)
    assert await unprocessed(services.db) == 0


class _Recording(AuditLog):
    """The audit log, noting how events reach it and failing on the tags in ``poison``."""

    def __init__(self, poison: set[str] = frozenset()) -> None:
        self.poison = poison
        self.batches: list[int] = []
        self.singles = 0

    async def handle(self, conn, event) -> None:
        self.singles += 1
        if event.tag in self.poison:
            raise RuntimeError(f"cannot handle {event.tag}")
        await super().handle(conn, event)

    async def handle_all(self, conn, batch) -> None:
        self.batches.append(len(batch))
        if any(event.tag in self.poison for event in batch):
            raise RuntimeError("a poisoned batch")
        await super().handle_all(conn, batch)


async def test_a_batch_is_settled_in_one_transaction(services):
    await record_events(services.db, 12, repository="batched")
    consumer = _Recording()
    outbox = Outbox(services.db, [consumer])
    total = 0
    while settled := await outbox.run_once(batch=50):
        total += settled
    assert total >= 12 and consumer.singles == 0 and consumer.batches and max(consumer.batches) >= 12
    rows = [row for row in await audit_rows(services.db) if row.repository == "batched"]
    assert sorted(row.tag for row in rows) == sorted(f"v{i}" for i in range(12))
    assert await unprocessed(services.db) == 0


async def test_one_bad_event_holds_back_no_other(services):
    while await Outbox(services.db, [AuditLog()]).run_once():
        pass  # earlier tests' events out of the way
    await record_events(services.db, 6, repository="poisoned")
    consumer = _Recording(poison={"v2"})
    outbox = Outbox(services.db, [consumer], lease=timedelta(seconds=60))
    assert await outbox.run_once(batch=50) == 5  # the batch failed whole, then each but v2 went through
    assert consumer.batches == [6] and consumer.singles == 6
    rows = [row for row in await audit_rows(services.db) if row.repository == "poisoned"]
    assert sorted(row.tag for row in rows) == ["v0", "v1", "v3", "v4", "v5"]  # once each: the batch was rolled back
    assert await unprocessed(services.db) == 1  # v2 waits for its lease to run out
    assert await outbox.run_once(batch=50) == 0  # and is not claimed again before that
