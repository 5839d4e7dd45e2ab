"""Identity tokens from an external OpenID Connect issuer (the `oidc_issuers` setting).

A tiny real issuer runs in the test: an aiohttp app on a free port serving its discovery
document and the JWKS of its own RSA key.
"""

from __future__ import annotations

import json
import socket
import time
import uuid

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric import rsa

from dockyard.auth import roles
from dockyard.http.app import create_app
from dockyard.http.protocol import Runner
from dockyard.server import open_services

from .helpers import NULL_GUID, SERVICE, Seeder, basic, bearer, claim, decode, describe, oci_error

ARM = "https://management.azure.com/"
ALL_SCOPES = ["repository:team/app:pull,push,delete", "registry:catalog:*"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TinyIssuer:
    """An OIDC issuer with one RSA key, serving discovery and JWKS; it signs whatever it is asked to."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "tiny-key-" + uuid.uuid4().hex[:8]
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.tenant = str(uuid.uuid4())
        self.requests: list[str] = []
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", self._discovery)
        app.router.add_get("/keys", self._jwks)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _discovery(self, request: web.Request) -> web.Response:
        self.requests.append(request.path)
        return web.json_response({"issuer": self.url, "jwks_uri": f"{self.url}/keys",
                                  "id_token_signing_alg_values_supported": ["RS256"]})

    async def _jwks(self, request: web.Request) -> web.Response:
        self.requests.append(request.path)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update(kid=self.kid, use="sig", alg="RS256")
        return web.json_response({"keys": [jwk]})

    def token(self, oid: str, *, key=None, kid: str | None = None, **overrides) -> str:
        now = int(time.time())
        claims = {"iss": self.url, "aud": ARM, "oid": oid, "sub": oid, "tid": self.tenant, "iat": now,
                  "nbf": now - 5, "exp": now + 600, "preferred_username": f"{oid[:8]}@external.example"}
        claims.update(overrides)
        return jwt.encode({k: v for k, v in claims.items() if v is not None}, key or self.key, algorithm="RS256",
                          headers={"kid": kid or self.kid})


class DockyardTestServer(TestServer):
    async def _make_runner(self, **kwargs):
        return Runner(self.app, **kwargs)


@pytest.fixture
async def tiny():
    issuer = TinyIssuer()
    await issuer.start()
    yield issuer
    await issuer.stop()


@pytest.fixture
async def stranger():
    """Another issuer, which Dockyard is not told to trust."""
    issuer = TinyIssuer()
    await issuer.start()
    yield issuer
    await issuer.stop()


@pytest.fixture
async def dockyard(make_settings, tiny):
    settings = make_settings(oidc_issuers=tiny.url)
    assert settings.oidc_issuer_list == [tiny.url]
    services, _ = await open_services(settings)
    yield services
    await services.close()


@pytest.fixture
async def http(aiohttp_client, dockyard):
    return await aiohttp_client(DockyardTestServer(create_app(dockyard)))


@pytest.fixture
async def image(http) -> dict:
    return await Seeder(http).image("team/app")


async def exchange(http, identity_token: str):
    return await http.post("/oauth2/exchange", data={"grant_type": "access_token", "service": SERVICE,
                                                     "access_token": identity_token})


async def refresh_token_of(http, identity_token: str) -> str:
    response = await exchange(http, identity_token)
    assert response.status == 200, await describe(response)
    return (await response.json())["refresh_token"]


async def access_token_of(http, refresh_token: str, *scopes: str) -> str:
    response = await http.post("/oauth2/token", data=[("grant_type", "refresh_token"), ("service", SERVICE),
                                                      ("refresh_token", refresh_token),
                                                      *[("scope", s) for s in scopes]])
    assert response.status == 200, await describe(response)
    return (await response.json())["access_token"]


async def assert_refused(http, identity_token: str) -> None:
    response = await exchange(http, identity_token)
    await oci_error(response, 401, "UNAUTHORIZED")
    assert "refresh_token" not in await response.text()


async def test_external_identity_with_acrpull_pulls(http, dockyard, tiny, image):
    oid = str(uuid.uuid4())
    registry = await dockyard.registries.default()
    await dockyard.assignments.create(registry.arm_id, roles.find("AcrPull"), oid, "User")
    refresh = await refresh_token_of(http, tiny.token(oid))
    claims = decode(refresh)
    assert claims["aud"] == SERVICE and claims["grant_type"] == "refresh_token" and claims["oid"] == oid
    assert {"/.well-known/openid-configuration", "/keys"} <= set(tiny.requests)  # it really asked the issuer
    access = await access_token_of(http, refresh, "repository:team/app:pull,push")
    assert decode(access)["access"] == [claim("team/app", "pull")]
    response = await http.get("/v2/team/app/manifests/v1", headers=bearer(access))
    assert response.status == 200 and await response.read() == image["body"]
    response = await http.post("/v2/team/app/blobs/uploads/", headers=bearer(access))
    await oci_error(response, 403, "DENIED")
    # docker login's form
    response = await http.get("/v2/team/app/manifests/v1", headers=basic(NULL_GUID, refresh))
    assert response.status == 200 and await response.read() == image["body"]


async def test_external_identity_without_a_role_gets_nothing(http, tiny, image):
    refresh = await refresh_token_of(http, tiny.token(str(uuid.uuid4())))
    assert decode(await access_token_of(http, refresh, *ALL_SCOPES))["access"] == []
    response = await http.get("/v2/team/app/manifests/v1", headers=basic(NULL_GUID, refresh))
    await oci_error(response, 403, "DENIED")


async def test_token_from_the_issuer_signed_by_another_key_is_refused(http, dockyard, tiny, image):
    oid = str(uuid.uuid4())
    await dockyard.assignments.create("/", roles.find("AcrPull"), oid, "User")
    await refresh_token_of(http, tiny.token(oid))  # the control
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    await assert_refused(http, tiny.token(oid, key=other))  # the issuer's kid, another key
    await assert_refused(http, tiny.token(oid, key=other, kid="unknown-kid"))
    await assert_refused(http, tiny.token(oid, key=other, kid=dockyard.issuer.kid))  # Dockyard's own kid


async def test_token_for_a_foreign_audience_is_refused(http, tiny):
    for audience in ("https://evil.example/", "api://something-else", SERVICE):
        await assert_refused(http, tiny.token(str(uuid.uuid4()), aud=audience))


async def test_expired_token_is_refused(http, tiny):
    now = int(time.time())
    await assert_refused(http, tiny.token(str(uuid.uuid4()), iat=now - 7200, nbf=now - 7200, exp=now - 3600))


async def test_untrusted_issuer_is_refused(http, stranger):
    await assert_refused(http, stranger.token(str(uuid.uuid4())))
    assert stranger.requests == []  # not even asked for its keys
    # nor can a stranger pass itself off as the trusted issuer by naming it: its key is not in the JWKS
    await assert_refused(http, stranger.token(str(uuid.uuid4()), iss=f"http://127.0.0.1:{stranger.port}/x"))


async def test_token_naming_the_trusted_issuer_but_signed_by_a_stranger_is_refused(http, tiny, stranger):
    await assert_refused(http, stranger.token(str(uuid.uuid4()), iss=tiny.url))
    await assert_refused(http, stranger.token(str(uuid.uuid4()), iss=tiny.url, kid=tiny.kid))


async def test_external_identity_cannot_pose_as_a_local_principal(http, dockyard, tiny, image):
    """The external issuer vouches for its own subjects; an `oid` it writes must not become
    one of Dockyard's own principals (here the owner, who may do everything)."""
    owner = await dockyard.principals.by_name("owner")
    token = tiny.token(owner.object_id, preferred_username="owner")
    response = await exchange(http, token)
    if response.status == 200:
        refresh = (await response.json())["refresh_token"]
        access = await access_token_of(http, refresh, *ALL_SCOPES)
        assert decode(access)["access"] == [], (
            "an external token with the owner's object id got the owner's rights: "
            f"refresh claims {decode(refresh)}, access {decode(access)['access']}"
        )
        response = await http.delete(f"/v2/team/app/manifests/{image['digest']}", headers=basic(NULL_GUID, refresh))
        assert response.status in (401, 403), await describe(response)
    else:
        await oci_error(response, 401, "UNAUTHORIZED")


async def test_external_identity_in_abac_mode_with_a_conditioned_repository_role(http, dockyard, tiny, image):
    oid = str(uuid.uuid4())
    registry = await dockyard.registries.update("dockyard", {"role_assignment_mode": "AbacRepositoryPermissions"})
    await dockyard.assignments.create(
        registry.arm_id, roles.find("Container Registry Repository Reader"), oid, "User",
        condition="@Request[Microsoft.ContainerRegistry/registries/repositories:name] StringStartsWith 'team/'",
    )
    refresh = await refresh_token_of(http, tiny.token(oid))
    access = await access_token_of(http, refresh, "repository:team/app:pull,push", "repository:other/app:pull",
                                   "registry:catalog:*")
    assert decode(access)["access"] == [claim("team/app", "pull")]


async def test_external_identity_cannot_use_the_directory_as_the_owner(http, dockyard, tiny):
    owner = await dockyard.principals.by_name("owner")
    token = tiny.token(owner.object_id, preferred_username="owner")
    response = await http.post("/directory/v1/servicePrincipals", json={"displayName": "planted"},
                               headers=bearer(token))
    assert response.status in (401, 403), await describe(response)
    assert [p for p in await dockyard.principals.list("sp") if p.display_name == "planted"] == []


async def test_external_identity_cannot_use_the_management_api_as_the_owner(http, dockyard, tiny):
    owner = await dockyard.principals.by_name("owner")
    # the control: a stranger of that issuer sees no subscription
    response = await http.get("/subscriptions", params={"api-version": "2022-12-01"},
                              headers=bearer(tiny.token(str(uuid.uuid4()))))
    assert response.status == 200, await describe(response)
    assert (await response.json())["value"] == []
    response = await http.get("/subscriptions", params={"api-version": "2022-12-01"},
                              headers=bearer(tiny.token(owner.object_id, preferred_username="owner")))
    if response.status == 200:
        assert (await response.json())["value"] == [], await describe(response)
    else:
        assert response.status in (401, 403), await describe(response)
