"""Long-running operations the Azure way: a ``201`` with ``Azure-AsyncOperation: <status URL>`` and
``Retry-After``, then ``GET <status URL>`` → ``{"status": "InProgress" | "Succeeded" | "Failed"}``.

Operations are rows of the ``operations`` table, so whichever node a poll reaches can answer it.
Dockyard's operations finish before the first answer goes out; the rows are what the SDK
pollers (azure-mgmt-core's ARMPolling) and az follow. Rows older than a day are dropped.
"""

from __future__ import annotations

from aiohttp import web

from dockyard.http.arm import auth
from dockyard.http.arm.context import Call, iso, respond
from dockyard.http.arm.errors import not_found
from dockyard.services.operations import Operation


def status_url(call: Call, location: str, operation: Operation) -> str:
    return (
        f"{call.base}/subscriptions/{call.params['sub']}/providers/Microsoft.ContainerRegistry/locations/"
        f"{location}/operationResults/{operation.id}?api-version={call.api_version}"
    )


async def accepted(call: Call, resource_id: str, location: str, body: dict) -> web.Response:
    """A 201 for a PUT whose work is done: the body says Creating, the status URL says when it is over."""
    operation = await call.services.operations.record(resource_id)
    headers = {"Azure-AsyncOperation": status_url(call, location, operation), "Retry-After": "1"}
    return respond(body, status=201, headers=headers)


async def operation_status(call: Call) -> web.Response:
    operation = await call.services.operations.get(call.params["operation"])
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
