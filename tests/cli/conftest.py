"""Fixtures for the client CLI's end-to-end tests: a real `dockyard serve` over TLS, the real
`dockyard` CLI in subprocesses (each with its own DOCKYARD_CONFIG_DIR), and the private dockerd
of tests/e2e.

The server serves a per-session registry domain, ``e2e<hex>.dockyard.localhost``, with a
certificate from dockyard/tls.py (names ``*.<domain>`` and 127.0.0.1) and listens on a random
port of 127.0.0.1. The CLI reaches login servers (``<registry>.<domain>:<port>``) through
``--endpoint``, so no name needs to resolve for it. docker does need the name: the
``login_server_resolves`` fixture adds ``127.0.0.1 <login server host>`` to /etc/hosts when
getaddrinfo can't resolve it (glibc here doesn't resolve ``*.localhost``), and removes the line
afterwards; that needs root, otherwise the docker test is skipped.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from e2e.conftest import DockyardServer, busybox_image, busybox_rootfs, busybox_tar, dockerd  # noqa: F401
from e2e.helpers import free_port

HOSTS_FILE = Path("/etc/hosts")
HOSTS_MARK = "# dockyard-cli-e2e"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: end-to-end test against a real server with real clients")


@dataclass
class CliServer(DockyardServer):
    """A DockyardServer that serves ``domain`` (passed as DOCKYARD_DOMAIN while it starts)."""

    domain: str = "dockyard.localhost"

    def start(self) -> None:
        previous = os.environ.get("DOCKYARD_DOMAIN")
        os.environ["DOCKYARD_DOMAIN"] = self.domain
        try:
            super().start()
        finally:
            if previous is None:
                os.environ.pop("DOCKYARD_DOMAIN", None)
            else:
                os.environ["DOCKYARD_DOMAIN"] = previous

    @property
    def ca_file(self) -> str | None:
        return str(self.tls_dir / "ca.pem") if self.tls_dir else None


def _tls_dir(base: Path, domain: str) -> Path | None:
    try:
        from dockyard import tls
    except ImportError:  # TLS support not there: plain http
        return None
    directory = base / "certs"
    ca, _ = tls.load_or_create_ca(directory)
    tls.issue_server_cert(ca, directory, domain)
    return directory


@pytest.fixture(scope="session")
def dockyard_server(tmp_path_factory: pytest.TempPathFactory):
    """Overrides tests/e2e's server for these tests (dockerd, imported above, uses this one)."""
    base = tmp_path_factory.mktemp("dockyard-cli")
    (base / "data").mkdir()
    domain = f"e2e{uuid.uuid4().hex[:6]}.dockyard.localhost"
    server = CliServer(data_dir=base / "data", log_path=base / "server.log", port=free_port(),
                       password="pw-" + uuid.uuid4().hex, tls_dir=_tls_dir(base, domain), domain=domain)
    try:
        server.start()
    except RuntimeError as error:
        pytest.fail(str(error), pytrace=False)
    yield server
    server.stop()


class Cli:
    """Runs the real `dockyard` CLI with its own config dir."""

    def __init__(self, server: CliServer, config_dir: Path, env: dict | None = None) -> None:
        self.server = server
        self.config_dir = config_dir
        self.env = dict(env if env is not None else os.environ)
        self.env["DOCKYARD_CONFIG_DIR"] = str(config_dir)
        self.env.pop("DOCKYARD_ENDPOINT", None)
        if server.ca_file:
            self.env["REQUESTS_CA_BUNDLE"] = server.ca_file
        self.env.pop("DOCKYARD_DOMAIN", None)

    def __call__(self, *args: str, check: bool = True, input: str | None = None,
                 env: dict | None = None) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, "-m", "dockyard", *args], capture_output=True, text=True,
                              env={**self.env, **(env or {})}, input=input, timeout=300)
        if check and proc.returncode != 0:
            raise AssertionError(f"dockyard {' '.join(args)} exited {proc.returncode}\n"
                                 f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}")
        return proc

    def json(self, *args: str, **kwargs) -> object:
        return json.loads(self(*args, **kwargs).stdout)

    def with_env(self, env: dict) -> "Cli":
        return Cli(self.server, self.config_dir, {**self.env, **env})


@pytest.fixture(scope="session")
def cli(dockyard_server: CliServer, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    """The CLI, signed in as the owner."""
    runner = Cli(dockyard_server, tmp_path_factory.mktemp("cli-owner"))
    runner("login", "--endpoint", dockyard_server.url, "-u", dockyard_server.username,
           "-p", dockyard_server.password, "-o", "none")
    return runner


@pytest.fixture
def fresh_cli(dockyard_server: CliServer, tmp_path: Path) -> Cli:
    """The CLI with an empty config dir of its own."""
    return Cli(dockyard_server, tmp_path / "cfg")


def _resolves(host: str) -> bool:
    try:
        return any(info[4][0] == "127.0.0.1" for info in socket.getaddrinfo(host, None, socket.AF_INET))
    except socket.gaierror:
        return False


@pytest.fixture(scope="session")
def login_server_resolves(dockyard_server: CliServer):
    """Make ``mycontainerregistry.<domain>`` resolve to 127.0.0.1 for docker (an /etc/hosts line)."""
    host = f"mycontainerregistry.{dockyard_server.domain}"
    if _resolves(host):
        yield host
        return
    if os.geteuid() != 0 or not os.access(HOSTS_FILE, os.W_OK):
        pytest.skip(f"{host} doesn't resolve and /etc/hosts isn't writable (run as root)")
    line = f"127.0.0.1 {host} {HOSTS_MARK}\n"
    original = HOSTS_FILE.read_text()
    # written in place, not replaced: /etc/hosts is often a bind mount
    with open(HOSTS_FILE, "a") as f:
        f.write(("" if original.endswith("\n") or not original else "\n") + line)
    try:
        assert _resolves(host), f"{host} still doesn't resolve after adding it to /etc/hosts"
        yield host
    finally:
        kept = [x for x in HOSTS_FILE.read_text().splitlines(keepends=True) if HOSTS_MARK not in x or host not in x]
        with open(HOSTS_FILE, "w") as f:
            f.write("".join(kept))
