"""Content discovery: tag lists, the catalog and the referrers API (spec "Content Discovery", end-8, end-12)."""

from __future__ import annotations

import json
import re

import pytest
from yarl import URL

from .helpers import (
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    assert_api_version,
    assert_error,
    manifest_bytes,
    push_manifest,
    put_manifest,
    sha256,
)

TAGS = ["v1", "V2", "latest", "1.0", "1.10", "1.9", "_private", "a-b", "a.b", "a_b", "Z", "zz", "A"]


def next_link(response) -> str | None:
    """The target of a Link header with rel="next" (RFC 5988), as a path and query."""
    header = response.headers.get("Link")
    if header is None:
        return None
    match = re.match(r'^\s*<([^>]+)>\s*;\s*rel="?next"?\s*$', header)
    assert match, f"malformed Link header {header!r}"
    url = URL(match.group(1))
    return url.path_qs if url.absolute else match.group(1)


async def tag_all(client, push, repository: str, tags: list[str]) -> str:
    digest, body = await push_manifest(client, push, repository, tags[0])
    for tag in tags[1:]:
        response = await put_manifest(client, repository, tag, body)
        assert response.status == 201
    return digest


# -- tags -----------------------------------------------------------------------


async def test_tags_list_is_complete_and_asciibetical(client, push):
    await tag_all(client, push, "disc/tags", TAGS)
    response = await client.get("/v2/disc/tags/tags/list")
    assert response.status == 200
    assert response.content_type == "application/json"
    assert_api_version(response)
    document = await response.json()
    assert document == {"name": "disc/tags", "tags": sorted(TAGS)}
    assert "Link" not in response.headers


@pytest.mark.parametrize("n", [1, 2, 3, 5, 12])
async def test_tags_pagination_walked_through_link_headers(client, push, n):
    await tag_all(client, push, "disc/pages", TAGS)
    url: str | None = f"/v2/disc/pages/tags/list?n={n}"
    seen: list[str] = []
    pages = 0
    while url is not None:
        response = await client.get(url)
        assert response.status == 200, await response.text()
        document = await response.json()
        assert document["name"] == "disc/pages"
        assert len(document["tags"]) <= n
        url = next_link(response)
        if url is not None:
            # without Link the page may be short only at the end; with Link it must still hold at most n
            assert document["tags"], "a page with a next Link should not be empty"
        else:
            assert len(seen) + len(document["tags"]) == len(TAGS)
        seen += document["tags"]
        pages += 1
        assert pages <= len(TAGS) + 1, "pagination does not terminate"
    assert seen == sorted(TAGS)


async def test_tags_pagination_by_last_parameter(client, push):
    await tag_all(client, push, "disc/last", TAGS)
    ordered = sorted(TAGS)
    response = await client.get(f"/v2/disc/last/tags/list?n=3&last={ordered[2]}")
    assert response.status == 200
    assert (await response.json())["tags"] == ordered[3:6]
    response = await client.get(f"/v2/disc/last/tags/list?last={ordered[-2]}")  # n is optional with last
    assert response.status == 200
    assert (await response.json())["tags"] == ordered[-1:]
    response = await client.get(f"/v2/disc/last/tags/list?n=3&last={ordered[-1]}")
    assert response.status == 200
    assert (await response.json())["tags"] == []
    assert "Link" not in response.headers


async def test_tags_without_n_come_in_whole_pages_linked_without_n(client, services, push):
    await tag_all(client, push, "disc/whole", TAGS)
    services.listings.whole_page = 5  # a list longer than a whole page
    url: str | None = "/v2/disc/whole/tags/list"
    seen: list[str] = []
    while url is not None:
        response = await client.get(url)
        document = await response.json()
        url = next_link(response)
        assert url is None or "n=" not in url
        assert len(document["tags"]) == (5 if url else len(TAGS) % 5)
        seen += document["tags"]
    assert seen == sorted(TAGS)


