"""Content management: deleting manifests, tags and blobs (spec "Content Management", end-9, end-10)."""

from __future__ import annotations

from .helpers import assert_api_version, assert_error, push_manifest, put_manifest, sha256


async def test_delete_manifest_by_digest_removes_it_and_its_tags(client, push):
    digest, body = await push.image("del/bydigest", "v1")
    for tag in ("v1.0", "stable"):
        assert (await put_manifest(client, "del/bydigest", tag, body)).status == 201
    other, _ = await push_manifest(client, push, "del/bydigest", "other", name="keep")

    response = await client.delete(f"/v2/del/bydigest/manifests/{digest}")
    assert response.status == 202, await response.text()
    assert_api_version(response)

    await assert_error(await client.get(f"/v2/del/bydigest/manifests/{digest}"), 404, "MANIFEST_UNKNOWN")
    for tag in ("v1", "v1.0", "stable"):
        await assert_error(await client.get(f"/v2/del/bydigest/manifests/{tag}"), 404, "MANIFEST_UNKNOWN")
    tags = await (await client.get("/v2/del/bydigest/tags/list")).json()
    assert tags["tags"] == ["other"]
    kept = await client.get("/v2/del/bydigest/manifests/other")
    assert kept.status == 200
    assert kept.headers["Docker-Content-Digest"] == other


async def test_delete_tag_keeps_the_manifest(client, push):
    digest, body = await push.image("del/tag", "v1")
    assert (await put_manifest(client, "del/tag", "v2", body)).status == 201

    response = await client.delete("/v2/del/tag/manifests/v1")
    assert response.status == 202, await response.text()

    await assert_error(await client.get("/v2/del/tag/manifests/v1"), 404, "MANIFEST_UNKNOWN")
    by_digest = await client.get(f"/v2/del/tag/manifests/{digest}")
    assert by_digest.status == 200
    assert await by_digest.read() == body
    still = await client.get("/v2/del/tag/manifests/v2")
    assert still.status == 200
    assert (await (await client.get("/v2/del/tag/tags/list")).json())["tags"] == ["v2"]


async def test_deleted_tag_can_be_pushed_again(client, push):
    digest, body = await push.image("del/retag", "v1")
    assert (await client.delete("/v2/del/retag/manifests/v1")).status == 202
    assert (await put_manifest(client, "del/retag", "v1", body)).status == 201
    response = await client.get("/v2/del/retag/manifests/v1")
    assert response.headers["Docker-Content-Digest"] == digest


async def test_deleted_manifest_can_be_pushed_again(client, push):
    digest, body = await push.image("del/repush", "v1")
    assert (await client.delete(f"/v2/del/repush/manifests/{digest}")).status == 202
    response = await put_manifest(client, "del/repush", "v1", body)
    assert response.status == 201, await response.text()
    pulled = await client.get("/v2/del/repush/manifests/v1")
    assert await pulled.read() == body


async def test_delete_blob(client, push):
    descriptor = await push.blob("del/blob", b"to be deleted")
    kept = await push.blob("del/blob", b"to be kept")
    response = await client.delete(f"/v2/del/blob/blobs/{descriptor['digest']}")
    assert response.status == 202, await response.text()
    assert_api_version(response)
    await assert_error(await client.get(f"/v2/del/blob/blobs/{descriptor['digest']}"), 404, "BLOB_UNKNOWN")
    assert (await client.head(f"/v2/del/blob/blobs/{descriptor['digest']}")).status == 404
    assert (await client.get(f"/v2/del/blob/blobs/{kept['digest']}")).status == 200
    # deleting again: it's gone
    await assert_error(await client.delete(f"/v2/del/blob/blobs/{descriptor['digest']}"), 404, "BLOB_UNKNOWN")


async def test_delete_blob_in_one_repository_leaves_the_other(client, push):
    data = b"shared between two repositories"
    await push.blob("del/shared-a", data)
    await push.blob("del/shared-b", data)
    assert (await client.delete(f"/v2/del/shared-a/blobs/{sha256(data)}")).status == 202
    assert (await client.get(f"/v2/del/shared-a/blobs/{sha256(data)}")).status == 404
    response = await client.get(f"/v2/del/shared-b/blobs/{sha256(data)}")
    assert response.status == 200
    assert await response.read() == data


async def test_delete_unknown_manifest_digest_is_manifest_unknown(client, push):
    await push.image("del/unknown", "v1")
    response = await client.delete(f"/v2/del/unknown/manifests/{sha256(b'never pushed')}")
    await assert_error(response, 404, "MANIFEST_UNKNOWN")


async def test_delete_unknown_tag_is_manifest_unknown(client, push):
    await push.image("del/unknowntag", "v1")
    response = await client.delete("/v2/del/unknowntag/manifests/v9")
    await assert_error(response, 404, "MANIFEST_UNKNOWN")
    assert (await client.get("/v2/del/unknowntag/manifests/v1")).status == 200


async def test_delete_unknown_blob_is_blob_unknown(client, push):
    await push.blob("del/unknownblob", b"present")
    response = await client.delete(f"/v2/del/unknownblob/blobs/{sha256(b'absent')}")
    await assert_error(response, 404, "BLOB_UNKNOWN")


async def test_delete_manifest_in_unknown_repository_is_name_unknown(client):
    response = await client.delete(f"/v2/del/nowhere/manifests/{sha256(b'x')}")
    await assert_error(response, 404, "NAME_UNKNOWN")
    response = await client.delete("/v2/del/nowhere/manifests/latest")
    await assert_error(response, 404, "NAME_UNKNOWN")


async def test_delete_blob_in_unknown_repository_is_name_unknown(client):
    response = await client.delete(f"/v2/del/nowhere/blobs/{sha256(b'x')}")
    await assert_error(response, 404, "NAME_UNKNOWN")


async def test_delete_manifest_with_invalid_digest_is_400(client, push):
    await push.image("del/baddigest", "v1")
    response = await client.delete("/v2/del/baddigest/manifests/sha256:nothex")
    await assert_error(response, 400, "DIGEST_INVALID")
    response = await client.delete("/v2/del/baddigest/blobs/sha256:nothex")
    await assert_error(response, 400, "DIGEST_INVALID")
    assert (await client.get("/v2/del/baddigest/manifests/v1")).status == 200


async def test_delete_manifest_of_another_repository_is_manifest_unknown(client, push):
    digest, _ = await push.image("del/home", "v1")
    await push.image("del/away", "v1")
    response = await client.delete(f"/v2/del/away/manifests/{digest}")
    await assert_error(response, 404, "MANIFEST_UNKNOWN")
    assert (await client.get(f"/v2/del/home/manifests/{digest}")).status == 200
