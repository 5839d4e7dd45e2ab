"""Push: blob uploads of every flavour, mounts, and manifest PUTs (spec "Push", end-4 .. end-7, end-11, end-13/14)."""

from __future__ import annotations

import asyncio
import json

import pytest

from .helpers import (
    OCI_CONFIG,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    assert_api_version,
    assert_error,
    bearer,
    fetch_token,
    image_parts,
    manifest_bytes,
    path_of,
    push_manifest,
    put_manifest,
    sha256,
    sha512,
    start_upload,
    with_query,
)


async def assert_blob(client, repository: str, digest: str, data: bytes) -> None:
    response = await client.get(f"/v2/{repository}/blobs/{digest}")
    assert response.status == 200, await response.text()
    assert await response.read() == data
    assert response.headers["Docker-Content-Digest"] == digest


async def assert_no_blob(client, repository: str, digest: str) -> None:
    response = await client.head(f"/v2/{repository}/blobs/{digest}")
    assert response.status == 404


def assert_blob_created(response, repository: str, digest: str) -> None:
    assert response.status == 201
    assert path_of(response.headers["Location"]) == f"/v2/{repository}/blobs/{digest}"
    assert response.headers["Docker-Content-Digest"] == digest
    assert_api_version(response)


# -- monolithic -------------------------------------------------------------------


