"""Who sent a request (Bearer token, Basic credentials, or nobody) and whether they may do an action."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from functools import lru_cache

from aiohttp import web

from dockyard.auth.principals import ANONYMOUS, Principal
from dockyard.auth.signin import NULL_GUID
from dockyard.auth.scopes import Scope, allows
from dockyard.auth.tokens import InvalidToken, VerifiedToken
from dockyard.core.errors import Denied, Unauthorized
from dockyard.http.context import IDENTITY, registry_of, services_of

# What a client must ask for when challenged for an action.
CHALLENGE_ACTIONS = {"pull": "pull", "push": "pull,push", "delete": "delete", "*": "*"}


@dataclass(frozen=True, slots=True)
class Identity:
    principal: Principal
    via: str  # "bearer", "basic" or "anonymous"
    token: VerifiedToken | None = None  # for bearer: the access token, whose grants decide


class Challenge(Unauthorized):
    """401 with a Bearer challenge that tells the client where to get a token."""

    def __init__(self, message: str, scope: str | None = None, error: str | None = None, detail=None) -> None:
        super().__init__(message, detail)
        self.scope = scope
        self.error = error

    def header(self, request: web.Request) -> str:
        registry = registry_of(request)
        parts = [f'realm="{request.scheme}://{request.host}/oauth2/token"', f'service="{registry.login_server}"']
        if self.scope:
            parts.append(f'scope="{self.scope}"')
        if self.error:
            parts.append(f'error="{self.error}"')
        return "Bearer " + ",".join(parts)


class ScopeChallenge(Denied):
    """403 for a token that lacks the action, with a challenge naming the scope to ask for.

    RFC 6750 (3.1) answers insufficient_scope with 403; clients that keep one
    cached token (oras-py) fetch a new one on it, and the others ask for the
    right scope up front.
    """

    def __init__(self, message: str, scope: str, detail=None) -> None:
        super().__init__(message, detail)
        self._challenge = Challenge(message, scope=scope, error="insufficient_scope")

    def header(self, request: web.Request) -> str:
        return self._challenge.header(request)


class BasicChallenge(Unauthorized):
    """401 from the token endpoint itself: it takes Basic credentials."""

    def header(self, request: web.Request) -> str:
        return f'Basic realm="{registry_of(request).login_server}"'


def basic_credentials(request: web.Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        username, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return ("", "")
    return (username, password) if sep else ("", "")


async def identify(request: web.Request) -> Identity:
    cached = request.get(IDENTITY)
    if cached is not None:
        return cached
    services = services_of(request)
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        try:
            token = services.tokens.check(value.strip(), registry_of(request).login_server)
        except InvalidToken:
            raise Challenge("the access token is invalid or expired", error="invalid_token") from None
        identity = _bearer(token)
    elif scheme.lower() == "basic":
        username, password = basic_credentials(request) or ("", "")
        if username == NULL_GUID and password.count(".") == 2:
            # The null GUID with an access token as password stands for that token.
            try:
                token = services.tokens.check(password, registry_of(request).login_server)
            except InvalidToken:
                token = None
            if token is not None:
                identity = request[IDENTITY] = _bearer(token)
                return identity
        principal = await services.signin.basic(registry_of(request), username, password, request.remote or "")
        if principal is None:
            raise Challenge("invalid username or password")
        identity = Identity(principal, "basic")
    else:
        identity = Identity(ANONYMOUS, "anonymous")
    request[IDENTITY] = identity
    return identity


@lru_cache(maxsize=4096)
def _bearer(token: VerifiedToken) -> Identity:
    """The identity a verified token stands for (remembered by the token object, which
    ``tokens.check`` answers only while the token is unexpired)."""
    # A token issued to nobody (anonymous) signs nobody in.
    principal = Principal(-1, token.subject, "bearer") if token.subject else ANONYMOUS
    return Identity(principal, "bearer", token)


async def may(request: web.Request, kind: str, name: str, action: str) -> bool:
    return await _may(request, await identify(request), kind, name, action)


async def _may(request: web.Request, identity: Identity, kind: str, name: str, action: str) -> bool:
    if identity.via == "bearer":
        return identity.token.allows(kind, name, action)
    services = services_of(request)
    granted = await services.authorizer.permitted(identity.principal, registry_of(request), Scope(kind, name, (action,)))
    return allows(granted, action)


async def require(request: web.Request, kind: str, name: str, action: str) -> Identity:
    """Let the request through if it may do ``action`` on ``kind:name``; else 401 or 403."""
    identity = await identify(request)
    if await _may(request, identity, kind, name, action):
        return identity
    scope = f"{kind}:{name}:{CHALLENGE_ACTIONS.get(action, action)}"
    detail = [{"Type": kind, "Name": name, "Action": action}]
    if identity.via == "basic":
        raise Denied("requested access to the resource is denied", detail=detail)
    if identity.via == "bearer" and not identity.principal.is_anonymous:
        raise ScopeChallenge("the access token does not grant this action", scope=scope, detail=detail)
    raise Challenge("authentication required", scope=scope, detail=detail)


async def require_signed_in(request: web.Request) -> Identity:
    identity = await identify(request)
    if identity.via == "anonymous":
        raise Challenge("authentication required")
    return identity
