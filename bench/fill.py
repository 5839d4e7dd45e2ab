"""Bulk population for the 100,000-entry listings, used only for what HTTP can't do in the time.

Neither server can take 100,000 tag or repository creations over HTTP inside this run's
budget (Dockyard manages ~100-150/s, Distribution ~300-400/s on this machine), so each
server gets HTTP for a bounded time and the rest is written the way that server stores it:

- Dockyard (SQLite or PostgreSQL, given the server's database URL): rows inserted in-process
  with its own database layer and schema (``dockyard.metadata``), exactly the rows its services write for a tag (``tags``) or for a
  repository holding a blob (``repositories`` + ``repository_blobs``); no outbox events.
- Distribution: the link files its storage driver writes for a tag
  (``_manifests/tags/<tag>/current/link`` and ``index/sha256/<hex>/link``) or for a layer in a
  repository (``_layers/sha256/<hex>/link``).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

CHUNK = 5000


async def dockyard_tags(database_url: str, registry: str, repo: str, names: list[str], digest: str) -> None:
    from dockyard.metadata.database import Database
    from dockyard.metadata.schema import registries, repositories, tags

    db = Database(database_url)
    try:
        async with db.read() as conn:
            repository_id = (
                await conn.execute(
                    sa.select(repositories.c.id)
                    .join(registries, registries.c.id == repositories.c.registry_id)
                    .where(registries.c.name == registry, repositories.c.name == repo)
                )
            ).scalar_one()
        now = datetime.now(UTC)
        for start in range(0, len(names), CHUNK):
            rows = [
                {"repository_id": repository_id, "name": name, "digest": digest, "created_at": now, "updated_at": now}
                for name in names[start : start + CHUNK]
            ]
            async with db.write() as conn:
                await conn.execute(sa.insert(tags), rows)
    finally:
        await db.close()


async def dockyard_repositories(database_url: str, registry: str, names: list[str], digest: str) -> None:
    from dockyard.metadata.database import Database
    from dockyard.metadata.schema import registries, repositories, repository_blobs

    db = Database(database_url)
    try:
        async with db.read() as conn:
            registry_id = (await conn.execute(sa.select(registries.c.id).where(registries.c.name == registry))).scalar_one()
        now = datetime.now(UTC)
        for start in range(0, len(names), CHUNK):
            chunk = names[start : start + CHUNK]
            async with db.write() as conn:
                await conn.execute(
                    sa.insert(repositories),
                    [{"registry_id": registry_id, "name": name, "created_at": now, "updated_at": now} for name in chunk],
                )
                ids = (
                    await conn.execute(
                        sa.select(repositories.c.id).where(
                            repositories.c.registry_id == registry_id, repositories.c.name.in_(chunk)
                        )
                    )
                ).scalars().all()
                await conn.execute(
                    sa.insert(repository_blobs),
                    [{"repository_id": rid, "digest": digest, "created_at": now} for rid in ids],
                )
    finally:
        await db.close()


def _write(directory: str, text: str) -> None:
    os.makedirs(directory, exist_ok=True)
    fd = os.open(directory + "/link", os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def distribution_tags(root: Path, repo: str, names: list[str], digest: str) -> None:
    algorithm, _, hexdigest = digest.partition(":")
    tags_dir = f"{root}/docker/registry/v2/repositories/{repo}/_manifests/tags"
    for name in names:
        _write(f"{tags_dir}/{name}/current", digest)
        _write(f"{tags_dir}/{name}/index/{algorithm}/{hexdigest}", digest)


def distribution_repositories(root: Path, names: list[str], digest: str) -> None:
    algorithm, _, hexdigest = digest.partition(":")
    base = f"{root}/docker/registry/v2/repositories"
    for name in names:
        _write(f"{base}/{name}/_layers/{algorithm}/{hexdigest}", digest)

