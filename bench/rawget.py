"""A bare HTTP/1.1 GET for the big pulls, so that the client is not what a pull measures.

aiohttp's response reader hands out every piece it receives as a new bytes object, after
copying it through its own buffer; that capped this client's one-stream pull near 1.7 GB/s,
well under what one loopback stream carries here (~3 GB/s). This GET reads the socket with
``sock_recv_into`` into one reused buffer and compares each piece with the same bytes of the
expected blob as it arrives (``expected.startswith(piece, offset)``: one memcmp in place, half
the cost of slicing ``expected`` and comparing the copy), keeping nothing.

It speaks just enough HTTP/1.1 for a blob GET: one request per connection (``Connection:
close``), a ``Content-Length`` body (a chunked answer fails the run), the status and headers
returned so the caller can check them and follow a redirect itself.
"""

from __future__ import annotations

import asyncio
import socket
from urllib.parse import urlsplit

from bench import http1

PIECE = 1 << 20
_MAX_HEAD = 64 * 1024


class RawHTTPError(AssertionError):
    """The answer was not an HTTP/1.1 response this GET can read."""


async def get(url: str, headers: dict[str, str], expected: bytes, what: str) -> tuple[int, dict[str, str], bytes]:
    """GET ``url``. A 200's body must be exactly ``expected`` (compared as it arrives, returned empty);
    any other status's body is returned as read. Headers come back with lower-case names."""
    loop = asyncio.get_running_loop()
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    request = [f"GET {target} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close"]
    request += [f"{name}: {value}" for name, value in headers.items()]
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, (parts.hostname, parts.port or 80))
        await loop.sock_sendall(sock, ("\r\n".join(request) + "\r\n\r\n").encode("latin-1"))
        status, fields, rest = await read_head(loop, sock, what)
        length = int(fields["content-length"])
        buffer = bytearray(PIECE)
        view = memoryview(buffer)
        if status != 200:
            body = bytearray(rest)
            while len(body) < length and (n := await loop.sock_recv_into(sock, view)):
                body += view[:n]
            return status, fields, bytes(body[:length])
        offset = len(rest)
        if offset > length or not expected.startswith(rest):
            raise RawHTTPError(f"{what}: body differs from the pushed bytes at offset 0")
        while offset < length:
            n = await loop.sock_recv_into(sock, view)
            if n == 0:
                break
            if offset + n > len(expected) or not expected.startswith(view[:n], offset):
                raise RawHTTPError(f"{what}: body differs from the pushed bytes at offset {offset}")
            offset += n
        if offset != length or length != len(expected):
            raise RawHTTPError(f"{what}: body has {offset} of {length} bytes, expected {len(expected)}")
        return status, fields, b""
    finally:
        sock.close()


async def read_head(loop, sock: socket.socket, what: str) -> tuple[int, dict[str, str], bytes]:
    """An answer's head from ``sock``: (status, lower-cased headers, the bytes read past it). The answer must
    have a ``Content-Length`` body: these bare requests read no other kind."""
    head = bytearray()
    try:
        while (end := head.find(b"\r\n\r\n")) < 0:
            piece = await loop.sock_recv(sock, 1 << 16)
            if not piece or len(head) > _MAX_HEAD:
                raise RawHTTPError(f"{what}: the connection closed before the answer's headers ended")
            head += piece
        status, fields, _ = http1.parse_head(bytes(head[: end + 4]))
    except http1.HTTP1Error as error:
        raise RawHTTPError(f"{what}: {error}") from None
    except ConnectionResetError:
        raise RawHTTPError(f"{what}: the connection was reset before an answer came") from None
    if "chunked" in fields.get("transfer-encoding", "").lower() or not fields.get("content-length", "").isdigit():
        raise RawHTTPError(f"{what}: answered without a Content-Length; this client reads only those")
    return status, fields, bytes(head[end + 4 :])
