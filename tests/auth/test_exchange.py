"""Dockyard's OpenID Connect issuer (Entra ID's shape) and ACR's token exchange:

identity token (client credentials or password grant)  →  POST /oauth2/exchange  →  ACR refresh
token  →  POST /oauth2/token (grant_type=refresh_token), or docker login with the null GUID  →
access token. And the throttle on password guessing.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import jwt
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import rsa

from dockyard.auth import roles
from dockyard.auth.tokens import ISSUER
from dockyard.metadata.database import utcnow
from dockyard.metadata.schema import client_secrets

from .helpers import (
    NULL_GUID,
    OTHER,
    OTHER_HOST,
    OWNER_PASSWORD,
    SERVICE,
    Seeder,
    basic,
    bearer,
    claim,
    decode,
    describe,
    get_token,
    oci_error,
)

ARM = "https://management.azure.com/"


def base_of(http) -> str:
    return str(http.make_url("")).rstrip("/")


async def oauth_error(response, status: int, error: str) -> dict:
    text = await response.text()
    assert response.status == status, f"expected {status} {error}: {await describe(response)}"
    document = await response.json()
    assert document["error"] == error, text
    assert document.get("error_description"), text
    return document


async def client_credentials(http, tenant: str, client_id: str, secret: str, scope: str):
    return await http.post(f"/{tenant}/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": client_id, "client_secret": secret, "scope": scope,
    })


async def password_grant(http, tenant: str, username: str, password: str, scope: str = ARM + ".default"):
    return await http.post(f"/{tenant}/oauth2/v2.0/token", data={
        "grant_type": "password", "username": username, "password": password, "scope": scope,
        "client_id": "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
    })


async def exchange(http, identity_token: str, service: str = SERVICE, host: str | None = None):
    headers = {"Host": host} if host else {}
    return await http.post("/oauth2/exchange", data={
        "grant_type": "access_token", "service": service, "access_token": identity_token,
    }, headers=headers)


async def refresh_grant(http, refresh_token: str, *scopes: str, service: str = SERVICE, host: str | None = None):
    headers = {"Host": host} if host else {}
    return await http.post("/oauth2/token", data=[
        ("grant_type", "refresh_token"), ("service", service), ("refresh_token", refresh_token),
        *[("scope", scope) for scope in scopes],
    ], headers=headers)


class Identity:
    def __init__(self, services, settings, http) -> None:
        self.services = services
        self.settings = settings
        self.http = http
        self.tenant = services.tenancy.tenant_id
        self.base = base_of(http)

    @property
    def issuer(self) -> str:
        return f"{self.base}/{self.tenant}/v2.0"

    def identity_key(self) -> rsa.RSAPrivateKey:
        return self.services.issuer.key

    def acr_public_key(self):
        return self.services.tokens.key.public_key()

    async def sp(self, name: str = "ci-pipeline"):
        return await self.services.principals.create_service_principal(name)

    async def sp_token(self, sp, secret: str, scope: str | None = None) -> str:
        response = await client_credentials(self.http, self.tenant, sp.app_id, secret, scope or f"{self.base}/.default")
        assert response.status == 200, await describe(response)
        return (await response.json())["access_token"]

    async def refresh_token(self, identity_token: str, service: str = SERVICE, host: str | None = None) -> str:
        response = await exchange(self.http, identity_token, service, host)
        assert response.status == 200, await describe(response)
        assert response.headers.get("Cache-Control") == "no-store"
        return (await response.json())["refresh_token"]

    def forge(self, key, **overrides) -> str:
        """An identity token with Dockyard's claims and kid, signed by ``key``."""
        now = int(time.time())
        kid = overrides.pop("kid", None) or self.services.issuer.kid
        claims = {"aud": ARM, "iss": self.issuer, "iat": now, "nbf": now - 5, "exp": now + 600,
                  "tid": self.tenant, "oid": overrides.pop("oid"), "sub": "x", "ver": "2.0"}
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


