"""Long-running operations: rows of the ``operations`` table, so any node can answer a poll."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from dockyard.metadata.database import Database, utcnow
from dockyard.metadata.schema import operations

KEEP = timedelta(days=1)
_ID = re.compile(r"^[0-9a-fA-F-]{36}$")


@dataclass(frozen=True, slots=True)
class Operation:
    id: str
    status: str
    resource_id: str
    error: dict | None
    created_at: datetime
    finished_at: datetime | None


class OperationStore:
    """The ``operations`` table: nothing here knows HTTP."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(self, resource_id: str, status: str = "Succeeded", error: dict | None = None) -> Operation:
        now = utcnow()
        operation = Operation(str(uuid.uuid4()), status, resource_id, error, now,
                              now if status in ("Succeeded", "Failed", "Canceled") else None)
        async with self.db.write() as conn:
            await conn.execute(sa.delete(operations).where(operations.c.created_at < now - KEEP))
            await conn.execute(
                sa.insert(operations).values(
                    id=operation.id, status=operation.status, resource_id=resource_id, error=error,
                    created_at=now, finished_at=operation.finished_at,
                )
            )
        return operation

    async def finish(self, operation_id: str, status: str = "Succeeded", error: dict | None = None) -> None:
        async with self.db.write() as conn:
            await conn.execute(
                sa.update(operations)
                .where(operations.c.id == operation_id)
                .values(status=status, error=error, finished_at=utcnow())
            )

    async def get(self, operation_id: str) -> Operation | None:
        if not _ID.match(operation_id):
            return None
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(operations).where(operations.c.id == operation_id.lower()))).first()
        if row is None:
            return None
        return Operation(row.id, row.status, row.resource_id, row.error, row.created_at, row.finished_at)
