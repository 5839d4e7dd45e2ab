"""The ARM route table and its dispatcher.

Fixed segments (``resourcegroups``, ``providers``, ``Microsoft.ContainerRegistry``) match
without regard to case, as ARM's do; names are matched by the handlers, also without
regard to case. Every answer, errors included, is in ARM's shape.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from sqlalchemy.exc import IntegrityError

from dockyard.core.errors import RegistryError
from dockyard.http.arm import groups, metadata, operations, registries, roles, scopemaps, subscriptions
from dockyard.http.arm.auth import authenticate
from dockyard.http.arm.context import Call
from dockyard.http.arm.errors import ArmError, from_registry_error, internal_error, render
from dockyard.http.context import services_of

log = logging.getLogger("dockyard.http.arm")

Handler = Callable[[Call], Awaitable[web.Response]]

SUB = r"/subscriptions/(?P<sub>[^/]+)"
RG = SUB + r"/resourcegroups/(?P<rg>[^/]+)"
ACR = r"/providers/microsoft\.containerregistry"
REG = RG + ACR + r"/registries/(?P<reg>[^/]+)"
SCOPE = r"(?P<scope>(?:/.*?)?)"
AUTHZ = r"/providers/microsoft\.authorization"


@dataclass(frozen=True)
class Route:
    pattern: re.Pattern
    handlers: dict[str, Handler]
    public: bool = False


def _route(pattern: str, public: bool = False, **handlers: Handler) -> Route:
    return Route(re.compile(pattern, re.IGNORECASE), {m.upper(): h for m, h in handlers.items()}, public)


ROUTES: tuple[Route, ...] = (
    _route("/metadata/endpoints", get=metadata.endpoints, public=True),
    _route(SCOPE + AUTHZ + r"/roleassignments", get=roles.list_assignments),
    _route(SCOPE + AUTHZ + r"/roleassignments/(?P<name>[^/]+)",
           get=roles.get_assignment, put=roles.put_assignment, delete=roles.delete_assignment),
    _route(SCOPE + AUTHZ + r"/roledefinitions", get=roles.list_definitions),
    _route(SCOPE + AUTHZ + r"/roledefinitions/(?P<id>[^/]+)", get=roles.get_definition),
    _route("/tenants", get=subscriptions.list_tenants),
    _route("/subscriptions", get=subscriptions.list_subscriptions),
    _route(SUB, get=subscriptions.get_subscription),
    _route(SUB + "/resources", get=groups.list_resources),
    _route(SUB + "/resourcegroups", get=groups.list_groups),
    _route(RG, get=groups.get_group, head=groups.head_group, put=groups.put_group,
           patch=groups.patch_group, delete=groups.delete_group),
    _route(RG + "/resources", get=groups.list_resources),
    _route(SUB + ACR + "/registries", get=registries.list_registries),
    _route(SUB + ACR + "/checknameavailability", post=registries.check_name),
    _route(SUB + ACR + r"/locations/(?P<location>[^/]+)/operationresults/(?P<operation>[^/]+)",
           get=operations.operation_status),
    _route(RG + ACR + "/registries", get=registries.list_registries),
    _route(REG, get=registries.get_registry, put=registries.put_registry,
           patch=registries.patch_registry, delete=registries.delete_registry),
    _route(REG + "/listcredentials", post=registries.list_credentials),
    _route(REG + "/regeneratecredential", post=registries.regenerate_credential),
    _route(REG + "/listusages", get=registries.list_usages, post=registries.list_usages),
    _route(REG + "/generatecredentials", post=scopemaps.generate_credentials),
    _route(REG + "/scopemaps", get=scopemaps.list_maps),
    _route(REG + r"/scopemaps/(?P<name>[^/]+)", get=scopemaps.get_map, put=scopemaps.put_map,
           patch=scopemaps.patch_map, delete=scopemaps.delete_map),
    _route(REG + "/tokens", get=scopemaps.list_tokens),
    _route(REG + r"/tokens/(?P<name>[^/]+)", get=scopemaps.get_token, put=scopemaps.put_token,
           patch=scopemaps.patch_token, delete=scopemaps.delete_token),
)


def _existence(response: web.Response) -> web.Response:
    """HEAD on a resource: 204 if it exists, else the GET's error status (ARM's check-existence)."""
    return web.Response(status=204) if response.status == 200 else response


def _find(path: str) -> tuple[Route, dict[str, str]] | None:
    for route in ROUTES:
        match = route.pattern.fullmatch(path)
        if match is not None:
            return route, {k: v for k, v in match.groupdict().items() if v is not None}
    return None


async def dispatch(request: web.Request, path: str) -> web.Response:
    """Answer an ARM request whose (normalised) path is ``path``, with ARM's request id headers."""
    response = await _answer(request, path)
    request_id = str(uuid.uuid4())
    response.headers["x-ms-request-id"] = request_id
    response.headers["x-ms-correlation-request-id"] = _echo(request, "x-ms-correlation-request-id") or request_id
    client_id = _echo(request, "x-ms-client-request-id")
    if client_id:
        response.headers["x-ms-client-request-id"] = client_id
    return response


def _echo(request: web.Request, header: str) -> str | None:
    value = request.headers.get(header, "")[:64]
    return value if value and value.isprintable() else None


async def _answer(request: web.Request, path: str) -> web.Response:
    call = Call(request=request, services=services_of(request), path=path)
    try:
        found = _find(path)
        if found is None or not found[0].public:
            call.principal = await authenticate(call)
        if found is None:
            raise ArmError(404, "NotFound", f"No Dockyard resource manager endpoint matches '{path[:300]}'.")
        route, call.params = found
        handler = route.handlers.get(request.method)
        if handler is None and request.method == "HEAD" and "GET" in route.handlers:
            return _existence(await route.handlers["GET"](call))
        if handler is None:
            raise ArmError(
                405, "MethodNotAllowed", f"The method {request.method} is not allowed on '{path[:300]}'.",
                {"Allow": ", ".join(sorted(route.handlers))},
            )
        return await handler(call)
    except ArmError as error:
        return render(error)
    except RegistryError as error:
        return render(from_registry_error(error))
    except IntegrityError:  # two writers raced for the same name: the loser may simply retry
        return render(ArmError(409, "Conflict", "The resource was changed by another request at the same time; retry."))
    except web.HTTPException as error:
        return render(ArmError(error.status, error.reason.replace(" ", ""), error.reason))
    except Exception:
        log.exception("unhandled error on ARM %s %s", request.method, path[:300])
        return internal_error()