@pytest.fixture
async def ident(services, settings, anonymous) -> Identity:
    return Identity(services, settings, anonymous)


@pytest.fixture
async def image(client) -> dict:
    return await Seeder(client).image("team/app")


# -- discovery and keys ------------------------------------------------------------------------------


async def test_discovery_document_of_the_tenant(ident):
    response = await ident.http.get(f"/{ident.tenant}/v2.0/.well-known/openid-configuration")
    assert response.status == 200, await describe(response)
    doc = await response.json()
    prefix = f"{ident.base}/{ident.tenant}"
    assert doc["issuer"] == f"{prefix}/v2.0"
    assert doc["token_endpoint"] == f"{prefix}/oauth2/v2.0/token"
    assert doc["authorization_endpoint"] == f"{prefix}/oauth2/v2.0/authorize"
    assert doc["jwks_uri"] == f"{prefix}/discovery/v2.0/keys"
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    assert {"client_credentials", "password"} <= set(doc["grant_types_supported"])
    assert "client_secret_post" in doc["token_endpoint_auth_methods_supported"]
    # the v1 path (without v2.0) answers the same document
    response = await ident.http.get(f"/{ident.tenant}/.well-known/openid-configuration")
    assert await response.json() == doc


async def test_discovery_document_of_adfs(ident):
    response = await ident.http.get("/adfs/.well-known/openid-configuration")
    assert response.status == 200, await describe(response)
    doc = await response.json()
    assert doc["issuer"] == f"{ident.base}/adfs"
    assert doc["token_endpoint"] == f"{ident.base}/adfs/oauth2/token"
    assert doc["jwks_uri"] == f"{ident.base}/adfs/discovery/keys"


async def test_jwks_holds_the_signing_key(ident):
    doc = await (await ident.http.get(f"/{ident.tenant}/v2.0/.well-known/openid-configuration")).json()
    path = doc["jwks_uri"][len(ident.base):]
    response = await ident.http.get(path)
    assert response.status == 200, await describe(response)
    keys = (await response.json())["keys"]
    assert len(keys) == 1
    key = keys[0]
    assert (key["kty"], key["use"], key["alg"]) == ("RSA", "sig", "RS256")
    assert key["kid"] and key["n"] and key["e"] == "AQAB"
    assert "d" not in key and "p" not in key  # public only
    adfs = await (await ident.http.get("/adfs/discovery/keys")).json()
    assert adfs["keys"] == keys
    # the key verifies what the token endpoint issues
    sp, secret = await ident.sp()
    token = await ident.sp_token(sp, secret)
    assert jwt.get_unverified_header(token)["kid"] == key["kid"]
    jwt.decode(token, jwt.PyJWK(key).key, algorithms=["RS256"], audience=ident.base + "/")


# -- the token endpoint -----------------------------------------------------------------------------------


async def test_client_credentials_grant_issues_an_identity_token(ident):
    sp, secret = await ident.sp()
    response = await client_credentials(ident.http, ident.tenant, sp.app_id, secret, f"{ident.base}/.default")
    assert response.status == 200, await describe(response)
    assert response.headers.get("Cache-Control") == "no-store"
    document = await response.json()
    assert document["token_type"] == "Bearer"
    assert 0 < document["expires_in"] <= 3600
    token = document["access_token"]
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    claims = jwt.decode(token, ident.identity_key().public_key(), algorithms=["RS256"], audience=ident.base + "/")
    assert claims["aud"] == ident.base + "/"
    assert claims["iss"] == ident.issuer
    assert claims["oid"] == sp.object_id
    assert claims["tid"] == ident.tenant
    assert claims["appid"] == sp.app_id
    assert claims["idtyp"] == "app"
    assert claims["exp"] - claims["iat"] == 3600


async def test_client_credentials_with_basic_client_authentication(ident):
    sp, secret = await ident.sp()
    response = await ident.http.post(f"/{ident.tenant}/oauth2/v2.0/token",
                                     data={"grant_type": "client_credentials", "scope": ARM + ".default"},
                                     headers=basic(sp.app_id, secret))
    assert response.status == 200, await describe(response)
    assert decode((await response.json())["access_token"])["aud"].rstrip("/") == ARM.rstrip("/")


