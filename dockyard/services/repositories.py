"""Finding and creating repository rows inside a registry."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.core.errors import NameUnknown
from dockyard.metadata.database import Database, hot, utcnow
from dockyard.metadata.schema import registries, repositories


_FIND = hot(
    sa.select(repositories.c.id).where(
        repositories.c.registry_id == sa.bindparam("registry_id"), repositories.c.name == sa.bindparam("name")
    )
)
_TOUCH = hot(
    sa.update(repositories).where(repositories.c.id == sa.bindparam("repository_id")).values(
        updated_at=sa.bindparam("now", type_=repositories.c.updated_at.type)
    )
)


async def find(conn: AsyncConnection, registry_id: int, name: str) -> int | None:
    return (await conn.execute(_FIND, {"registry_id": registry_id, "name": name})).scalar()


async def require(conn: AsyncConnection, registry_id: int, name: str) -> int:
    repository_id = await find(conn, registry_id, name)
    if repository_id is None:
        raise unknown(name)
    return repository_id


def unknown(name: str) -> NameUnknown:
    return NameUnknown(f"repository {name!r} is not known to the registry", detail={"name": name})


async def lock(db: Database, conn: AsyncConnection, registry_id: int, name: str) -> None:
    """Take the write locks of a change to this repository's content, first thing in the transaction.

    On PostgreSQL writers of one repository (pushes, tag moves, deletes, blob links, attribute
    changes, its creation and deletion) run one at a time, in every process, so what they read
    still holds when they write; the registry's key is shared, so deleting the registry waits
    for them and they for it. On SQLite the write lock serializes every writer already.
    """
    await db.lock(conn, ("repository", registry_id, name), shared=(("registry", registry_id),))


async def ensure(db: Database, conn: AsyncConnection, registry_id: int, name: str) -> int:
    """The repository's id, creating it (call ``lock`` first). NAME_UNKNOWN if the registry is gone."""
    repository_id = await find(conn, registry_id, name)
    if repository_id is not None:
        return repository_id
    if not db.is_sqlite:
        # the registry may have been deleted since the request found it
        alive = (await conn.execute(sa.select(registries.c.id).where(registries.c.id == registry_id))).scalar()
        if alive is None:
            raise NameUnknown(f"the registry of repository {name!r} was deleted", detail={"name": name})
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
    await conn.execute(_TOUCH, {"repository_id": repository_id, "now": utcnow()})
