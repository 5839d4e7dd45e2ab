"""Finding and creating repository rows inside a registry."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.core.errors import NameUnknown
from dockyard.metadata.database import Database, utcnow
from dockyard.metadata.schema import repositories


async def find(conn: AsyncConnection, registry_id: int, name: str) -> int | None:
    query = sa.select(repositories.c.id).where(
        repositories.c.registry_id == registry_id, repositories.c.name == name
    )
    return (await conn.execute(query)).scalar()


async def require(conn: AsyncConnection, registry_id: int, name: str) -> int:
    repository_id = await find(conn, registry_id, name)
    if repository_id is None:
        raise NameUnknown(f"repository {name!r} is not known to the registry", detail={"name": name})
    return repository_id


async def ensure(db: Database, conn: AsyncConnection, registry_id: int, name: str) -> int:
    repository_id = await find(conn, registry_id, name)
    if repository_id is not None:
        return repository_id
    now = utcnow()
    await conn.execute(
        db.insert(repositories)
        .values(registry_id=registry_id, name=name, created_at=now, updated_at=now)
        .on_conflict_do_nothing(index_elements=["registry_id", "name"])
    )
    repository_id = await find(conn, registry_id, name)
    assert repository_id is not None
    return repository_id


async def touch(conn: AsyncConnection, repository_id: int) -> None:
    await conn.execute(
        sa.update(repositories).where(repositories.c.id == repository_id).values(updated_at=utcnow())
    )