async def test_tags_n_exactly_total_has_no_link_or_a_link_to_an_empty_page(client, push):
    await tag_all(client, push, "disc/exact", TAGS[:4])
    response = await client.get("/v2/disc/exact/tags/list?n=4")
    assert response.status == 200
    assert (await response.json())["tags"] == sorted(TAGS[:4])
    link = next_link(response)
    if link is not None:
        follow = await client.get(link)
        assert (await follow.json())["tags"] == []


async def test_tags_n_larger_than_total_gives_all(client, push):
    await tag_all(client, push, "disc/fewer", TAGS[:3])
    response = await client.get("/v2/disc/fewer/tags/list?n=100")
    assert (await response.json())["tags"] == sorted(TAGS[:3])
    assert "Link" not in response.headers


async def test_tags_n_zero_is_empty_and_has_no_link(client, push):
    await tag_all(client, push, "disc/zero", TAGS[:3])
    response = await client.get("/v2/disc/zero/tags/list?n=0")
    assert response.status == 200
    assert await response.json() == {"name": "disc/zero", "tags": []}
    assert "Link" not in response.headers


async def test_tags_list_of_repository_without_tags_is_empty(client, push):
    await push_manifest(client, push, "disc/untagged", None)
    response = await client.get("/v2/disc/untagged/tags/list")
    assert response.status == 200
    assert await response.json() == {"name": "disc/untagged", "tags": []}


async def test_tags_list_of_unknown_repository_is_name_unknown(client):
    response = await client.get("/v2/disc/nothing-here/tags/list")
    await assert_error(response, 404, "NAME_UNKNOWN")


@pytest.mark.parametrize("n", ["abc", "-1", "1.5", "1e3"])
async def test_tags_bad_n_is_400(client, push, n):
    await tag_all(client, push, "disc/badn", TAGS[:2])
    response = await client.get(f"/v2/disc/badn/tags/list?n={n}")
    await assert_error(response, 400, "UNSUPPORTED")


# -- catalog --------------------------------------------------------------------

REPOSITORIES = ["cat/b", "cat/a", "cat-x/one", "cat/a/deeper", "cat.y", "cat_z", "cat0", "cat/c"]


async def push_repositories(push, names):
    for name in names:
        await push.blob(name, f"blob of {name}".encode())


async def test_catalog_lists_all_repositories_in_order(client, push):
    await push_repositories(push, REPOSITORIES)
    response = await client.get("/v2/_catalog")
    assert response.status == 200
    assert_api_version(response)
    assert await response.json() == {"repositories": sorted(REPOSITORIES)}


@pytest.mark.parametrize("n", [1, 3, 7, 8])
async def test_catalog_pagination_walked_through_link_headers(client, push, n):
    await push_repositories(push, REPOSITORIES)
    url: str | None = f"/v2/_catalog?n={n}"
    seen: list[str] = []
    for _ in range(len(REPOSITORIES) + 2):
        response = await client.get(url)
        assert response.status == 200
        page = (await response.json())["repositories"]
        assert len(page) <= n
        seen += page
        url = next_link(response)
        if url is None:
            break
    else:
        pytest.fail("catalog pagination does not terminate")
    assert seen == sorted(REPOSITORIES)


async def test_catalog_n_zero_is_empty_without_link(client, push):
    await push_repositories(push, REPOSITORIES[:2])
    response = await client.get("/v2/_catalog?n=0")
    assert response.status == 200
    assert await response.json() == {"repositories": []}
    assert "Link" not in response.headers


async def test_catalog_last_parameter(client, push):
    await push_repositories(push, REPOSITORIES)
    ordered = sorted(REPOSITORIES)
    response = await client.get(f"/v2/_catalog?n=2&last={ordered[1]}")
    assert (await response.json())["repositories"] == ordered[2:4]


async def test_catalog_bad_n_is_400(client):
    response = await client.get("/v2/_catalog?n=abc")
    await assert_error(response, 400, "UNSUPPORTED")


