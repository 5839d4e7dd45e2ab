"""Connections to the metadata database: SQLite (WAL) embedded, PostgreSQL for scale-out.

``read()`` gives a connection in autocommit mode; ``write()`` a transaction.

On SQLite a write transaction holds the write lock from its first statement
(``BEGIN IMMEDIATE``, and an asyncio lock among this process's writers), so
every write transaction is serialized and a read-then-write never races.

On PostgreSQL (READ COMMITTED) write transactions run side by side, in this
process and in others. A transaction that reads, then writes what it read must
lock first: ``SELECT ... FOR UPDATE`` on the parent row (``.with_for_update()``,
which SQLite ignores), or ``await db.lock(conn, key...)``, a transaction-scoped
advisory lock on what is being changed (a no-op on SQLite, which needs none).
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

from dockyard.core.errors import RegistryError, Unavailable


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

    async def lock(self, conn: AsyncConnection, *keys: tuple, shared: tuple[tuple, ...] = ()) -> None:
        """Serialize, until the end of ``conn``'s write transaction, with every other transaction
        that locks one of the same keys (in any process). On SQLite writers are serialized already.

        A key names what is changed, e.g. ``("repository", registry_id, name)``; ``keys`` are held
        exclusively, ``shared`` ones shared (a registry's content writers share its key, its
        deletion holds it alone). Keys are hashed to 64 bits: a collision only makes two unrelated
        writers wait for each other. Callers lock in one order (registry before repository).
        """
        if self.is_sqlite:
            return
        calls, params = [], {}
        for i, (key, function) in enumerate(
            [(k, "pg_advisory_xact_lock_shared") for k in shared] + [(k, "pg_advisory_xact_lock") for k in keys]
        ):
            calls.append(f"{function}(hashtextextended(:k{i}, 0))")
            params[f"k{i}"] = "\x1f".join(str(part) for part in key)
        await conn.execute(sa.text("SELECT " + ", ".join(calls)), params)

    async def close(self) -> None:
        await self.engine.dispose()


# PostgreSQL's SQLSTATE classes of a server that is away, starting, shutting down or out
# of resources: 08 connection exception, 53 insufficient resources (too many connections),
# 57 operator intervention (admin shutdown, cannot connect now, crash shutdown, query
# cancelled), 58 system error; and 40 transaction rollback (a deadlock or serialization
# failure: the request may simply be retried).
_OUTAGE_CLASSES = ("08", "53", "57", "58", "40")
# Text PostgreSQL can't store (a NUL character): 22021 character_not_in_repertoire,
# 22P05 untranslatable_character.
_UNSTORABLE_TEXT = ("22021", "22P05")


class UnstorableText(RegistryError):
    """Input holding a character the database can't store (a NUL): the request is bad (400)."""

    code, default_message = "UNSUPPORTED", "the request holds a character that can't be stored (NUL)"


def _sqlstate(exc: BaseException) -> str | None:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        state = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
        if isinstance(state, str) and len(state) == 5:
            return state
        exc = getattr(exc, "orig", None) or exc.__cause__
    return None


def _is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says the database is unreachable rather than refusing SQL."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    seen = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, (OSError, asyncio.TimeoutError, TimeoutError)):
            return True  # connection refused or reset, unreachable host, connect timeout
        if type(cause).__module__.startswith("asyncpg") and (
            type(cause).__name__ in _ASYNCPG_OUTAGES
            or (type(cause).__name__ == "InterfaceError" and "closed" in str(cause))
        ):
            return True
        cause = getattr(cause, "orig", None) or cause.__cause__ or cause.__context__
    state = _sqlstate(exc)
    return state is not None and state[:2] in _OUTAGE_CLASSES


# asyncpg's own errors of a connection that went away (no SQLSTATE from a server).
_ASYNCPG_OUTAGES = frozenset({
    "ConnectionDoesNotExistError", "ClientCannotConnectError", "ConnectionRejectionError", "ConnectionFailureError",
})


def _unavailable(exc: Exception) -> Exception:
    if _sqlstate(exc) in _UNSTORABLE_TEXT:
        return UnstorableText()
    if isinstance(exc, DBAPIError) and "database is locked" in str(exc):
        # SQLite's busy timeout ran out: another process held the write lock
        return Unavailable("the metadata database is unavailable; retry shortly")
    if not _is_outage(exc):
        # A statement the database refused: a bug, not an outage.
        return exc
    return Unavailable("the metadata database is unavailable; retry shortly")