@pytest.mark.parametrize("scope", [ARM + ".default", "https://management.core.windows.net/.default",
                                   "https://containerregistry.azure.net/.default"])
async def test_well_known_audiences(ident, scope):
    sp, secret = await ident.sp()
    token = await ident.sp_token(sp, secret, scope)
    assert decode(token)["aud"].rstrip("/") == scope[: -len("/.default")].rstrip("/")


async def test_wrong_secret_is_invalid_client(ident):
    sp, secret = await ident.sp()
    for client_id, wrong in ((sp.app_id, secret + "x"), (sp.app_id, ""), (str(uuid.uuid4()), secret)):
        response = await client_credentials(ident.http, ident.tenant, client_id, wrong, ARM + ".default")
        await oauth_error(response, 401, "invalid_client")


async def test_unknown_scope_is_invalid_scope(ident):
    sp, secret = await ident.sp()
    for scope in ("https://evil.example/.default", "", "openid"):
        response = await client_credentials(ident.http, ident.tenant, sp.app_id, secret, scope)
        await oauth_error(response, 400, "invalid_scope")


async def test_unsupported_grant_type(ident):
    response = await ident.http.post(f"/{ident.tenant}/oauth2/v2.0/token",
                                     data={"grant_type": "authorization_code", "scope": ARM + ".default"})
    await oauth_error(response, 400, "unsupported_grant_type")


async def test_expired_sp_secret_is_refused(ident, services, image):
    sp, secret = await ident.sp()
    async with services.db.write() as conn:
        await conn.execute(
            sa.update(client_secrets).where(client_secrets.c.principal_id == sp.id)
            .values(expires_at=utcnow().replace(year=2020))
        )
    response = await client_credentials(ident.http, ident.tenant, sp.app_id, secret, ARM + ".default")
    await oauth_error(response, 401, "invalid_client")
    response = await ident.http.get("/v2/", headers=basic(sp.app_id, secret))
    await oci_error(response, 401, "UNAUTHORIZED")
    # a second, valid secret still works
    second = await services.principals.add_secret(sp)
    assert (await client_credentials(ident.http, ident.tenant, sp.app_id, second, ARM + ".default")).status == 200


async def test_sp_secret_that_expires_while_remembered_is_refused(ident, services):
    sp, _ = await ident.sp()
    secret = await services.principals.add_secret(sp, years=2 / (365.25 * 86400), append=False)  # two seconds
    response = await client_credentials(ident.http, ident.tenant, sp.app_id, secret, ARM + ".default")
    assert response.status == 200, await describe(response)
    assert (await ident.http.get("/v2/", headers=basic(sp.app_id, secret))).status == 200
    await asyncio.sleep(2.5)
    response = await client_credentials(ident.http, ident.tenant, sp.app_id, secret, ARM + ".default")
    await oauth_error(response, 401, "invalid_client")
    await oci_error(await ident.http.get("/v2/", headers=basic(sp.app_id, secret)), 401, "UNAUTHORIZED")


async def test_password_grant_for_a_user(ident, services):
    alice = await services.principals.create_user("alice", "alice's password")
    response = await password_grant(ident.http, ident.tenant, "alice", "alice's password")
    assert response.status == 200, await describe(response)
    claims = jwt.decode((await response.json())["access_token"], ident.identity_key().public_key(),
                        algorithms=["RS256"], audience=[ARM, ARM.rstrip("/")])
    assert claims["oid"] == alice.object_id
    assert claims["tid"] == ident.tenant
    assert claims["preferred_username"] == "alice"
    assert claims["idtyp"] == "user"
    assert "appid" not in claims
    response = await password_grant(ident.http, ident.tenant, "alice", "wrong")
    await oauth_error(response, 400, "invalid_grant")
    # the owner too, through the ADFS-shaped endpoint
    response = await ident.http.post("/adfs/oauth2/token", data={
        "grant_type": "password", "username": "owner", "password": OWNER_PASSWORD, "scope": ARM + ".default"})
    assert response.status == 200, await describe(response)


