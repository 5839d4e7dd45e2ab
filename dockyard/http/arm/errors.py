"""ARM's error envelope: ``{"error": {"code", "message"}}`` with ARM's codes and statuses.

Handlers raise `ArmError`; the services' `RegistryError`s are mapped by their code. Any other
exception is a bug: it is logged and answered 500 in the same envelope.
"""

from __future__ import annotations

import json
import logging

from aiohttp import web

from dockyard.core import errors as core

log = logging.getLogger("dockyard.http.arm")


class ArmError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def bad_request(message: str, code: str = "InvalidRequestContent") -> ArmError:
    return ArmError(400, code, message)


def not_found(message: str, code: str = "ResourceNotFound") -> ArmError:
    return ArmError(404, code, message)


def conflict(message: str, code: str = "Conflict") -> ArmError:
    return ArmError(409, code, message)


def resource_not_found(kind: str, name: str, group: str | None = None) -> ArmError:
    where = f" under resource group '{group}'" if group else ""
    return not_found(f"The Resource '{kind}/{name}'{where} was not found.")


# Codes the services raise, by the status ARM gives them; anything else is a 400.
_STATUS_BY_CODE = {
    "ResourceNotFound": 404,
    "ResourceGroupNotFound": 404,
    "SubscriptionNotFound": 404,
    "RoleAssignmentNotFound": 404,
    "NotFound": 404,
    "AlreadyExists": 409,
    "Conflict": 409,
    "RoleAssignmentExists": 409,
    "QuotaExceeded": 409,
}


def from_registry_error(error: core.RegistryError) -> ArmError:
    if isinstance(error, core.Unavailable):
        return ArmError(503, "ServiceUnavailable", error.message, {"Retry-After": "5"})
    if isinstance(error, core.TooManyRequests):
        return ArmError(429, "TooManyRequests", error.message, {"Retry-After": "60"})
    code = error.code if error.code and error.code.isascii() and not error.code.isupper() else "BadRequest"
    return ArmError(_STATUS_BY_CODE.get(error.code, 400), code, error.message)


def render(error: ArmError) -> web.Response:
    return web.Response(
        status=error.status,
        body=json.dumps({"error": {"code": error.code, "message": error.message}}).encode(),
        content_type="application/json",
        headers=error.headers,
    )


def internal_error() -> web.Response:
    return render(ArmError(500, "InternalServerError", "An internal error occurred; it has been logged."))
