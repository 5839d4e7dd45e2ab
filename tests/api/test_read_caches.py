"""What the pull path remembers between requests must never let through what it should not.

Verified access tokens are remembered (with their grants indexed, and the identity they stand
for) until they expire; valid repository names and Accept decisions are remembered too. None of
it may serve a token past its expiry, on another registry, or for a repository or an action it
doesn't grant; and what is deleted is gone at once, on this node and on every other.
"""

from __future__ import annotations

import datetime
import time

import jwt
import pytest

from dockyard.auth import tokens as tokens_module
from dockyard.auth.tokens import InvalidToken, TokenService, VerifiedToken, new_signing_key, signing_key
from dockyard.http.app import create_app
from dockyard.server import open_services
from dockyard.core.lru import SizedLRU
from tests.conftest import DockyardTestServer

from .helpers import OCI_MANIFEST, assert_error, bearer, fetch_token, parse_challenge

OTHER_HOST = "otherregistry.localhost"


@pytest.fixture
async def stored(push):
    digest, body = await push.image("cache/app", "v1")
    blob = await push.blob("cache/app", b"cache blob")
    return {"digest": digest, "body": body, "blob": blob["digest"]}


async def pull(http, token: str, path: str, method: str = "GET", **headers):
    return await http.request(method, path, headers={**bearer(token), "Accept": OCI_MANIFEST, **headers})


