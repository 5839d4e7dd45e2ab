"""Long-running operations the Azure way: a ``201`` with ``Azure-AsyncOperation: <status URL>`` and
``Retry-After``, then ``GET <status URL>`` → ``{"status": "InProgress" | "Succeeded" | "Failed"}``.

Operations are rows of the ``operations`` table, so whichever node a poll reaches can answer it.
Dockyard's operations finish before the first answer goes out; the rows are what the SDK
pollers (azure-mgmt-core's ARMPolling) and az follow. Rows older than a day are dropped.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from aiohttp import web

from dockyard.http.arm import auth
from dockyard.http.arm.context import Call, iso, respond
from dockyard.http.arm.errors import not_found
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


def status_url(call: Call, location: str, operation: Operation) -> str:
    return (
        f"{call.base}/subscriptions/{call.params['sub']}/providers/Microsoft.ContainerRegistry/locations/"
        f"{location}/operationResults/{operation.id}?api-version={call.api_version}"
    )


async def accepted(call: Call, resource_id: str, location: str, body: dict) -> web.Response:
    """A 201 for a PUT whose work is done: the body says Creating, the status URL says when it is over."""
    operation = await OperationStore(call.services.db).record(resource_id)
    headers = {"Azure-AsyncOperation": status_url(call, location, operation), "Retry-After": "1"}
    return respond(body, status=201, headers=headers)


async def operation_status(call: Call) -> web.Response:
    operation = await OperationStore(call.services.db).get(call.params["operation"])
    if operation is None or not operation.resource_id.lower().startswith(f"/subscriptions/{call.params['sub'].lower()}/"):
        raise not_found(f"The operation '{call.params['operation'][:64]}' was not found.", "OperationNotFound")
    await auth.require(call, operation.resource_id, "read", "Microsoft.ContainerRegistry/locations/operationResults/read")
    document = {
        "id": call.path,
        "name": operation.id,
        "status": operation.status,
        "startTime": iso(operation.created_at),
    }
    if operation.finished_at is not None:
        document["endTime"] = iso(operation.finished_at)
    if operation.error:
        document["error"] = operation.error
    headers = {} if operation.finished_at is not None else {"Retry-After": "1"}
    return respond(document, headers=headers)
