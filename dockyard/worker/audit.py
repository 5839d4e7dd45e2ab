"""The repository events log: each outbox event as a row shaped like ACR's
ContainerRegistryRepositoryEvents (what ACR sends to Azure Monitor)."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.metadata.database import hot, param
from dockyard.metadata.schema import audit_log
from dockyard.services import events

OPERATIONS = {
    events.PUSH: "Push",
    events.DELETE: "Delete",
    events.TAG_DELETE: "Untag",
    events.BLOB_DELETE: "BlobDelete",
    events.REPOSITORY_DELETE: "RepositoryDelete",
}


_INSERT = hot(
    sa.insert(audit_log).values(**{
        name: param(audit_log.c[name])
        for name in ("event_id", "registry_id", "time", "operation", "repository", "tag", "digest", "media_type",
                     "size", "identity")
    })
)


class AuditLog:
    name = "audit"

    async def handle(self, conn: AsyncConnection, event) -> None:
        await conn.execute(_INSERT, _row(event))

    async def handle_all(self, conn: AsyncConnection, batch: Sequence) -> None:
        await conn.execute(_INSERT, [_row(event) for event in batch])


def _row(event) -> dict:
    return {
        "event_id": event.id,
        "registry_id": event.registry_id,
        "time": event.created_at,
        "operation": OPERATIONS.get(event.action, event.action),
        "repository": event.repository,
        "tag": event.tag,
        "digest": event.digest,
        "media_type": event.media_type,
        "size": event.size,
        "identity": event.actor,
    }
