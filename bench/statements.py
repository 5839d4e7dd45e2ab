"""What one Dockyard operation costs in database round trips, measured in-process (no HTTP).

    .venv/bin/python -m bench.statements

For the operations behind the slowest scenarios it counts SQL statements and aiosqlite
thread hand-offs (each ``await`` that crosses to the connection's worker thread and back),
and times them; then it times the same trivial query three ways (sqlite3 in the calling
thread, aiosqlite, SQLAlchemy over aiosqlite) to show what one hand-off costs on this
machine. Dockyard's code is used as is; the counters are wrapped around it from outside.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sqlite3
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiosqlite
import sqlalchemy as sa
from sqlalchemy import event

COUNTS: Counter = Counter()
_original_execute = aiosqlite.core.Connection._execute


async def _counted_execute(self, fn, *args, **kwargs):
    COUNTS["hops"] += 1
    return await _original_execute(self, fn, *args, **kwargs)


async def _body(data: bytes):
    yield data


async def measure(label: str, operation, repeats: int) -> dict:
    await operation(0)  # warm caches (statement cache, pool)
    COUNTS.clear()
    start = time.perf_counter()
    for i in range(1, repeats + 1):
        await operation(i)
    elapsed = time.perf_counter() - start
    row = {
        "operation": label,
        "statements": COUNTS["statements"] / repeats,
        "hops": COUNTS["hops"] / repeats,
        "ms": 1000 * elapsed / repeats,
    }
    print(f"{label:<58} {row['statements']:5.1f} statements {row['hops']:5.1f} hand-offs {row['ms']:7.2f} ms")
    return row


async def main() -> None:
    from dockyard import config
    from dockyard.core.digests import Digest
    from dockyard.server import open_services

    aiosqlite.core.Connection._execute = _counted_execute
    tmp = Path(tempfile.mkdtemp(prefix="dockyard-statements-"))
    settings = config.load(None, environ={"DOCKYARD_OWNER_PASSWORD": "bench-password"}, data_dir=tmp / "data")
    services, _ = await open_services(settings)

    @event.listens_for(services.db.engine.sync_engine, "before_cursor_execute")
    def _count(*_args) -> None:
        COUNTS["statements"] += 1

    registry = await services.registries.default()
    rid = registry.id
    config_blob = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    layer = os.urandom(4096)

    async def push_blob(repo: str, data: bytes) -> None:
        digest = Digest.parse("sha256:" + hashlib.sha256(data).hexdigest())
        upload = await services.uploads.start(rid, repo, "sha256")
        await services.uploads.complete(upload, digest, _body(data), length=len(data))

    for blob in (config_blob, layer):
        await push_blob("app", blob)
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": len(config_blob),
                   "digest": "sha256:" + hashlib.sha256(config_blob).hexdigest()},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": len(layer),
                    "digest": "sha256:" + hashlib.sha256(layer).hexdigest()}],
    }).encode()
    mtype = "application/vnd.docker.distribution.manifest.v2+json"
    await services.manifests.put(rid, "app", "latest", manifest, mtype, actor="owner")
    manifest_digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    layer_digest = Digest.parse("sha256:" + hashlib.sha256(layer).hexdigest())

    print(f"{'operation':<58} (per operation, in-process, sequential)")
    rows = []
    rows.append(await measure(
        "ManifestService.put: a new tag (tag creation)",
        lambda i: services.manifests.put(rid, "app", f"t{i:06d}", manifest, mtype, actor="owner"), 300))
    rows.append(await measure(
        "ListingService.tags: one page, n=100 (tags/list)",
        lambda i: services.listings.tags(rid, "app", 100, None), 300))
    rows.append(await measure(
        "ManifestService.get by tag (GET manifest)",
        lambda i: services.manifests.get(rid, "app", "latest"), 500))
    rows.append(await measure(
        "ManifestService.get by digest (HEAD manifest)",
        lambda i: services.manifests.get(rid, "app", manifest_digest), 500))
    rows.append(await measure(
        "BlobService.stat (HEAD blob)",
        lambda i: services.blobs.stat(rid, "app", layer_digest), 500))
    rows.append(await measure(
        "UploadService start + complete, 4 KiB (small blob push)",
        lambda i: push_blob("small", os.urandom(4096)), 100))
    await services.close()

    print()
    print("one trivial query (SELECT 1), three ways:")
    path = str(tmp / "probe.db")
    con = sqlite3.connect(path)
    n = 20000
    start = time.perf_counter()
    for _ in range(n):
        con.execute("select 1").fetchall()
    print(f"  sqlite3 in the calling thread             {1e6 * (time.perf_counter() - start) / n:8.1f} µs")
    con.close()
    async with aiosqlite.connect(path) as db:
        n = 3000
        start = time.perf_counter()
        for _ in range(n):
            async with db.execute("select 1") as cursor:
                await cursor.fetchall()
        print(f"  aiosqlite (execute, fetchall, close)      {1e6 * (time.perf_counter() - start) / n:8.1f} µs")
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine("sqlite+aiosqlite:///" + path)
    async with engine.connect() as conn:
        query = sa.text("select 1")
        await conn.execute(query)
        n = 2000
        start = time.perf_counter()
        for _ in range(n):
            (await conn.execute(query)).all()
        print(f"  SQLAlchemy AsyncConnection over aiosqlite {1e6 * (time.perf_counter() - start) / n:8.1f} µs")
    await engine.dispose()
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
