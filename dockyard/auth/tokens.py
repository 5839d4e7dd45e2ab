"""Signed JWTs for the registry's token protocol (access and refresh tokens).

The signing key is an ECDSA P-256 key kept in the database (services/installation.py). Verified
tokens are remembered until they expire, so a request costs one dictionary
lookup, not a signature check.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

ALGORITHM = "ES256"
ISSUER = "Azure Container Registry"


def new_signing_key() -> str:
    """A new ES256 signing key, as PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return pem.decode()


def signing_key(pem: str) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("the token-signing key is not an EC private key")
    return key


class InvalidToken(Exception):
    pass


class TokenService:
    def __init__(
        self,
        key: ec.EllipticCurvePrivateKey,
        *,
        access_lifetime: int = 4500,
        refresh_lifetime: int = 10800,
        cache_size: int = 50_000,
    ) -> None:
        self.key = key
        self._public = key.public_key()
        self.access_lifetime = access_lifetime
        self.refresh_lifetime = refresh_lifetime
        self._cache: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._cache_size = cache_size

    def _issue(self, claims: dict[str, Any], lifetime: int) -> str:
        now = int(time.time())
        body = {
            "jti": str(uuid.uuid4()),
            "iat": now,
            "nbf": now - 5,
            "exp": now + lifetime,
            "iss": ISSUER,
            "version": "1.0",
            **claims,
        }
        return jwt.encode(body, self.key, algorithm=ALGORITHM)

    def issue_access(self, subject: str, audience: str, access: list[dict[str, Any]]) -> str:
        return self._issue(
            {"sub": subject, "aud": audience, "access": access, "grant_type": "access_token", "roles": []},
            self.access_lifetime,
        )

    def issue_refresh(self, subject: str, audience: str, object_id: str = "", kind: str = "", tenant: str = "") -> str:
        claims = {"sub": subject, "aud": audience, "grant_type": "refresh_token", "oid": object_id, "kind": kind,
                  "tenant": tenant, "permissions": {"actions": ["*"], "notActions": []}, "roles": []}
        return self._issue(claims, self.refresh_lifetime)

    def verify(self, token: str, audience: str, grant_type: str = "access_token") -> dict[str, Any]:
        key = f"{audience}\0{token}"
        claims = self._cache.get(key)
        now = time.time()
        if claims is None:
            try:
                claims = jwt.decode(
                    token,
                    self._public,
                    algorithms=[ALGORITHM],
                    audience=audience,
                    issuer=ISSUER,
                    options={"require": ["exp", "iat", "nbf", "sub", "aud", "iss"]},
                    leeway=5,
                )
            except jwt.PyJWTError as exc:
                raise InvalidToken(str(exc)) from None
            self._cache[key] = claims
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        elif claims["exp"] + 5 < now:
            self._cache.pop(key, None)
            raise InvalidToken("token has expired")
        if claims.get("grant_type") != grant_type:
            raise InvalidToken(f"not an {grant_type}")
        return claims
