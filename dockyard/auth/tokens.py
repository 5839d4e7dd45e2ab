"""Signed JWTs for the registry's token protocol (access and refresh tokens).

The signing key is an ECDSA P-256 key kept in the database (services/installation.py). Verified
tokens are remembered (by audience and the exact token string) until they expire, so a request
costs one dictionary lookup, not a signature check; an access token's grants are indexed by
(type, name) once, so deciding whether it allows an action is one lookup more.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

ALGORITHM = "ES256"
ISSUER = "Azure Container Registry"
LEEWAY = 5  # seconds of clock skew allowed on exp, nbf and iat


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


@dataclass(frozen=True, slots=True, eq=False)
class VerifiedToken:
    """A token whose signature, audience, issuer and times were checked; valid until ``exp``.

    Compared and hashed by identity: ``check`` answers the same object for the same token
    while it stays cached, so what is derived from it may be remembered by it.
    """

    claims: dict[str, Any]
    exp: float
    grant_type: Any
    # (type, name) -> the actions the access claim grants there, the claim's entries merged
    grants: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict)

    @property
    def subject(self) -> str:
        return self.claims["sub"]

    def allows(self, kind: str, name: str, action: str) -> bool:
        """Whether the token's access claim grants ``action`` (or ``*``) on ``kind:name``."""
        actions = self.grants.get((kind, name))
        return actions is not None and (action in actions or "*" in actions)

    @classmethod
    def of(cls, claims: dict[str, Any]) -> "VerifiedToken":
        grants: dict[tuple[str, str], frozenset[str]] = {}
        for entry in claims.get("access") or ():
            if isinstance(entry, dict) and isinstance(entry.get("type"), str) and isinstance(entry.get("name"), str):
                key = (entry["type"], entry["name"])
                actions = [a for a in entry.get("actions") or () if isinstance(a, str)]
                grants[key] = grants.get(key, frozenset()) | frozenset(actions)
        return cls(claims, float(claims["exp"]), claims.get("grant_type"), grants)


class TokenService:
    def __init__(
        self,
        key: ec.EllipticCurvePrivateKey,
        *,
        access_lifetime: int = 4500,
        refresh_lifetime: int = 10800,
        cache_size: int = 4_096,  # ~3.5 KiB an entry: at most ~14 MiB
    ) -> None:
        self.key = key
        self._public = key.public_key()
        self.access_lifetime = access_lifetime
        self.refresh_lifetime = refresh_lifetime
        self._cache: OrderedDict[tuple[str, str], VerifiedToken] = OrderedDict()
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
        return self.check(token, audience, grant_type).claims

    def check(self, token: str, audience: str, grant_type: str = "access_token") -> VerifiedToken:
        """The verified token, or InvalidToken. A token already verified is taken from the cache
        while it is unexpired (the same 5 s of leeway as the first check), never after."""
        key = (audience, token)
        verified = self._cache.get(key)
        if verified is None:
            try:
                claims = jwt.decode(
                    token,
                    self._public,
                    algorithms=[ALGORITHM],
                    audience=audience,
                    issuer=ISSUER,
                    options={"require": ["exp", "iat", "nbf", "sub", "aud", "iss"]},
                    leeway=LEEWAY,
                )
                verified = VerifiedToken.of(claims)
            except (jwt.PyJWTError, TypeError, ValueError) as exc:
                raise InvalidToken(str(exc)) from None
            self._cache[key] = verified
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        elif verified.exp + LEEWAY < time.time():
            del self._cache[key]
            raise InvalidToken("token has expired")
        else:
            self._cache.move_to_end(key)  # least recently used first out
        if verified.grant_type != grant_type:
            raise InvalidToken(f"not an {grant_type}")
        return verified
