"""A Dockyard cluster for the scale-out tests: nodes and workers on one PostgreSQL and one object store."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests

from .conftest import _LOGS, DockyardServer, _stop_process
from .helpers import free_port


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def store_settings(kind: str, request) -> tuple[dict[str, str], object]:
    """The environment that points nodes at a fresh container or bucket, and the store's server."""
    if kind == "azure":
        azurite = request.getfixturevalue("azurite")
        env = {
            "DOCKYARD_STORAGE_URL": f"azure://{azurite.new_container()}",
            "AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string,
        }
        return env, azurite
    radosgw = request.getfixturevalue("radosgw")
    bucket = radosgw.new_bucket()
    env = {
        "DOCKYARD_STORAGE_URL": f"s3://{bucket}?endpoint={radosgw.endpoint}&region={radosgw.region}",
        "AWS_ACCESS_KEY_ID": radosgw.access_key,
        "AWS_SECRET_ACCESS_KEY": radosgw.secret_key,
    }
    return env, radosgw


@dataclass
class Cluster:
    nodes: list[DockyardServer]
    env: dict[str, str]
    base: Path
    database_url: str
    store: object
    workers: list[subprocess.Popen] = field(default_factory=list)

    def start(self) -> None:
        """Start every node at once (they migrate a new database together), then the workers."""
        errors: list[BaseException] = []

        def start(node: DockyardServer) -> None:
            try:
                node.start()
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=start, args=(node,)) for node in self.nodes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            self.stop()
            raise errors[0]
        for _ in range(2):
            self.start_worker()

    def start_worker(self) -> subprocess.Popen:
        index = len(self.workers)
        log_path = self.base / f"worker{index}.log"
        _LOGS[f"worker{index}"] = log_path
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "dockyard", "worker", "--data-dir", str(self.base / f"worker{index}")],
                env=dict(os.environ, **self.env), stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
        self.workers.append(proc)
        return proc

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        for proc in self.workers:
            _stop_process(proc)

    def query(self, sql: str):
        """One value from the cluster's database (as an operator's psql would give it)."""
        import asyncpg

        async def fetch():
            conn = await asyncpg.connect(self.database_url)
            try:
                return await conn.fetchval(sql)
            finally:
                await conn.close()

        return asyncio.run(fetch())


def make_cluster(request, postgres_server, base: Path, kind: str, nodes: int = 2, **settings: str) -> Cluster:
    store_env, store = store_settings(kind, request)
    database_url = postgres_server.new_database(empty=True)
    env = {
        **store_env,
        "DOCKYARD_DATABASE_URL": database_url,
        "DOCKYARD_BACKGROUND_WORK": "external",
        **{f"DOCKYARD_{name.upper()}": value for name, value in settings.items()},
    }
    password = "pw-" + uuid.uuid4().hex
    servers = []
    for i in range(nodes):
        log_path = base / f"node{i}.log"
        _LOGS[f"{kind} node{i}"] = log_path
        servers.append(DockyardServer(data_dir=base / f"node{i}", log_path=log_path, port=free_port(),
                                      password=password, env=env))
    return Cluster(servers, env, base, database_url, store)


class Client:
    """Raw registry HTTP as docker speaks it, to any node, with one bearer token for all."""

    def __init__(self, cluster: Cluster, repository: str) -> None:
        self.cluster = cluster
        self.repository = repository
        token = cluster.nodes[0].token(f"repository:{repository}:push,pull,delete")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def url(self, node: int, path: str) -> str:
        if path.startswith("http"):
            return path
        return self.cluster.nodes[node].url + path

    def request(self, method: str, node: int, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", 60)
        kwargs.setdefault("allow_redirects", False)
        return self.session.request(method, self.url(node, path), **kwargs)


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{what} not reached within {timeout}s (last: {last!r})")
