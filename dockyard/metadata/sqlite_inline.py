"""SQLite on the event loop's own thread (see dockyard/metadata/database.py).

Connection set-up (WAL, busy timeouts, BEGIN / BEGIN IMMEDIATE), the connection
wrapper the services see, and the fast path of hot statements: compiled once,
run straight through sqlite3 with their bind values still converted by type.
"""

from __future__ import annotations

import collections
import sqlite3

import sqlalchemy as sa
from sqlalchemy import event

# SQLite, inline: how long a statement may wait for a lock before failing (readers in WAL
# mode practically never wait); how long a writer retries while another process writes;
# WAL checkpoints after this many commits (instead of SQLite's automatic ones, in a commit).
BUSY_MS = 20
WRITE_WAIT_SECONDS = 30.0
CHECKPOINT_EVERY = 500


def raw_reader(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    for pragma in (f"busy_timeout={BUSY_MS}", "query_only=ON", "cache_size=-32000"):
        conn.execute(f"PRAGMA {pragma}")
    return conn


def bind(params: dict, names: tuple[str, ...], processors: dict) -> list:
    return [processors[name](params[name]) if name in processors else params[name] for name in names]


class RawResult:
    """What the services use of a result, for a hot statement run straight through sqlite3."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list, rowcount: int) -> None:
        self._rows, self.rowcount = rows, rowcount

    def first(self):
        return self._rows[0] if self._rows else None

    def scalar(self):
        return self._rows[0][0] if self._rows else None

    def scalar_one(self):
        if len(self._rows) != 1:
            raise sa.exc.NoResultFound("expected one row")
        return self._rows[0][0]

    def all(self) -> list:
        return list(self._rows)

    def __iter__(self):
        return iter(self._rows)


class InlineConnection:
    """A SQLite connection that runs each statement at once, on the calling thread.

    It offers the one method the services use, ``await conn.execute(...)``, with
    the same buffered result an AsyncConnection gives (for hot statements, the
    same methods of a plainer one).
    """

    __slots__ = ("_conn", "_statements")

    def __init__(self, conn: sa.Connection, statements: "StatementCache") -> None:
        self._conn = conn
        self._statements = statements

    async def execute(self, statement, parameters=None, **kwargs):
        if isinstance(parameters, dict) and getattr(statement, "_dockyard_hot", False):
            sql, names, processors, row_type = self._statements.compiled(statement)
            try:
                cursor = self._conn.connection.driver_connection.execute(sql, bind(parameters, names, processors))
                rows = [row_type(*row) for row in cursor.fetchall()] if row_type is not None else []
            except sqlite3.IntegrityError as exc:
                raise sa.exc.IntegrityError(sql, parameters, exc) from exc
            except sqlite3.Error as exc:
                raise sa.exc.DBAPIError(sql, parameters, exc) from exc
            return RawResult(rows, cursor.rowcount)
        return self._conn.execute(statement, parameters, **kwargs)


def configure(engine: sa.Engine, *, busy_ms: int, autocheckpoint: bool, raw_begin: bool = False) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # pragma: no cover - driver hook
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        pragmas = ["journal_mode=WAL", "synchronous=NORMAL", f"busy_timeout={busy_ms}", "foreign_keys=ON",
                   "cache_size=-32000"]
        if not autocheckpoint:
            pragmas.append("wal_autocheckpoint=0")
        for pragma in pragmas:
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:  # pragma: no cover - driver hook
        sql = "BEGIN IMMEDIATE" if connection.get_execution_options().get("dockyard_write") else "BEGIN"
        if raw_begin:  # straight to sqlite3: a full SQLAlchemy execution costs more than the BEGIN
            connection.connection.driver_connection.execute(sql)
        else:
            connection.exec_driver_sql(sql)


class StatementCache:
    """Hot statements compiled for SQLite once: SQL, bind order, bind processors, row type."""

    def __init__(self, dialect) -> None:
        self._dialect = dialect
        self._entries: dict[int, tuple] = {}

    def compiled(self, statement) -> tuple[str, tuple[str, ...], dict, type | None]:
        entry = self._entries.get(id(statement))
        if entry is None or entry[0] is not statement:
            compiled = statement.compile(dialect=self._dialect)
            row_type = None
            if isinstance(statement, sa.Select) or getattr(statement, "_returning", None):
                keys = list(statement.selected_columns.keys()) if isinstance(statement, sa.Select) else [
                    column.key for column in statement._returning
                ]
                row_type = collections.namedtuple("Row", keys, rename=True)
            entry = self._entries[id(statement)] = (
                statement, compiled.string, tuple(compiled.positiontup or ()), dict(compiled._bind_processors), row_type
            )
        return entry[1:]