async def test_grants_are_not_interchangeable(ident, services):
    sp, secret = await ident.sp()
    await services.principals.create_user("alice", "alice's password")
    response = await password_grant(ident.http, ident.tenant, sp.app_id, secret)
    await oauth_error(response, 400, "invalid_grant")
    response = await client_credentials(ident.http, ident.tenant, "alice", "alice's password", ARM + ".default")
    await oauth_error(response, 401, "invalid_client")


async def test_token_issuer_matches_the_discovery_document_it_came_from(ident):
    """OIDC Discovery 1.0, 4.3: the issuer a discovery document names is the one its tokens carry.

    An unknown tenant in the path is either refused, or its tokens carry the issuer its
    document names; it must not publish one issuer and sign tokens with another.
    """
    sp, secret = await ident.sp()
    for tenant in (ident.tenant, "organizations", "some-other-tenant"):
        discovery = await ident.http.get(f"/{tenant}/v2.0/.well-known/openid-configuration")
        response = await client_credentials(ident.http, tenant, sp.app_id, secret, ARM + ".default")
        if discovery.status != 200 or response.status != 200:
            assert discovery.status >= 400 and response.status >= 400, (tenant, discovery.status, response.status)
            continue
        issuer = (await discovery.json())["issuer"]
        assert decode((await response.json())["access_token"])["iss"] == issuer, tenant


# -- the exchange and ACR's tokens -------------------------------------------------------------------------


async def test_exchange_gives_a_refresh_token_for_the_registry(ident, services):
    sp, secret = await ident.sp()
    refresh = await ident.refresh_token(await ident.sp_token(sp, secret))
    claims = jwt.decode(refresh, ident.acr_public_key(), algorithms=["ES256"], audience=SERVICE)
    assert claims["aud"] == SERVICE
    assert claims["iss"] == ISSUER
    assert claims["grant_type"] == "refresh_token"
    assert claims["tenant"] == ident.tenant
    assert claims["oid"] == sp.object_id
    assert claims["exp"] - claims["iat"] == services.settings.refresh_token_seconds


async def test_exchange_accepts_arm_audience_and_user_tokens(ident, services):
    alice = await services.principals.create_user("alice", "alice's password")
    response = await password_grant(ident.http, ident.tenant, "alice", "alice's password")
    refresh = await ident.refresh_token((await response.json())["access_token"])
    assert decode(refresh)["oid"] == alice.object_id


async def test_refresh_grant_gives_an_access_token_with_what_is_allowed(ident, services, image):
    sp, secret = await ident.sp()
    refresh = await ident.refresh_token(await ident.sp_token(sp, secret))
    response = await refresh_grant(ident.http, refresh, "repository:team/app:pull,push")
    assert response.status == 200, await describe(response)
    assert decode((await response.json())["access_token"])["access"] == []  # no role yet
    registry = await services.registries.default()
    await services.assignments.create(registry.arm_id, roles.find("AcrPull"), sp.object_id, "ServicePrincipal")
    response = await refresh_grant(ident.http, refresh, "repository:team/app:pull,push")
    assert response.status == 200, await describe(response)
    access_token = (await response.json())["access_token"]
    claims = jwt.decode(access_token, ident.acr_public_key(), algorithms=["ES256"], audience=SERVICE)
    assert claims["grant_type"] == "access_token"
    assert claims["access"] == [claim("team/app", "pull")]
    pulled = await ident.http.get("/v2/team/app/manifests/v1", headers=bearer(access_token))
    assert pulled.status == 200 and await pulled.read() == image["body"]


