"""Where handlers find the services and the registry a request was routed to."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from aiohttp import web

from dockyard.core.names import check_repository

if TYPE_CHECKING:
    from dockyard.server import Services
    from dockyard.services.registries import Registry

SERVICES: web.AppKey["Services"] = web.AppKey("services")
REGISTRY: web.RequestKey["Registry"] = web.RequestKey("registry")
IDENTITY: web.RequestKey[object] = web.RequestKey("identity")


def services_of(request: web.Request) -> "Services":
    return request.app[SERVICES]


def registry_of(request: web.Request) -> "Registry":
    return request[REGISTRY]


def repository_of(request: web.Request) -> str:
    return _valid_repository(request.match_info["name"])


@lru_cache(maxsize=4096)
def _valid_repository(name: str) -> str:
    """``check_repository``, remembered for valid names (an invalid one raises every time)."""
    return check_repository(name)


def base_url(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def actor_of(request: web.Request) -> str | None:
    identity = request.get(IDENTITY)
    return identity.principal.name if identity is not None else None
