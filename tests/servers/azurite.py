"""Azurite (Microsoft's Azure Storage emulator) for the tests: one blob service per session.

Azurite comes from npm, pinned, installed once into a cache directory
(``$XDG_CACHE_HOME/dockyard/azurite``, else ``~/.cache/dockyard/azurite``): ``./dev test``
installs it there, and the fixture installs it itself when it is missing. Only the blob
service runs, on 127.0.0.1 and a free port, with its data in a temporary directory.

``azurite.new_container()`` names a fresh container (the driver creates it), so tests
never see each other's blobs. ``stop()`` and ``start()`` restart the server on the same
port and data directory, for the fault tests.

A missing node, npm or Azurite skips the tests that need it, except under CI=true,
where it fails them (as for the other external tools).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("true", "1", "yes")
AZURITE_VERSION = "3.35.0"  # keep in step with ./dev
START_TIMEOUT = 60
INSTALL_TIMEOUT = 600

# Azurite's well-known development account (documented, the same in every Azurite).
ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dockyard" / "azurite"


def _unavailable(message: str) -> None:
    if IN_CI:
        pytest.fail(message + " (CI=true: missing tools are an error)", pytrace=False)
    pytest.skip(message)


def _installed_version(prefix: Path) -> str | None:
    try:
        return json.loads((prefix / "node_modules" / "azurite" / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


def ensure_azurite() -> Path:
    """The ``azurite-blob`` script of the pinned Azurite, installed with npm if needed."""
    prefix = cache_dir()
    script = prefix / "node_modules" / ".bin" / "azurite-blob"
    if shutil.which("node") is None:
        _unavailable("node is not on PATH (Azurite needs Node.js)")
    if script.exists() and _installed_version(prefix) == AZURITE_VERSION:
        return script
    npm = shutil.which("npm")
    if npm is None:
        _unavailable(f"Azurite is not installed in {prefix} and npm is not on PATH to install it")
    prefix.mkdir(parents=True, exist_ok=True)
    with open(prefix / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one installer at a time
        if not (script.exists() and _installed_version(prefix) == AZURITE_VERSION):
            proc = subprocess.run(
                [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", "--loglevel=error",
                 f"azurite@{AZURITE_VERSION}"],
                capture_output=True, text=True, timeout=INSTALL_TIMEOUT, stdin=subprocess.DEVNULL,
            )
            if proc.returncode != 0 or not script.exists():
                _unavailable(f"npm install azurite@{AZURITE_VERSION} failed:\n{proc.stdout}\n{proc.stderr}")
    return script


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AzuriteServer:
    account_name = ACCOUNT_NAME
    account_key = ACCOUNT_KEY

    def __init__(self, script: Path, base: Path) -> None:
        self.script = script
        self.base = base
        self.location = base / "data"
        self.location.mkdir(parents=True, exist_ok=True)
        self.log_path = base / "azurite.log"
        self.port = _free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        """The blob service URL (path-style: the account is the first path segment)."""
        return f"http://127.0.0.1:{self.port}/{self.account_name}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={self.account_name};"
            f"AccountKey={self.account_key};BlobEndpoint={self.endpoint};"
        )

    def new_container(self) -> str:
        return f"dockyard-{uuid.uuid4().hex[:24]}"

    def start(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    str(self.script),
                    "--blobHost", "127.0.0.1",
                    "--blobPort", str(self.port),
                    "--location", str(self.location),
                    "--silent",
                    "--skipApiVersionCheck",  # the SDK's API version is newer than Azurite knows
                    "--disableTelemetry",
                ],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.base,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"azurite exited with {self.proc.returncode}:\n{self._log_tail()}")
            if self._answers():
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"azurite did not answer within {START_TIMEOUT}s:\n{self._log_tail()}")

    def _answers(self) -> bool:
        try:
            urllib.request.urlopen(f"{self.endpoint}?comp=list", timeout=2).close()
        except urllib.error.HTTPError:
            return True  # any HTTP answer (403 without credentials) means it serves
        except OSError:
            return False
        return True

    def _log_tail(self, limit: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-limit:]
        except OSError:
            return ""

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="session")
def azurite():
    """A running Azurite blob service (see the module's docstring)."""
    script = ensure_azurite()
    base = Path(tempfile.mkdtemp(prefix="dockyard-azurite-"))
    server = AzuriteServer(script, base)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
