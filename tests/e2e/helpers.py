"""Small helpers shared by the e2e tests."""

from __future__ import annotations

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