async def test_catalog_of_empty_registry(client):
    response = await client.get("/v2/_catalog")
    assert response.status == 200
    assert await response.json() == {"repositories": []}


# -- referrers ------------------------------------------------------------------

SBOM = "application/vnd.example.sbom.v1"
SIGNATURE = "application/vnd.example.signature.v1"


async def push_referrer(client, push, repository: str, subject: dict, artifact_type: str | None,
                        annotations: dict | None = None, config_media_type: str = OCI_EMPTY) -> tuple[str, bytes]:
    config = await push.blob(repository, b"{}")
    config["mediaType"] = config_media_type
    layer = await push.blob(repository, f"payload {artifact_type} {annotations}".encode())
    layer["mediaType"] = "application/octet-stream"
    extra: dict = {"subject": subject}
    if artifact_type is not None:
        extra["artifactType"] = artifact_type
    if annotations is not None:
        extra["annotations"] = annotations
    body = manifest_bytes(config, [layer], **extra)
    response = await put_manifest(client, repository, sha256(body), body)
    assert response.status == 201, await response.text()
    return sha256(body), body


@pytest.fixture
async def subject(client, push):
    digest, body = await push.image("disc/refs", "base")
    return {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(body)}


async def referrers(client, repository: str, digest: str, artifact_type: str | None = None):
    url = f"/v2/{repository}/referrers/{digest}"
    params = {"artifactType": artifact_type} if artifact_type else None
    response = await client.get(url, params=params)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"] == OCI_INDEX
    assert_api_version(response)
    document = json.loads(await response.read())
    assert document["schemaVersion"] == 2
    assert document["mediaType"] == OCI_INDEX
    assert isinstance(document["manifests"], list)
    return response, document


async def test_referrers_lists_manifests_with_descriptor_fields(client, push, subject):
    sbom, sbom_body = await push_referrer(
        client, push, "disc/refs", subject, SBOM,
        {"org.opencontainers.image.created": "2022-01-01T14:42:55Z", "org.example.sbom.format": "json"},
    )
    sig, sig_body = await push_referrer(client, push, "disc/refs", subject, SIGNATURE)
    _, document = await referrers(client, "disc/refs", subject["digest"])
    by_digest = {d["digest"]: d for d in document["manifests"]}
    assert set(by_digest) == {sbom, sig}
    assert by_digest[sbom] == {
        "mediaType": OCI_MANIFEST,
        "digest": sbom,
        "size": len(sbom_body),
        "artifactType": SBOM,
        "annotations": {"org.opencontainers.image.created": "2022-01-01T14:42:55Z", "org.example.sbom.format": "json"},
    }
    assert by_digest[sig]["artifactType"] == SIGNATURE
    assert by_digest[sig]["size"] == len(sig_body)
    assert by_digest[sig]["mediaType"] == OCI_MANIFEST
    assert "annotations" not in by_digest[sig] or by_digest[sig]["annotations"] == {}


async def test_referrer_without_artifact_type_uses_config_media_type(client, push, subject):
    digest, _ = await push_referrer(
        client, push, "disc/refs", subject, None, config_media_type="application/vnd.example.config.v1+json"
    )
    _, document = await referrers(client, "disc/refs", subject["digest"])
    [descriptor] = document["manifests"]
    assert descriptor["digest"] == digest
    assert descriptor["artifactType"] == "application/vnd.example.config.v1+json"


async def test_index_referrer_without_artifact_type_omits_it(client, push, subject):
    child, child_body = await push_manifest(client, push, "disc/refs", None, name="child")
    body = json.dumps({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": child, "size": len(child_body)}],
        "subject": subject,
        "annotations": {"org.example.kind": "bundle"},
    }).encode()
    response = await put_manifest(client, "disc/refs", sha256(body), body, OCI_INDEX)
    assert response.status == 201, await response.text()
    _, document = await referrers(client, "disc/refs", subject["digest"])
    [descriptor] = document["manifests"]
    assert descriptor == {
        "mediaType": OCI_INDEX,
        "digest": sha256(body),
        "size": len(body),
        "annotations": {"org.example.kind": "bundle"},
    }


