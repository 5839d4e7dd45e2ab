"""Big request bodies read straight from the socket, in a thread of their own.

aiohttp reads a body on the event loop: every piece the socket gives is copied into a new
bytes object, run through its HTTP parser (which copies it again) and queued. For a layer of
hundreds of MiB that is most of what the event loop does during a push, and the loop is the
one thread that every other request also needs. So a body with a declared length whose
bytes mostly have not arrived yet is taken over: the loop stops reading the connection, and a
thread reads the rest with ``recv_into`` into buffers of ``PIECE`` bytes (one copy, without the
GIL), handing each full buffer to the loop, which passes it on unchanged. At most ``DEPTH``
buffers wait for the loop, so memory stays flat and a slow disk or hash slows the client down.

The HTTP parser never sees those bytes, so the connection can't carry another request: the
answer says ``Connection: close`` (``close_if_taken``, on every answer, errors too) and aiohttp
closes it once the answer is out. Clients open a new connection for their next request, a
cost that is nothing beside the body's.

Only plain TCP connections are taken over (a TLS connection's socket carries ciphertext), and
only bodies with a ``Content-Length`` and no ``Content-Encoding`` (the parser's job).
"""

from __future__ import annotations

import asyncio
import os
import select
import socket
import threading
from collections.abc import AsyncIterator

from aiohttp import web

PIECE = 4 << 20  # bytes read into one buffer before it goes to the loop
DEPTH = 2  # buffers read ahead of the loop at most
MIN_REST = 4 << 20  # a body is taken over only if at least this much of it has yet to arrive
IDLE_TIMEOUT = 300.0  # seconds without a byte before the body counts as broken
_POLL_MS = 500  # how often a waiting reader looks whether it was told to stop

TAKEN = web.RequestKey("dockyard.body_taken", bool)  # set once the request's body is read from the socket


def rest_to_take(request: web.Request, length: int | None) -> int:
    """How many bytes of the body a thread would read from the socket, or 0 if it is not taken over."""
    if length is None or request.headers.get("Content-Encoding") or request.headers.get("Transfer-Encoding"):
        return 0
    transport = request.transport
    if transport is None or transport.is_closing() or transport.get_extra_info("sslcontext") is not None:
        return 0
    if transport.get_extra_info("socket") is None:
        return 0
    content = request.content
    if content.is_eof() or content.exception() is not None:
        return 0
    rest = length - content.total_bytes
    return rest if rest >= MIN_REST else 0


async def take(request: web.Request, rest: int) -> AsyncIterator[bytes | bytearray]:
    """The body's pieces: what aiohttp has buffered, then ``rest`` bytes read by a thread."""
    content = request.content
    transport = request.transport
    buffered = content.read_nowait(-1)  # may resume the transport's reading: paused right below
    transport.pause_reading()  # nothing runs in between, so no byte can reach the parser now
    request[TAKEN] = True
    reader = None
    try:
        reader = _Reader(asyncio.get_running_loop(), transport.get_extra_info("socket").fileno(), rest)
        reader.start()  # reads ahead while the buffered bytes are taken care of
        if buffered:
            yield buffered
        while True:
            item = await reader.queue.get()
            if item is None:
                break
            if isinstance(item, BaseException):
                raise item
            reader.slots.release()
            yield item
    finally:
        if reader is not None:
            reader.stop.set()
            reader.slots.release()  # a reader waiting for a slot sees the stop
        # No lingering read of the rest: the parser's body is over as far as aiohttp knows.
        content.feed_eof()  # this resumes the transport's reading; the connection is closing, so pause it
        if not transport.is_closing():
            transport.pause_reading()


def close_if_taken(request: web.Request, response: web.StreamResponse) -> None:
    """Called as an answer is prepared: a connection whose body was taken over is closed after it."""
    if request.get(TAKEN):
        response.force_close()
        response.headers["Connection"] = "close"


class _Reader:
    """Reads ``rest`` bytes from a duplicate of the connection's socket in a thread of its own (not the
    default executor, whose threads hash and write what this reads)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int, rest: int) -> None:
        self.loop = loop
        self.queue: asyncio.Queue = asyncio.Queue()
        self.slots = threading.Semaphore(DEPTH)
        self.stop = threading.Event()
        # A duplicate: the connection may be closed on the loop while this thread reads; its number
        # must not then name another connection's socket.
        self._sock = socket.socket(fileno=os.dup(fd))
        self._rest = rest
        self._thread = threading.Thread(target=self._run, name="dockyard-body", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _put(self, item) -> None:
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass

    def _run(self) -> None:
        try:
            with self._sock as sock:
                poller = select.poll()
                poller.register(sock, select.POLLIN)
                rest = self._rest
                while rest:
                    while not self.slots.acquire(timeout=_POLL_MS / 1000):
                        if self.stop.is_set():
                            return
                    if self.stop.is_set():
                        return
                    buffer = bytearray(min(PIECE, rest))
                    if not self._fill(sock, poller, memoryview(buffer)):
                        return
                    rest -= len(buffer)
                    self._put(buffer)
            self._put(None)
        except BaseException as error:  # handed to the loop, raised where the body is read
            self._put(error)

    def _fill(self, sock: socket.socket, poller, view: memoryview) -> bool:
        """Fill ``view`` from the socket; False if told to stop meanwhile."""
        got, idle = 0, 0.0
        while got < len(view):
            try:
                n = sock.recv_into(view[got:])
            except (BlockingIOError, InterruptedError):
                if self.stop.is_set():
                    return False
                if poller.poll(_POLL_MS):
                    idle = 0.0
                else:
                    idle += _POLL_MS / 1000
                    if idle >= IDLE_TIMEOUT:
                        raise TimeoutError(f"no byte of the body came for {IDLE_TIMEOUT:.0f} s") from None
                continue
            if n == 0:
                raise ConnectionResetError("the client closed the connection before the body was complete")
            got += n
        return True
