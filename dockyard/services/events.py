"""The outbox: each change of content is written as an event in the same transaction."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.metadata.database import hot, param, utcnow
from dockyard.metadata.schema import events

# Actions, as ACR's webhooks name the ones it has.
PUSH = "push"
DELETE = "delete"
TAG_DELETE = "tag_delete"
BLOB_DELETE = "blob_delete"
REPOSITORY_DELETE = "repository_delete"  # after the delete and tag_delete events of its content


_RECORD = hot(
    sa.insert(events).values(
        **{
            name: param(events.c[name])
            for name in ("registry_id", "action", "repository", "digest", "tag", "media_type", "size", "actor",
                         "created_at")
        }
    )
)


async def record(
    conn: AsyncConnection,
    *,
    registry_id: int,
    action: str,
    repository: str,
    digest: str | None = None,
    tag: str | None = None,
    media_type: str | None = None,
    size: int | None = None,
    actor: str | None = None,
) -> None:
    await conn.execute(
        _RECORD,
        {
            "registry_id": registry_id,
            "action": action,
            "repository": repository,
            "digest": digest,
            "tag": tag,
            "media_type": media_type,
            "size": size,
            "actor": actor,
            "created_at": utcnow(),
        },
    )


async def pending(conn: AsyncConnection, after_id: int = 0, limit: int = 100) -> list:
    """Events not yet processed, oldest first (for consumers and tests)."""
    query = (
        sa.select(events)
        .where(events.c.processed_at.is_(None), events.c.id > after_id)
        .order_by(events.c.id)
        .limit(limit)
    )
    return list((await conn.execute(query)).all())
