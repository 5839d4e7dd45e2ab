"""Health endpoints for load balancers: no credentials needed, nothing revealed."""

from __future__ import annotations


async def test_livez_and_healthz_answer_without_credentials(anonymous):
    for path in ("/livez", "/healthz"):
        response = await anonymous.get(path)
        assert response.status == 200, path
        assert await response.json() == {"status": "ok"}


async def test_healthz_is_503_while_the_database_is_unreachable(anonymous, services, monkeypatch):
    from contextlib import asynccontextmanager

    from dockyard.core.errors import Unavailable

    @asynccontextmanager
    async def unreachable():
        raise Unavailable("the metadata database is unavailable; retry shortly")
        yield

    monkeypatch.setattr(services.db, "read", unreachable)
    response = await anonymous.get("/healthz")
    assert response.status == 503
    assert (await response.json())["status"] == "unavailable"
    assert (await anonymous.get("/livez")).status == 200
