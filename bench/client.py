"""The registry client the benchmark drives both servers with: aiohttp, as docker talks.

Three kinds of request bypass aiohttp, because its cost would be what they measure: the big pulls' bodies
(bench/rawget.py), the big pushes' bodies (bench/rawput.py) and every timed listing (tags/list, _catalog:
``list_page`` and ``walk`` over a bench/http1.py keep-alive connection from ``warm_connection``).

Every operation checks its answer (status, digest headers, sizes, bodies), so a fast wrong
answer fails the run instead of winning it.

Auth is docker's token flow: the first request to /v2/ is challenged with
``Bearer realm=...,service=...``; a token per scope comes from the realm with Basic
``owner:<password>`` and is sent as ``Authorization: Bearer``. A server without a password
(Distribution here) gets no Authorization header at all.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import aiohttp

from bench import http1, rawget, rawput
from bench.servers import Server

MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_TYPE = "application/vnd.docker.container.image.v1+json"
LAYER_TYPE = "application/vnd.docker.image.rootfs.diff.tar.gzip"


class Mismatch(AssertionError):
    """A server answered something other than what the protocol and the data require."""


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise Mismatch(message)


def sha256(data: bytes | memoryview) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def pull_scope(repo: str) -> str:
    return f"repository:{repo}:pull"


def push_scope(repo: str) -> str:
    return f"repository:{repo}:pull,push"


CATALOG_SCOPE = "registry:catalog:*"


def session(limit: int, read_bufsize: int = 1 << 16) -> aiohttp.ClientSession:
    """One connection per concurrent worker, kept alive, no overall timeout."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, limit_per_host=limit, force_close=False),
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=30),
        read_bufsize=read_bufsize,
        auto_decompress=False,
    )


class Target:
    """A server as the client sees it, with docker's token cache for servers that have auth."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.name = server.name
        self.base = server.base
        self.password = server.password
        self.realm: str | None = None
        self.service: str | None = None
        self._tokens: dict[tuple[str, ...], dict[str, str]] = {}
        self.tokens_fetched = 0
        self.redirects = 0  # blob GETs answered with a redirect to the store (followed by pull())

    @property
    def key(self) -> str:
        return self.server.key

    @property
    def auth(self) -> bool:
        return self.password is not None

    async def discover(self, s: aiohttp.ClientSession) -> None:
        """GET /v2/ and read the challenge, as docker does before its first token."""
        async with s.get(self.base + "/v2/") as r:
            await r.read()
            if not self.auth:
                expect(r.status == 200, f"{self.name}: GET /v2/ answered {r.status}, expected 200 without auth")
                return
            expect(r.status == 401, f"{self.name}: GET /v2/ answered {r.status}, expected a 401 challenge")
            challenge = r.headers.get("WWW-Authenticate", "")
        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        expect(challenge.startswith("Bearer ") and "realm" in params, f"{self.name}: bad challenge {challenge!r}")
        self.realm, self.service = params["realm"], params.get("service")

    async def fetch_token(self, s: aiohttp.ClientSession, scopes: tuple[str, ...]) -> str:
        assert self.realm is not None, "discover() first"
        query = ([("service", self.service)] if self.service else []) + [("scope", scope) for scope in scopes]
        basic = "Basic " + base64.b64encode(f"owner:{self.password}".encode()).decode()
        async with s.get(self.realm, params=query, headers={"Authorization": basic}) as r:
            body = await r.read()
            expect(r.status == 200, f"{self.name}: token endpoint answered {r.status}: {body[:200]!r}")
        document = json.loads(body)
        token = document.get("access_token") or document.get("token")
        expect(bool(token), f"{self.name}: token answer without a token")
        self.tokens_fetched += 1
        return token

    async def headers(self, s: aiohttp.ClientSession, *scopes: str) -> dict[str, str]:
        if not self.auth:
            return {}
        key = tuple(scopes)
        cached = self._tokens.get(key)
        if cached is None:
            cached = self._tokens[key] = {"Authorization": "Bearer " + await self.fetch_token(s, key)}
        return cached

    def url(self, path: str) -> str:
        return self.base + path

    def absolute(self, location: str) -> str:
        return self.base + location if location.startswith("/") else location


async def _pieces(data: memoryview, piece: int):
    for offset in range(0, len(data), piece):
        yield data[offset : offset + piece]


def _body(data: bytes | memoryview, piece: int = 1 << 20):
    """Small bodies as they are; big ones streamed as zero-copy slices, with their length declared."""
    if len(data) <= piece:
        return bytes(data)
    return _pieces(memoryview(data), piece)


def _with_digest(location: str, digest: str) -> str:
    return location + ("&" if "?" in location else "?") + "digest=" + digest


async def start_upload(s, t: Target, h, repo: str) -> str:
    async with s.post(t.url(f"/v2/{repo}/blobs/uploads/"), headers=h) as r:
        body = await r.read()
        expect(r.status == 202, f"{t.name}: POST upload in {repo} answered {r.status}: {body[:200]!r}")
        location = r.headers.get("Location")
    expect(bool(location), f"{t.name}: upload started without a Location")
    return t.absolute(location)


async def push_monolithic(s, t: Target, h, repo: str, data: bytes, digest: str, raw: bool = False) -> None:
    """POST to open an upload, then one PUT ?digest= carrying the whole blob. ``raw``: the PUT through
    bench/rawput.py's bare request instead of the session, for the big pushes."""
    location = await start_upload(s, t, h, repo)
    headers = {**h, "Content-Type": "application/octet-stream", "Content-Length": str(len(data))}
    what = f"{t.name}: monolithic PUT of {digest}"
    if raw:
        status, fields, body = await rawput.send("PUT", _with_digest(location, digest), headers, data, what)
    else:
        async with s.put(_with_digest(location, digest), data=_body(data), headers=headers) as r:
            status, fields, body = r.status, {k.lower(): v for k, v in r.headers.items()}, await r.read()
    expect(status == 201, f"{what} answered {status}: {body[:200]!r}")
    expect(fields.get("docker-content-digest") == digest, f"{what}: answered digest {fields.get('docker-content-digest')}")


