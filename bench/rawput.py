"""A bare HTTP/1.1 request with a body, for the big pushes, so that the client is not what a push measures.

aiohttp's client hands a body to its transport piece by piece; what the socket does not take at
once is copied into the transport's buffer, and every piece costs a turn of the client's event
loop. For a 256 MiB push that was about 0.1 s of CPU in this process, on the same two cores
the server needs. This request sends its head, then the body straight from the caller's
buffer with ``loop.sock_sendall`` (the kernel copies it once into the socket), and reads the
answer. Like ``bench/rawget.py`` it speaks just enough HTTP/1.1: one request per connection
(``Connection: close``, the same for every server), a ``Content-Length`` body sent and a
``Content-Length`` answer read (a chunked answer fails the run); status and lower-cased headers
are returned for the caller to check.

A server may answer before the body is all sent (an error): the answer is then still read and
returned, and the caller's check of the status fails the run with the server's own words.
"""

from __future__ import annotations

import asyncio
import socket
from urllib.parse import urlsplit

from bench import rawget
from bench.rawget import RawHTTPError


async def send(method: str, url: str, headers: dict[str, str], body, what: str) -> tuple[int, dict[str, str], bytes]:
    """``method`` ``url`` with ``body`` (bytes or a memoryview): (status, headers, answer body)."""
    loop = asyncio.get_running_loop()
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    view = memoryview(body).cast("B")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close", f"Content-Length: {len(view)}"]
    lines += [f"{name}: {value}" for name, value in headers.items() if name.lower() != "content-length"]
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, (parts.hostname, parts.port or 80))
        try:
            await loop.sock_sendall(sock, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            await loop.sock_sendall(sock, view)
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered early and closed: what it said is read below
        return await _answer(loop, sock, what)
    finally:
        sock.close()


async def _answer(loop, sock: socket.socket, what: str) -> tuple[int, dict[str, str], bytes]:
    status, fields, answer = await rawget.read_head(loop, sock, what)
    length = int(fields["content-length"])
    answer = bytearray(answer)
    try:
        while len(answer) < length:
            piece = await loop.sock_recv(sock, 65536)
            if not piece:
                raise RawHTTPError(f"{what}: the answer's body ended after {len(answer)} of {length} bytes")
            answer += piece
    except ConnectionResetError:
        raise RawHTTPError(f"{what}: the connection was reset before the answer's body ended") from None
    return status, fields, bytes(answer[:length])
