"""How a body streams to the store: hashed and written in order by two lanes that run apart."""

from __future__ import annotations

import asyncio
import hashlib
import random

import pytest

from dockyard.core.digests import Digest
from dockyard.core.errors import SizeInvalid
from dockyard.services import streaming
from dockyard.services.streaming import stream_body


def _pieces(data: bytes, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    pieces, start = [], 0
    while start < len(data):
        size = rng.choice((0, 1, 13, 4095, 65_536, 300_000, 1 << 20, 3 << 20))
        pieces.append(data[start : start + size])
        start += size
    return pieces


async def _body(pieces, fail_after: int | None = None):
    for index, piece in enumerate(pieces):
        if index == fail_after:
            raise ConnectionError("the client went away")
        await asyncio.sleep(0)
        yield piece


class SlowWriter:
    """Keeps what it is given, taking a random while for each write (in order, one at a time)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.parts: list[bytes] = []
        self.busy = False
        self.closed = self.aborted = False

    async def write_pieces(self, pieces) -> None:
        assert not self.busy, "two writes at once"
        self.busy = True
        await asyncio.sleep(self.rng.choice((0, 0.001, 0.003)))
        self.parts.extend(bytes(piece) for piece in pieces)
        self.busy = False

    async def close(self) -> None:
        self.closed = True

    async def abort(self) -> None:
        self.aborted = True


class SlowHash:
    """sha256 that takes a while per update, from whichever thread: the lanes drift apart."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()

    def update(self, piece) -> None:
        import time

        time.sleep(0.0005)
        self._hash.update(piece)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


@pytest.mark.parametrize("seed", range(4))
async def test_every_byte_is_hashed_and_written_in_order(seed):
    data = random.Random(seed).randbytes(9 << 20 if seed % 2 else 700_001)
    writer, hasher = SlowWriter(seed), SlowHash()
    written = await stream_body(_body(_pieces(data, seed)), writer, hasher, len(data))
    assert written == len(data)
    assert b"".join(writer.parts) == data
    assert hasher.hexdigest() == hashlib.sha256(data).hexdigest()
    assert writer.closed and not writer.aborted


async def test_memory_stays_bounded_when_a_lane_falls_behind(monkeypatch):
    """A hash far slower than the body: the stream waits for it rather than holding the whole body."""
    held = {"now": 0, "most": 0}
    update = streaming._update

    def counting(hasher, pieces):
        update(hasher, pieces)
        held["now"] -= sum(map(len, pieces))

    monkeypatch.setattr(streaming, "_update", counting)

    async def body():
        for _ in range(40):
            held["now"] += 1 << 20
            held["most"] = max(held["most"], held["now"])
            yield bytes(1 << 20)

    await stream_body(body(), SlowWriter(0), SlowHash(), None)
    # what waits for a step, and the step under way
    assert held["most"] <= 2 * streaming.MAX_BLOCK + (1 << 20)


async def test_a_body_that_breaks_off_aborts_the_writer_and_raises():
    data = random.Random(1).randbytes(6 << 20)
    pieces = _pieces(data, 1)
    writer = SlowWriter(1)
    with pytest.raises(ConnectionError):
        await stream_body(_body(pieces, fail_after=len(pieces) - 1), writer, SlowHash(), None)
    assert writer.aborted and not writer.closed


@pytest.mark.parametrize("extra", [-1, 1])
async def test_a_body_longer_or_shorter_than_its_length_is_refused(extra):
    data = bytes(3 << 20)
    writer = SlowWriter(2)
    with pytest.raises(SizeInvalid):
        await stream_body(_body(_pieces(data, 2)), writer, SlowHash(), len(data) - extra)
    assert writer.aborted and not writer.closed


async def test_chunks_at_unaligned_offsets_through_the_service(services):
    """Chunked and resumed at offsets on and around the store's 4 KiB blocks, then completed."""
    registry = await services.registries.default()
    data = random.Random(3).randbytes((9 << 20) + 4097)
    cuts = [0, 4095, 4096 + 4095, (1 << 20) + 1, (8 << 20), len(data)]
    upload = await services.uploads.start(registry.id, "app")
    for start, end in zip(cuts, cuts[1:]):
        upload = await services.uploads.append(upload, _body(_pieces(data[start:end], start)), start=start)
        upload = await services.uploads.get(registry.id, "app", upload.id)
    info = await services.uploads.complete(upload, Digest("sha256", hashlib.sha256(data).hexdigest()))
    assert info.size == len(data)
    stored = b"".join([chunk async for chunk in services.store.read_blob(info.digest)])
    assert stored == data