async def push_chunked(s, t: Target, h, repo: str, data: bytes, digest: str, chunk: int, raw: bool = False) -> int:
    """POST, one PATCH per chunk with Content-Range, then PUT ?digest= with no body. Returns the PATCH count.
    ``raw``: the PATCHes through bench/rawput.py's bare request (one connection each) instead of the session."""
    location = await start_upload(s, t, h, repo)
    view = memoryview(data)
    patches = 0
    for start in range(0, len(view), chunk):
        part = view[start : start + chunk]
        end = start + len(part) - 1
        headers = {
            **h,
            "Content-Type": "application/octet-stream",
            "Content-Range": f"{start}-{end}",
            "Content-Length": str(len(part)),
        }
        what = f"{t.name}: PATCH {start}-{end}"
        if raw:
            status, fields, body = await rawput.send("PATCH", location, headers, part, what)
        else:
            async with s.patch(location, data=_body(part), headers=headers) as r:
                status, fields, body = r.status, {k.lower(): v for k, v in r.headers.items()}, await r.read()
        expect(status == 202, f"{what} answered {status}: {body[:200]!r}")
        expect(fields.get("range") == f"0-{end}", f"{what} answered Range {fields.get('range')}, expected 0-{end}")
        location = t.absolute(fields["location"])
        patches += 1
    async with s.put(_with_digest(location, digest), headers={**h, "Content-Length": "0"}) as r:
        body = await r.read()
        expect(r.status == 201, f"{t.name}: closing PUT of {digest} answered {r.status}: {body[:200]!r}")
        expect(r.headers.get("Docker-Content-Digest") == digest, f"{t.name}: closing PUT answered another digest")
    return patches


async def read_checked(response, expected: bytes, what: str) -> int:
    """Read a body piece by piece, comparing each with the same bytes of ``expected`` as it arrives and
    keeping nothing; fails on the first differing byte. (``bytes.startswith`` at an offset: one memcmp in
    place, ~45 GB/s here; ``==`` through a memoryview is forty times slower and would make the client the
    bottleneck.)"""
    offset = 0
    async for piece in response.content.iter_any():
        end = offset + len(piece)
        expect(end <= len(expected) and expected.startswith(piece, offset), f"{what}: body differs from the pushed bytes at offset {offset}")
        offset = end
    expect(offset == len(expected), f"{what}: body has {offset} bytes, expected {len(expected)}")
    return offset


