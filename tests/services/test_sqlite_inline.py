"""SQLite runs on the event loop's thread: a writer that finds the write lock taken by another
process must wait without stopping the loop, and then succeed."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time

import sqlalchemy as sa

from dockyard.metadata import migrate
from dockyard.metadata.database import Database
from dockyard.metadata.schema import installation


async def test_a_writer_waits_for_another_process_without_blocking_the_loop(tmp_path):
    path = tmp_path / "metadata.db"
    db = Database(f"sqlite:///{path}")
    await migrate.upgrade(db)
    held, release = threading.Event(), threading.Event()

    def other_process() -> None:  # holds SQLite's write lock for a while, as another process would
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO installation (key, value) VALUES ('other', 'x')")
        held.set()
        release.wait(5)
        conn.execute("COMMIT")
        conn.close()

    thread = threading.Thread(target=other_process)
    thread.start()
    held.wait(5)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    async def write() -> float:
        began = time.monotonic()
        async with db.write() as conn:
            await conn.execute(sa.insert(installation).values(key="mine", value="y"))
        return time.monotonic() - began

    ticking = asyncio.create_task(ticker())
    asyncio.get_running_loop().call_later(0.3, release.set)
    waited = await write()
    ticking.cancel()
    thread.join()
    assert waited >= 0.25  # it did wait for the other writer ...
    assert ticks >= 15  # ... and the loop went on meanwhile
    async with db.read() as conn:
        keys = set((await conn.execute(sa.select(installation.c.key))).scalars())
    assert {"mine", "other"} <= keys
    await db.close()


async def test_two_databases_on_one_file_write_concurrently(tmp_path):
    url = f"sqlite:///{tmp_path / 'metadata.db'}"
    first, second = Database(url), Database(url)
    await migrate.upgrade(first)

    async def insert(db: Database, key: str) -> None:
        async with db.write() as conn:
            await conn.execute(sa.insert(installation).values(key=key, value="v"))
            await asyncio.sleep(0.001)  # hold the lock across an await, as services do

    await asyncio.gather(*(insert(db, f"{name}{i}") for i in range(30) for db, name in ((first, "a"), (second, "b"))))
    async with first.read() as conn:
        count = (await conn.execute(sa.select(sa.func.count()).select_from(installation))).scalar()
    assert count >= 60
    await first.close()
    await second.close()