async def test_single_post_with_digest_creates_blob(client):
    data = b"monolithic single post"
    response = await client.post(
        f"/v2/push/mono/blobs/uploads/?digest={sha256(data)}",
        data=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert_blob_created(response, "push/mono", sha256(data))
    await assert_blob(client, "push/mono", sha256(data), data)


async def test_post_then_put_creates_blob(client):
    data = b"post then put"
    post = await client.post("/v2/push/postput/blobs/uploads/", headers={"Content-Length": "0"})
    assert post.status == 202
    assert post.headers["Location"]
    assert post.headers.get("Docker-Upload-UUID") and post.headers["Docker-Upload-UUID"] in post.headers["Location"]
    assert_api_version(post)
    put = await client.put(
        with_query(post.headers["Location"], digest=sha256(data)),
        data=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert_blob_created(put, "push/postput", sha256(data))
    await assert_blob(client, "push/postput", sha256(data), data)


async def test_post_without_slash_also_starts_an_upload(client):
    response = await client.post("/v2/push/noslash/blobs/uploads", headers={"Content-Length": "0"})
    assert response.status == 202
    assert "/v2/push/noslash/blobs/uploads/" in response.headers["Location"]


async def test_upload_locations_are_unique_sessions(client):
    first = await start_upload(client, "push/unique")
    second = await start_upload(client, "push/unique")
    assert first != second


async def test_single_post_of_existing_blob_is_201_again(client, push):
    data = b"already here"
    await push.blob("push/again", data)
    response = await client.post(f"/v2/push/again/blobs/uploads/?digest={sha256(data)}", data=data)
    assert_blob_created(response, "push/again", sha256(data))
    await assert_blob(client, "push/again", sha256(data), data)


# -- chunked --------------------------------------------------------------------


async def patch(client, location: str, data: bytes, start: int | None = None):
    headers = {"Content-Type": "application/octet-stream", "Content-Length": str(len(data))}
    if start is not None:
        headers["Content-Range"] = f"{start}-{start + len(data) - 1}"
    return await client.patch(path_of(location), data=data, headers=headers)


async def test_chunked_upload_with_content_range(client):
    chunks = [b"a" * 1000, b"b" * 1000, b"c" * 17]
    data = b"".join(chunks)
    location = await start_upload(client, "push/chunked")
    offset = 0
    for chunk in chunks:
        response = await patch(client, location, chunk, offset)
        assert response.status == 202, await response.text()
        offset += len(chunk)
        assert response.headers["Range"] == f"0-{offset - 1}"
        assert response.headers["Location"]
        location = response.headers["Location"]
    put = await client.put(with_query(location, digest=sha256(data)), headers={"Content-Length": "0"})
    assert_blob_created(put, "push/chunked", sha256(data))
    await assert_blob(client, "push/chunked", sha256(data), data)


async def test_chunked_upload_with_final_chunk_in_put(client):
    data = b"0123456789" * 10
    location = await start_upload(client, "push/finalput")
    response = await patch(client, location, data[:60], 0)
    assert response.status == 202
    put = await client.put(
        with_query(response.headers["Location"], digest=sha256(data)),
        data=data[60:],
        headers={"Content-Type": "application/octet-stream", "Content-Range": "60-99", "Content-Length": "40"},
    )
    assert_blob_created(put, "push/finalput", sha256(data))
    await assert_blob(client, "push/finalput", sha256(data), data)


async def test_streamed_patch_without_content_range(client):
    data = b"streamed " * 500
    location = await start_upload(client, "push/streamed")
    response = await client.patch(path_of(location), data=data, headers={"Content-Type": "application/octet-stream"})
    assert response.status == 202
    assert response.headers["Range"] == f"0-{len(data) - 1}"
    put = await client.put(with_query(response.headers["Location"], digest=sha256(data)))
    assert_blob_created(put, "push/streamed", sha256(data))
    await assert_blob(client, "push/streamed", sha256(data), data)


async def test_empty_patches_change_nothing_and_never_hang(client):
    """aiohttp hands every empty body the same reader, which keeps answering once read: each
    empty PATCH (here several, then an empty final PUT) must still end."""
    data = b"after empty patches"
    location = await start_upload(client, "push/empty-patches")
    for _ in range(3):
        response = await asyncio.wait_for(client.patch(path_of(location), headers={"Content-Length": "0"}), 10)
        assert response.status == 202, await response.text()
        location = response.headers["Location"]
    response = await client.patch(path_of(location), data=data, headers={"Content-Type": "application/octet-stream"})
    assert response.headers["Range"] == f"0-{len(data) - 1}"
    put = await asyncio.wait_for(client.put(with_query(response.headers["Location"], digest=sha256(data)),
                                            headers={"Content-Length": "0"}), 10)
    assert_blob_created(put, "push/empty-patches", sha256(data))
    await assert_blob(client, "push/empty-patches", sha256(data), data)


async def test_upload_status_is_204_with_range_and_location(client):
    location = await start_upload(client, "push/status")
    response = await patch(client, location, b"x" * 10, 0)
    assert response.status == 202
    status = await client.get(path_of(location))
    assert status.status == 204
    assert status.headers["Range"] == "0-9"
    assert path_of(status.headers["Location"]) == path_of(location)
    assert await status.read() == b""
    assert_api_version(status)


async def test_out_of_order_chunk_is_416_then_status_then_resume(client):
    data = b"A" * 100 + b"B" * 100 + b"C" * 100
    location = await start_upload(client, "push/ooo")
    assert (await patch(client, location, data[:100], 0)).status == 202

    skipped = await patch(client, location, data[200:], 200)  # skips bytes 100..199
    await assert_error(skipped, 416, "BLOB_UPLOAD_INVALID")
    repeated = await patch(client, location, data[:100], 0)  # the first chunk again
    await assert_error(repeated, 416, "BLOB_UPLOAD_INVALID")

    status = await client.get(path_of(location))
    assert status.status == 204
    assert status.headers["Range"] == "0-99"
    resume_at = int(status.headers["Range"].split("-")[1]) + 1
    location = status.headers["Location"]
    response = await patch(client, location, data[resume_at:200], resume_at)
    assert response.status == 202, await response.text()
    response = await patch(client, response.headers["Location"], data[200:], 200)
    assert response.status == 202
    put = await client.put(with_query(response.headers["Location"], digest=sha256(data)))
    assert_blob_created(put, "push/ooo", sha256(data))
    await assert_blob(client, "push/ooo", sha256(data), data)


async def test_out_of_order_final_chunk_in_put_is_416(client):
    data = b"z" * 50
    location = await start_upload(client, "push/ooofinal")
    assert (await patch(client, location, data[:20], 0)).status == 202
    put = await client.put(
        with_query(location, digest=sha256(data)),
        data=data[25:],
        headers={"Content-Range": "25-49", "Content-Length": "25"},
    )
    await assert_error(put, 416, "BLOB_UPLOAD_INVALID")
    await assert_no_blob(client, "push/ooofinal", sha256(data))
    status = await client.get(path_of(location))
    assert status.status == 204
    assert status.headers["Range"] == "0-19"


async def test_first_chunk_must_start_at_zero(client):
    location = await start_upload(client, "push/firstchunk")
    response = await patch(client, location, b"abc", 5)
    await assert_error(response, 416, "BLOB_UPLOAD_INVALID")


async def test_put_with_wrong_digest_is_digest_invalid_and_blob_invisible(client):
    data = b"honest content"
    location = await start_upload(client, "push/wrongdigest")
    assert (await patch(client, location, data, 0)).status == 202
    put = await client.put(with_query(location, digest=sha256(b"something else")))
    await assert_error(put, 400, "DIGEST_INVALID")
    await assert_no_blob(client, "push/wrongdigest", sha256(b"something else"))
    await assert_no_blob(client, "push/wrongdigest", sha256(data))


async def test_put_without_digest_is_rejected(client):
    location = await start_upload(client, "push/nodigest")
    put = await client.put(path_of(location), data=b"data")
    await assert_error(put, 400, "DIGEST_INVALID")


async def test_cancelled_upload_is_unknown_afterwards(client):
    location = await start_upload(client, "push/cancel")
    assert (await patch(client, location, b"partial", 0)).status == 202
    response = await client.delete(path_of(location), headers={"Content-Length": "0"})
    assert response.status == 204
    await assert_error(await client.get(path_of(location)), 404, "BLOB_UPLOAD_UNKNOWN")
    await assert_error(await patch(client, location, b"more", 7), 404, "BLOB_UPLOAD_UNKNOWN")
    await assert_error(
        await client.put(with_query(location, digest=sha256(b"partial"))), 404, "BLOB_UPLOAD_UNKNOWN"
    )
    await assert_error(await client.delete(path_of(location)), 404, "BLOB_UPLOAD_UNKNOWN")
    await assert_no_blob(client, "push/cancel", sha256(b"partial"))


async def test_completed_upload_session_is_gone(client):
    data = b"done"
    location = await start_upload(client, "push/done")
    put = await client.put(with_query(location, digest=sha256(data)), data=data)
    assert put.status == 201
    await assert_error(await client.get(path_of(location)), 404, "BLOB_UPLOAD_UNKNOWN")
    await assert_error(await patch(client, location, b"more", 4), 404, "BLOB_UPLOAD_UNKNOWN")


async def test_unknown_upload_session_is_blob_upload_unknown(client, push):
    await push.blob("push/unknownsession", b"x")
    for method in ("GET", "PATCH", "PUT", "DELETE"):
        url = "/v2/push/unknownsession/blobs/uploads/0123456789abcdef0123456789abcdef"
        if method == "PUT":
            url += f"?digest={sha256(b'x')}"
        response = await client.request(method, url)
        await assert_error(response, 404, "BLOB_UPLOAD_UNKNOWN")


async def test_upload_session_is_bound_to_its_repository(client):
    location = await start_upload(client, "push/owner-repo")
    session = location.rsplit("/", 1)[1]
    response = await client.get(f"/v2/push/other-repo/blobs/uploads/{session}")
    await assert_error(response, 404, "BLOB_UPLOAD_UNKNOWN")


# -- sha512 ---------------------------------------------------------------------


async def test_sha512_single_post(client):
    data = b"sha512 monolithic"
    response = await client.post(f"/v2/push/sha512/blobs/uploads/?digest={sha512(data)}", data=data)
    assert_blob_created(response, "push/sha512", sha512(data))
    await assert_blob(client, "push/sha512", sha512(data), data)


async def test_sha512_chunked_with_digest_algorithm(client):
    data = b"x" * 300 + b"y" * 300
    location = await start_upload(client, "push/sha512c", "?digest-algorithm=sha512")
    response = await patch(client, location, data[:300], 0)
    assert response.status == 202
    response = await patch(client, response.headers["Location"], data[300:], 300)
    assert response.status == 202
    put = await client.put(with_query(response.headers["Location"], digest=sha512(data)))
    assert_blob_created(put, "push/sha512c", sha512(data))
    await assert_blob(client, "push/sha512c", sha512(data), data)


async def test_sha512_wrong_digest_is_digest_invalid(client):
    data = b"sha512 honest"
    response = await client.post(f"/v2/push/sha512bad/blobs/uploads/?digest={sha512(b'other')}", data=data)
    await assert_error(response, 400, "DIGEST_INVALID")
    await assert_no_blob(client, "push/sha512bad", sha512(b"other"))


async def test_unsupported_digest_algorithm_parameter_is_400(client):
    response = await client.post("/v2/push/md5/blobs/uploads/?digest-algorithm=md5", headers={"Content-Length": "0"})
    await assert_error(response, 400, {"DIGEST_INVALID", "UNSUPPORTED", "BLOB_UPLOAD_INVALID"})


async def test_manifest_referencing_sha512_blobs_and_pushed_by_sha512_digest(client, push):
    config_data = b'{"architecture":"arm64","os":"linux"}'
    layer_data = b"sha512 layer"
    for data in (config_data, layer_data):
        response = await client.post(f"/v2/push/sha512m/blobs/uploads/?digest={sha512(data)}", data=data)
        assert response.status == 201
    body = manifest_bytes(
        {"mediaType": OCI_CONFIG, "digest": sha512(config_data), "size": len(config_data)},
        [{"mediaType": OCI_LAYER, "digest": sha512(layer_data), "size": len(layer_data)}],
    )
    response = await put_manifest(client, "push/sha512m", sha512(body), body)
    assert response.status == 201, await response.text()
    assert response.headers["Docker-Content-Digest"] == sha512(body)
    response = await client.get(f"/v2/push/sha512m/manifests/{sha512(body)}")
    assert response.status == 200
    assert await response.read() == body


# -- mounts ---------------------------------------------------------------------


async def test_mount_with_from(client, push):
    data = b"mount me"
    await push.blob("push/source", data)
    response = await client.post(
        f"/v2/push/target/blobs/uploads/?mount={sha256(data)}&from=push/source", headers={"Content-Length": "0"}
    )
    assert_blob_created(response, "push/target", sha256(data))
    await assert_blob(client, "push/target", sha256(data), data)


async def test_mount_without_from(client, push):
    data = b"mount me without from"
    await push.blob("push/source2", data)
    response = await client.post(f"/v2/push/target2/blobs/uploads/?mount={sha256(data)}", headers={"Content-Length": "0"})
    assert_blob_created(response, "push/target2", sha256(data))
    await assert_blob(client, "push/target2", sha256(data), data)


async def test_mount_of_unknown_blob_starts_an_upload(client, push):
    await push.blob("push/source3", b"present")
    response = await client.post(
        f"/v2/push/target3/blobs/uploads/?mount={sha256(b'absent')}&from=push/source3", headers={"Content-Length": "0"}
    )
    assert response.status == 202
    location = response.headers["Location"]
    data = b"uploaded instead"
    put = await client.put(with_query(location, digest=sha256(data)), data=data)
    assert_blob_created(put, "push/target3", sha256(data))


async def test_mount_from_wrong_repository_starts_an_upload(client, push):
    data = b"only in source4"
    await push.blob("push/source4", data)
    await push.blob("push/elsewhere", b"unrelated")
    response = await client.post(
        f"/v2/push/target4/blobs/uploads/?mount={sha256(data)}&from=push/elsewhere", headers={"Content-Length": "0"}
    )
    assert response.status == 202
    await assert_no_blob(client, "push/target4", sha256(data))


async def test_mount_from_repository_caller_cannot_read_falls_back_to_upload(client, anonymous, push):
    data = b"secret layer"
    await push.blob("push/private", data)
    token = await fetch_token(anonymous, "repository:push/mine:pull,push")
    for query in (f"?mount={sha256(data)}&from=push/private", f"?mount={sha256(data)}"):
        response = await anonymous.post(
            f"/v2/push/mine/blobs/uploads/{query}", headers={**bearer(token), "Content-Length": "0"}
        )
        assert response.status == 202, (query, response.status, await response.text())
        assert response.headers["Location"]
    response = await anonymous.head(f"/v2/push/mine/blobs/{sha256(data)}", headers=bearer(token))
    assert response.status == 404


async def test_mount_with_token_that_can_read_source(client, anonymous, push):
    data = b"shared layer"
    await push.blob("push/readable", data)
    token = await fetch_token(anonymous, "repository:push/mine2:pull,push", "repository:push/readable:pull")
    response = await anonymous.post(
        f"/v2/push/mine2/blobs/uploads/?mount={sha256(data)}&from=push/readable",
        headers={**bearer(token), "Content-Length": "0"},
    )
    assert_blob_created(response, "push/mine2", sha256(data))


# -- manifests ------------------------------------------------------------------


async def test_put_manifest_by_tag(client, push):
    config, layers = await image_parts(push, "push/mtag")
    body = manifest_bytes(config, layers)
    response = await put_manifest(client, "push/mtag", "v1", body)
    assert response.status == 201, await response.text()
    assert response.headers["Docker-Content-Digest"] == sha256(body)
    assert path_of(response.headers["Location"]) in (
        f"/v2/push/mtag/manifests/{sha256(body)}",
        "/v2/push/mtag/manifests/v1",
    )
    assert_api_version(response)
    pulled = await client.get(path_of(response.headers["Location"]))
    assert pulled.status == 200
    assert await pulled.read() == body


async def test_put_manifest_by_digest_creates_no_tag(client, push):
    config, layers = await image_parts(push, "push/mdigest")
    body = manifest_bytes(config, layers)
    response = await put_manifest(client, "push/mdigest", sha256(body), body)
    assert response.status == 201, await response.text()
    assert response.headers["Docker-Content-Digest"] == sha256(body)
    assert "OCI-Tag" not in response.headers
    tags = await client.get("/v2/push/mdigest/tags/list")
    assert tags.status == 200
    assert (await tags.json())["tags"] == []
    pulled = await client.get(f"/v2/push/mdigest/manifests/{sha256(body)}")
    assert await pulled.read() == body


async def test_manifest_is_stored_byte_for_byte(client, push):
    config, layers = await image_parts(push, "push/bytes")
    document = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": layers}
    body = json.dumps(document, indent=7, sort_keys=False).encode() + b"\n\n  "
    response = await put_manifest(client, "push/bytes", "odd-format", body)
    assert response.status == 201
    pulled = await client.get("/v2/push/bytes/manifests/odd-format")
    assert await pulled.read() == body
    assert pulled.headers["Docker-Content-Digest"] == sha256(body)


async def test_put_manifest_with_tag_query_parameters(client, push):
    config, layers = await image_parts(push, "push/tagparams")
    body = manifest_bytes(config, layers)
    digest = sha256(body)
    response = await client.put(
        f"/v2/push/tagparams/manifests/{digest}?tag=1.2.3&tag=1.2&tag=1&tag=latest",
        data=body,
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert response.status == 201, await response.text()
    accepted = [t.strip() for value in response.headers.getall("OCI-Tag", []) for t in value.split(",")]
    assert sorted(accepted) == sorted(["1.2.3", "1.2", "1", "latest"])
    tags = await (await client.get("/v2/push/tagparams/tags/list")).json()
    assert tags["tags"] == sorted(["1.2.3", "1.2", "1", "latest"])
    for tag in accepted:
        pulled = await client.get(f"/v2/push/tagparams/manifests/{tag}")
        assert pulled.headers["Docker-Content-Digest"] == digest


async def test_put_manifest_with_ten_tag_parameters(client, push):
    config, layers = await image_parts(push, "push/tentags")
    body = manifest_bytes(config, layers)
    wanted = [f"t{i}" for i in range(10)]
    query = "&".join(f"tag={t}" for t in wanted)
    response = await client.put(
        f"/v2/push/tentags/manifests/{sha256(body)}?{query}", data=body, headers={"Content-Type": OCI_MANIFEST}
    )
    assert response.status == 201
    accepted = {t.strip() for value in response.headers.getall("OCI-Tag", []) for t in value.split(",")}
    assert accepted == set(wanted)


async def test_manifest_with_subject_answers_oci_subject_even_if_subject_missing(client, push):
    missing = sha256(b"a manifest that was never pushed")
    config, layers = await image_parts(push, "push/subject", "sig")
    body = manifest_bytes(
        config, layers, subject={"mediaType": OCI_MANIFEST, "digest": missing, "size": 123},
        artifactType="application/vnd.example.signature",
    )
    response = await put_manifest(client, "push/subject", sha256(body), body)
    assert response.status == 201, await response.text()
    assert response.headers["OCI-Subject"] == missing
    pulled = await client.get(f"/v2/push/subject/manifests/{sha256(body)}")
    assert await pulled.read() == body


async def test_manifest_with_subject_oci_subject_header(client, push):
    subject_digest, subject_body = await push.image("push/subject2", "base")
    subject = {"mediaType": OCI_MANIFEST, "digest": subject_digest, "size": len(subject_body)}
    empty = await push.blob("push/subject2", b"{}")
    empty["mediaType"] = OCI_EMPTY
    body = manifest_bytes(empty, [], subject=subject, artifactType="application/vnd.example.sbom")
    response = await put_manifest(client, "push/subject2", sha256(body), body)
    assert response.status == 201, await response.text()
    assert response.headers["OCI-Subject"] == subject_digest


async def test_manifest_without_subject_has_no_oci_subject_header(client, push):
    config, layers = await image_parts(push, "push/nosubject")
    response = await put_manifest(client, "push/nosubject", "v1", manifest_bytes(config, layers))
    assert response.status == 201
    assert "OCI-Subject" not in response.headers


async def test_manifest_referencing_missing_blob_is_manifest_blob_unknown(client, push):
    config, layers = await image_parts(push, "push/missingblob")
    layers.append({"mediaType": OCI_LAYER, "digest": sha256(b"never uploaded"), "size": 14})
    body = manifest_bytes(config, layers)
    response = await put_manifest(client, "push/missingblob", "v1", body)
    await assert_error(response, 400, "MANIFEST_BLOB_UNKNOWN")
    response = await client.get("/v2/push/missingblob/manifests/v1")
    assert response.status == 404


async def test_manifest_referencing_missing_config_is_manifest_blob_unknown(client, push):
    _, layers = await image_parts(push, "push/missingconfig")
    config = {"mediaType": OCI_CONFIG, "digest": sha256(b"{}{}"), "size": 4}
    response = await put_manifest(client, "push/missingconfig", "v1", manifest_bytes(config, layers))
    await assert_error(response, 400, "MANIFEST_BLOB_UNKNOWN")


async def test_manifest_referencing_blob_of_another_repository_is_manifest_blob_unknown(client, push):
    config, layers = await image_parts(push, "push/blobhome")
    await push.blob("push/blobaway", b"make the repository exist")
    response = await put_manifest(client, "push/blobaway", "v1", manifest_bytes(config, layers))
    await assert_error(response, 400, "MANIFEST_BLOB_UNKNOWN")


async def index_bytes(children: list[dict], **extra) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children, **extra}).encode()


async def test_index_referencing_child_manifests(client, push):
    amd, amd_body = await push_manifest(client, push, "push/index", None, name="amd64")
    arm, arm_body = await push_manifest(client, push, "push/index", None, name="arm64")
    children = [
        {"mediaType": OCI_MANIFEST, "digest": amd, "size": len(amd_body), "platform": {"architecture": "amd64", "os": "linux"}},
        {"mediaType": OCI_MANIFEST, "digest": arm, "size": len(arm_body), "platform": {"architecture": "arm64", "os": "linux"}},
    ]
    body = await index_bytes(children)
    response = await put_manifest(client, "push/index", "multi", body, OCI_INDEX)
    assert response.status == 201, await response.text()
    assert response.headers["Docker-Content-Digest"] == sha256(body)
    pulled = await client.get("/v2/push/index/manifests/multi", headers={"Accept": OCI_INDEX})
    assert pulled.status == 200
    assert pulled.headers["Content-Type"] == OCI_INDEX
    assert await pulled.read() == body


async def test_index_referencing_missing_child_is_manifest_blob_unknown(client, push):
    amd, amd_body = await push_manifest(client, push, "push/badindex", None, name="amd64")
    children = [
        {"mediaType": OCI_MANIFEST, "digest": amd, "size": len(amd_body)},
        {"mediaType": OCI_MANIFEST, "digest": sha256(b"no such child"), "size": 10},
    ]
    response = await put_manifest(client, "push/badindex", "multi", await index_bytes(children), OCI_INDEX)
    await assert_error(response, 400, "MANIFEST_BLOB_UNKNOWN")
    assert (await client.get("/v2/push/badindex/manifests/multi")).status == 404


async def test_index_referencing_child_of_another_repository_is_manifest_blob_unknown(client, push):
    amd, amd_body = await push_manifest(client, push, "push/childhome", None, name="amd64")
    await push.image("push/childaway", "v1")
    children = [{"mediaType": OCI_MANIFEST, "digest": amd, "size": len(amd_body)}]
    response = await put_manifest(client, "push/childaway", "multi", await index_bytes(children), OCI_INDEX)
    await assert_error(response, 400, "MANIFEST_BLOB_UNKNOWN")


async def test_index_with_subject_to_missing_manifest_is_accepted(client, push):
    amd, amd_body = await push_manifest(client, push, "push/indexsubject", None, name="amd64")
    missing = sha256(b"missing subject")
    body = await index_bytes(
        [{"mediaType": OCI_MANIFEST, "digest": amd, "size": len(amd_body)}],
        subject={"mediaType": OCI_MANIFEST, "digest": missing, "size": 5},
    )
    response = await put_manifest(client, "push/indexsubject", sha256(body), body, OCI_INDEX)
    assert response.status == 201, await response.text()
    assert response.headers["OCI-Subject"] == missing


def padded_manifest(config: dict, layers: list[dict], size: int) -> bytes:
    skeleton = manifest_bytes(config, layers, annotations={"pad": ""})
    pad = size - len(skeleton)
    assert pad >= 0
    body = manifest_bytes(config, layers, annotations={"pad": "x" * pad})
    assert len(body) == size
    return body


async def test_manifest_of_exactly_4_mib_is_accepted(client, push):
    config, layers = await image_parts(push, "push/big")
    body = padded_manifest(config, layers, 4 * 1024 * 1024)
    response = await put_manifest(client, "push/big", "four-mib", body)
    assert response.status == 201, (await response.text())[:300]
    pulled = await client.get("/v2/push/big/manifests/four-mib")
    assert await pulled.read() == body


async def test_manifest_over_4_mib_is_413(client, push):
    config, layers = await image_parts(push, "push/toobig")
    body = padded_manifest(config, layers, 4 * 1024 * 1024 + 1)
    response = await put_manifest(client, "push/toobig", "too-big", body)
    await assert_error(response, 413, "MANIFEST_INVALID")
    assert (await client.get("/v2/push/toobig/manifests/too-big")).status == 404


async def test_manifest_over_4_mib_streamed_without_length_is_413(client, push):
    config, layers = await image_parts(push, "push/toobig2")
    body = padded_manifest(config, layers, 5 * 1024 * 1024)

    async def chunks():
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    response = await client.put(
        "/v2/push/toobig2/manifests/too-big", data=chunks(), headers={"Content-Type": OCI_MANIFEST}
    )
    await assert_error(response, 413, "MANIFEST_INVALID")
    assert (await client.get("/v2/push/toobig2/manifests/too-big")).status == 404


async def test_same_manifest_pushed_twice_is_idempotent(client, push):
    config, layers = await image_parts(push, "push/twice")
    body = manifest_bytes(config, layers)
    first = await put_manifest(client, "push/twice", "v1", body)
    second = await put_manifest(client, "push/twice", "v1", body)
    by_digest = await put_manifest(client, "push/twice", sha256(body), body)
    for response in (first, second, by_digest):
        assert response.status == 201
        assert response.headers["Docker-Content-Digest"] == sha256(body)
    tags = await (await client.get("/v2/push/twice/tags/list")).json()
    assert tags["tags"] == ["v1"]
    pulled = await client.get("/v2/push/twice/manifests/v1")
    assert await pulled.read() == body


async def test_tag_moves_to_newer_manifest(client, push):
    first, _ = await push_manifest(client, push, "push/move", "latest", name="one")
    second, body = await push_manifest(client, push, "push/move", "latest", name="two")
    assert first != second
    pulled = await client.get("/v2/push/move/manifests/latest")
    assert pulled.headers["Docker-Content-Digest"] == second
    assert await pulled.read() == body
    old = await client.get(f"/v2/push/move/manifests/{first}")
    assert old.status == 200


async def test_put_manifest_with_content_type_parameters_is_accepted(client, push):
    config, layers = await image_parts(push, "push/ctparams")
    body = manifest_bytes(config, layers)
    response = await put_manifest(client, "push/ctparams", "v1", body, OCI_MANIFEST + "; charset=utf-8")
    assert response.status == 201, await response.text()
    pulled = await client.get("/v2/push/ctparams/manifests/v1")
    assert pulled.headers["Content-Type"] == OCI_MANIFEST


async def test_manifest_with_empty_layers_and_artifact_type(client, push):
    empty = await push.blob("push/artifact", b"{}")
    empty["mediaType"] = OCI_EMPTY
    body = manifest_bytes(empty, [], artifactType="application/vnd.example.thing")
    response = await put_manifest(client, "push/artifact", "v1", body)
    assert response.status == 201, await response.text()


async def test_two_uploads_of_same_blob_in_parallel_both_succeed(client):
    data = b"identical layer" * 1000

    async def upload():
        location = await start_upload(client, "push/dedupe")
        return await client.put(with_query(location, digest=sha256(data)), data=data)

    first, second = await asyncio.gather(upload(), upload())
    assert first.status == 201 and second.status == 201
    await assert_blob(client, "push/dedupe", sha256(data), data)


@pytest.mark.parametrize("repository", ["kw/blobs", "kw/blobs/uploads", "kw/manifests", "kw/tags/list", "kw/referrers"])
async def test_repository_names_that_look_like_api_paths(client, push, repository):
    data = f"blob in {repository}".encode()
    location = await start_upload(client, repository)
    assert location.startswith(f"/v2/{repository}/blobs/uploads/")
    assert (await client.get(location)).status == 204
    put = await client.put(with_query(location, digest=sha256(data)), data=data)
    assert_blob_created(put, repository, sha256(data))
    await assert_blob(client, repository, sha256(data), data)
    digest, body = await push.image(repository, "v1")
    response = await client.get(f"/v2/{repository}/manifests/v1")
    assert response.status == 200
    assert await response.read() == body
    tags = await client.get(f"/v2/{repository}/tags/list")
    assert await tags.json() == {"name": repository, "tags": ["v1"]}


async def test_tag_of_128_characters_is_accepted(client, push):
    tag = "T" + "a" * 126 + "9"
    assert len(tag) == 128
    config, layers = await image_parts(push, "push/longtag")
    body = manifest_bytes(config, layers)
    response = await put_manifest(client, "push/longtag", tag, body)
    assert response.status == 201, await response.text()
    assert (await (await client.get("/v2/push/longtag/tags/list")).json())["tags"] == [tag]
    assert await (await client.get(f"/v2/push/longtag/manifests/{tag}")).read() == body


async def test_upload_that_lost_acknowledged_bytes_in_a_crash_is_blob_upload_invalid(client, services):
    """The node's machine crashed after a PATCH's 202, before its bytes reached the disk."""
    data = b"0123456789" * 1000
    location = await start_upload(client, "crash/lost")
    response = await client.patch(location, data=data[:6000], headers={"Content-Range": "0-5999"})
    assert response.status == 202
    upload_file = services.store.root / "uploads" / response.headers["Docker-Upload-UUID"]
    upload_file.write_bytes(data[:4096])  # what the disk held after the restart
    await assert_error(await client.put(with_query(location, digest=sha256(data[:6000]))), 400, "BLOB_UPLOAD_INVALID")
    await assert_error(
        await client.put(with_query(location, digest=sha256(data)), data=data[6000:], headers={"Content-Range": "6000-9999"}),
        400, "BLOB_UPLOAD_INVALID",
    )
    await assert_no_blob(client, "crash/lost", sha256(data[:6000]))
    await assert_no_blob(client, "crash/lost", sha256(data))
