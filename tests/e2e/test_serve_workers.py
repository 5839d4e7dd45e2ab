"""`dockyard serve --workers N`: N processes answer on one port and stop together."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import pytest
import requests

from .conftest import DockyardServer
from .helpers import free_port

pytestmark = pytest.mark.e2e


def children(pid: int) -> list[int]:
    tasks = Path(f"/proc/{pid}/task")
    found = []
    for task in tasks.iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def test_two_serving_processes_share_the_port_and_stop_together(tmp_path):
    server = DockyardServer(data_dir=tmp_path / "data", log_path=tmp_path / "server.log", port=free_port(),
                            password="pw-" + uuid.uuid4().hex, args=["--workers", "2"])
    server.start()
    try:
        kids = children(server.proc.pid)
        assert len(kids) == 2, kids
        # Both answer: each accepted connection goes to one of them; all agree on the content.
        token = server.token("repository:workers/app:push,pull")
        headers = {"Authorization": f"Bearer {token}"}
        data = os.urandom(100_000)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        url = f"{server.url}/v2/workers/app/blobs/uploads/"
        assert requests.post(url, params={"digest": digest}, data=data, headers=headers, timeout=30).status_code == 201
        for _ in range(20):  # new connections each time, spread over both processes
            response = requests.get(f"{server.url}/v2/workers/app/blobs/{digest}", headers=headers, timeout=30)
            assert response.status_code == 200 and response.content == data
        proc = server.proc
    finally:
        server.stop()
    assert proc.returncode == 0
    for pid in kids:  # the parent waited for its children: none is left behind
        assert not Path(f"/proc/{pid}").exists(), pid
