"""Dockyard as an OpenID Connect issuer for its principals, in the shape Entra ID uses,
and the verification of identity tokens: its own, or an external issuer's (through JWKS).
"""

from __future__ import annotations

import base64
import time
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp
import jwt
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from dockyard.auth.principals import Principal

ALGORITHM = "RS256"
LIFETIME = 3600
SELF_AUDIENCE = "xms_dockyard_self"
# Set by verify() on the claims it returns: whether Dockyard itself issued the token. Only then
# does the token's `oid` name one of Dockyard's principals.
OWN = "dockyard.own"
# Audiences of Entra tokens that ACR and ARM accept; Dockyard's own URL is added per request.
WELL_KNOWN_AUDIENCES = (
    "https://management.azure.com/",
    "https://management.azure.com",
    "https://management.core.windows.net/",
    "https://management.core.windows.net",
    "https://containerregistry.azure.net",
    "https://containerregistry.azure.net/",
)


def new_rsa_key() -> str:
    """A new RS256 signing key, as PEM."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()


def rsa_key(pem: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the identity-signing key is not an RSA private key")
    return key


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class InvalidIdentityToken(Exception):
    pass


@dataclass(frozen=True, slots=True)
class ExternalIssuer:
    issuer: str
    audiences: tuple[str, ...]


class IdentityIssuer:
    def __init__(self, key: rsa.RSAPrivateKey, tenant_id: str, audiences: tuple[str, ...],
                 external: tuple[ExternalIssuer, ...] = ()) -> None:
        self.key = key
        self._public = key.public_key()
        self.tenant_id = tenant_id
        self.audiences = audiences  # audiences Dockyard itself accepts (ARM and the registries)
        self.external = external
        numbers = self._public.public_numbers()
        digest = hashes.Hash(hashes.SHA256())
        digest.update(self._public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))
        self.kid = base64.urlsafe_b64encode(digest.finalize()[:16]).rstrip(b"=").decode()
        self._jwk = {"kty": "RSA", "use": "sig", "alg": ALGORITHM, "kid": self.kid, "n": _b64(numbers.n), "e": _b64(numbers.e)}
        self._jwks_cache: dict[str, tuple[float, Any]] = {}

    def issuer_url(self, base: str, tenant: str | None = None) -> str:
        """The issuer as a client reached it: the tenant in the path may be an alias of the real one."""
        if tenant == "adfs":
            return f"{base}/adfs"
        return f"{base}/{tenant or self.tenant_id}/v2.0"

    def jwks(self) -> dict:
        return {"keys": [self._jwk]}

    def discovery(self, base: str, tenant: str) -> dict:
        prefix = f"{base}/adfs" if tenant == "adfs" else f"{base}/{tenant}"
        token = f"{prefix}/oauth2/token" if tenant == "adfs" else f"{prefix}/oauth2/v2.0/token"
        return {
            "issuer": self.issuer_url(base, tenant),
            "token_endpoint": token,
            "authorization_endpoint": f"{prefix}/oauth2/v2.0/authorize" if tenant != "adfs" else f"{prefix}/oauth2/authorize",
            "jwks_uri": f"{prefix}/discovery/v2.0/keys" if tenant != "adfs" else f"{prefix}/discovery/keys",
            "response_types_supported": ["token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": [ALGORITHM],
            "grant_types_supported": ["client_credentials", "password"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "tenant_region_scope": None,
            "cloud_instance_name": "dockyard",
        }

    def issue(self, principal: Principal, audience: str, issuer: str, self_audience: bool = False) -> str:
        """An identity token; ``self_audience`` marks one for Dockyard's own URL."""
        now = int(time.time())
        claims = {
            "aud": audience,
            "iss": issuer,
            "iat": now,
            "nbf": now - 5,
            "exp": now + LIFETIME,
            "tid": self.tenant_id,
            "oid": principal.object_id,
            "sub": principal.object_id,
            "name": principal.display_name or principal.name,
            "ver": "2.0",
            "uti": uuid.uuid4().hex,
            "idtyp": "app" if principal.kind == "sp" else "user",
        }
        if self_audience:
            claims[SELF_AUDIENCE] = True
        if principal.kind == "sp":
            claims["appid"] = claims["azp"] = principal.app_id
        else:
            claims["preferred_username"] = principal.name
        return jwt.encode(claims, self.key, algorithm=ALGORITHM, headers={"kid": self.kid})

    async def verify(self, token: str, audiences: tuple[str, ...] | None = None) -> dict[str, Any]:
        """Claims of a valid identity token for one of ``audiences`` (default: Dockyard's own)."""
        audiences = audiences or self.audiences
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise InvalidIdentityToken(f"malformed token: {exc}") from None
        if header.get("alg") != ALGORITHM:
            raise InvalidIdentityToken("identity tokens must be RS256-signed")
        issuer = str(unverified.get("iss", ""))
        if header.get("kid") == self.kid:
            key, accepted = self._public, audiences
            if not (issuer.endswith("/v2.0") or issuer.endswith("/adfs")):
                raise InvalidIdentityToken("unknown issuer")
        else:
            external = next((e for e in self.external if e.issuer.rstrip("/") == issuer.rstrip("/")), None)
            if external is None:
                raise InvalidIdentityToken("the token's issuer is not trusted")
            key = await self._external_key(external.issuer, header.get("kid"))
            accepted = external.audiences or audiences
        # A token Dockyard issued for its own URL is valid on any of Dockyard's hosts: a client
        # reaches ARM and the login servers under different names.
        own_url = key is self._public and unverified.get(SELF_AUDIENCE) is True
        try:
            claims = jwt.decode(token, key, algorithms=[ALGORITHM], audience=None if own_url else list(accepted),
                                leeway=30, options={"require": ["exp", "iat", "aud", "iss"], "verify_aud": not own_url})
        except jwt.PyJWTError as exc:
            raise InvalidIdentityToken(str(exc)) from None
        if key is self._public and claims.get("tid") != self.tenant_id:
            raise InvalidIdentityToken("the token is not of this installation's tenant")
        claims[OWN] = key is self._public
        return claims

    async def _external_key(self, issuer: str, kid: str | None):
        cached = self._jwks_cache.get(issuer)
        if cached is None or cached[0] < time.monotonic():
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
                async with session.get(issuer.rstrip("/") + "/.well-known/openid-configuration") as response:
                    config = await response.json(content_type=None)
                async with session.get(config["jwks_uri"]) as response:
                    jwks = await response.json(content_type=None)
            cached = (time.monotonic() + 3600, jwks)
            self._jwks_cache[issuer] = cached
        for entry in cached[1].get("keys", []):
            if kid is None or entry.get("kid") == kid:
                return jwt.algorithms.RSAAlgorithm.from_jwk(entry)
        raise InvalidIdentityToken("the token's signing key is not in the issuer's JWKS")
