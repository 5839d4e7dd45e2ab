"""PostgreSQL for the tests: one server per session, a fresh database per test.

The server runs from Debian's binaries (``initdb``, ``pg_ctl``: on PATH or under
``/usr/lib/postgresql/<version>/bin``) in a temporary directory, on 127.0.0.1 and
a free port, with trust authentication and fsync off. initdb refuses to run as
root, so as root the server runs as the ``postgres`` user (``nobody`` if there is
none), in a directory handed to that user.

``postgres_server.new_database()`` copies a database that Dockyard's migrations
have already brought to the newest schema (``CREATE DATABASE ... TEMPLATE``), so
a test's database costs a file copy, not a migration. ``stop()`` and ``start()``
restart the server on the same port and data dir, for the fault tests.

A missing binary skips the tests that need PostgreSQL, except under CI=true,
where it fails them (as for the other external tools).
"""

from __future__ import annotations

import asyncio
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("true", "1", "yes")
START_TIMEOUT = 60


def _bin_dir() -> Path | None:
    found = shutil.which("initdb")
    if found:
        directory = Path(os.path.realpath(found)).parent  # not a wrapper: postgres and pg_ctl beside it
        if (directory / "postgres").exists() and (directory / "pg_ctl").exists():
            return directory
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3].split(".")[0])
    )
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Admin:
    """A superuser connection on a private event loop in its own thread, so sync fixtures can use it."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="postgres-admin", daemon=True)
        self.thread.start()
        self.conn = None
        self.lock: asyncio.Lock | None = None

    def run(self, coro, wait: bool = True):
        async def serialized():
            if self.lock is None:
                self.lock = asyncio.Lock()
            async with self.lock:  # one statement at a time on the one connection
                return await coro

        future = asyncio.run_coroutine_threadsafe(serialized(), self.loop)
        return future.result(timeout=120) if wait else future

    async def _connection(self):
        import asyncpg

        if self.conn is None or self.conn.is_closed():
            self.conn = await asyncpg.connect(self.dsn)
        return self.conn

    def execute(self, sql: str, wait: bool = True):
        async def go():
            conn = await self._connection()
            return await conn.execute(sql)

        return self.run(go(), wait)

    def fetchval(self, sql: str, *args):
        async def go():
            conn = await self._connection()
            return await conn.fetchval(sql, *args)

        return self.run(go())

    def forget(self) -> None:
        """Drop the connection (the server went away)."""

        async def go():
            if self.conn is not None:
                self.conn.terminate()
            self.conn = None

        self.run(go())

    def close(self) -> None:
        async def go():
            if self.conn is not None and not self.conn.is_closed():
                await self.conn.close()

        try:
            self.run(go())
        except Exception:
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


class PostgresServer:
    """A private PostgreSQL server. ``url`` is the superuser's URL of its ``postgres`` database."""

    user = "dockyard"

    def __init__(self, bin_dir: Path, base: Path) -> None:
        self.bin_dir = bin_dir
        self.base = base
        self.data_dir = base / "data"
        self.log_path = base / "postgres.log"
        self.port = _free_port()
        self.run_as = None
        if os.geteuid() == 0:
            self.run_as = "postgres"
            try:
                pwd.getpwnam(self.run_as)
            except KeyError:
                self.run_as = "nobody"
            entry = pwd.getpwnam(self.run_as)
            os.chown(base, entry.pw_uid, entry.pw_gid)
        self._admin: _Admin | None = None
        self._migrated: str | None = None
        self._lock = threading.Lock()

    # -- the server ----------------------------------------------------
    def _run(self, *args: str, timeout: float = START_TIMEOUT) -> subprocess.CompletedProcess:
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        if self.run_as:
            cmd = ["setpriv", f"--reuid={self.run_as}", f"--regid={self.run_as}", "--init-groups", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=self.base,
                              stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}\n"
                               f"{self.log_text()}")
        return proc

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except OSError:
            return ""

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data_dir), "-U", self.user, "-A", "trust", "-E", "UTF8",
                  "--locale=C", "--no-sync")

    def start(self) -> None:
        options = " ".join([
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            f"-c unix_socket_directories={self.base}",
            "-c fsync=off",
            "-c synchronous_commit=off",
            "-c full_page_writes=off",
            "-c max_connections=300",
            "-c shared_buffers=64MB",
        ])
        self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_path), "-o", options, "-w",
                  "-t", str(START_TIMEOUT), "start")

    def stop(self, mode: str = "fast") -> None:
        if self._admin is not None:
            self._admin.forget()
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "stop")

    def is_running(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    # -- databases -----------------------------------------------------
    def database_url(self, name: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{name}"

    @property
    def url(self) -> str:
        return self.database_url("postgres")

    @property
    def admin(self) -> _Admin:
        if self._admin is None:
            self._admin = _Admin(self.url)
        return self._admin

    def execute(self, sql: str) -> str:
        return self.admin.execute(sql)

    def fetchval(self, sql: str, *args):
        return self.admin.fetchval(sql, *args)

    def migrated_template(self) -> str:
        """The name of a database at the newest schema, made once per session."""
        with self._lock:
            if self._migrated is None:
                name = "dockyard_migrated"
                self.execute(f'CREATE DATABASE "{name}"')

                async def migrate() -> None:
                    from dockyard.metadata import migrate as migrations
                    from dockyard.metadata.database import Database

                    db = Database(self.database_url(name))
                    try:
                        await migrations.upgrade(db)
                    finally:
                        await db.close()

                self.admin.run(migrate())
                self.execute(f'ALTER DATABASE "{name}" WITH is_template true')
                self._migrated = name
            return self._migrated

    def new_database(self, template: str | None = None, *, empty: bool = False, name: str | None = None) -> str:
        """A new database's URL: a copy of ``template`` (default: the migrated schema), or empty."""
        name = name or "t_" + uuid.uuid4().hex[:16]
        source = "template0" if empty else (template or self.migrated_template())
        self.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
        return self.database_url(name)

    def make_template(self, url: str) -> str:
        """Mark the database of ``url`` as a template (nobody may be connected to it); returns its name."""
        name = url.rsplit("/", 1)[1]
        self.execute(f'ALTER DATABASE "{name}" WITH is_template true')
        return name

    def drop_database(self, url: str, wait: bool = False) -> None:
        """Drop a test's database (in the background unless ``wait``), disconnecting whoever is left."""
        name = url.rsplit("/", 1)[1]
        self.admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', wait=wait)

    def close(self) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        if self.is_running():
            try:
                self._run("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop")
            except Exception:
                pass


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server for the session (skipped, or failed under CI=true, without the binaries)."""
    bin_dir = _bin_dir()
    if bin_dir is None or not (bin_dir / "postgres").exists():
        message = "PostgreSQL's binaries (initdb, pg_ctl, postgres) not found; `./dev test` installs them"
        if IN_CI:
            pytest.fail(message + " (CI=true: missing tools are an error)", pytrace=False)
        pytest.skip(message)
    base = Path(tempfile.mkdtemp(prefix="dockyard-pg-", dir="/tmp"))
    server = PostgresServer(bin_dir, base)
    try:
        try:
            server.init()
            server.start()
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            pytest.fail(f"PostgreSQL did not start: {error}", pytrace=False)
        yield server
    finally:
        server.close()
        shutil.rmtree(base, ignore_errors=True)
