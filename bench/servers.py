"""Start and stop the servers under test, each on loopback in its own temporary directory.

- Dockyard on its embedded defaults (SQLite + filesystem), with auth on as always.
- Dockyard's scale-out configuration: PostgreSQL (``DOCKYARD_DATABASE_URL``) and Azure Blob
  (``DOCKYARD_STORAGE_URL=azure://<container>``) on a local Azurite, both started by the test
  suite's own starters (``tests/servers/postgres.py``, ``tests/servers/azurite.py``). A second
  node on the same database and container, with ``DOCKYARD_BLOB_DELIVERY=proxy``, serves the
  pull scenarios again streaming the bytes itself instead of redirecting to Azurite.
- CNCF Distribution 2.8 (Debian's ``docker-registry``) with filesystem storage and the
  in-memory blob descriptor cache, and no auth.
- A trivial aiohttp app (one handler answering "ok") for the machine's request-rate ceiling.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DISTRIBUTION_BINARY = "/usr/bin/docker-registry"

DISTRIBUTION_CONFIG = """\
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}
  cache:
    blobdescriptor: inmemory
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{port}
  secret: {secret}
"""

TRIVIAL_APP = """\
import sys
from aiohttp import web

async def hello(request):
    return web.Response(text="ok")

app = web.Application()
app.router.add_get("/", hello)
# Dockyard runs on the stdlib asyncio loop with no access log: so does this.
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None, backlog=1024)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in bytes."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) * 1024
            elif key == "Threads":
                out[key] = int(value)
    return out


def reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux: write 5 to clear_refs)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