async def test_docker_login_with_the_null_guid_and_the_refresh_token(ident, services, image):
    sp, secret = await ident.sp()
    registry = await services.registries.default()
    await services.assignments.create(registry.arm_id, roles.find("AcrPush"), sp.object_id, "ServicePrincipal")
    refresh = await ident.refresh_token(await ident.sp_token(sp, secret))
    login = basic(NULL_GUID, refresh)
    # docker login: GET /v2/ with Basic, then the token endpoint with the same Basic credentials
    response = await ident.http.get("/v2/", headers=login)
    assert response.status == 200, await describe(response)
    response = await get_token(ident.http, "repository:team/app:pull,push", headers=login)
    assert response.status == 200, await describe(response)
    access_token = (await response.json())["access_token"]
    assert decode(access_token)["access"] == [claim("team/app", "pull", "push")]
    # Basic with the null GUID and the access token works on /v2/ too (az acr login --expose-token)
    response = await ident.http.get("/v2/team/app/manifests/v1", headers=basic(NULL_GUID, access_token))
    assert response.status == 200 and await response.read() == image["body"]
    response = await ident.http.delete(f"/v2/team/app/manifests/{image['digest']}",
                                       headers=basic(NULL_GUID, access_token))
    await oci_error(response, 403, "DENIED")
    # and the refresh token itself, as Basic on /v2/, stands for the SP and its roles
    pushed = await Seeder(ident.http, headers=login).image("team/app", "v2")
    response = await ident.http.get("/v2/team/app/manifests/v2", headers=login)
    assert response.status == 200 and await response.read() == pushed["body"]


async def test_null_guid_with_garbage_is_refused(ident):
    for password in ("garbage", "a.b.c", "x" * 3000):
        response = await ident.http.get("/v2/", headers=basic(NULL_GUID, password))
        await oci_error(response, 401, "UNAUTHORIZED")
        response = await get_token(ident.http, "repository:team/app:pull", headers=basic(NULL_GUID, password))
        await oci_error(response, 401, "UNAUTHORIZED")


async def test_refresh_token_of_one_registry_is_refused_on_another(ident, services, client):
    await services.registries.ensure(OTHER)
    await Seeder(client, host=OTHER_HOST).image("team/app")
    sp, secret = await ident.sp()
    await services.assignments.create("/", roles.find("AcrPull"), sp.object_id, "ServicePrincipal")
    # an ARM-audience token, as `az acr login` sends: accepted whichever host the exchange is asked on
    identity_token = await ident.sp_token(sp, secret, ARM + ".default")
    refresh = await ident.refresh_token(identity_token)
    response = await refresh_grant(ident.http, refresh, "repository:team/app:pull", service=OTHER_HOST, host=OTHER_HOST)
    await oci_error(response, 401, "UNAUTHORIZED")
    response = await ident.http.get("/oauth2/token", params={"service": OTHER_HOST, "scope": "repository:team/app:pull"},
                                    headers={**basic(NULL_GUID, refresh), "Host": OTHER_HOST})
    await oci_error(response, 401, "UNAUTHORIZED")
    response = await ident.http.get("/v2/team/app/manifests/v1", headers={**basic(NULL_GUID, refresh), "Host": OTHER_HOST})
    await oci_error(response, 401, "UNAUTHORIZED")
    response = await ident.http.get("/v2/team/app/manifests/v1", headers={**bearer(refresh), "Host": OTHER_HOST})
    await oci_error(response, 401, "UNAUTHORIZED")
    # the control: a refresh token exchanged for the other registry works there
    there = await ident.refresh_token(identity_token, OTHER_HOST, OTHER_HOST)
    assert decode(there)["aud"] == OTHER_HOST
    response = await ident.http.get("/v2/team/app/manifests/v1", headers={**basic(NULL_GUID, there), "Host": OTHER_HOST})
    assert response.status == 200, await describe(response)
    response = await ident.http.get("/v2/team/app/manifests/v1", headers=basic(NULL_GUID, there))
    await oci_error(response, 401, "UNAUTHORIZED")