async def pull(s, t: Target, h, repo: str, digest: str, expected: bytes, raw: bool = False) -> None:
    """GET a blob; its bytes must be exactly the pushed ones (hence their sha256 is the digest).

    A 307 (an object store's short-lived URL, Dockyard's ``blob_delivery: redirect``) is followed as docker
    does: the Location is fetched without the registry's Authorization (the URL carries its own SAS), and
    the bytes from there are checked the same way. Redirects are followed by hand, not by aiohttp, so that
    which headers go where is explicit and a redirect that loops or goes back to the registry fails.
    ``raw``: through bench/rawget.py's bare GET (one connection per pull) instead of the session, for the
    big pulls, where aiohttp's reader would be the bottleneck."""
    what = f"{t.name}: GET blob {digest}"
    status, location = await _get_checked(s, t.url(f"/v2/{repo}/blobs/{digest}"), h, expected, what, digest, raw)
    if status == 200:
        return
    t.redirects += 1
    location = t.absolute(location)
    expect(not location.startswith(t.base + "/"), f"{t.name}: GET blob redirected back to the registry: {location}")
    # no Authorization: the store is another origin
    status, _ = await _get_checked(s, location, {}, expected, f"{what} from the store", None, raw)
    expect(status == 200, f"{what}: the store redirected again")


async def _get_checked(s, url: str, h, expected: bytes, what: str, digest: str | None, raw: bool) -> tuple[int, str]:
    """One GET of a blob: a 200's body checked against ``expected``, or a redirect's Location."""
    if raw:
        status, fields, body = await rawget.get(url, h, expected, what)
        header, location = fields.get("docker-content-digest"), fields.get("location")
    else:
        async with s.get(url, headers=h, allow_redirects=False) as r:
            status, header, location = r.status, r.headers.get("Docker-Content-Digest"), r.headers.get("Location")
            body = await read_checked(r, expected, what) if status == 200 else await r.read()
    expect(digest is None or header in (None, digest), f"{what} answered digest {header}")
    if status in (307, 302, 303):
        expect(bool(location), f"{what} answered {status} without a Location")
        return status, location
    if status != 200:
        raise Mismatch(f"{what} answered {status}: {body[:300]!r}")
    return status, ""


async def head_blob(s, t: Target, h, repo: str, digest: str, size: int) -> None:
    async with s.head(t.url(f"/v2/{repo}/blobs/{digest}"), headers=h) as r:
        expect(r.status == 200, f"{t.name}: HEAD blob answered {r.status}")
        expect(r.headers.get("Docker-Content-Digest") == digest, f"{t.name}: HEAD blob answered another digest")
        expect(r.headers.get("Content-Length") == str(size), f"{t.name}: HEAD blob answered length {r.headers.get('Content-Length')}")


def make_manifest(config: bytes, layers: list[bytes]) -> bytes:
    document = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": CONFIG_TYPE, "size": len(config), "digest": sha256(config)},
        "layers": [{"mediaType": LAYER_TYPE, "size": len(layer), "digest": sha256(layer)} for layer in layers],
    }
    return json.dumps(document, indent=3).encode()


async def put_manifest(s, t: Target, h, repo: str, reference: str, manifest: bytes, digest: str) -> None:
    headers = {**h, "Content-Type": MANIFEST_TYPE}
    async with s.put(t.url(f"/v2/{repo}/manifests/{reference}"), data=manifest, headers=headers) as r:
        body = await r.read()
        expect(r.status == 201, f"{t.name}: PUT manifest {repo}:{reference} answered {r.status}: {body[:200]!r}")
        expect(r.headers.get("Docker-Content-Digest") == digest, f"{t.name}: PUT manifest answered another digest")


async def get_manifest(s, t: Target, h, repo: str, reference: str, manifest: bytes, digest: str) -> None:
    async with s.get(t.url(f"/v2/{repo}/manifests/{reference}"), headers={**h, "Accept": MANIFEST_TYPE}) as r:
        body = await r.read()
        expect(r.status == 200, f"{t.name}: GET manifest answered {r.status}")
        expect(r.headers.get("Docker-Content-Digest") == digest, f"{t.name}: GET manifest answered another digest")
        expect(body == manifest, f"{t.name}: GET manifest answered other bytes")


async def head_manifest(s, t: Target, h, repo: str, digest: str, size: int) -> None:
    async with s.head(t.url(f"/v2/{repo}/manifests/{digest}"), headers={**h, "Accept": MANIFEST_TYPE}) as r:
        expect(r.status == 200, f"{t.name}: HEAD manifest answered {r.status}")
        expect(r.headers.get("Docker-Content-Digest") == digest, f"{t.name}: HEAD manifest answered another digest")
        expect(r.headers.get("Content-Length") == str(size), f"{t.name}: HEAD manifest answered length {r.headers.get('Content-Length')}")


