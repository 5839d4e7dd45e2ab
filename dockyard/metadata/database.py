"""Connections to the metadata database: SQLite (WAL) embedded, PostgreSQL for scale-out.

``read()`` gives a connection for reading; ``write()`` a transaction.

SQLite runs on the event loop's own thread. Its statements take microseconds
(an indexed lookup in WAL mode never waits for a writer), far less than handing
each one to a thread and back, which cost 0.1-0.3 ms a statement. Nothing that
can wait long runs inline: a writer that finds another process holding the
write lock sleeps asynchronously and tries again, and WAL checkpoints (the only
fsyncs) run in a worker thread, not in a commit.
The SQLite plumbing for this is in ``sqlite_inline.py``.

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
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from dockyard.core.errors import RegistryError, Unavailable
from dockyard.metadata import sqlite_inline as inline


def utcnow() -> datetime:
    return datetime.now(UTC)


def async_url(url: str) -> str:
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url.removeprefix("sqlite:///")
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    return url


class Database:
    def __init__(self, url: str, *, pool_size: int = 8) -> None:
        self.url = async_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        kwargs: dict = {}
        if not self.is_sqlite:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
        self.engine = create_async_engine(self.url, **kwargs)
        # One writer at a time inside this process: waiting on an asyncio lock is
        # cheaper than retrying SQLite's write lock. A writer in another process is
        # waited for by retrying, asynchronously (_inline_transaction).
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        self._inline: sa.Engine | None = None
        self._commits_since_checkpoint = 0
        self._checkpointing: asyncio.Task | None = None
        self._raw: sqlite3.Connection | None = None
        self._writer: sa.Connection | None = None  # SQLite: the one connection of this process's writers
        if self.is_sqlite:
            # Migrations use the async engine (aiosqlite); requests use the inline one.
            inline.configure(self.engine.sync_engine, busy_ms=30000, autocheckpoint=True)
            self._inline = sa.create_engine(
                "sqlite://" + self.url.removeprefix("sqlite+aiosqlite://"),
                connect_args={"check_same_thread": False},
                pool_size=4,
                max_overflow=60,
            )
            inline.configure(self._inline, busy_ms=inline.BUSY_MS, autocheckpoint=False, raw_begin=True)
            self._statements = inline.StatementCache(self._inline.dialect)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        if self._inline is not None:
            try:
                with self._inline.connect() as conn:
                    yield inline.InlineConnection(conn, self._statements)
            except (DBAPIError, OSError, sqlite3.Error) as exc:
                raise _unavailable(exc) from exc
            return
        try:
            async with self.engine.connect() as conn:
                yield conn
        except (DBAPIError, OSError) as exc:
            raise _unavailable(exc) from exc

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        if self._inline is not None:
            async with self._write_lock:
                async with self._inline_transaction() as conn:
                    yield conn
        else:
            async with self._transaction() as conn:
                yield conn

    @asynccontextmanager
    async def _inline_transaction(self) -> AsyncIterator[AsyncConnection]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + inline.WRITE_WAIT_SECONDS
        delay = 0.002
        while True:
            # Writers take turns (the asyncio lock), so one connection, kept open, serves them all.
            if self._writer is None:
                self._writer = self._inline.connect().execution_options(dockyard_write=True)
            conn = self._writer
            try:
                transaction = conn.begin()  # BEGIN IMMEDIATE: the write lock, or "database is locked"
                break
            except (sa.exc.OperationalError, sqlite3.OperationalError) as exc:
                if "locked" not in str(exc) or loop.time() > deadline:
                    self._drop_writer()
                    raise _unavailable(exc) from exc
            except (DBAPIError, OSError) as exc:
                self._drop_writer()
                raise _unavailable(exc) from exc
            await asyncio.sleep(delay)  # another process writes: wait without holding up the loop
            delay = min(delay * 2, 0.05)
        try:
            try:
                yield inline.InlineConnection(conn, self._statements)
                transaction.commit()
            except BaseException:
                if transaction.is_active:
                    transaction.rollback()
                raise
        except sa.exc.IntegrityError:
            raise
        except (DBAPIError, OSError) as exc:
            self._drop_writer()
            raise _unavailable(exc) from exc
        self._commits_since_checkpoint += 1
        if self._commits_since_checkpoint >= inline.CHECKPOINT_EVERY and self._checkpointing is None:
            self._commits_since_checkpoint = 0
            self._checkpointing = asyncio.create_task(self._checkpoint())

    def _drop_writer(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    async def _checkpoint(self) -> None:
        """Copy the WAL back into the database file, off the loop (it fsyncs)."""

        def checkpoint() -> None:
            with self._inline.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

        try:
            await asyncio.to_thread(checkpoint)
        except Exception:  # noqa: BLE001 - the next one will do it
            pass
        finally:
            self._checkpointing = None

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

    async def fetch_one(self, statement: sa.Select, params: dict):
        """The first row of a hot read (a pull's one query), or None.

        On SQLite this skips SQLAlchemy's per-execution work: the statement is compiled
        once, and runs on one read-only sqlite3 connection of this loop's thread, in
        autocommit (each statement its own snapshot). Plain values come back as the
        driver gives them, so keep to columns whose types need no conversion (text,
        numbers, bytes; booleans arrive as 0/1).
        """
        if self._inline is None:
            async with self.read() as conn:
                return (await conn.execute(statement, params)).first()
        try:
            cursor, row_type = self._raw_execute(statement, params)
            row = cursor.fetchone()
        except sqlite3.Error as exc:
            raise _unavailable(exc) from exc
        return None if row is None else row_type(*row)

    async def fetch_all(self, statement: sa.Select, params: dict) -> list:
        """Every row of a hot read, as plain tuples; on SQLite as ``fetch_one`` runs it."""
        if self._inline is None:
            async with self.read() as conn:
                return [tuple(row) for row in await conn.execute(statement, params)]
        try:
            return self._raw_execute(statement, params)[0].fetchall()
        except sqlite3.Error as exc:
            raise _unavailable(exc) from exc

    def _raw_execute(self, statement: sa.Select, params: dict) -> tuple[sqlite3.Cursor, type]:
        sql, names, processors, row_type = self._statements.compiled(statement)
        if self._raw is None:
            self._raw = inline.raw_reader(self.url.removeprefix("sqlite+aiosqlite:///"))
        return self._raw.execute(sql, inline.bind(params, names, processors)), row_type

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
        if self._raw is not None:
            self._raw.close()
            self._raw = None
        if self._checkpointing is not None:
            await self._checkpointing
        self._drop_writer()
        if self._inline is not None:
            self._inline.dispose()
        await self.engine.dispose()


def param(column: sa.Column, name: str | None = None) -> sa.BindParameter:
    """A bind parameter typed as ``column`` (a hot statement converts its value as the column
    would), named ``name`` or after the column."""
    return sa.bindparam(name or column.name, type_=column.type)


def hot(statement):
    """Mark a statement built once, with its values as bind parameters, as one of the hot path's.

    On SQLite such a statement skips SQLAlchemy's per-execution work (compiled once, run
    straight through sqlite3, bind values still converted by their types); keep hot selects
    to columns that need no result conversion (text, numbers, bytes; booleans come as 0/1).
    Elsewhere it is an ordinary statement.
    """
    statement._dockyard_hot = True
    return statement



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
    if isinstance(exc, (DBAPIError, sqlite3.Error)) and "database is locked" in str(exc):
        # SQLite's busy timeout ran out: another process held the write lock
        return Unavailable("the metadata database is unavailable; retry shortly")
    if not _is_outage(exc):
        # A statement the database refused: a bug, not an outage.
        return exc
    return Unavailable("the metadata database is unavailable; retry shortly")
