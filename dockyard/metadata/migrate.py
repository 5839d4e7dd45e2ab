"""Bringing a database to the newest schema with Alembic, at startup.

Several nodes may start at once: the migration runs under a lock, so one
migrates and the others then find the schema current. On PostgreSQL that is an
advisory lock held by the migrating transaction; on SQLite, the write lock
(``BEGIN IMMEDIATE``). Alembic's module-level state also allows one migration
per process at a time.
"""

from __future__ import annotations

import asyncio
import os
import sys
import weakref
from pathlib import Path

import sqlalchemy as sa

from dockyard.metadata.database import Database

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str | None = None):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url:
        config.set_main_option("sqlalchemy.url", url)
    return config


# Any fixed 64-bit number, the same on every node: "dockyard migrations".
MIGRATION_LOCK = 0x646F636B79617264
_process_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


def head_revision() -> str:
    """The newest migration's revision: revisions are numbered, and files named after them."""
    return max(path.name.split("_", 1)[0] for path in (MIGRATIONS / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))


async def current_revision(database: Database) -> str | None:
    try:
        async with database.read() as conn:
            return (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).scalar()
    except sa.exc.DBAPIError:
        return None  # a new database: no version table yet


async def upgrade(database: Database) -> None:
    # A database already at the newest schema (every start but the first after an upgrade)
    # needs no Alembic at all: not loading it keeps ~10 MiB off every node's memory.
    if await current_revision(database) == head_revision():
        return

    def _run(connection) -> None:
        from alembic import command

        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")

    loop = asyncio.get_running_loop()
    lock = _process_locks.setdefault(loop, asyncio.Lock())
    async with lock:
        async with database.engine.connect() as conn:
            conn = await conn.execution_options(dockyard_write=True)
            async with conn.begin():
                if not database.is_sqlite:
                    await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
                await conn.run_sync(_run)


_URL_VARIABLE = "DOCKYARD_MIGRATE_URL"


async def upgrade_in_child(database: Database) -> None:
    """upgrade() in a child interpreter, for long-running processes (serve, worker).

    Alembic, its migration modules and the async SQLite driver it drives stay in
    the child, so the server does not carry them (~13 MiB of resident memory)
    after a first start or an upgrade. The URL goes through the environment, not
    the command line, which other users may read.
    """
    if await current_revision(database) == head_revision():
        return
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", __name__, env={**os.environ, _URL_VARIABLE: database.url},
    )
    if await child.wait() != 0:
        raise RuntimeError("migrating the database failed: see the error above")


async def _main(url: str) -> None:
    database = Database(url)
    try:
        await upgrade(database)
    finally:
        await database.close()


if __name__ == "__main__":
    asyncio.run(_main(os.environ[_URL_VARIABLE]))