async def mount(s, t: Target, h, repo: str, source: str, digest: str) -> None:
    """Cross-repository mount: what docker does to push a layer another repository already has."""
    async with s.post(t.url(f"/v2/{repo}/blobs/uploads/?mount={digest}&from={source}"), headers=h) as r:
        body = await r.read()
        expect(r.status == 201, f"{t.name}: mount of {digest} into {repo} answered {r.status}: {body[:200]!r}")
        expect(r.headers.get("Docker-Content-Digest") == digest, f"{t.name}: mount answered another digest")


_LINK = re.compile(r"<([^>]+)>")


@contextlib.asynccontextmanager
async def warm_connection(t: Target, h, path: str = "/v2/") -> AsyncIterator[http1.Connection]:
    """The connection policy of every timed listing, the same for every server and for the bare server of the
    client's floor: one kept-alive HTTP/1.1 connection (bench/http1.py) per measured sequence, opened and warmed
    by one untimed GET ``path`` (``/v2/``, with the same headers as the timed requests: 200 with valid credentials),
    so the timed requests that follow on it pay neither the connection nor a cold first request. Docker keeps its
    connection to a registry alive the same way."""
    async with http1.Connection(t.base) as conn:
        status, _, body = await conn.get(path, h)
        expect(status == 200, f"{t.name}: warming GET {path} answered {status}: {body[:200]!r}")
        yield conn


async def list_page(conn: http1.Connection, t: Target, h, path: str, key: str) -> tuple[list[str], str | None]:
    """One page of a listing over ``conn`` (bench/http1.py, see warm_connection): (its items, the next page's
    path from Link or None). The body is parsed with json.loads, as any client must."""
    status, fields, body = await conn.get(path, h)
    expect(status == 200, f"{t.name}: GET {path} answered {status}: {body[:200]!r}")
    link = fields.get("link")
    items = json.loads(body).get(key) or []
    following = None
    if link:
        match = _LINK.search(link)
        expect(match is not None, f"{t.name}: unreadable Link {link!r}")
        following = match.group(1)
        if following.startswith("http"):
            following = following.split("://", 1)[1].split("/", 1)[1]
            following = "/" + following
    return items, following


async def walk(conn: http1.Connection, t: Target, h, path: str, key: str, max_pages: int = 100_000) -> tuple[list[str], int]:
    """Follow Link from ``path`` to the end, every page on ``conn``: (every item, pages fetched)."""
    items: list[str] = []
    pages = 0
    next_path: str | None = path
    while next_path is not None:
        page, next_path = await list_page(conn, t, h, next_path, key)
        items.extend(page)
        pages += 1
        expect(pages <= max_pages, f"{t.name}: more than {max_pages} pages at {path}")
    return items, pages


@dataclass
class RateResult:
    requests: int
    seconds: float
    latencies: list[float]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        index = min(len(ordered) - 1, max(0, int(round(p / 100 * len(ordered) + 0.5)) - 1))
        return ordered[index]


async def rate(
    s: aiohttp.ClientSession, concurrency: int, seconds: float, request: Callable[[], Awaitable[None]], warmup: float = 0.5
) -> RateResult:
    """``concurrency`` workers repeat ``request`` back to back; counts the ones that finish inside the window."""
    latencies: list[float] = []
    start = time.perf_counter() + warmup
    end = start + seconds
    clock = time.perf_counter

    async def worker() -> None:
        while True:
            t0 = clock()
            if t0 >= end:
                return
            await request()
            t1 = clock()
            if t0 >= start and t1 <= end:
                latencies.append(t1 - t0)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return RateResult(len(latencies), seconds, latencies)


async def bounded(concurrency: int, count: int, job: Callable[[int], Awaitable[None]], deadline: float | None = None) -> int:
    """Run job(0..count-1) with ``concurrency`` in flight, in index order; stop taking new indexes
    after ``deadline`` (time.monotonic). Every started job finishes, so jobs 0..done-1 are done."""
    position = 0

    async def worker() -> None:
        nonlocal position
        while position < count and (deadline is None or time.monotonic() < deadline):
            index = position
            position += 1
            await job(index)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return position
