"""Bad input: malformed manifests, wrong digests and names, broken bodies and races.

Every test checks the answer is a 4xx with the right OCI error code (never a 5xx),
and that content stored before the bad request is still intact afterwards.
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import quote

import aiohttp
import pytest
import sqlalchemy as sa
from yarl import URL

from dockyard.metadata.schema import uploads

from .helpers import (
    DOCKER_MANIFEST,
    DOCKER_SCHEMA1,
    DOCKER_SCHEMA1_SIGNED,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    assert_api_version,
    assert_error,
    basic,
    manifest_bytes,
    path_of,
    put_manifest,
    raw_exchange,
    raw_request,
    raw_statuses,
    settle,
    sha256,
    sha512,
    start_upload,
    with_query,
)

REPO = "bad/input"
BASE_BLOB = b"the baseline blob that must survive every bad request"


class Baseline:
    """Content stored before the bad requests, and a check that it is all still there."""

    def __init__(self, client, digest: str, body: bytes, config: dict, layers: list[dict]) -> None:
        self.client, self.digest, self.body, self.config, self.layers = client, digest, body, config, layers

    async def check(self) -> None:
        client = self.client
        response = await client.get(f"/v2/{REPO}/manifests/v1")
        assert response.status == 200, await response.text()
        assert await response.read() == self.body
        assert response.headers["Docker-Content-Digest"] == self.digest
        response = await client.get(f"/v2/{REPO}/manifests/{self.digest}")
        assert await response.read() == self.body
        response = await client.get(f"/v2/{REPO}/blobs/{sha256(BASE_BLOB)}")
        assert response.status == 200
        assert await response.read() == BASE_BLOB
        response = await client.get(f"/v2/{REPO}/tags/list")
        assert await response.json() == {"name": REPO, "tags": ["v1"]}
        response = await client.get("/v2/_catalog")
        assert await response.json() == {"repositories": [REPO]}


@pytest.fixture
async def baseline(client, push):
    await push.blob(REPO, BASE_BLOB)
    config = await push.blob(REPO, b'{"architecture":"amd64","os":"linux"}')
    config["mediaType"] = OCI_CONFIG
    layer = await push.blob(REPO, b"baseline layer")
    layer["mediaType"] = OCI_LAYER
    body = manifest_bytes(config, [layer])
    response = await put_manifest(client, REPO, "v1", body)
    assert response.status == 201
    state = Baseline(client, sha256(body), body, config, [layer])
    await state.check()
    return state


# -- malformed manifests --------------------------------------------------------

MALFORMED = {
    "empty": b"",
    "truncated": b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": {',
    "not-json": b"this is not json",
    "array": b"[]",
    "null": b"null",
    "string": b'"manifest"',
    "number": b"2",
    "invalid-utf8": b'{"schemaVersion": 2, "x": "\xff\xfe"}',
    "deeply-nested": b'{"schemaVersion": 2, "layers": ' + b"[" * 100000 + b"]" * 100000 + b"}",
    "nan": b'{"schemaVersion": NaN}',
    "no-schema-version": b'{"mediaType": "application/vnd.oci.image.manifest.v1+json", "config": {}, "layers": []}',
    "schema-version-3": b'{"schemaVersion": 3, "mediaType": "application/vnd.oci.image.manifest.v1+json"}',
    "schema-version-string": b'{"schemaVersion": "2", "mediaType": "application/vnd.oci.image.manifest.v1+json"}',
    "no-config": b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "layers": []}',
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
async def test_malformed_manifest_is_manifest_invalid(client, baseline, name):
    body = MALFORMED[name]
    response = await put_manifest(client, REPO, "v1", body)
    await assert_error(response, 400, "MANIFEST_INVALID")
    response = await put_manifest(client, REPO, sha256(body), body)
    await assert_error(response, 400, "MANIFEST_INVALID")
    await baseline.check()


def descriptor_cases(config: dict, layer: dict) -> dict[str, dict]:
    good = dict(layer)
    return {
        "config-not-object": {"config": "sha256:abc", "layers": [good]},
        "layers-not-list": {"config": config, "layers": good},
        "layer-not-object": {"config": config, "layers": [42]},
        "layer-without-digest": {"config": config, "layers": [{"mediaType": OCI_LAYER, "size": 3}]},
        "layer-without-media-type": {"config": config, "layers": [{"digest": layer["digest"], "size": layer["size"]}]},
        "layer-with-bad-digest": {"config": config, "layers": [{**good, "digest": "sha256:xyz"}]},
        "layer-with-md5-digest": {"config": config, "layers": [{**good, "digest": "md5:d41d8cd98f00b204e9800998ecf8427e"}]},
        "layer-with-negative-size": {"config": config, "layers": [{**good, "size": -1}]},
        "layer-with-string-size": {"config": config, "layers": [{**good, "size": str(layer["size"])}]},
        "layer-with-bool-size": {"config": config, "layers": [{**good, "size": True}]},
        "layer-without-size": {"config": config, "layers": [{"mediaType": OCI_LAYER, "digest": layer["digest"]}]},
        "layer-with-wrong-size": {"config": config, "layers": [{**good, "size": layer["size"] + 1}]},
        "annotations-not-strings": {"config": config, "layers": [good], "annotations": {"a": 1}},
        "annotations-not-object": {"config": config, "layers": [good], "annotations": ["a"]},
        "subject-not-object": {"config": config, "layers": [good], "subject": "sha256:" + "a" * 64},
        "subject-with-bad-digest": {
            "config": config, "layers": [good], "subject": {"mediaType": OCI_MANIFEST, "digest": "nope", "size": 1},
        },
        "artifact-type-not-string": {"config": config, "layers": [good], "artifactType": 7},
        "media-type-not-string": {"config": config, "layers": [good], "mediaType": 7},
    }


CASE_NAMES = sorted(descriptor_cases({"digest": "", "size": 0}, {"digest": "", "size": 0}))


@pytest.mark.parametrize("case", CASE_NAMES)
async def test_manifest_with_bad_fields_is_manifest_invalid(client, baseline, case):
    fields = descriptor_cases(baseline.config, baseline.layers[0])[case]
    document = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, **fields}
    body = json.dumps(document).encode()
    response = await put_manifest(client, REPO, "v1", body)
    await assert_error(response, 400, "MANIFEST_INVALID")
    await baseline.check()


async def test_index_with_bad_manifests_field_is_manifest_invalid(client, baseline):
    for manifests in ("not a list", [1, 2], [{"mediaType": OCI_MANIFEST, "digest": "sha256:zz", "size": 1}]):
        body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}).encode()
        response = await put_manifest(client, REPO, "v1", body, OCI_INDEX)
        await assert_error(response, 400, "MANIFEST_INVALID")
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX}).encode()
    await assert_error(await put_manifest(client, REPO, "v1", body, OCI_INDEX), 400, "MANIFEST_INVALID")
    await baseline.check()


async def test_oversized_manifest_over_existing_tag_leaves_it_intact(client, baseline):
    body = manifest_bytes(baseline.config, baseline.layers, annotations={"pad": "x" * (4 * 1024 * 1024)})
    response = await put_manifest(client, REPO, "v1", body)
    await assert_error(response, 413, "MANIFEST_INVALID")
    await baseline.check()


async def test_oversized_manifest_with_lying_content_length_is_rejected(client, baseline):
    # declares a small body but streams more than the limit (chunked encoding carries no length)
    body = manifest_bytes(baseline.config, baseline.layers, annotations={"pad": "y" * (5 * 1024 * 1024)})

    async def chunks():
        for start in range(0, len(body), 1 << 16):
            yield body[start : start + (1 << 16)]

    response = await client.put(f"/v2/{REPO}/manifests/v1", data=chunks(), headers={"Content-Type": OCI_MANIFEST})
    await assert_error(response, 413, "MANIFEST_INVALID")
    await baseline.check()


# -- media types ----------------------------------------------------------------


async def test_content_type_not_matching_media_type_is_manifest_invalid(client, baseline):
    body = manifest_bytes(baseline.config, baseline.layers)
    for content_type in (OCI_INDEX, DOCKER_MANIFEST):
        response = await put_manifest(client, REPO, "v1", body, content_type)
        await assert_error(response, 400, "MANIFEST_INVALID")
    await baseline.check()


@pytest.mark.parametrize(
    "media_type", [OCI_LAYER, OCI_CONFIG, "application/vnd.example.unknown+json", "text/html", "application/json"]
)
async def test_manifest_declaring_a_non_manifest_media_type_is_manifest_invalid(client, baseline, media_type):
    body = json.dumps({
        "schemaVersion": 2, "mediaType": media_type, "config": baseline.config, "layers": baseline.layers,
    }).encode()
    response = await put_manifest(client, REPO, "v1", body, media_type)
    await assert_error(response, 400, "MANIFEST_INVALID")
    await baseline.check()


async def test_docker_manifest_with_index_shape_is_rejected(client, baseline):
    body = json.dumps({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST, "manifests": []}).encode()
    response = await put_manifest(client, REPO, "v1", body, DOCKER_MANIFEST)
    await assert_error(response, 400, "MANIFEST_INVALID")
    await baseline.check()


SCHEMA1 = json.dumps({
    "schemaVersion": 1,
    "name": REPO,
    "tag": "v1",
    "architecture": "amd64",
    "fsLayers": [{"blobSum": sha256(BASE_BLOB)}],
    "history": [{"v1Compatibility": "{}"}],
    "signatures": [{"header": {"alg": "ES256"}, "signature": "x", "protected": "e30"}],
}).encode()


@pytest.mark.parametrize("content_type", [DOCKER_SCHEMA1_SIGNED, DOCKER_SCHEMA1, "application/json", OCI_MANIFEST, None])
async def test_docker_schema1_is_refused(client, baseline, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    response = await client.put(f"/v2/{REPO}/manifests/v1", data=SCHEMA1, headers=headers)
    await assert_error(response, 400, "MANIFEST_INVALID")
    response = await client.put(f"/v2/{REPO}/manifests/{sha256(SCHEMA1)}", data=SCHEMA1, headers=headers)
    await assert_error(response, 400, "MANIFEST_INVALID")
    await baseline.check()


async def test_manifest_for_schema2_body_with_schema1_content_type_is_refused(client, baseline):
    body = manifest_bytes(baseline.config, baseline.layers)
    response = await put_manifest(client, REPO, "v1", body, DOCKER_SCHEMA1_SIGNED)
    await assert_error(response, 400, "MANIFEST_INVALID")
    await baseline.check()


# -- digests --------------------------------------------------------------------


async def test_manifest_pushed_under_wrong_digest_is_digest_invalid(client, baseline):
    body = manifest_bytes(baseline.config, baseline.layers, annotations={"new": "one"})
    for wrong in (baseline.digest, sha256(body + b" "), sha512(body + b" ")):
        response = await put_manifest(client, REPO, wrong, body)
        await assert_error(response, 400, "DIGEST_INVALID")
    assert (await client.get(f"/v2/{REPO}/manifests/{sha256(body)}")).status == 404
    await baseline.check()


async def test_blob_single_post_with_wrong_digest_is_digest_invalid(client, baseline):
    data = b"content that does not match"
    response = await client.post(f"/v2/{REPO}/blobs/uploads/?digest={sha256(BASE_BLOB)}", data=data)
    await assert_error(response, 400, "DIGEST_INVALID")
    response = await client.post(f"/v2/{REPO}/blobs/uploads/?digest={sha256(b'other')}", data=data)
    await assert_error(response, 400, "DIGEST_INVALID")
    assert (await client.head(f"/v2/{REPO}/blobs/{sha256(b'other')}")).status == 404
    assert (await client.head(f"/v2/{REPO}/blobs/{sha256(data)}")).status == 404
    await baseline.check()


async def test_blob_upload_put_with_digest_of_existing_blob_but_other_content(client, baseline):
    location = await start_upload(client, REPO)
    response = await client.put(with_query(location, digest=sha256(BASE_BLOB)), data=b"impostor bytes")
    await assert_error(response, 400, "DIGEST_INVALID")
    await baseline.check()


async def test_repeated_digest_parameter_is_rejected(client, baseline):
    data = b"two digests"
    response = await client.post(
        f"/v2/{REPO}/blobs/uploads/?digest={sha256(data)}&digest={sha256(b'x')}", data=data
    )
    await assert_error(response, 400, "DIGEST_INVALID")
    await baseline.check()


MD5 = "md5:d41d8cd98f00b204e9800998ecf8427e"
BAD_DIGESTS = [
    MD5,
    "sha1:da39a3ee5e6b4b0d3255bfef95601890afd80709",
    "sha256:" + "a" * 63,
    "sha256:" + "A" * 64,
    "sha256:" + "g" * 64,
    "sha512:" + "a" * 64,
    "sha256",
    "sha256:",
    ":" + "a" * 64,
    "SHA256:" + "a" * 64,
]


@pytest.mark.parametrize("digest", BAD_DIGESTS)
async def test_bad_digest_in_blob_upload_is_digest_invalid(client, baseline, digest):
    response = await client.post(f"/v2/{REPO}/blobs/uploads/?digest={digest}", data=b"data")
    await assert_error(response, 400, "DIGEST_INVALID")
    location = await start_upload(client, REPO)
    response = await client.put(with_query(location, digest=digest), data=b"data")
    await assert_error(response, 400, "DIGEST_INVALID")
    await baseline.check()


@pytest.mark.parametrize("digest", [d for d in BAD_DIGESTS if ":" in d])  # "sha256" alone is a valid tag
async def test_bad_digest_as_manifest_reference(client, baseline, digest):
    body = manifest_bytes(baseline.config, baseline.layers)
    response = await put_manifest(client, REPO, digest, body)
    await assert_error(response, 400, {"DIGEST_INVALID", "MANIFEST_INVALID"})
    response = await client.get(f"/v2/{REPO}/manifests/{digest}")
    assert response.status in (400, 404), response.status
    await assert_error(response, response.status, {"DIGEST_INVALID", "MANIFEST_UNKNOWN", "MANIFEST_INVALID"})
    response = await client.delete(f"/v2/{REPO}/manifests/{digest}")
    assert response.status in (400, 404), response.status
    await baseline.check()


@pytest.mark.parametrize("digest", BAD_DIGESTS)
async def test_bad_digest_as_blob_reference(client, baseline, digest):
    for method in ("GET", "HEAD", "DELETE"):
        response = await client.request(method, f"/v2/{REPO}/blobs/{digest}")
        assert response.status in (400, 404), (method, response.status)
        if method != "HEAD":
            await assert_error(response, response.status, {"DIGEST_INVALID", "BLOB_UNKNOWN"})
    await baseline.check()


async def test_mount_with_bad_digest_is_400_or_an_upload(client, baseline):
    response = await client.post(f"/v2/{REPO}/blobs/uploads/?mount={MD5}&from={REPO}", headers={"Content-Length": "0"})
    if response.status == 202:
        assert response.headers["Location"]
    else:
        await assert_error(response, 400, "DIGEST_INVALID")
    await baseline.check()


async def test_mount_from_invalid_repository_name_is_400_or_an_upload(client, baseline):
    response = await client.post(
        f"/v2/bad/target/blobs/uploads/?mount={sha256(BASE_BLOB)}&from=Not..Valid", headers={"Content-Length": "0"}
    )
    if response.status == 202:
        assert response.headers["Location"]
    else:
        await assert_error(response, 400, "NAME_INVALID")
    assert (await client.head(f"/v2/bad/target/blobs/{sha256(BASE_BLOB)}")).status == 404


# -- names and tags ---------------------------------------------------------------

INVALID_NAMES = [
    "Upper/case",
    "lower/Upper",
    "foo..bar",
    "foo/../bar",
    "-leading",
    "trailing-",
    "trailing.",
    "a___b",
    "a" * 256,
    "/".join(["abcdefghijklmnopqrstuvwxyz0123456789"] * 8),  # 295 characters of valid components
    "sp ace",
    "semi;colon",
    "ünïcode",
]


@pytest.mark.parametrize("name", INVALID_NAMES, ids=lambda n: n[:30])
async def test_invalid_repository_name_is_name_invalid(client, baseline, name):
    encoded = quote(name, safe="/").replace(".", "%2E")  # keep the client from resolving dot segments
    requests = [
        ("GET", f"/v2/{encoded}/manifests/latest", None),
        ("PUT", f"/v2/{encoded}/manifests/latest", baseline.body),
        ("GET", f"/v2/{encoded}/tags/list", None),
        ("POST", f"/v2/{encoded}/blobs/uploads/", None),
        ("POST", f"/v2/{encoded}/blobs/uploads/?digest={sha256(b'x')}", b"x"),
        ("GET", f"/v2/{encoded}/blobs/{sha256(BASE_BLOB)}", None),
        ("DELETE", f"/v2/{encoded}/blobs/{sha256(BASE_BLOB)}", None),
        ("GET", f"/v2/{encoded}/referrers/{baseline.digest}", None),
    ]
    for method, url, body in requests:
        headers = {"Content-Type": OCI_MANIFEST} if method == "PUT" else {}
        response = await client.request(method, URL(url, encoded=True), data=body, headers=headers)
        await assert_error(response, 400, "NAME_INVALID")
    await baseline.check()


async def test_name_of_255_characters_is_accepted(client, baseline):
    name = "/".join(["a" * 50] * 4) + "/" + "b" * 51  # 255 characters
    assert len(name) == 255
    response = await client.post(f"/v2/{name}/blobs/uploads/?digest={sha256(b'long')}", data=b"long")
    assert response.status == 201, await response.text()


INVALID_TAGS = ["-dash", ".dot", "a" * 129, "tag:colon", "with space", "with/slash", "ünï", "tag@at"]


@pytest.mark.parametrize("tag", INVALID_TAGS, ids=lambda t: t[:20])
async def test_invalid_tag_in_put_is_rejected(client, baseline, tag):
    body = manifest_bytes(baseline.config, baseline.layers, annotations={"for": "bad tag"})
    url = URL(f"/v2/{REPO}/manifests/{quote(tag, safe='')}", encoded=True)
    response = await client.put(url, data=body, headers={"Content-Type": OCI_MANIFEST})
    assert 400 <= response.status < 500, response.status
    await assert_error(response, response.status, {"MANIFEST_INVALID", "TAG_INVALID", "DIGEST_INVALID", "UNSUPPORTED"})
    assert (await client.get(f"/v2/{REPO}/manifests/{sha256(body)}")).status == 404
    await baseline.check()


@pytest.mark.parametrize("tag", INVALID_TAGS, ids=lambda t: t[:20])
async def test_invalid_tag_query_parameter_stores_nothing(client, baseline, tag):
    body = manifest_bytes(baseline.config, baseline.layers, annotations={"for": "bad tag param"})
    response = await client.put(
        f"/v2/{REPO}/manifests/{sha256(body)}",
        params=[("tag", "good"), ("tag", tag)],
        data=body,
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert 400 <= response.status < 500, response.status
    await assert_error(response, response.status, {"MANIFEST_INVALID", "TAG_INVALID"})
    assert (await client.get(f"/v2/{REPO}/manifests/good")).status == 404
    await baseline.check()


@pytest.mark.parametrize("tag", INVALID_TAGS, ids=lambda t: t[:20])
async def test_invalid_tag_in_get_is_4xx(client, baseline, tag):
    response = await client.get(URL(f"/v2/{REPO}/manifests/{quote(tag, safe='')}", encoded=True))
    assert response.status in (400, 404), response.status
    await assert_error(response, response.status, {"MANIFEST_UNKNOWN", "MANIFEST_INVALID", "TAG_INVALID", "DIGEST_INVALID", "UNSUPPORTED"})


# -- Content-Range and Content-Length ------------------------------------------------


async def upload_with(client, data: bytes) -> str:
    location = await start_upload(client, REPO)
    response = await client.patch(
        path_of(location), data=data, headers={"Content-Range": f"0-{len(data) - 1}", "Content-Length": str(len(data))}
    )
    assert response.status == 202
    return path_of(response.headers["Location"])


async def assert_upload_holds(client, location: str, data: bytes, rest: bytes = b"!rest") -> None:
    """The upload still holds exactly ``data``: its status says so, and finishing it gives data + rest."""
    status = await client.get(location)
    assert status.status == 204
    assert status.headers["Range"] == f"0-{len(data) - 1}"
    response = await client.patch(
        location,
        data=rest,
        headers={"Content-Range": f"{len(data)}-{len(data) + len(rest) - 1}", "Content-Length": str(len(rest))},
    )
    assert response.status == 202, await response.text()
    whole = data + rest
    put = await client.put(with_query(response.headers["Location"], digest=sha256(whole)))
    assert put.status == 201, await put.text()
    blob = await client.get(f"/v2/{REPO}/blobs/{sha256(whole)}")
    assert await blob.read() == whole


@pytest.mark.parametrize(
    "content_range",
    ["garbage", "bytes=", "10", "10-", "-19", "a-b", "10-19-20", "0x0a-0x13", "10 - 19", "99999999999999999999-99999999999999999999"],
)
async def test_garbage_content_range_is_rejected_and_upload_unchanged(client, baseline, content_range):
    location = await upload_with(client, b"0123456789")
    response = await client.patch(location, data=b"abcdefghij", headers={"Content-Range": content_range})
    assert 400 <= response.status < 500, (content_range, response.status, await response.text())
    await assert_error(response, response.status, {"BLOB_UPLOAD_INVALID", "SIZE_INVALID"})
    await assert_upload_holds(client, location, b"0123456789")
    await baseline.check()


async def test_content_range_ending_before_it_starts_is_416(client, baseline):
    location = await upload_with(client, b"0123456789")
    response = await client.patch(location, data=b"x", headers={"Content-Range": "19-10"})
    assert response.status in (400, 416)
    await assert_error(response, response.status, "BLOB_UPLOAD_INVALID")
    await assert_upload_holds(client, location, b"0123456789")


async def test_content_range_disagreeing_with_content_length_is_rejected(client, baseline):
    location = await upload_with(client, b"0123456789")
    response = await client.patch(
        location, data=b"abcdefghij", headers={"Content-Range": "10-14", "Content-Length": "10"}
    )
    await assert_error(response, 400, {"SIZE_INVALID", "BLOB_UPLOAD_INVALID"})
    await assert_upload_holds(client, location, b"0123456789")


async def test_content_range_disagreeing_with_streamed_body_is_rejected(client, baseline):
    # the chunk claims 5 bytes (10-14) but a chunked body brings 10: the registry must not take them
    location = await upload_with(client, b"0123456789")

    async def body():
        yield b"abcde"
        yield b"fghij"

    response = await client.patch(location, data=body(), headers={"Content-Range": "10-14"})
    assert 400 <= response.status < 500, (response.status, response.headers.get("Range"))
    await assert_error(response, response.status, {"SIZE_INVALID", "BLOB_UPLOAD_INVALID"})
    await assert_upload_holds(client, location, b"0123456789")


async def test_final_put_content_range_disagreeing_with_streamed_body_is_rejected(client, baseline):
    # the final chunk claims 3 bytes (10-12) but a chunked body brings 6
    location = await upload_with(client, b"0123456789")
    whole = b"0123456789abcdef"

    async def body():
        yield b"abc"
        yield b"def"

    response = await client.put(with_query(location, digest=sha256(whole)), data=body(), headers={"Content-Range": "10-12"})
    assert 400 <= response.status < 500, response.status
    await assert_error(response, response.status, {"SIZE_INVALID", "BLOB_UPLOAD_INVALID"})
    assert (await client.head(f"/v2/{REPO}/blobs/{sha256(whole)}")).status == 404


async def test_final_put_content_range_disagreeing_with_length_is_rejected(client, baseline):
    location = await upload_with(client, b"0123456789")
    whole = b"0123456789abc"
    response = await client.put(
        with_query(location, digest=sha256(whole)),
        data=b"abc",
        headers={"Content-Range": "10-19", "Content-Length": "3"},
    )
    await assert_error(response, 400, {"SIZE_INVALID", "BLOB_UPLOAD_INVALID"})
    assert (await client.head(f"/v2/{REPO}/blobs/{sha256(whole)}")).status == 404
    await assert_upload_holds(client, location, b"0123456789")


@pytest.mark.parametrize("content_length", ["abc", "-5", "1, 2", "10, 10", "0x10", "99999999999999999999999"])
async def test_garbage_content_length_is_400_not_5xx(client, baseline, content_length):
    data = b"0123456789"
    request = raw_request(
        "POST",
        f"/v2/{REPO}/blobs/uploads/?digest={sha256(data)}",
        {**basic(), "Content-Length": content_length, "Connection": "close"},
        data,
    )
    received = await raw_exchange(client, request)
    statuses = raw_statuses(received)
    assert statuses and statuses[0] == 400, received[:300]
    assert all(s < 500 for s in statuses)
    await settle()
    assert (await client.head(f"/v2/{REPO}/blobs/{sha256(data)}")).status == 404
    await baseline.check()


async def test_garbage_content_length_answer_carries_api_version_header(client, baseline):
    request = raw_request(
        "POST", f"/v2/{REPO}/blobs/uploads/", {**basic(), "Content-Length": "abc", "Connection": "close"}, b"x"
    )
    received = await raw_exchange(client, request)
    head = received.split(b"\r\n\r\n", 1)[0].decode("latin-1").lower()
    assert raw_statuses(received)[:1] == [400]
    assert "docker-distribution-api-version: registry/2.0" in head, head


async def test_content_length_smaller_than_body_stores_nothing_wrong(client, baseline):
    data = b"0123456789"
    request = raw_request(
        "POST",
        f"/v2/{REPO}/blobs/uploads/?digest={sha256(data)}",
        {**basic(), "Content-Length": "5", "Content-Type": "application/octet-stream"},
        data,
    )
    received = await raw_exchange(client, request)
    statuses = raw_statuses(received)
    assert all(400 <= s < 500 for s in statuses), received[:500]
    await settle()
    assert (await client.head(f"/v2/{REPO}/blobs/{sha256(data)}")).status == 404
    await baseline.check()


async def test_content_length_smaller_than_patch_body_appends_at_most_that_many(client, baseline):
    location = await upload_with(client, b"0123456789")
    request = raw_request(
        "PATCH", location, {**basic(), "Content-Length": "5", "Content-Range": "10-14"}, b"abcdefghij"
    )
    received = await raw_exchange(client, request)
    statuses = raw_statuses(received)
    assert all(s < 500 for s in statuses), received[:500]
    await settle()
    status = await client.get(location)
    assert status.status == 204
    assert status.headers["Range"] in ("0-9", "0-14")
    held = b"0123456789" + (b"abcde" if status.headers["Range"] == "0-14" else b"")
    await assert_upload_holds(client, location, held)


# -- bodies cut short ---------------------------------------------------------------


async def cut_request(client, method: str, target: str, headers: dict[str, str], sent: bytes) -> None:
    """Send headers promising 1000 bytes, then ``sent`` (fewer), then close the connection."""
    request = raw_request(method, target, {**basic(), "Content-Length": "1000", **headers}, sent)
    await raw_exchange(client, request, close_after_send=True)
    await settle()


async def open_uploads(services, repository: str) -> list:
    async with services.db.read() as conn:
        return list((await conn.execute(sa.select(uploads).where(uploads.c.repository == repository))).all())


async def test_monolithic_post_cut_short_leaves_nothing(client, services, baseline):
    full = bytes(range(250)) * 4
    await cut_request(client, "POST", f"/v2/bad/cut-mono/blobs/uploads/?digest={sha256(full[:1000])}", {}, full[:10])
    assert (await client.head(f"/v2/bad/cut-mono/blobs/{sha256(full[:1000])}")).status == 404
    assert (await client.head(f"/v2/bad/cut-mono/blobs/{sha256(full[:10])}")).status == 404
    catalog = await (await client.get("/v2/_catalog")).json()
    assert "bad/cut-mono" not in catalog["repositories"]
    assert await open_uploads(services, "bad/cut-mono") == []
    await baseline.check()


async def test_monolithic_post_cut_short_into_existing_repo(client, services, baseline):
    full = b"q" * 1000
    await cut_request(client, "POST", f"/v2/{REPO}/blobs/uploads/?digest={sha256(full)}", {}, full[:10])
    assert (await client.head(f"/v2/{REPO}/blobs/{sha256(full)}")).status == 404
    assert await open_uploads(services, REPO) == []
    await baseline.check()


async def test_patch_cut_short_leaves_upload_unchanged(client, baseline):
    location = await upload_with(client, b"0123456789")
    await cut_request(client, "PATCH", location, {"Content-Range": "10-1009"}, b"abcdefghij")
    await assert_upload_holds(client, location, b"0123456789")
    await baseline.check()


async def test_streamed_patch_cut_short_leaves_upload_unchanged(client, baseline):
    location = await upload_with(client, b"0123456789")
    await cut_request(client, "PATCH", location, {}, b"abcdefghij")
    await assert_upload_holds(client, location, b"0123456789")


async def test_final_put_cut_short_leaves_upload_open_and_blob_invisible(client, baseline):
    location = await upload_with(client, b"0123456789")
    whole = b"0123456789" + b"z" * 1000
    target = with_query(location, digest=sha256(whole))
    await cut_request(client, "PUT", target, {"Content-Range": "10-1009"}, b"z" * 10)
    assert (await client.head(f"/v2/{REPO}/blobs/{sha256(whole)}")).status == 404
    await assert_upload_holds(client, location, b"0123456789")
    await baseline.check()


async def test_manifest_put_cut_short_changes_nothing(client, baseline):
    body = manifest_bytes(baseline.config, baseline.layers, annotations={"cut": "x" * 2000})
    await cut_request(client, "PUT", f"/v2/{REPO}/manifests/v1", {"Content-Type": OCI_MANIFEST}, body[:10])
    await cut_request(client, "PUT", f"/v2/{REPO}/manifests/v2", {"Content-Type": OCI_MANIFEST}, body[:900])
    assert (await client.get(f"/v2/{REPO}/manifests/v2")).status == 404
    await baseline.check()


# -- races ----------------------------------------------------------------------


@pytest.fixture
async def second_client(client):
    async with aiohttp.ClientSession(base_url=str(client.make_url("/")), headers=basic()) as session:
        yield session


async def test_two_clients_completing_the_same_upload(client, second_client, baseline):
    data = b"raced upload " * 10000
    location = await upload_with(client, data)
    target = with_query(location, digest=sha256(data))
    first, second = await asyncio.gather(client.put(target), second_client.put(target))
    statuses = sorted([first.status, second.status])
    assert statuses[0] == 201 and 400 <= statuses[1] < 500, statuses
    loser = first if first.status != 201 else second
    await assert_error(loser, loser.status, {"BLOB_UPLOAD_UNKNOWN", "BLOB_UPLOAD_INVALID"})
    blob = await client.get(f"/v2/{REPO}/blobs/{sha256(data)}")
    assert blob.status == 200
    assert await blob.read() == data
    await assert_error(await client.get(location), 404, "BLOB_UPLOAD_UNKNOWN")
    await baseline.check()


async def test_two_clients_completing_the_same_upload_with_final_chunks(client, second_client, baseline):
    head, tail = b"head " * 5000, b"tail " * 5000
    data = head + tail
    location = await upload_with(client, head)
    target = with_query(location, digest=sha256(data))
    headers = {"Content-Range": f"{len(head)}-{len(data) - 1}", "Content-Length": str(len(tail))}
    first, second = await asyncio.gather(
        client.put(target, data=tail, headers=headers), second_client.put(target, data=tail, headers=headers)
    )
    statuses = sorted([first.status, second.status])
    assert statuses[0] == 201 and 400 <= statuses[1] < 500, statuses
    loser = first if first.status != 201 else second
    await assert_error(loser, loser.status, {"BLOB_UPLOAD_UNKNOWN", "BLOB_UPLOAD_INVALID"})
    blob = await client.get(f"/v2/{REPO}/blobs/{sha256(data)}")
    assert await blob.read() == data


async def test_two_clients_patching_the_same_range(client, second_client, baseline):
    location = await upload_with(client, b"0123456789")
    headers = {"Content-Range": "10-14", "Content-Length": "5"}
    first, second = await asyncio.gather(
        client.patch(location, data=b"abcde", headers=headers),
        second_client.patch(location, data=b"ABCDE", headers=headers),
    )
    statuses = sorted([first.status, second.status])
    assert statuses == [202, 416], statuses
    winner = b"abcde" if first.status == 202 else b"ABCDE"
    await assert_upload_holds(client, location, b"0123456789" + winner)


async def test_cancel_racing_completion(client, second_client, baseline):
    data = b"cancel or complete"
    location = await upload_with(client, data)
    put, delete = await asyncio.gather(
        client.put(with_query(location, digest=sha256(data))), second_client.delete(location)
    )
    assert put.status in (201, 404) and delete.status in (204, 404), (put.status, delete.status)
    assert sorted([put.status == 201, delete.status == 204]) == [False, True], (put.status, delete.status)
    blob = await client.head(f"/v2/{REPO}/blobs/{sha256(data)}")
    assert blob.status == (200 if put.status == 201 else 404)
    await baseline.check()


# -- endpoints and methods -------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url", "status"),
    [
        ("GET", "/v2/bad/input/unknown-endpoint", 404),
        ("GET", "/v3/", 404),
        ("POST", "/v2/bad/input/manifests/v1", 405),
        ("PATCH", "/v2/bad/input/blobs/" + "sha256:" + "a" * 64, 405),
        ("PUT", "/v2/bad/input/tags/list", 405),
    ],
)
async def test_unknown_endpoints_and_methods_are_oci_errors(client, baseline, method, url, status):
    response = await client.request(method, url)
    await assert_error(response, status, "UNSUPPORTED")
    await baseline.check()


async def test_upload_session_ids_that_are_not_ids(client, baseline):
    for session in ("..", "%2E%2E", "x" * 500, "' OR 1=1 --", "%00"):
        response = await client.get(f"/v2/{REPO}/blobs/uploads/{session}")
        assert response.status in (400, 404), (session, response.status)
        assert_api_version(response)
    await baseline.check()
