"""Conditional and partial requests (RFC 9110 sections 13 and 14) for content named by its digest."""

from __future__ import annotations

import re

from aiohttp import web

_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


def etag(digest: str) -> str:
    return f'"{digest}"'


def not_modified(request: web.Request, digest: str) -> bool:
    """Whether ``If-None-Match`` names this content (or ``*``), so the answer is 304."""
    header = request.headers.get("If-None-Match")
    if not header:
        return False
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate.startswith("W/"):
            candidate = candidate[2:]
        if candidate == "*" or candidate == etag(digest):
            return True
    return False


def byte_range(request: web.Request, size: int) -> tuple[int, int] | None:
    """(offset, count) of a single satisfiable ``Range``; None to send the whole content.

    A malformed header, or several ranges, is ignored (RFC 9110 allows it); an
    unsatisfiable one is answered with 416 and ``Content-Range: bytes */size``.
    """
    header = request.headers.get("Range")
    if header is None:
        return None
    match = _RANGE.match(header)
    if not match or (not match.group(1) and not match.group(2)):
        return None
    first, last = match.group(1), match.group(2)
    if first:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
        if last and int(last) < start:
            return None  # invalid range spec: ignore the header
        if start >= size:
            raise _unsatisfiable(size)
    else:  # suffix range: the last N bytes; N = 0 can't be satisfied
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise _unsatisfiable(size)
        start, end = max(size - suffix, 0), size - 1
    return start, end - start + 1


def _unsatisfiable(size: int) -> web.HTTPRequestRangeNotSatisfiable:
    return web.HTTPRequestRangeNotSatisfiable(headers={"Content-Range": f"bytes */{size}"})
