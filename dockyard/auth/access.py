"""What a principal may do in a registry.

This is the seam the identity work extends with roles, scope maps and tokens.
For now the owner may do everything and nobody else anything.
"""

from __future__ import annotations

from dockyard.auth.principals import Principal
from dockyard.auth.scopes import REPOSITORY_ACTIONS, Scope
from dockyard.services.registries import Registry


class Authorizer:
    async def permitted(self, principal: Principal, registry: Registry, scope: Scope) -> tuple[str, ...]:
        """The subset of ``scope.actions`` that ``principal`` may perform."""
        if principal.kind == "owner":
            if scope.type == "repository":
                return tuple(a for a in scope.actions if a in REPOSITORY_ACTIONS or a == "*")
            if scope.type == "registry" and scope.name == "catalog":
                return tuple(a for a in scope.actions if a == "*")
        return ()

    async def grant(self, principal: Principal, registry: Registry, scopes: list[Scope]) -> list[Scope]:
        granted = []
        for scope in scopes:
            actions = await self.permitted(principal, registry, scope)
            if actions:
                granted.append(Scope(scope.type, scope.name, actions))
        return granted
