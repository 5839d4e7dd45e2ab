"""Authentication: Bearer challenges, the token endpoint, and tokens that must be refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dockyard.auth.tokens import ISSUER

from .helpers import (
    OCI_MANIFEST,
    assert_api_version,
    assert_error,
    basic,
    bearer,
    fetch_token,
    parse_challenge,
    path_of,
    sha256,
)

SERVICE = "dockyard.localhost"


def decode(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def signing_key(services) -> ec.EllipticCurvePrivateKey:
    return services.tokens.key


def claims(**overrides) -> dict:
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "sub": "owner",
        "aud": SERVICE,
        "iat": now,
        "nbf": now - 5,
        "exp": now + 600,
        "jti": str(uuid.uuid4()),
        "grant_type": "access_token",
        "access": [{"type": "repository", "name": "auth/repo", "actions": ["pull", "push", "delete"]}],
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


async def assert_challenge(response, scope: str | None, error: str | None = None) -> dict[str, str]:
    # A token lacking the action is refused as RFC 6750 says (403 with the challenge);
    # no token, or a bad one, gets 401.
    if error == "insufficient_scope":
        await assert_error(response, 403, "DENIED")
    else:
        await assert_error(response, 401, "UNAUTHORIZED")
    header = response.headers.get("WWW-Authenticate")
    assert header, dict(response.headers)
    scheme, params = parse_challenge(header)
    assert scheme == "Bearer"
    host = response.url.host
    port = response.url.port
    assert params["realm"] == f"http://{host}:{port}/oauth2/token"
    assert params["service"] == SERVICE
    if scope is None:
        assert "scope" not in params
    else:
        assert params.get("scope") == scope, header
    if error is not None:
        assert params.get("error") == error, header
    return params


@pytest.fixture
async def stored(push):
    digest, body = await push.image("auth/repo", "v1")
    blob = await push.blob("auth/repo", b"auth blob")
    return {"digest": digest, "body": body, "blob": blob["digest"]}


# -- challenges -----------------------------------------------------------------


async def test_base_endpoint_challenges_anonymous(anonymous):
    response = await anonymous.get("/v2/")
    await assert_challenge(response, None)


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("GET", "/v2/auth/repo/manifests/v1", "repository:auth/repo:pull"),
        ("HEAD", "/v2/auth/repo/blobs/{blob}", "repository:auth/repo:pull"),
        ("GET", "/v2/auth/repo/blobs/{blob}", "repository:auth/repo:pull"),
        ("GET", "/v2/auth/repo/tags/list", "repository:auth/repo:pull"),
        ("GET", "/v2/auth/repo/referrers/{digest}", "repository:auth/repo:pull"),
        ("POST", "/v2/auth/repo/blobs/uploads/", "repository:auth/repo:pull,push"),
        ("PUT", "/v2/auth/repo/manifests/v2", "repository:auth/repo:pull,push"),
        ("DELETE", "/v2/auth/repo/manifests/{digest}", "repository:auth/repo:delete"),
        ("DELETE", "/v2/auth/repo/blobs/{blob}", "repository:auth/repo:delete"),
        ("GET", "/v2/_catalog", "registry:catalog:*"),
    ],
)
async def test_anonymous_requests_get_bearer_challenge_with_scope(anonymous, stored, method, path, scope):
    url = path.format(blob=stored["blob"], digest=stored["digest"])
    response = await anonymous.request(method, url)
    if method == "HEAD":
        assert response.status == 401
        assert parse_challenge(response.headers["WWW-Authenticate"])[1]["scope"] == scope
        return
    await assert_challenge(response, scope)


async def test_upload_session_endpoints_challenge_for_push(client, anonymous, stored):
    response = await client.post("/v2/auth/repo/blobs/uploads/")
    location = response.headers["Location"]
    session = path_of(location)
    for method in ("GET", "PATCH", "PUT", "DELETE"):
        response = await anonymous.request(method, session)
        await assert_challenge(response, "repository:auth/repo:pull,push")
    # the session is untouched
    assert (await client.get(session)).status == 204


async def test_anonymous_cannot_see_content(anonymous, stored):
    response = await anonymous.get("/v2/auth/repo/manifests/v1")
    assert response.status == 401
    assert stored["body"] not in await response.read()


async def test_bad_basic_credentials_are_unauthorized(anonymous, stored):
    for headers in (
        basic("owner", "wrong password"),
        basic("nobody", "correct horse battery staple"),
        basic("", ""),
        {"Authorization": "Basic !!!not-base64!!!"},
        {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()},
        {"Authorization": "Basic " + base64.b64encode(b"owner:" + b"x" * 5000).decode()},
    ):
        response = await anonymous.get("/v2/auth/repo/manifests/v1", headers=headers)
        assert response.status == 401, headers
        await assert_error(response, 401, "UNAUTHORIZED")
        assert response.headers["WWW-Authenticate"].startswith("Bearer ")
        response = await anonymous.get("/v2/", headers=headers)
        await assert_error(response, 401, "UNAUTHORIZED")


async def test_unknown_authorization_scheme_is_treated_as_anonymous(anonymous, stored):
    response = await anonymous.get("/v2/auth/repo/manifests/v1", headers={"Authorization": "Digest foo=bar"})
    await assert_challenge(response, "repository:auth/repo:pull")


# -- token endpoint ---------------------------------------------------------------


async def test_get_token_with_basic_credentials(anonymous, services, stored):
    response = await anonymous.get(
        "/oauth2/token",
        params={"service": SERVICE, "scope": "repository:auth/repo:pull,push"},
        headers=basic(),
    )
    assert response.status == 200, await response.text()
    assert response.headers.get("Cache-Control") == "no-store"
    document = await response.json()
    token = document["access_token"]
    assert isinstance(document.get("expires_in"), int) and document["expires_in"] > 0
    verified = jwt.decode(
        token, signing_key(services).public_key(), algorithms=["ES256"], audience=SERVICE
    )
    assert jwt.get_unverified_header(token)["alg"] == "ES256"
    assert verified["sub"] == "owner"
    assert verified["aud"] == SERVICE
    assert verified["access"] == [{"type": "repository", "name": "auth/repo", "actions": ["pull", "push"]}]
    pulled = await anonymous.get("/v2/auth/repo/manifests/v1", headers=bearer(token))
    assert pulled.status == 200
    assert await pulled.read() == stored["body"]


async def test_get_token_with_bad_credentials_is_401(anonymous):
    response = await anonymous.get(
        "/oauth2/token", params={"service": SERVICE, "scope": "repository:auth/repo:pull"}, headers=basic("owner", "nope")
    )
    await assert_error(response, 401, "UNAUTHORIZED")


async def test_token_endpoint_401_carries_www_authenticate(anonymous):
    # RFC 9110 15.5.2: "The server generating a 401 response MUST send a WWW-Authenticate header field"
    response = await anonymous.get("/oauth2/token", params={"service": SERVICE}, headers=basic("owner", "nope"))
    assert response.status == 401
    assert "WWW-Authenticate" in response.headers


async def test_anonymous_token_has_no_access(anonymous, stored):
    response = await anonymous.get(
        "/oauth2/token", params={"service": SERVICE, "scope": "repository:auth/repo:pull,push,delete"}
    )
    assert response.status == 200
    token = (await response.json())["access_token"]
    assert decode(token)["access"] == []
    # An anonymous token signs nobody in: the answer is the same 401 as without a token.
    response = await anonymous.get("/v2/auth/repo/manifests/v1", headers=bearer(token))
    await assert_challenge(response, "repository:auth/repo:pull")


async def test_post_token_password_and_refresh_grants(anonymous, stored):
    response = await anonymous.post(
        "/oauth2/token",
        data={
            "grant_type": "password",
            "username": "owner",
            "password": "correct horse battery staple",
            "service": SERVICE,
            "scope": "repository:auth/repo:pull",
        },
    )
    assert response.status == 200, await response.text()
    document = await response.json()
    access, refresh = document["access_token"], document["refresh_token"]
    assert decode(access)["access"] == [{"type": "repository", "name": "auth/repo", "actions": ["pull"]}]
    assert decode(refresh)["aud"] == SERVICE
    assert (await anonymous.get("/v2/auth/repo/tags/list", headers=bearer(access))).status == 200

    response = await anonymous.post(
        "/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh, "service": SERVICE,
              "scope": "repository:auth/repo:pull,push"},
    )
    assert response.status == 200, await response.text()
    renewed = (await response.json())["access_token"]
    assert decode(renewed)["access"] == [{"type": "repository", "name": "auth/repo", "actions": ["pull", "push"]}]
    upload = await anonymous.post("/v2/auth/repo/blobs/uploads/", headers=bearer(renewed))
    assert upload.status == 202


async def test_post_token_with_wrong_password_is_401(anonymous):
    response = await anonymous.post(
        "/oauth2/token",
        data={"grant_type": "password", "username": "owner", "password": "wrong", "service": SERVICE},
    )
    await assert_error(response, 401, "UNAUTHORIZED")


async def test_access_token_is_not_a_refresh_token(anonymous):
    token = await fetch_token(anonymous, "repository:auth/repo:pull")
    response = await anonymous.post(
        "/oauth2/token", data={"grant_type": "refresh_token", "refresh_token": token, "service": SERVICE}
    )
    await assert_error(response, 401, "UNAUTHORIZED")


async def test_refresh_token_is_not_an_access_token(anonymous, stored):
    response = await anonymous.post(
        "/oauth2/token",
        data={"grant_type": "password", "username": "owner", "password": "correct horse battery staple",
              "service": SERVICE, "scope": "repository:auth/repo:pull"},
    )
    refresh = (await response.json())["refresh_token"]
    response = await anonymous.get("/v2/auth/repo/manifests/v1", headers=bearer(refresh))
    await assert_challenge(response, None, error="invalid_token")


async def test_bad_refresh_tokens_are_401(anonymous):
    for refresh in ("", "garbage", "a.b.c"):
        response = await anonymous.post(
            "/oauth2/token", data={"grant_type": "refresh_token", "refresh_token": refresh, "service": SERVICE}
        )
        await assert_error(response, 401, "UNAUTHORIZED")


async def test_post_token_with_unknown_grant_type_is_400(anonymous):
    response = await anonymous.post("/oauth2/token", data={"grant_type": "client_credentials", "service": SERVICE})
    assert response.status == 400
    response = await anonymous.post("/oauth2/token", data=json.dumps({"grant_type": "password"}),
                                    headers={"Content-Type": "application/json"})
    assert response.status == 400


@pytest.mark.parametrize(
    ("scopes", "expected"),
    [
        (["repository:auth/repo:pull"], [{"type": "repository", "name": "auth/repo", "actions": ["pull"]}]),
        (["repository:auth/repo:push"], [{"type": "repository", "name": "auth/repo", "actions": ["push"]}]),
        (["repository:auth/repo:pull,fly,pull"], [{"type": "repository", "name": "auth/repo", "actions": ["pull"]}]),
        (["repository:auth/repo:fly"], []),
        ([], []),
        (["garbage", "repository::pull", "repository:auth/repo:"], []),
        (["registry:catalog:*"], [{"type": "registry", "name": "catalog", "actions": ["*"]}]),
        (["registry:other:*"], []),
        (
            ["repository:a/one:pull repository:b/two:push"],
            [
                {"type": "repository", "name": "a/one", "actions": ["pull"]},
                {"type": "repository", "name": "b/two", "actions": ["push"]},
            ],
        ),
        (
            ["repository:a/one:pull", "repository:b/two:delete"],
            [
                {"type": "repository", "name": "a/one", "actions": ["pull"]},
                {"type": "repository", "name": "b/two", "actions": ["delete"]},
            ],
        ),
    ],
)
async def test_token_access_claim_holds_only_what_was_asked(anonymous, scopes, expected):
    token = await fetch_token(anonymous, *scopes)
    assert decode(token)["access"] == expected


async def test_token_for_one_repository_does_not_open_another(anonymous, push):
    await push.image("auth/other", "v1")
    token = await fetch_token(anonymous, "repository:auth/repo:pull,push,delete")
    response = await anonymous.get("/v2/auth/other/manifests/v1", headers=bearer(token))
    await assert_challenge(response, "repository:auth/other:pull", error="insufficient_scope")


# -- tokens that lack a right -------------------------------------------------------


async def test_pull_token_cannot_push(anonymous, stored):
    token = await fetch_token(anonymous, "repository:auth/repo:pull")
    assert (await anonymous.get("/v2/auth/repo/manifests/v1", headers=bearer(token))).status == 200
    response = await anonymous.post("/v2/auth/repo/blobs/uploads/", headers=bearer(token))
    await assert_challenge(response, "repository:auth/repo:pull,push", error="insufficient_scope")
    response = await anonymous.post(
        f"/v2/auth/repo/blobs/uploads/?digest={sha256(b'x')}", data=b"x", headers=bearer(token)
    )
    await assert_challenge(response, "repository:auth/repo:pull,push", error="insufficient_scope")
    response = await anonymous.put(
        "/v2/auth/repo/manifests/v2",
        data=stored["body"],
        headers={**bearer(token), "Content-Type": OCI_MANIFEST},
    )
    await assert_challenge(response, "repository:auth/repo:pull,push", error="insufficient_scope")
    response = await anonymous.delete(f"/v2/auth/repo/manifests/{stored['digest']}", headers=bearer(token))
    await assert_challenge(response, "repository:auth/repo:delete", error="insufficient_scope")
    assert (await anonymous.get("/v2/auth/repo/manifests/v2", headers=bearer(token))).status == 404


async def test_push_token_cannot_delete_or_list_catalog(anonymous, stored):
    token = await fetch_token(anonymous, "repository:auth/repo:pull,push")
    response = await anonymous.delete(f"/v2/auth/repo/blobs/{stored['blob']}", headers=bearer(token))
    await assert_challenge(response, "repository:auth/repo:delete", error="insufficient_scope")
    response = await anonymous.get("/v2/_catalog", headers=bearer(token))
    await assert_challenge(response, "registry:catalog:*", error="insufficient_scope")


async def test_catalog_token_lists_repositories(anonymous, stored):
    token = await fetch_token(anonymous, "registry:catalog:*")
    response = await anonymous.get("/v2/_catalog", headers=bearer(token))
    assert response.status == 200
    assert (await response.json())["repositories"] == ["auth/repo"]


# -- tokens that must be refused ------------------------------------------------------


async def assert_token_refused(anonymous, token: str) -> None:
    response = await anonymous.get("/v2/auth/repo/manifests/v1", headers=bearer(token))
    await assert_challenge(response, None, error="invalid_token")
    assert_api_version(response)


async def test_valid_handmade_token_is_accepted(anonymous, services, stored):
    # the control for the refusals below: the same claims, signed right, are accepted
    token = jwt.encode(claims(), signing_key(services), algorithm="ES256")
    response = await anonymous.get("/v2/auth/repo/manifests/v1", headers=bearer(token))
    assert response.status == 200


async def test_forged_token_signed_by_another_key(anonymous, stored):
    other = ec.generate_private_key(ec.SECP256R1())
    await assert_token_refused(anonymous, jwt.encode(claims(), other, algorithm="ES256"))


async def test_expired_token(anonymous, services, stored):
    now = int(time.time())
    token = jwt.encode(claims(iat=now - 7200, nbf=now - 7200, exp=now - 3600), signing_key(services), algorithm="ES256")
    await assert_token_refused(anonymous, token)


async def test_token_not_yet_valid(anonymous, services, stored):
    now = int(time.time())
    token = jwt.encode(claims(nbf=now + 3600, exp=now + 7200), signing_key(services), algorithm="ES256")
    await assert_token_refused(anonymous, token)


async def test_alg_none_token(anonymous, stored):
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(b"=").decode()
    payload = base64.urlsafe_b64encode(json.dumps(claims()).encode()).rstrip(b"=").decode()
    for token in (f"{header}.{payload}.", f"{header}.{payload}"):
        await assert_token_refused(anonymous, token)


async def test_hs256_token_keyed_with_the_public_key(anonymous, services, stored):
    public_pem = signing_key(services).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()).rstrip(b"=")
    payload = base64.urlsafe_b64encode(json.dumps(claims()).encode()).rstrip(b"=")
    signature = base64.urlsafe_b64encode(
        hmac.new(public_pem, header + b"." + payload, hashlib.sha256).digest()
    ).rstrip(b"=")
    await assert_token_refused(anonymous, (header + b"." + payload + b"." + signature).decode())


async def test_token_with_wrong_audience(anonymous, services, stored):
    for audience in ("other.localhost", "dockyard.localhost.evil", ["other.localhost"], ""):
        token = jwt.encode(claims(aud=audience), signing_key(services), algorithm="ES256")
        await assert_token_refused(anonymous, token)


async def test_token_with_wrong_issuer_or_missing_claims(anonymous, services, stored):
    key = signing_key(services)
    for bad in (claims(iss="someone-else"), claims(exp=None), claims(sub=None), claims(aud=None), claims(iss=None)):
        await assert_token_refused(anonymous, jwt.encode(bad, key, algorithm="ES256"))


async def test_tampered_token_payload(anonymous, services, stored):
    token = jwt.encode(
        claims(access=[{"type": "repository", "name": "auth/repo", "actions": ["pull"]}]),
        signing_key(services),
        algorithm="ES256",
    )
    header, _, signature = token.split(".")
    widened = claims(access=[{"type": "repository", "name": "auth/repo", "actions": ["*"]}])
    payload = base64.urlsafe_b64encode(json.dumps(widened).encode()).rstrip(b"=").decode()
    await assert_token_refused(anonymous, f"{header}.{payload}.{signature}")


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "x" * 7000])
async def test_garbage_bearer_tokens(anonymous, stored, token):
    await assert_token_refused(anonymous, token)
