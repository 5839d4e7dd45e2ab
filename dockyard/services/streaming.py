"""Streaming a request body to the blob store: written and hashed in worker threads as it arrives.

The pieces received are handed, not joined, to two lanes, hashing and writing, each of which
works one step at a time in a worker thread while the next pieces arrive: a step takes all
the lane's waiting pieces once its previous step is done (and at least ``HASH_BLOCK`` or
``BLOCK`` bytes wait), or once ``MAX_BLOCK`` bytes wait for it. So the hash sees the bytes in
order, neither lane waits for the other (the device may be slower or faster than the hash),
steps grow when a lane falls behind and stay small when it keeps up, memory stays flat
(at most about two ``MAX_BLOCK`` of pieces per body), and little is left to do when the
body ends, which is what the answer waits for.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Sequence

from dockyard.core.errors import SizeInvalid

# Bytes gathered before a step of hashing (HASH_BLOCK) or writing (BLOCK) in a worker thread:
# enough that the thread hand-offs cost little, few enough that the last steps, which the
# answer waits for, are short. While a step runs the next one gathers up to MAX_BLOCK.
HASH_BLOCK = 1 << 20
BLOCK = 2 << 20
MAX_BLOCK = 8 << 20
# Below this a step is hashed inline: cheaper than a thread hop.
INLINE_HASH = 64 << 10


def _update(hasher, pieces: Sequence[bytes]) -> None:
    for piece in pieces:
        hasher.update(piece)


async def stream_body(body: AsyncIterator[bytes], writer, hasher, length: int | None) -> int:
    """Write ``body`` with ``writer`` (an ``UploadWriter``, closed at the end, aborted on any
    error) and hash it with ``hasher``: the bytes written (stored, not yet durable) once this
    returns. ``length``, if known, is checked: a body longer or shorter is ``SizeInvalid``."""
    written = 0
    hashing = _Lane(lambda pieces, size: _step(hasher, pieces, size), HASH_BLOCK)
    writing = _Lane(lambda pieces, size: writer.write_pieces(pieces), BLOCK)
    try:
        async for piece in body:
            if not piece:
                continue
            written += len(piece)
            if length is not None and written > length:
                raise SizeInvalid("the body is longer than Content-Length")
            await hashing.add(piece)
            await writing.add(piece)
        if length is not None and written != length:
            raise SizeInvalid(f"received {written} bytes but Content-Length said {length}")
        await asyncio.gather(hashing.finish(), writing.finish())
        await writer.close()
    except BaseException:
        hashing.cancel()
        writing.cancel()  # the writer closes its file only once a write under way has ended
        await writer.abort()
        close = getattr(body, "aclose", None)
        if close is not None:  # now, not when it is collected: whatever reads the body for it stops
            await close()
        raise
    return written


class _Lane:
    """One kind of work on a body's pieces, done in order one step at a time (see the module's docstring)."""

    __slots__ = ("_run", "_block", "_pending", "_size", "_step")

    def __init__(self, run, block: int) -> None:
        self._run = run  # (pieces, size) -> an awaitable, or None if done already
        self._block = block
        self._pending: list[bytes] = []
        self._size = 0
        self._step: asyncio.Future | None = None

    async def add(self, piece: bytes) -> None:
        self._pending.append(piece)
        self._size += len(piece)
        if self._size >= self._block and (self._step is None or self._step.done() or self._size >= MAX_BLOCK):
            await self._next()

    async def _next(self) -> None:
        if self._step is not None:
            await self._step  # done, or the lane is MAX_BLOCK behind: wait (and raise its error)
        step = self._run(self._pending, self._size)
        self._step = None if step is None else asyncio.ensure_future(step)
        self._pending, self._size = [], 0

    async def finish(self) -> None:
        if self._pending:
            await self._next()
        if self._step is not None:
            await self._step

    def cancel(self) -> None:
        step = self._step
        if step is not None:
            if step.done() and not step.cancelled():
                step.exception()  # seen: another error is the one raised
            step.cancel()


def _step(hasher, pieces: list[bytes], size: int) -> Awaitable | None:
    """Hash ``pieces``: in a worker thread (handed over at once: a future, not a task that starts
    on the loop's next turn), or here (None) if they are few bytes."""
    if size < INLINE_HASH:
        _update(hasher, pieces)
        return None
    return asyncio.get_running_loop().run_in_executor(None, _update, hasher, pieces)
