"""Small helpers shared by the e2e tests."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("true", "1", "yes")


def require(*binaries: str) -> dict[str, str]:
    """Resolve binaries on PATH; skip (or fail under CI=true) if one is missing."""
    found, missing = {}, []
    for b in binaries:
        p = shutil.which(b)
        if p:
            found[b] = p
        else:
            missing.append(b)
    if missing:
        msg = f"required binaries not found on PATH: {', '.join(missing)}"
        if IN_CI:
            pytest.fail(msg + " (CI=true: missing tools are an error)", pytrace=False)
        pytest.skip(msg)
    return found


def run(cmd: list[str], *, env: dict | None = None, input: bytes | str | None = None,
        check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run a command, capture output as text; on failure raise with all output."""
    if isinstance(input, str):
        input = input.encode()
    proc = subprocess.run(cmd, env=env, input=input, capture_output=True, timeout=timeout)
    proc.stdout = proc.stdout.decode("utf-8", "replace")
    proc.stderr = proc.stderr.decode("utf-8", "replace")
    if check and proc.returncode != 0:
        raise AssertionError(
            f"command failed (exit {proc.returncode}): {' '.join(cmd)}\n"
            f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
        )
    return proc


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.partition(" ")
    return scheme.lower(), dict(re.findall(r'(\w+)="([^"]*)"', rest))


HOSTS_FILE = "/etc/hosts"


@contextlib.contextmanager
def etc_hosts(names: list[str], mark: str, address: str = "127.0.0.1"):
    """Make ``names`` resolve to ``address`` through /etc/hosts lines ending in ``# mark``,
    removed afterwards. Needs root (skips, or fails under CI=true, otherwise).

    Add them before dockerd starts where possible: Go caches /etc/hosts (it looks again at most
    every 5 seconds). The file is written in place, not replaced: it is often a bind mount.
    """
    tag = f"# {mark}"
    if os.geteuid() != 0 or not os.access(HOSTS_FILE, os.W_OK):
        msg = f"{', '.join(names)} must resolve and {HOSTS_FILE} isn't writable (run as root)"
        if IN_CI:
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    with open(HOSTS_FILE) as f:
        original = f.read()
    lines = "".join(f"{address} {name} {tag}\n" for name in names)
    with open(HOSTS_FILE, "a") as f:
        f.write(("" if not original or original.endswith("\n") else "\n") + lines)
    try:
        for name in names:
            resolved = {info[4][0] for info in socket.getaddrinfo(name, None)}
            assert address in resolved, f"{name} resolves to {resolved} after adding it to {HOSTS_FILE}"
        yield names
    finally:
        with open(HOSTS_FILE) as f:
            kept = [line for line in f.read().splitlines(keepends=True) if not line.rstrip().endswith(tag)]
        with open(HOSTS_FILE, "w") as f:
            f.write("".join(kept))