@dataclass
class Server:
    name: str
    base: str
    process: subprocess.Popen
    workdir: Path
    log_path: Path
    password: str | None = None  # Dockyard's owner password; None = no auth
    data_root: Path | None = None  # where the server keeps its data
    notes: list[str] = field(default_factory=list)
    key: str = ""  # the column its figures go to: dockyard, distribution, scaleout, scaleout_proxy
    database_url: str = ""  # Dockyard: its metadata database
    facts: dict[str, str] = field(default_factory=dict)  # for the results' facts (versions of helpers)
    helpers: dict[str, int] = field(default_factory=dict)  # other processes it relies on (name: pid), for memory notes
    cleanup: list = field(default_factory=list)  # called after stop(), last first

    @property
    def is_dockyard(self) -> bool:
        return self.key != "distribution"

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss(self) -> dict[str, int]:
        return proc_status(self.pid)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        while self.cleanup:
            try:
                self.cleanup.pop()()
            except Exception as error:  # stopping one helper must not keep the others running
                print(f"{self.name}: cleanup failed: {error}", file=sys.stderr)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _wait_http(base: str, process: subprocess.Popen, log_path: Path, accept: tuple[int, ...], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log_path.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(base + "/v2/", timeout=2) as response:
                status = response.status
        except urllib.error.HTTPError as error:
            status = error.code
        except OSError:
            time.sleep(0.1)
            continue
        if status in accept:
            return
        time.sleep(0.1)
    raise RuntimeError(f"server at {base} did not come up in {timeout}s")


def check_distribution_installed() -> str | None:
    """None if Distribution is here, else what to do about it."""
    if os.access(DISTRIBUTION_BINARY, os.X_OK):
        return None
    return (
        f"{DISTRIBUTION_BINARY} is missing. Install Debian's CNCF Distribution 2.8 once, as root:\n"
        "    apt-get install -y docker-registry\n"
        "(the package also starts a docker-registry service on :5000; `systemctl disable --now docker-registry` "
        "if you don't want it)"
    )


def distribution_version() -> str:
    try:
        out = subprocess.run([DISTRIBUTION_BINARY, "--version"], capture_output=True, text=True, timeout=10).stdout
        return out.strip().split()[-1] if out.strip() else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def start_dockyard(tmp: Path, name: str = "Dockyard", key: str = "dockyard", workdir_name: str = "dockyard",
                   env: dict[str, str] | None = None, password: str | None = None, data: Path | None = None,
                   args: tuple[str, ...] = ()) -> Server:
    """``python -m dockyard serve`` with ``DOCKYARD_OWNER_PASSWORD``; ``env`` adds settings (database, storage),
    ``data`` shares another node's data dir, ``args`` adds options (``--workers``)."""
    workdir = tmp / workdir_name
    workdir.mkdir()
    data = data or workdir / "data"
    port = free_port()
    password = password or secrets.token_urlsafe(18)
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_") and k != "AZURE_STORAGE_CONNECTION_STRING"}
    full_env["DOCKYARD_OWNER_PASSWORD"] = password
    full_env.update(env or {})
    log_path = workdir / "server.log"
    log = open(log_path, "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "dockyard", "serve", "--data-dir", str(data), "--listen", f"127.0.0.1:{port}", *args],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=REPO_ROOT, env=full_env,
    )
    base = f"http://127.0.0.1:{port}"
    _wait_http(base, process, log_path, (401,))
    database_url = full_env.get("DOCKYARD_DATABASE_URL") or f"sqlite:///{data / 'metadata.db'}"
    return Server(name, base, process, workdir, log_path, password=password, data_root=data, key=key,
                  database_url=database_url)


# -- the scale-out configuration: PostgreSQL + Azure Blob on Azurite ------------------------------

SCALEOUT_NAME = "Dockyard PG+Azure"
SCALEOUT_PROXY_NAME = "Dockyard PG+Azure, proxy"


def _test_servers():
    """The test suite's starters (tests/servers/), importable because the repository root is on sys.path."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from tests.servers import azurite, postgres

    return postgres, azurite


def check_scaleout_available(install: bool = True) -> str | None:
    """None if PostgreSQL's binaries, node and Azurite are here (Azurite is installed from npm into
    ~/.cache/dockyard/azurite when ``install``, as the tests do), else why not."""
    try:
        postgres, azurite = _test_servers()
    except ImportError as error:
        return f"the test suite's server starters can't be imported ({error}); install the dev dependencies"
    bin_dir = postgres._bin_dir()
    if bin_dir is None or not (bin_dir / "postgres").exists():
        return "PostgreSQL's binaries (initdb, pg_ctl, postgres) are missing; `./dev test` installs them"
    if not install:
        script = azurite.cache_dir() / "node_modules" / ".bin" / "azurite-blob"
        if shutil.which("node") is None or not script.exists():
            return f"Azurite is not installed in {azurite.cache_dir()} (bench/run --targets ...,dockyard-pg-azure installs it)"
        return None
    try:
        azurite.ensure_azurite()
    except BaseException as error:  # ensure_azurite() reports a missing tool with pytest.skip (a BaseException)
        if isinstance(error, (KeyboardInterrupt, SystemExit)):
            raise
        return f"Azurite is unavailable: {error}"
    return None


def start_scaleout(tmp: Path, proxy: bool = True) -> list[Server]:
    """PostgreSQL and Azurite (the tests' starters), then a Dockyard node on them (``blob_delivery: redirect``,
    the default) and, if ``proxy``, a second node on the same database and container with
    ``blob_delivery: proxy``. The first node owns the helpers: stopping it stops them (after the proxy node,
    which ``stop`` must be called for first)."""
    postgres, azurite = _test_servers()
    # initdb refuses root, so as root PostgreSQL runs as the postgres user: its directory must be reachable
    # by that user, which the 0700 workspace is not. Like the tests' fixture, it gets its own /tmp directory.
    pg_base = Path(tempfile.mkdtemp(prefix="dockyard-bench-pg-", dir="/tmp"))
    cleanup: list = [lambda: shutil.rmtree(pg_base, ignore_errors=True)]
    started: list[Server] = []
    try:
        pg = postgres.PostgresServer(postgres._bin_dir(), pg_base)
        pg.init()
        pg.start()
        cleanup.append(pg.close)
        database_url = pg.new_database(empty=True)  # Dockyard migrates it when it starts
        az = azurite.AzuriteServer(azurite.ensure_azurite(), tmp / "azurite")
        az.start()
        cleanup.append(az.stop)
        env = {
            "DOCKYARD_DATABASE_URL": database_url,
            "DOCKYARD_STORAGE_URL": f"azure://{az.new_container()}",
            "AZURE_STORAGE_CONNECTION_STRING": az.connection_string,
        }
        main = start_dockyard(tmp, SCALEOUT_NAME, "scaleout", "dockyard-pg-azure", env)
        main.cleanup = cleanup
        main.helpers = {"Azurite": az.proc.pid}
        main.facts = {"scaleout_postgres": pg_version(pg), "scaleout_azurite": azurite.AZURITE_VERSION}
        main.notes.append(f"PostgreSQL {main.facts['scaleout_postgres']} on 127.0.0.1:{pg.port}; Azurite {azurite.AZURITE_VERSION} at {az.endpoint}")
        started.append(main)
        if proxy:
            started.append(start_dockyard(tmp, SCALEOUT_PROXY_NAME, "scaleout_proxy", "dockyard-pg-azure-proxy",
                                          {**env, "DOCKYARD_BLOB_DELIVERY": "proxy"}, password=main.password))
        return started
    except BaseException:
        for server in started[::-1]:
            server.stop()
        if not started:
            for step in cleanup[::-1]:
                try:
                    step()
                except Exception:
                    pass
        raise


def pg_version(pg) -> str:
    try:
        return str(pg.fetchval("SHOW server_version")).split()[0]
    except Exception:
        return "?"


def start_distribution(tmp: Path) -> Server:
    workdir = tmp / "distribution"
    workdir.mkdir()
    root = workdir / "data"
    port = free_port()
    config = workdir / "config.yml"
    config.write_text(DISTRIBUTION_CONFIG.format(root=root, port=port, secret=secrets.token_hex(16)))
    log_path = workdir / "server.log"
    log = open(log_path, "wb")
    process = subprocess.Popen(
        [DISTRIBUTION_BINARY, "serve", str(config)],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=workdir,
    )
    base = f"http://127.0.0.1:{port}"
    _wait_http(base, process, log_path, (200,))
    return Server("Distribution", base, process, workdir, log_path, password=None, data_root=root, key="distribution")


def start_trivial(tmp: Path) -> Server:
    workdir = tmp / "trivial"
    workdir.mkdir()
    script = workdir / "app.py"
    script.write_text(TRIVIAL_APP)
    port = free_port()
    log_path = workdir / "server.log"
    log = open(log_path, "wb")
    process = subprocess.Popen(
        [sys.executable, str(script), str(port)], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(base + "/", timeout=2):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the trivial aiohttp app did not start:\n" + log_path.read_text(errors="replace"))
            time.sleep(0.1)
    return Server("trivial aiohttp", base, process, workdir, log_path)


class Workspace:
    """A temporary directory that holds every server's data; removed at the end."""

    def __init__(self, keep: bool = False) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="dockyard-bench-"))
        self.keep = keep

    def close(self) -> None:
        if not self.keep:
            # rm is several times faster than shutil.rmtree on the ~10^6 directories Distribution leaves
            if subprocess.run(["rm", "-rf", "--", str(self.path)], check=False).returncode != 0:
                shutil.rmtree(self.path, ignore_errors=True)