async def test_refresh_token_is_not_an_access_token_and_vice_versa(ident, services, image):
    sp, secret = await ident.sp()
    await services.assignments.create("/", roles.find("AcrPull"), sp.object_id, "ServicePrincipal")
    refresh = await ident.refresh_token(await ident.sp_token(sp, secret))
    response = await ident.http.get("/v2/team/app/manifests/v1", headers=bearer(refresh))
    await oci_error(response, 401, "UNAUTHORIZED")
    access_token = (await (await refresh_grant(ident.http, refresh, "repository:team/app:pull")).json())["access_token"]
    response = await refresh_grant(ident.http, access_token, "repository:team/app:pull")
    await oci_error(response, 401, "UNAUTHORIZED")
    response = await get_token(ident.http, "repository:team/app:pull", headers=basic(NULL_GUID, access_token))
    await oci_error(response, 401, "UNAUTHORIZED")


async def test_refresh_token_of_a_deleted_principal_is_refused(ident, services, image):
    sp, secret = await ident.sp()
    await services.assignments.create("/", roles.find("AcrPull"), sp.object_id, "ServicePrincipal")
    refresh = await ident.refresh_token(await ident.sp_token(sp, secret))
    assert (await refresh_grant(ident.http, refresh, "repository:team/app:pull")).status == 200
    await services.principals.delete(sp)
    response = await refresh_grant(ident.http, refresh, "repository:team/app:pull")
    await oci_error(response, 401, "UNAUTHORIZED")
    response = await ident.http.get("/v2/team/app/manifests/v1", headers=basic(NULL_GUID, refresh))
    await oci_error(response, 401, "UNAUTHORIZED")


# -- identity tokens the exchange must refuse ---------------------------------------------------------------


async def assert_exchange_refused(ident, token: str) -> None:
    response = await exchange(ident.http, token)
    await oci_error(response, 401, "UNAUTHORIZED")
    assert "refresh_token" not in await response.text()


async def test_control_a_hand_made_identity_token_signed_with_the_real_key_is_accepted(ident):
    sp, _ = await ident.sp()
    await ident.refresh_token(ident.forge(ident.identity_key(), oid=sp.object_id))


async def test_forged_identity_token_signed_by_another_key_is_refused(ident):
    sp, _ = await ident.sp()
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    await assert_exchange_refused(ident, ident.forge(other, oid=sp.object_id))
    await assert_exchange_refused(ident, ident.forge(other, oid=sp.object_id, kid="another-kid"))
    owner = await ident.services.principals.by_name("owner")
    await assert_exchange_refused(ident, ident.forge(other, oid=owner.object_id))


@pytest.mark.parametrize("audience", ["https://evil.example/", "dockyard.localhost", "http://127.0.0.1:1/", "",
                                      ["https://evil.example/"]])
async def test_identity_token_with_a_foreign_audience_is_refused(ident, audience):
    sp, _ = await ident.sp()
    await assert_exchange_refused(ident, ident.forge(ident.identity_key(), oid=sp.object_id, aud=audience))


async def test_expired_identity_token_is_refused(ident):
    sp, _ = await ident.sp()
    now = int(time.time())
    token = ident.forge(ident.identity_key(), oid=sp.object_id, iat=now - 7200, nbf=now - 7200, exp=now - 3600)
    await assert_exchange_refused(ident, token)


async def test_identity_token_of_an_unknown_principal_of_this_tenant_is_refused(ident):
    await assert_exchange_refused(ident, ident.forge(ident.identity_key(), oid=str(uuid.uuid4())))


async def test_identity_token_alg_and_garbage(ident):
    sp, secret = await ident.sp()
    await assert_exchange_refused(ident, jwt.encode({"oid": sp.object_id, "aud": ARM}, "s" * 64, algorithm="HS256"))
    for garbage in ("", "garbage", "a.b.c"):
        await assert_exchange_refused(ident, garbage)
    # an ACR refresh token is not an identity token
    refresh = await ident.refresh_token(await ident.sp_token(sp, secret))
    await assert_exchange_refused(ident, refresh)


