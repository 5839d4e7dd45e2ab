"""Requests too broken to reach a handler (a garbage Content-Length, a bad request line) still
get an OCI error body and the API version header, not aiohttp's plain-text page."""

from __future__ import annotations

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from dockyard.http.errors import body

import logging

log = logging.getLogger("dockyard.http")


def _code(status: int, reason: str) -> str:
    if status in (413, 431) or "content-length" in reason.lower():
        return "SIZE_INVALID"
    return "UNSUPPORTED"


class _Handler(RequestHandler):
    def handle_error(self, request, status: int = 500, exc=None, message=None) -> web.StreamResponse:
        if request.writer.output_size > 0:  # an answer is already on the wire: only closing is left
            raise ConnectionError("response already started; closing the connection")
        if status >= 500:
            log.error("error handling request from %s", request.remote, exc_info=exc)
            response = web.Response(status=500, body=body("UNKNOWN", "internal error"), content_type="application/json")
        else:
            reason = (message or str(exc or "") or "malformed HTTP request").strip().splitlines()[0][:200]
            log.info("refused a malformed request from %s: %s", request.remote, reason)
            response = web.Response(
                status=status,
                body=body(_code(status, reason), f"malformed HTTP request: {reason}"),
                content_type="application/json",
            )
        response.headers["Docker-Distribution-API-Version"] = "registry/2.0"
        response.force_close()
        return response


class _Server(web.Server):
    def __call__(self) -> RequestHandler:
        return _Handler(self, loop=self._loop, **self._kwargs)


class Runner(web.AppRunner):
    """An AppRunner whose connections render protocol-level errors the OCI way."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _Server
        return server
