"""Big bodies read straight from the socket by a thread (dockyard/http/direct.py), over real connections.

The thresholds are lowered so that bodies of a few hundred KiB take the path, in several pieces.
"""

from __future__ import annotations

import asyncio
import ssl

import pytest

from dockyard import tls
from dockyard.http import direct
from dockyard.http.app import create_app

from tests.conftest import DockyardTestServer
from .helpers import basic, raw_statuses, sha256, start_upload, with_query

PIECE = 64 << 10
MIN_REST = 100 << 10


@pytest.fixture(autouse=True)
def small_thresholds(monkeypatch):
    monkeypatch.setattr(direct, "PIECE", PIECE)
    monkeypatch.setattr(direct, "MIN_REST", MIN_REST)


def _body(size: int, seed: int = 1) -> bytes:
    return bytes((i * 131 + seed) % 251 for i in range(size))


def _head(method: str, target: str, length: int, extra: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {length}",
             "Content-Type: application/octet-stream", f"Authorization: {basic()['Authorization']}"]
    lines += [f"{name}: {value}" for name, value in (extra or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class Connection:
    """A raw HTTP/1.1 connection: the test decides when each byte goes out."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, client) -> "Connection":
        return cls(*await asyncio.open_connection(client.server.host, client.server.port))

    async def send(self, data: bytes, pause: float = 0.0) -> None:
        self.writer.write(data)
        await self.writer.drain()
        if pause:
            await asyncio.sleep(pause)

    async def answer(self, bodiless: bool = False) -> tuple[int, dict[str, str], bytes]:
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 10)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        fields = {}
        for line in lines:
            if line:
                name, _, value = line.partition(":")
                fields[name.strip().lower()] = value.strip()
        body = b"" if bodiless else await asyncio.wait_for(self.reader.readexactly(int(fields.get("content-length", "0"))), 10)
        return int(status_line.split()[1]), fields, body

    async def closed_by_server(self) -> bool:
        return await asyncio.wait_for(self.reader.read(1), 10) == b""

    def close(self) -> None:
        self.writer.close()


async def _put_in_two_steps(client, target: str, data: bytes, extra: dict[str, str] | None = None) -> Connection:
    """Headers and a first slice, a pause (so the handler starts with most of the body still to come), the rest."""
    connection = await Connection.open(client)
    await connection.send(_head("PUT", target, len(data), extra) + data[:1000], pause=0.1)
    await connection.send(data[1000:])
    return connection


async def test_a_big_monolithic_put_is_stored_exactly_and_its_connection_closed(client):
    data = _body(5 * PIECE + 12_345)  # several pieces and a partial one
    digest = sha256(data)
    location = await start_upload(client, "direct/mono")
    connection = await _put_in_two_steps(client, with_query(location, digest=digest), data)
    try:
        status, fields, _ = await connection.answer()
        assert status == 201 and fields["docker-content-digest"] == digest
        assert fields["connection"] == "close"  # its parser never saw the body: no further request on it
        assert await connection.closed_by_server()
    finally:
        connection.close()
    response = await client.get(f"/v2/direct/mono/blobs/{digest}")
    assert response.status == 200 and await response.read() == data


async def test_chunks_taken_one_by_one_make_the_blob(client):
    data = _body(3 * MIN_REST + 777, seed=2)
    cut = MIN_REST + 5000
    location = await start_upload(client, "direct/chunks")
    for start, end in ((0, cut), (cut, len(data))):
        connection = await Connection.open(client)
        try:
            part = data[start:end]
            extra = {"Content-Range": f"{start}-{end - 1}"}
            await connection.send(_head("PATCH", location, len(part), extra) + part[:100], pause=0.1)
            await connection.send(part[100:])
            status, fields, _ = await connection.answer()
            assert status == 202, fields
            assert fields["range"] == f"0-{end - 1}" and fields["connection"] == "close"
            location = fields["location"]
        finally:
            connection.close()
    response = await client.put(with_query(location, digest=sha256(data)), headers={"Content-Length": "0"})
    assert response.status == 201, await response.text()
    response = await client.get(f"/v2/direct/chunks/blobs/{sha256(data)}")
    assert await response.read() == data


async def test_a_small_rest_keeps_the_connection_for_the_next_request(client):
    data = _body(MIN_REST // 2, seed=3)
    location = await start_upload(client, "direct/small")
    connection = await _put_in_two_steps(client, with_query(location, digest=sha256(data)), data)
    try:
        status, fields, _ = await connection.answer()
        assert status == 201 and fields.get("connection") != "close"
        await connection.send(_head("HEAD", f"/v2/direct/small/blobs/{sha256(data)}", 0))
        status, fields, _ = await connection.answer(bodiless=True)  # a HEAD's answer
        assert status == 200 and int(fields["content-length"]) == len(data)
    finally:
        connection.close()


async def test_a_wrong_digest_is_refused_nothing_is_stored_and_the_connection_closes(client):
    data = _body(4 * PIECE, seed=4)
    wrong = sha256(data + b"x")
    location = await start_upload(client, "direct/wrong")
    connection = await _put_in_two_steps(client, with_query(location, digest=wrong), data)
    try:
        status, fields, body = await connection.answer()
        assert status == 400 and b"DIGEST_INVALID" in body
        assert fields["connection"] == "close"
        assert await connection.closed_by_server()
    finally:
        connection.close()
    for digest in (wrong, sha256(data)):
        assert (await client.head(f"/v2/direct/wrong/blobs/{digest}")).status == 404


async def test_bytes_after_the_body_are_not_read_as_part_of_it(client):
    """A pipelined request after the body stays unread: the blob is exactly the declared bytes, and
    the request after it is not answered (the server may reset the connection, with it unread)."""
    data = _body(3 * PIECE, seed=5)
    location = await start_upload(client, "direct/pipelined")
    connection = await Connection.open(client)
    received = b""
    try:
        following = _head("GET", "/v2/", 0)
        await connection.send(_head("PUT", with_query(location, digest=sha256(data)), len(data)) + data[:10], pause=0.1)
        await connection.send(data[10:] + following)
        while chunk := await asyncio.wait_for(connection.reader.read(65536), 10):  # up to the server's close
            received += chunk
    except ConnectionResetError:
        pass
    finally:
        connection.close()
    assert raw_statuses(received) in ([], [201])
    response = await client.get(f"/v2/direct/pipelined/blobs/{sha256(data)}")
    assert response.status == 200 and await response.read() == data


async def test_a_client_gone_mid_body_stores_nothing_and_the_server_carries_on(client):
    data = _body(6 * PIECE, seed=6)
    location = await start_upload(client, "direct/gone")
    connection = await Connection.open(client)
    await connection.send(_head("PUT", with_query(location, digest=sha256(data)), len(data)) + data[:10], pause=0.1)
    await connection.send(data[10 : 3 * PIECE], pause=0.2)
    connection.close()
    await asyncio.sleep(0.5)
    assert (await client.head(f"/v2/direct/gone/blobs/{sha256(data)}")).status == 404
    # the same bytes pushed again, whole, are stored
    location = await start_upload(client, "direct/gone")
    connection = await _put_in_two_steps(client, with_query(location, digest=sha256(data)), data)
    try:
        assert (await connection.answer())[0] == 201
    finally:
        connection.close()


async def test_a_body_that_stops_coming_times_out_as_an_invalid_upload(client, monkeypatch):
    monkeypatch.setattr(direct, "IDLE_TIMEOUT", 0.5)
    monkeypatch.setattr(direct, "_POLL_MS", 50)
    data = _body(4 * PIECE, seed=7)
    location = await start_upload(client, "direct/stalled")
    connection = await Connection.open(client)
    try:
        await connection.send(_head("PUT", with_query(location, digest=sha256(data)), len(data)) + data[:10], pause=0.1)
        await connection.send(data[10 : 2 * PIECE])
        status, fields, body = await connection.answer()  # no more bytes are sent
        assert status == 400 and b"BLOB_UPLOAD_INVALID" in body
        assert fields["connection"] == "close"
    finally:
        connection.close()
    assert (await client.head(f"/v2/direct/stalled/blobs/{sha256(data)}")).status == 404


async def _slowly(data: bytes):
    """A body that is still coming when the handler starts (a real network's pace)."""
    for start in range(0, len(data), PIECE):
        yield data[start : start + PIECE]
        await asyncio.sleep(0.02)


async def test_aiohttps_own_client_follows_along(client):
    """A client that keeps connections alive (aiohttp's) sees the close and opens a new one."""
    blobs = [_body(2 * MIN_REST, seed=10 + seed) for seed in range(3)]
    for data in blobs:
        location = await start_upload(client, "direct/aiohttp")
        response = await client.put(with_query(location, digest=sha256(data)), data=_slowly(data),
                                    headers={"Content-Type": "application/octet-stream", "Content-Length": str(len(data))})
        assert response.status == 201, await response.text()
        assert response.headers["Connection"] == "close"
    for data in blobs:
        response = await client.get(f"/v2/direct/aiohttp/blobs/{sha256(data)}")
        assert await response.read() == data


async def test_tls_connections_are_never_taken(aiohttp_client, services, tmp_path):
    ca, _ = tls.load_or_create_ca(tmp_path)
    tls.issue_server_cert(ca, tmp_path, "dockyard.localhost", [], [])
    server = DockyardTestServer(create_app(services))
    await server.start_server(ssl=tls.server_ssl_context(tmp_path / "server.pem", tmp_path / "server-key.pem"))
    trusting = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    trusting.check_hostname = False
    client = await aiohttp_client(server, headers=basic())
    data = _body(4 * MIN_REST, seed=20)
    response = await client.post("/v2/direct/tls/blobs/uploads/", headers={"Content-Length": "0"}, ssl=trusting)
    assert response.status == 202
    response = await client.put(with_query(response.headers["Location"], digest=sha256(data)), data=data, ssl=trusting)
    assert response.status == 201, await response.text()
    assert response.headers.get("Connection") != "close"
    response = await client.get(f"/v2/direct/tls/blobs/{sha256(data)}", ssl=trusting)
    assert await response.read() == data


async def test_a_store_failing_mid_body_answers_and_closes_at_once(client, monkeypatch):
    """The writer fails at its first step: the answer comes before the body is all sent, the connection
    closes, the reading thread stops, and nothing is stored."""
    from dockyard.storage.filewriter import FileWriter

    async def failing(self, pieces):
        raise TimeoutError("the disk stopped answering")  # an outage: 503

    monkeypatch.setattr(FileWriter, "write_pieces", failing)
    data = _body(8 * PIECE, seed=30)
    location = await start_upload(client, "direct/failing")
    connection = await Connection.open(client)
    try:
        await connection.send(_head("PUT", with_query(location, digest=sha256(data)), len(data)) + data[:10], pause=0.1)
        # the rest goes on being sent, as a client does; the server stops reading it
        sending = asyncio.ensure_future(connection.send(data[10:]))
        status, fields, body = await connection.answer()
        assert status == 503 and b"UNAVAILABLE" in body and fields["connection"] == "close"
        assert await asyncio.wait_for(connection.closed_by_server(), 2)
    finally:
        sending.cancel()
        connection.close()
    await asyncio.sleep(0.1)
    assert not [t for t in __import__("threading").enumerate() if t.name == "dockyard-body"]
    monkeypatch.undo()
    assert (await client.head(f"/v2/direct/failing/blobs/{sha256(data)}")).status == 404
