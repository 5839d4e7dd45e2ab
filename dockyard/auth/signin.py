"""Checking the credentials a client sends to a registry, in the forms ACR takes them:

- the null GUID as user name with an ACR refresh (or access) token as password;
- the registry's admin user (its name) with one of its two passwords;
- a registry token's name with one of its passwords;
- a user (name and password) or a service principal (appId and client secret).
"""

from __future__ import annotations

import hmac

from dockyard.auth.principals import Principal, PrincipalService
from dockyard.auth.scopemaps import ScopeMapService
from dockyard.auth.throttle import Throttle
from dockyard.auth.tokens import InvalidToken, TokenService
from dockyard.services.registries import Registry, RegistryService

NULL_GUID = "00000000-0000-0000-0000-000000000000"


class SignIn:
    def __init__(self, principals: PrincipalService, scopemaps: ScopeMapService, registries: RegistryService,
                 tokens: TokenService, throttle: Throttle) -> None:
        self.principals = principals
        self.scopemaps = scopemaps
        self.registries = registries
        self.tokens = tokens
        self.throttle = throttle

    async def basic(self, registry: Registry, username: str, password: str, client: str) -> Principal | None:
        if not username or not password:
            return None
        self.throttle.check(client, username)
        principal = await self._basic(registry, username, password)
        if principal is None:
            self.throttle.failed(client, username)
        return principal

    async def _basic(self, registry: Registry, username: str, password: str) -> Principal | None:
        if username == NULL_GUID:
            return await self.from_refresh_token(registry, password)
        if registry.admin_enabled and username.lower() == registry.name.lower():
            for candidate in await self.registries.admin_passwords(registry):
                if candidate and hmac.compare_digest(candidate.encode(), password.encode()):
                    return Principal(-registry.id, registry.name, "admin", registry_id=registry.id)
            return None
        token = await self.scopemaps.authenticate(registry, username, password)
        if token is not None:
            return token
        return await self.principals.authenticate(username, password)

    async def from_refresh_token(self, registry: Registry, token: str) -> Principal | None:
        """The principal an ACR refresh token was issued to, if the token is valid for this registry."""
        try:
            claims = self.tokens.verify(token, registry.login_server, "refresh_token")
        except InvalidToken:
            return None
        return await self.principal_of(claims)

    async def principal_of(self, claims: dict) -> Principal | None:
        object_id = claims.get("oid") or ""
        if claims.get("kind") == "external":
            return Principal(-1, claims.get("sub", ""), "external", object_id=object_id)
        return await self.principals.by_object_id(object_id) if object_id else None