async def test_exchange_wants_the_access_token_grant(ident):
    sp, secret = await ident.sp()
    response = await ident.http.post("/oauth2/exchange", data={
        "grant_type": "password", "service": SERVICE, "access_token": await ident.sp_token(sp, secret)})
    assert response.status == 400, await describe(response)


# -- password guessing ---------------------------------------------------------------------------------------


async def fail_ten_times(http, endpoint: str, name: str) -> None:
    for attempt in range(10):
        response = await attempt_sign_in(http, endpoint, name, f"wrong {attempt}")
        assert response.status in (400, 401), f"attempt {attempt + 1}: {await describe(response)}"


async def attempt_sign_in(http, endpoint: str, name: str, password: str, tenant: str = "common"):
    if endpoint == "token-get":
        return await get_token(http, "repository:team/app:pull", headers=basic(name, password))
    if endpoint == "token-post":
        return await http.post("/oauth2/token", data={"grant_type": "password", "username": name,
                                                      "password": password, "service": SERVICE})
    if endpoint == "v2":
        return await http.get("/v2/", headers=basic(name, password))
    if endpoint == "oidc":
        return await password_grant(http, tenant, name, password)
    raise AssertionError(endpoint)


async def assert_locked_out(response) -> None:
    assert response.status == 429, await describe(response)
    retry = response.headers.get("Retry-After")
    assert retry is not None and retry.isdigit() and 1 <= int(retry) <= 61, retry
    if response.url.path.startswith(("/v2", "/oauth2")):
        entry = await oci_error(response, 429, "TOOMANYREQUESTS")
        assert entry["message"]
    else:
        await oauth_error(response, 429, "temporarily_unavailable")


ENDPOINTS = ["token-get", "token-post", "v2", "oidc"]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_ten_failures_lock_the_name_out_even_with_the_right_password(ident, services, endpoint):
    await services.principals.create_user("alice", "alice's password")
    assert (await attempt_sign_in(ident.http, endpoint, "alice", "alice's password")).status == 200
    await fail_ten_times(ident.http, endpoint, "alice")
    await assert_locked_out(await attempt_sign_in(ident.http, endpoint, "alice", "wrong again"))
    await assert_locked_out(await attempt_sign_in(ident.http, endpoint, "alice", "alice's password"))
    # on every endpoint, for that name
    for other in ENDPOINTS:
        await assert_locked_out(await attempt_sign_in(ident.http, other, "alice", "alice's password"))
    # other names are not locked out
    assert (await attempt_sign_in(ident.http, endpoint, "owner", OWNER_PASSWORD)).status == 200


async def test_lockout_covers_service_principals_on_the_oidc_endpoint(ident):
    sp, secret = await ident.sp()
    for attempt in range(10):
        response = await client_credentials(ident.http, ident.tenant, sp.app_id, f"wrong {attempt}", ARM + ".default")
        await oauth_error(response, 401, "invalid_client")
    await assert_locked_out(await client_credentials(ident.http, ident.tenant, sp.app_id, secret, ARM + ".default"))
    await assert_locked_out(await ident.http.get("/v2/", headers=basic(sp.app_id, secret)))


async def test_lockout_of_the_admin_user(ident, services):
    registry = await services.registries.update("dockyard", {"admin_enabled": True})
    password, _ = await services.registries.admin_passwords(registry)
    await fail_ten_times(ident.http, "v2", "dockyard")
    await assert_locked_out(await ident.http.get("/v2/", headers=basic("dockyard", password)))
    await assert_locked_out(await get_token(ident.http, "registry:catalog:*", headers=basic("dockyard", password)))


async def test_nine_failures_do_not_lock_out(ident, services):
    await services.principals.create_user("alice", "alice's password")
    for attempt in range(9):
        assert (await attempt_sign_in(ident.http, "v2", "alice", f"wrong {attempt}")).status == 401
    assert (await attempt_sign_in(ident.http, "v2", "alice", "alice's password")).status == 200
