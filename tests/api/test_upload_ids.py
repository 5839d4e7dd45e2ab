"""Upload sessions whose id carries its own signed state (spec "Push": the session id is opaque):
POST writes nothing, and every use of an id that is forged, foreign, used up or cancelled is a
404 BLOB_UPLOAD_UNKNOWN in the OCI error shape."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from dockyard.metadata.schema import uploads

from .helpers import assert_error, path_of, sha256, start_upload, with_query


def session_id(location: str) -> str:
    return location.rsplit("/", 1)[1]


async def every_method_is_unknown(client, location: str) -> None:
    await assert_error(await client.get(location), 404, "BLOB_UPLOAD_UNKNOWN")
    await assert_error(await client.patch(location, data=b"x", headers={"Content-Range": "0-0"}), 404,
                       "BLOB_UPLOAD_UNKNOWN")
    await assert_error(await client.put(with_query(location, digest=sha256(b"x")), data=b"x"), 404,
                       "BLOB_UPLOAD_UNKNOWN")
    await assert_error(await client.delete(location), 404, "BLOB_UPLOAD_UNKNOWN")


async def upload_rows(services) -> list[str]:
    async with services.db.read() as conn:
        return [row.state for row in await conn.execute(sa.select(uploads.c.state))]


async def test_post_writes_nothing_and_the_session_is_there(client, services):
    response = await client.post("/v2/ids/fresh/blobs/uploads/", headers={"Content-Length": "0"})
    assert response.status == 202
    location = response.headers["Location"]
    assert location.startswith("/v2/ids/fresh/blobs/uploads/")
    assert response.headers["Docker-Upload-UUID"] == session_id(location)
    assert response.headers["Range"] == "0-0"
    assert await upload_rows(services) == []
    status = await client.get(location)
    assert status.status == 204
    assert status.headers["Range"] == "0-0"
    assert path_of(status.headers["Location"]) == location


async def test_a_put_uses_the_id_up(client, services):
    data = b"the whole blob in one PUT"
    location = await start_upload(client, "ids/once")
    put = await client.put(with_query(location, digest=sha256(data)), data=data)
    assert put.status == 201, await put.text()
    assert await (await client.get(f"/v2/ids/once/blobs/{sha256(data)}")).read() == data
    await every_method_is_unknown(client, location)
    assert await upload_rows(services) == ["done"]


async def test_a_cancelled_fresh_session_is_unknown_afterwards(client):
    location = await start_upload(client, "ids/cancelled")
    response = await client.delete(location)
    assert response.status == 204
    await every_method_is_unknown(client, location)
    response = await client.head(f"/v2/ids/cancelled/blobs/{sha256(b'x')}")
    assert response.status == 404


async def test_post_patch_patch_put(client, services):
    chunks = [b"a" * 3000, b"b" * 3000, b"c" * 7]
    data = b"".join(chunks)
    location = await start_upload(client, "ids/chunked")
    offset = 0
    for chunk in chunks[:2]:
        headers = {"Content-Range": f"{offset}-{offset + len(chunk) - 1}", "Content-Length": str(len(chunk))}
        response = await client.patch(location, data=chunk, headers=headers)
        assert response.status == 202, await response.text()
        offset += len(chunk)
        assert response.headers["Range"] == f"0-{offset - 1}"
        location = path_of(response.headers["Location"])
    headers = {"Content-Range": f"{offset}-{len(data) - 1}", "Content-Length": str(len(chunks[2]))}
    put = await client.put(with_query(location, digest=sha256(data)), data=chunks[2], headers=headers)
    assert put.status == 201, await put.text()
    assert await (await client.get(f"/v2/ids/chunked/blobs/{sha256(data)}")).read() == data
    await every_method_is_unknown(client, location)
    assert await upload_rows(services) == ["done"]


async def test_a_forged_or_foreign_session_is_blob_upload_unknown(client):
    location = await start_upload(client, "ids/forged")
    upload_id = session_id(location)
    base = "/v2/ids/forged/blobs/uploads/"
    forged = [
        upload_id[:-1] + ("0" if upload_id[-1] != "0" else "1"),  # the signature altered
        upload_id.upper(),
        "f" * len(upload_id),
        upload_id + "00",
        "x" * 300,
    ]
    for candidate in forged:
        await every_method_is_unknown(client, base + candidate)
    # issued for another repository
    await every_method_is_unknown(client, "/v2/ids/elsewhere/blobs/uploads/" + upload_id)
    # the genuine one is untouched by all that
    assert (await client.get(location)).status == 204


async def test_two_clients_putting_one_fresh_session(client):
    location = await start_upload(client, "ids/raced")
    first, second = b"first body", b"second body"
    responses = await asyncio.gather(
        client.put(with_query(location, digest=sha256(first)), data=first),
        client.put(with_query(location, digest=sha256(second)), data=second),
    )
    statuses = sorted(r.status for r in responses)
    assert statuses == [201, 404], statuses
    loser = next(r for r in responses if r.status == 404)
    await assert_error(loser, 404, "BLOB_UPLOAD_UNKNOWN")
    winner = next(r for r in responses if r.status == 201)
    digest = winner.headers["Docker-Content-Digest"]
    other = sha256(second) if digest == sha256(first) else sha256(first)
    assert (await client.head(f"/v2/ids/raced/blobs/{digest}")).status == 200
    assert (await client.head(f"/v2/ids/raced/blobs/{other}")).status == 404