def shift_clock(monkeypatch, seconds: float) -> None:
    """Move the clock that token checks read (the cache's and PyJWT's) ``seconds`` ahead."""
    real_time = time.time
    monkeypatch.setattr(tokens_module.time, "time", lambda: real_time() + seconds)

    class Later(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.datetime.fromtimestamp(real_time() + seconds, tz)

    monkeypatch.setattr(jwt.api_jwt, "datetime", Later)


async def test_cached_token_is_refused_once_expired(anonymous, services, stored, monkeypatch):
    token = await fetch_token(anonymous, "repository:cache/app:pull")
    for _ in range(3):  # verified once, then served from the cache
        assert (await pull(anonymous, token, "/v2/cache/app/manifests/v1")).status == 200
    shift_clock(monkeypatch, services.tokens.access_lifetime + tokens_module.LEEWAY + 1)
    for path, method in (("/v2/cache/app/manifests/v1", "GET"), (f"/v2/cache/app/blobs/{stored['blob']}", "HEAD"),
                         (f"/v2/cache/app/manifests/{stored['digest']}", "HEAD"), ("/v2/", "GET")):
        response = await pull(anonymous, token, path, method)
        assert response.status == 401, (path, method)
        _, params = parse_challenge(response.headers["WWW-Authenticate"])
        assert params.get("error") == "invalid_token"


async def test_cached_grants_do_not_open_another_repository_or_action(anonymous, push, stored):
    await push.image("cache/other", "v1")
    token = await fetch_token(anonymous, "repository:cache/app:pull")
    for _ in range(2):
        assert (await pull(anonymous, token, "/v2/cache/app/manifests/v1")).status == 200
        assert (await pull(anonymous, token, f"/v2/cache/app/blobs/{stored['blob']}", "HEAD")).status == 200
    for path, method in (("/v2/cache/other/manifests/v1", "GET"), ("/v2/cache/other/manifests/v1", "HEAD"),
                         (f"/v2/cache/other/blobs/{stored['blob']}", "HEAD"), ("/v2/cache/app/blobs/uploads/", "POST"),
                         (f"/v2/cache/app/manifests/{stored['digest']}", "DELETE")):
        response = await pull(anonymous, token, path, method)
        assert response.status == 403, (path, method, response.status)
    # and the token still does what it grants
    assert (await pull(anonymous, token, "/v2/cache/app/manifests/v1")).status == 200


async def test_cached_token_is_refused_on_another_registry(anonymous, services, stored):
    await services.registries.ensure("otherregistry")
    token = await fetch_token(anonymous, "repository:cache/app:pull")
    assert (await pull(anonymous, token, "/v2/cache/app/manifests/v1")).status == 200
    response = await pull(anonymous, token, "/v2/cache/app/manifests/v1", Host=OTHER_HOST)
    await assert_error(response, 401, "UNAUTHORIZED")


async def test_deleted_manifest_and_blob_are_gone_at_once(anonymous, stored):
    token = await fetch_token(anonymous, "repository:cache/app:pull,delete")
    by_digest = f"/v2/cache/app/manifests/{stored['digest']}"
    blob = f"/v2/cache/app/blobs/{stored['blob']}"
    for _ in range(3):
        assert (await pull(anonymous, token, "/v2/cache/app/manifests/v1")).status == 200
        assert (await pull(anonymous, token, by_digest, "HEAD")).status == 200
        assert (await pull(anonymous, token, blob, "HEAD")).status == 200
        response = await pull(anonymous, token, blob)
        assert response.status == 200 and await response.read() == b"cache blob"
    assert (await pull(anonymous, token, by_digest, "DELETE")).status == 202
    assert (await pull(anonymous, token, blob, "DELETE")).status == 202
    await assert_error(await pull(anonymous, token, by_digest), 404, "MANIFEST_UNKNOWN")
    await assert_error(await pull(anonymous, token, "/v2/cache/app/manifests/v1"), 404, "MANIFEST_UNKNOWN")
    assert (await pull(anonymous, token, by_digest, "HEAD")).status == 404
    assert (await pull(anonymous, token, blob, "HEAD")).status == 404
    await assert_error(await pull(anonymous, token, blob), 404, "BLOB_UNKNOWN")


async def test_remembered_blob_bytes_are_served_only_where_the_blob_is_linked(anonymous, push, stored):
    await push.blob("cache/other", b"something else")
    here = await fetch_token(anonymous, "repository:cache/app:pull")
    there = await fetch_token(anonymous, "repository:cache/other:pull")
    for _ in range(2):  # read once, then from memory
        response = await pull(anonymous, here, f"/v2/cache/app/blobs/{stored['blob']}")
        assert response.status == 200 and await response.read() == b"cache blob"
    response = await pull(anonymous, here, f"/v2/cache/app/blobs/{stored['blob']}", Range="bytes=2-5")
    assert response.status == 206 and await response.read() == b"che "
    assert response.headers["Content-Range"] == f"bytes 2-5/{len(b'cache blob')}"
    await assert_error(await pull(anonymous, there, f"/v2/cache/other/blobs/{stored['blob']}"), 404, "BLOB_UNKNOWN")


async def test_bytes_that_are_not_the_blob_are_never_remembered(anonymous, services, stored):
    path = services.blobs.local_path(stored["blob"])
    good = path.read_bytes()
    path.write_bytes(b"X" * len(good))  # damaged on disk, same size
    token = await fetch_token(anonymous, "repository:cache/app:pull")
    await (await pull(anonymous, token, f"/v2/cache/app/blobs/{stored['blob']}")).read()
    path.write_bytes(good)  # repaired: what is served is what is on disk, never the damaged bytes
    response = await pull(anonymous, token, f"/v2/cache/app/blobs/{stored['blob']}")
    assert response.status == 200 and await response.read() == good


async def test_delete_on_one_node_is_seen_at_once_by_another(aiohttp_client, anonymous, settings, stored):
    """Two processes on the same database (SQLite or PostgreSQL): what one deletes, the other stops serving."""
    other_services, _ = await open_services(settings)
    try:
        other = await aiohttp_client(DockyardTestServer(create_app(other_services)))
        token = await fetch_token(anonymous, "repository:cache/app:pull,delete")
        by_digest = f"/v2/cache/app/manifests/{stored['digest']}"
        for _ in range(3):
            assert (await pull(other, token, by_digest)).status == 200
            assert (await pull(other, token, f"/v2/cache/app/blobs/{stored['blob']}")).status == 200
            assert (await pull(other, token, "/v2/cache/app/manifests/v1", "HEAD")).status == 200
            assert (await pull(other, token, f"/v2/cache/app/blobs/{stored['blob']}", "HEAD")).status == 200
        assert (await pull(anonymous, token, by_digest, "DELETE")).status == 202
        assert (await pull(anonymous, token, f"/v2/cache/app/blobs/{stored['blob']}", "DELETE")).status == 202
        assert (await pull(other, token, by_digest)).status == 404
        assert (await pull(other, token, "/v2/cache/app/manifests/v1", "HEAD")).status == 404
        assert (await pull(other, token, f"/v2/cache/app/blobs/{stored['blob']}", "HEAD")).status == 404
        assert (await pull(other, token, f"/v2/cache/app/blobs/{stored['blob']}")).status == 404
    finally:
        await other_services.close()


async def test_invalid_names_and_unacceptable_types_are_refused_every_time(anonymous, stored):
    token = await fetch_token(anonymous, "repository:cache/app:pull")
    for _ in range(2):
        await assert_error(await pull(anonymous, token, "/v2/Cache/App/manifests/v1"), 400, "NAME_INVALID")
        response = await pull(anonymous, token, "/v2/cache/app/manifests/v1",
                              Accept="application/vnd.docker.distribution.manifest.v2+json")
        await assert_error(response, 404, "MANIFEST_UNKNOWN")
        assert (await pull(anonymous, token, "/v2/cache/app/manifests/v1")).status == 200


# -- the token cache itself ------------------------------------------------------------------------


def test_token_cache_is_keyed_by_audience_and_bounded():
    service = TokenService(signing_key(new_signing_key()), cache_size=2)
    token = service.issue_access("owner", "a.localhost", [{"type": "repository", "name": "x", "actions": ["pull"]}])
    assert service.check(token, "a.localhost").allows("repository", "x", "pull")
    with pytest.raises(InvalidToken):
        service.check(token, "b.localhost")  # cached for a.localhost only
    others = [service.issue_access("owner", "a.localhost", []) for _ in range(2)]
    for other in others:
        service.check(other, "a.localhost")
    assert len(service._cache) == 2  # the first token was pushed out, and verifies again when it comes back
    assert service.check(token, "a.localhost").allows("repository", "x", "pull")


def test_token_signed_by_another_key_is_refused_even_if_another_service_cached_it():
    mine, theirs = (TokenService(signing_key(new_signing_key())) for _ in range(2))
    token = theirs.issue_access("owner", "a.localhost", [])
    theirs.check(token, "a.localhost")
    with pytest.raises(InvalidToken):
        mine.check(token, "a.localhost")


def test_refresh_token_is_not_an_access_token_even_when_cached():
    service = TokenService(signing_key(new_signing_key()))
    refresh = service.issue_refresh("owner", "a.localhost")
    service.check(refresh, "a.localhost", "refresh_token")
    with pytest.raises(InvalidToken):
        service.check(refresh, "a.localhost")


def test_grants_merge_entries_and_ignore_malformed_ones():
    token = VerifiedToken.of({"sub": "u", "exp": 1, "grant_type": "access_token", "access": [
        {"type": "repository", "name": "a", "actions": ["pull"]},
        {"type": "repository", "name": "a", "actions": ["push"]},
        {"type": "repository", "name": "b", "actions": ["*"]},
        {"type": "registry", "name": "catalog", "actions": ["*"]},
        "garbage", {"type": "repository"}, {"type": "repository", "name": "c", "actions": None},
    ]})
    assert token.allows("repository", "a", "pull") and token.allows("repository", "a", "push")
    assert not token.allows("repository", "a", "delete")
    assert token.allows("repository", "b", "delete")
    assert not token.allows("repository", "c", "pull")
    assert not token.allows("registry", "a", "pull")  # the type is part of the key
    assert token.allows("registry", "catalog", "*") and not token.allows("repository", "catalog", "pull")


def test_content_cache_is_bounded():
    cache = SizedLRU(8, entry=4)
    cache.put("big", b"12345")
    assert cache.get("big") is None  # over the entry size: never remembered
    for name in ("a", "b", "c"):
        cache.put(name, b"1234")
    assert cache.get("a") is None and cache.get("b") == b"1234" and cache.get("c") == b"1234"
    cache.get("b")  # used last: "c" goes first
    cache.put("d", b"1234")
    assert cache.get("c") is None and cache.get("b") == b"1234" and cache.get("d") == b"1234"