async def test_index_referrer_with_artifact_type_keeps_it(client, push, subject):
    child, child_body = await push_manifest(client, push, "disc/refs", None, name="child2")
    body = json.dumps({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "artifactType": "application/vnd.example.bundle",
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": child, "size": len(child_body)}],
        "subject": subject,
    }).encode()
    response = await put_manifest(client, "disc/refs", sha256(body), body, OCI_INDEX)
    assert response.status == 201
    _, document = await referrers(client, "disc/refs", subject["digest"])
    [descriptor] = document["manifests"]
    assert descriptor["artifactType"] == "application/vnd.example.bundle"


async def test_referrers_artifact_type_filter(client, push, subject):
    sbom, _ = await push_referrer(client, push, "disc/refs", subject, SBOM)
    await push_referrer(client, push, "disc/refs", subject, SIGNATURE)
    response, document = await referrers(client, "disc/refs", subject["digest"], SBOM)
    assert response.headers["OCI-Filters-Applied"] == "artifactType"
    assert [d["digest"] for d in document["manifests"]] == [sbom]


async def test_referrers_filter_matching_nothing_is_empty_with_header(client, push, subject):
    await push_referrer(client, push, "disc/refs", subject, SBOM)
    response, document = await referrers(client, "disc/refs", subject["digest"], "application/vnd.example.none")
    assert response.headers["OCI-Filters-Applied"] == "artifactType"
    assert document["manifests"] == []


async def test_referrers_without_filter_has_no_filters_applied_header(client, push, subject):
    await push_referrer(client, push, "disc/refs", subject, SBOM)
    response, document = await referrers(client, "disc/refs", subject["digest"])
    assert "OCI-Filters-Applied" not in response.headers
    assert len(document["manifests"]) == 1


async def test_referrers_of_unknown_subject_is_empty_index(client, push, subject):
    _, document = await referrers(client, "disc/refs", sha256(b"unknown subject"))
    assert document["manifests"] == []


async def test_referrers_pushed_before_subject_are_listed(client, push):
    # the spec lets a referrer be pushed before its subject
    await push.blob("disc/early", b"make the repository")
    future_body = b"placeholder that will be the subject"
    subject = {"mediaType": OCI_MANIFEST, "digest": sha256(future_body), "size": len(future_body)}
    digest, _ = await push_referrer(client, push, "disc/early", subject, SBOM)
    _, document = await referrers(client, "disc/early", subject["digest"])
    assert [d["digest"] for d in document["manifests"]] == [digest]


async def test_referrers_are_scoped_to_the_repository(client, push, subject):
    await push_referrer(client, push, "disc/refs", subject, SBOM)
    await push.image("disc/refs-other", "v1")
    _, document = await referrers(client, "disc/refs-other", subject["digest"])
    assert document["manifests"] == []


async def test_deleted_referrer_disappears(client, push, subject):
    digest, _ = await push_referrer(client, push, "disc/refs", subject, SBOM)
    response = await client.delete(f"/v2/disc/refs/manifests/{digest}")
    assert response.status == 202
    _, document = await referrers(client, "disc/refs", subject["digest"])
    assert document["manifests"] == []


@pytest.mark.parametrize(
    "digest",
    ["sha256:short", "sha256:" + "G" * 64, "notadigest", "md5:d41d8cd98f00b204e9800998ecf8427e", "sha256:" + "a" * 65],
)
async def test_referrers_with_invalid_digest_is_400(client, push, subject, digest):
    response = await client.get(f"/v2/disc/refs/referrers/{digest}")
    assert response.status == 400, await response.text()
    assert_api_version(response)
