"""Health for load balancers and orchestrators, unauthenticated and revealing nothing.

``/livez``: the process answers (no database touched). ``/healthz``: this node
can serve, that is, its metadata database answers; 503 while it does not.
"""

from __future__ import annotations

import sqlalchemy as sa
from aiohttp import web

from dockyard.core.errors import Unavailable
from dockyard.http.context import services_of

PATHS = ("/livez", "/healthz")


async def live(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    try:
        async with services_of(request).db.read() as conn:
            await conn.execute(sa.text("SELECT 1"))
    except (Unavailable, OSError):
        return web.json_response({"status": "unavailable", "database": "unreachable"}, status=503)
    return web.json_response({"status": "ok"})


def register(router: web.UrlDispatcher) -> None:
    router.add_get("/livez", live)
    router.add_get("/healthz", ready)
