"""A minimal HTTP/1.1 keep-alive GET client, so that the client is not what a listing measures.

aiohttp's client costs about a millisecond per request here (building the request, its
response parser and header objects, the connector's bookkeeping), which is more than Dockyard's
whole server time for a tags/list or _catalog page: timed through it, a listing measured mostly
the client, and the same floor under both servers hid their difference. (bench/rawget.py does
the same for the big pulls, where aiohttp's reader was the bottleneck.) This client does just
what a listing needs, over asyncio streams:

- one ``GET`` at a time on one kept-alive connection (no pipelining), the request written as one
  buffer;
- the head read up to ``\\r\\n\\r\\n`` (status line and headers, names lower-cased), then a
  ``Content-Length`` body or a ``Transfer-Encoding: chunked`` one (Distribution answers tags/list
  chunked); 204 and 304 have no body; anything else it cannot read fails with ``HTTP1Error``
  (an AssertionError, like the benchmark's other check failures);
- a new connection when the server answered ``Connection: close`` (or HTTP/1.0 without
  keep-alive), or when the kept connection was found closed before a request was sent: either
  already at EOF, or closed by the server just as the request went out (no byte of an answer
  came back; a GET is safe to send again, once). ``connects`` counts the connections opened, so
  a caller can tell whether a timed sequence stayed on one.

Usage::

    async with Connection("http://127.0.0.1:5000") as conn:
        status, headers, body = await conn.get("/v2/", {"Authorization": "Bearer ..."})
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

# the stream's buffer limit: a head must fit in it, and bigger bodies are read with fewer pauses
_LIMIT = 1 << 20
_CRLF = b"\r\n"
_END_OF_HEAD = b"\r\n\r\n"
_HEX = b"0123456789abcdefABCDEF"


class HTTP1Error(AssertionError):
    """The answer was not an HTTP/1.1 response this client can read, or the connection failed."""


class Connection:
    """One keep-alive HTTP/1.1 connection to ``base`` (``http://host:port``), opened on the first ``get``."""

    def __init__(self, base: str) -> None:
        parts = urlsplit(base)
        if parts.scheme != "http" or not parts.hostname or parts.path not in ("", "/"):
            raise ValueError(f"Connection wants http://host[:port], not {base!r}")
        self.base = base
        self._host = parts.hostname
        self._port = parts.port or 80
        self._host_line = f"Host: {parts.netloc}\r\n"
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self.connects = 0

    async def __aenter__(self) -> Connection:
        return self

    async def __aexit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (if open); a later ``get`` opens a new one."""
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    async def _connect(self) -> None:
        self.close()
        try:
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port, limit=_LIMIT)
        except OSError as error:
            raise HTTP1Error(f"{self.base}: cannot connect: {error}") from None
        self.connects += 1

    async def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        """GET ``path`` (starting with ``/``): (status, headers with lower-case names, the whole body)."""
        lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items()) if headers else ""
        request = f"GET {path} HTTP/1.1\r\n{self._host_line}{lines}\r\n".encode("latin-1")
        reused = self._writer is not None and not self._reader.at_eof() and not self._writer.is_closing()
        if not reused:
            await self._connect()
        while True:
            reader = self._reader
            self._writer.write(request)  # a few hundred bytes: no drain needed
            try:
                head = await reader.readuntil(_END_OF_HEAD)
                break
            except (asyncio.IncompleteReadError, ConnectionError) as error:
                partial = getattr(error, "partial", b"")
                self.close()
                if not reused or partial:
                    raise HTTP1Error(f"{self.base}: GET {path}: the connection closed before the response's head ended "
                                     f"({len(partial)} bytes: {partial[:100]!r})") from None
                # the server closed the idle connection as the request went out: once more on a new one
                reused = False
                await self._connect()
            except asyncio.LimitOverrunError:
                self.close()
                raise HTTP1Error(f"{self.base}: GET {path}: response head longer than {_LIMIT} bytes") from None
            except BaseException:  # cancelled mid-answer: the connection's state is unknown
                self.close()
                raise
        try:
            status, fields, keep = parse_head(head)
            if status in (204, 304):
                body = b""
            elif "transfer-encoding" in fields:
                if fields["transfer-encoding"].lower() != "chunked":
                    raise HTTP1Error(f"Transfer-Encoding {fields['transfer-encoding']!r}; this client reads only chunked")
                body = await _read_chunked(reader)
            elif "content-length" in fields:
                length = fields["content-length"]
                if not length.isdigit():
                    raise HTTP1Error(f"bad Content-Length {length!r}")
                body = await reader.readexactly(int(length))
            else:
                raise HTTP1Error(f"status {status} without Content-Length or chunked body; this client reads only those")
        except HTTP1Error as error:
            self.close()
            raise HTTP1Error(f"{self.base}: GET {path}: {error}") from None
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError) as error:
            self.close()
            raise HTTP1Error(f"{self.base}: GET {path}: the body could not be read: {error!r}") from None
        except BaseException:
            self.close()
            raise
        if not keep:
            self.close()
        return status, fields, body


def parse_head(head: bytes) -> tuple[int, dict[str, str], bool]:
    """(status, fields with lower-case names, whether the connection stays open) of a head ending in CRLF CRLF."""
    status_line, *lines = head[:-4].decode("latin-1").split("\r\n")
    version, _, rest = status_line.partition(" ")
    if version not in ("HTTP/1.1", "HTTP/1.0") or not rest[:3].isdigit() or rest[3:4] not in ("", " "):
        raise HTTP1Error(f"not an HTTP/1.x status line: {status_line[:100]!r}")
    status = int(rest[:3])
    if status < 200:
        raise HTTP1Error(f"interim status {status}; this client sends nothing that asks for one")
    fields: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep or not name or name[-1] in " \t":
            raise HTTP1Error(f"malformed header line {line[:100]!r}")
        name = name.lower()
        value = value.strip()
        fields[name] = f"{fields[name]}, {value}" if name in fields else value
    connection = fields.get("connection", "").lower()
    keep = "keep-alive" in connection if version == "HTTP/1.0" else "close" not in connection
    return status, fields, keep


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    """The body of a chunked answer: each ``size[;ext] CRLF data CRLF``, a last ``0`` chunk, trailers, CRLF."""
    pieces = []
    while True:
        line = await reader.readuntil(_CRLF)
        size_text = line[:-2].split(b";", 1)[0].strip()
        if not size_text or size_text.strip(_HEX):
            raise HTTP1Error(f"bad chunk size line {line[:100]!r}")
        size = int(size_text, 16)
        if size == 0:
            break
        chunk = await reader.readexactly(size + 2)
        if chunk[-2:] != _CRLF:
            raise HTTP1Error("a chunk does not end with CRLF")
        pieces.append(memoryview(chunk)[:-2])  # no copy: the join below is the only one
    while await reader.readuntil(_CRLF) != _CRLF:  # trailers, if any, up to the empty line
        pass
    return b"".join(pieces)
