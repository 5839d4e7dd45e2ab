"""Connections to the metadata database: SQLite (WAL) embedded, PostgreSQL for scale-out.

``read()`` gives a connection in autocommit mode; ``write()`` a transaction
that holds the write lock from its first statement (``BEGIN IMMEDIATE`` on
SQLite, so a read-then-write transaction never fails on lock upgrade).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from dockyard.core.errors import Unavailable


def utcnow() -> datetime:
    return datetime.now(UTC)


def async_url(url: str) -> str:
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url.removeprefix("sqlite:///")
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    return url


def sync_url(url: str) -> str:
    return url.replace("+aiosqlite", "").replace("+asyncpg", "+psycopg")


class Database:
    def __init__(self, url: str, *, pool_size: int = 8) -> None:
        self.url = async_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        kwargs: dict = {}
        if not self.is_sqlite:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
        self.engine = create_async_engine(self.url, **kwargs)
        # One writer at a time inside this process: waiting on an asyncio lock is
        # cheaper than SQLite's busy-retry sleep. Other processes still wait on
        # SQLite's busy timeout.
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        if self.is_sqlite:
            self._configure_sqlite()

    def _configure_sqlite(self) -> None:
        sync_engine = self.engine.sync_engine

        @event.listens_for(sync_engine, "connect")
        def _on_connect(dbapi_connection, _record) -> None:  # pragma: no cover - driver hook
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            for pragma in (
                "journal_mode=WAL",
                "synchronous=NORMAL",
                "busy_timeout=30000",
                "foreign_keys=ON",
                "cache_size=-32000",
            ):
                cursor.execute(f"PRAGMA {pragma}")
            cursor.close()

        @event.listens_for(sync_engine, "begin")
        def _on_begin(connection) -> None:  # pragma: no cover - driver hook
            if connection.get_execution_options().get("dockyard_write"):
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                connection.exec_driver_sql("BEGIN")

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        try:
            async with self.engine.connect() as conn:
                yield conn
        except (DBAPIError, OSError) as exc:
            raise _unavailable(exc) from exc

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        if self._write_lock is not None:
            async with self._write_lock:
                async with self._transaction() as conn:
                    yield conn
        else:
            async with self._transaction() as conn:
                yield conn

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncConnection]:
        try:
            async with self.engine.connect() as conn:
                conn = await conn.execution_options(dockyard_write=True)
                async with conn.begin():
                    yield conn
        except sa.exc.IntegrityError:
            raise
        except (DBAPIError, OSError) as exc:
            raise _unavailable(exc) from exc

    def insert(self, table: sa.Table):
        """An INSERT that can take ``on_conflict_do_nothing``/``do_update`` on either dialect."""
        return sqlite.insert(table) if self.is_sqlite else postgresql.insert(table)

    async def close(self) -> None:
        await self.engine.dispose()


def _unavailable(exc: Exception) -> Exception:
    if isinstance(exc, DBAPIError) and not exc.connection_invalidated and "locked" not in str(exc).lower():
        # A statement the database refused: a bug, not an outage.
        return exc
    return Unavailable("the metadata database is unavailable; retry shortly")
