"""Pull: manifests and blobs by GET and HEAD (spec "Pull", end-2, end-3)."""

from __future__ import annotations

import json

import pytest

from .helpers import (
    DOCKER_CONFIG,
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    assert_api_version,
    assert_error,
    put_manifest,
    sha256,
)

# -- manifests ------------------------------------------------------------------


async def test_get_manifest_by_tag_returns_exact_bytes_and_headers(client, push):
    digest, body = await push.image("pull/tagged", "v1")
    response = await client.get("/v2/pull/tagged/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert response.status == 200
    assert await response.read() == body
    assert response.headers["Docker-Content-Digest"] == digest == sha256(body)
    assert response.headers["Content-Type"] == OCI_MANIFEST
    assert int(response.headers["Content-Length"]) == len(body)
    assert_api_version(response)


async def test_get_manifest_by_digest_returns_exact_bytes(client, push):
    digest, body = await push.image("pull/bydigest", "v1")
    response = await client.get(f"/v2/pull/bydigest/manifests/{digest}")
    assert response.status == 200
    assert await response.read() == body
    assert response.headers["Docker-Content-Digest"] == digest
    assert response.headers["Content-Type"] == OCI_MANIFEST


async def test_head_manifest_by_tag_has_digest_and_length_but_no_body(client, push):
    digest, body = await push.image("pull/head", "v1")
    response = await client.head("/v2/pull/head/manifests/v1")
    assert response.status == 200, await response.text()
    assert response.headers["Docker-Content-Digest"] == digest
    assert int(response.headers["Content-Length"]) == len(body)
    assert response.headers["Content-Type"] == OCI_MANIFEST
    assert await response.read() == b""


async def test_head_manifest_by_digest(client, push):
    digest, body = await push.image("pull/headdigest", "v1")
    response = await client.head(f"/v2/pull/headdigest/manifests/{digest}")
    assert response.status == 200, await response.text()
    assert response.headers["Docker-Content-Digest"] == digest
    assert int(response.headers["Content-Length"]) == len(body)


async def test_head_unknown_manifest_is_404(client, push):
    await push.image("pull/headmissing", "v1")
    response = await client.head("/v2/pull/headmissing/manifests/nope")
    assert response.status == 404
    assert_api_version(response)


async def test_manifest_unknown_tag_in_known_repository_is_manifest_unknown(client, push):
    await push.image("pull/known", "v1")
    response = await client.get("/v2/pull/known/manifests/v2")
    await assert_error(response, 404, "MANIFEST_UNKNOWN")


async def test_manifest_unknown_digest_in_known_repository_is_manifest_unknown(client, push):
    await push.image("pull/known2", "v1")
    response = await client.get(f"/v2/pull/known2/manifests/{sha256(b'nothing')}")
    await assert_error(response, 404, "MANIFEST_UNKNOWN")


async def test_manifest_in_unknown_repository_is_name_unknown(client):
    response = await client.get("/v2/pull/never-pushed/manifests/latest")
    await assert_error(response, 404, "NAME_UNKNOWN")


async def test_manifest_of_another_repository_is_not_visible(client, push):
    digest, _ = await push.image("pull/one", "v1")
    await push.image("pull/two", "v1")
    response = await client.get(f"/v2/pull/two/manifests/{digest}")
    await assert_error(response, 404, "MANIFEST_UNKNOWN")


# -- content negotiation ----------------------------------------------------------


async def test_accept_listing_the_stored_type_among_others_gets_it(client, push):
    digest, body = await push.image("pull/neg", "v1")
    accept = f"{DOCKER_MANIFEST}, {OCI_INDEX};q=0.9, {OCI_MANIFEST};q=0.8"
    response = await client.get("/v2/pull/neg/manifests/v1", headers={"Accept": accept})
    assert response.status == 200
    assert await response.read() == body
    assert response.headers["Content-Type"] == OCI_MANIFEST


async def test_accept_as_several_headers_is_honoured(client, push):
    _, body = await push.image("pull/neg2", "v1")
    response = await client.get(
        "/v2/pull/neg2/manifests/v1", headers=[("Accept", DOCKER_MANIFEST), ("Accept", OCI_MANIFEST)]
    )
    assert response.status == 200
    assert await response.read() == body


async def test_wildcard_accept_gets_stored_manifest(client, push):
    _, body = await push.image("pull/neg3", "v1")
    response = await client.get("/v2/pull/neg3/manifests/v1", headers={"Accept": "*/*"})
    assert response.status == 200
    assert await response.read() == body


async def test_specific_accept_without_stored_type_is_manifest_unknown(client, push):
    await push.image("pull/neg4", "v1")
    response = await client.get("/v2/pull/neg4/manifests/v1", headers={"Accept": f"{DOCKER_MANIFEST}, {DOCKER_LIST}"})
    await assert_error(response, 404, "MANIFEST_UNKNOWN")


async def test_head_with_specific_accept_without_stored_type_is_404(client, push):
    await push.image("pull/neg5", "v1")
    response = await client.head("/v2/pull/neg5/manifests/v1", headers={"Accept": DOCKER_MANIFEST})
    assert response.status == 404


async def test_docker_manifest_served_with_its_own_content_type(client, push):
    config = await push.blob("pull/docker", b'{"architecture":"amd64","os":"linux"}')
    config["mediaType"] = DOCKER_CONFIG
    layer = await push.blob("pull/docker", b"docker layer")
    layer["mediaType"] = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    body = json.dumps({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST, "config": config, "layers": [layer]}).encode()
    response = await put_manifest(client, "pull/docker", "v1", body, DOCKER_MANIFEST)
    assert response.status == 201, await response.text()
    response = await client.get("/v2/pull/docker/manifests/v1", headers={"Accept": DOCKER_MANIFEST})
    assert response.status == 200
    assert response.headers["Content-Type"] == DOCKER_MANIFEST
    assert await response.read() == body
    response = await client.get("/v2/pull/docker/manifests/v1", headers={"Accept": OCI_MANIFEST})
    await assert_error(response, 404, "MANIFEST_UNKNOWN")


async def test_manifest_etag_and_if_none_match(client, push):
    digest, _ = await push.image("pull/etag", "v1")
    response = await client.get("/v2/pull/etag/manifests/v1")
    assert response.status == 200
    assert response.headers["ETag"] == f'"{digest}"'
    response = await client.get("/v2/pull/etag/manifests/v1", headers={"If-None-Match": f'"{digest}"'})
    assert response.status == 304
    assert await response.read() == b""
    other = await client.get("/v2/pull/etag/manifests/v1", headers={"If-None-Match": f'"{sha256(b"other")}"'})
    assert other.status == 200


# -- blobs ----------------------------------------------------------------------

BLOB = bytes(range(256)) * 4  # 1024 bytes, every offset distinguishable enough


@pytest.fixture
async def blob(push):
    descriptor = await push.blob("pull/blobs", BLOB)
    return descriptor["digest"]


async def test_get_blob_returns_content_and_headers(client, blob):
    response = await client.get(f"/v2/pull/blobs/blobs/{blob}")
    assert response.status == 200
    assert await response.read() == BLOB
    assert response.headers["Docker-Content-Digest"] == blob
    assert response.headers["ETag"] == f'"{blob}"'
    assert int(response.headers["Content-Length"]) == len(BLOB)
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert_api_version(response)


async def test_head_blob_has_length_and_digest_and_no_body(client, blob):
    response = await client.head(f"/v2/pull/blobs/blobs/{blob}")
    assert response.status == 200
    assert response.headers["Docker-Content-Digest"] == blob
    assert int(response.headers["Content-Length"]) == len(BLOB)
    assert await response.read() == b""


async def test_unknown_blob_is_blob_unknown(client, blob):
    response = await client.get(f"/v2/pull/blobs/blobs/{sha256(b'absent')}")
    await assert_error(response, 404, "BLOB_UNKNOWN")
    response = await client.head(f"/v2/pull/blobs/blobs/{sha256(b'absent')}")
    assert response.status == 404


async def test_blob_in_unknown_repository_is_404(client, blob):
    response = await client.get(f"/v2/pull/no-such-repo/blobs/{blob}")
    await assert_error(response, 404, {"BLOB_UNKNOWN", "NAME_UNKNOWN"})


async def test_blob_of_another_repository_is_not_visible(client, push, blob):
    await push.blob("pull/other", b"something else")
    response = await client.get(f"/v2/pull/other/blobs/{blob}")
    await assert_error(response, 404, "BLOB_UNKNOWN")


@pytest.mark.parametrize(
    ("range_header", "start", "end"),
    [
        ("bytes=0-9", 0, 9),
        ("bytes=100-199", 100, 199),
        ("bytes=1000-", 1000, 1023),
        ("bytes=-24", 1000, 1023),  # suffix range: the last 24 bytes
        ("bytes=-5000", 0, 1023),  # suffix longer than the blob: all of it
        ("bytes=1000-99999", 1000, 1023),  # end past the blob is clamped
        ("bytes=1023-1023", 1023, 1023),
    ],
)
async def test_blob_range_gives_206_with_content_range(client, blob, range_header, start, end):
    response = await client.get(f"/v2/pull/blobs/blobs/{blob}", headers={"Range": range_header})
    assert response.status == 206, await response.text()
    assert await response.read() == BLOB[start : end + 1]
    assert response.headers["Content-Range"] == f"bytes {start}-{end}/{len(BLOB)}"
    assert int(response.headers["Content-Length"]) == end - start + 1
    assert response.headers["Docker-Content-Digest"] == blob


async def test_head_blob_with_range(client, blob):
    response = await client.head(f"/v2/pull/blobs/blobs/{blob}", headers={"Range": "bytes=10-19"})
    assert response.status == 206
    assert response.headers["Content-Range"] == f"bytes 10-19/{len(BLOB)}"
    assert int(response.headers["Content-Length"]) == 10


@pytest.mark.parametrize("range_header", ["bytes=1024-", "bytes=5000-6000", "bytes=-0"])
async def test_unsatisfiable_blob_range_is_416_with_size(client, blob, range_header):
    # RFC 9110 14.1.2: a range-set is satisfiable only with a first-pos below the length,
    # or a suffix-range with a non-zero suffix-length; 15.5.17: 416 carries "bytes */<length>".
    response = await client.get(f"/v2/pull/blobs/blobs/{blob}", headers={"Range": range_header})
    assert response.status == 416, (range_header, response.status, response.headers.get("Content-Range"))
    assert response.headers["Content-Range"] == f"bytes */{len(BLOB)}"
    assert_api_version(response)


async def test_blob_if_none_match_gives_304(client, blob):
    response = await client.get(f"/v2/pull/blobs/blobs/{blob}", headers={"If-None-Match": f'"{blob}"'})
    assert response.status == 304
    assert response.headers["ETag"] == f'"{blob}"'
    assert await response.read() == b""


async def test_blob_if_none_match_other_etag_gives_body(client, blob):
    response = await client.get(f"/v2/pull/blobs/blobs/{blob}", headers={"If-None-Match": f'"{sha256(b"x")}"'})
    assert response.status == 200
    assert await response.read() == BLOB


async def test_blob_if_none_match_star_gives_304(client, blob):
    # RFC 9110 13.1.2: "If-None-Match: *" is false when a current representation exists: 304 for GET.
    response = await client.get(f"/v2/pull/blobs/blobs/{blob}", headers={"If-None-Match": "*"})
    assert response.status == 304


async def test_empty_blob_can_be_pulled(client, push):
    descriptor = await push.blob("pull/empty", b"")
    response = await client.get(f"/v2/pull/empty/blobs/{descriptor['digest']}")
    assert response.status == 200
    assert await response.read() == b""
    assert response.headers["Content-Length"] == "0"
    assert response.headers["Docker-Content-Digest"] == sha256(b"")


async def test_large_blob_roundtrip(client, push):
    data = bytes(range(251)) * 20000  # ~5 MB, several store buffers
    descriptor = await push.blob("pull/large", data)
    response = await client.get(f"/v2/pull/large/blobs/{descriptor['digest']}")
    assert response.status == 200
    assert await response.read() == data
    response = await client.get(
        f"/v2/pull/large/blobs/{descriptor['digest']}", headers={"Range": f"bytes={len(data) - 3000000}-"}
    )
    assert response.status == 206
    assert await response.read() == data[-3000000:]


async def test_base_endpoint(client):
    response = await client.get("/v2/")
    assert response.status == 200
    assert_api_version(response)


async def test_a_big_blob_is_sent_in_segments_each_read_ahead(client, push, monkeypatch):
    """Blobs beyond the in-memory size leave by sendfile, one segment at a time, the kernel asked to
    read the next segment while one is sent: every byte arrives, in order, whole or in a range."""
    from dockyard.http import blobs as blob_handlers

    data = bytes(range(251)) * 1000  # 251,000 bytes: past the small-blob cache, a period no segment shares
    digest = (await push.blob("pull/segments", data))["digest"]
    segment = 48 << 10
    monkeypatch.setattr(blob_handlers, "SEGMENT", segment)
    hinted = []
    real = blob_handlers._read_ahead
    monkeypatch.setattr(blob_handlers, "_read_ahead", lambda fd, offset, length: (hinted.append(offset), real(fd, offset, length)))
    response = await client.get(f"/v2/pull/segments/blobs/{digest}")
    assert response.status == 200
    assert await response.read() == data
    assert hinted == list(range(0, len(data), segment))  # the first segment, then each next one ahead
    hinted.clear()
    response = await client.get(f"/v2/pull/segments/blobs/{digest}", headers={"Range": "bytes=50000-200000"})
    assert response.status == 206
    assert await response.read() == data[50000:200001]
    assert hinted == [50000, 50000 + segment, 50000 + 2 * segment, 50000 + 3 * segment]
