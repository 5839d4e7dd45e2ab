"""What a principal may do in a registry's data plane.

- the installation's `owner`: everything;
- users, service principals and external identities: what their role assignments give
  (legacy roles only in the legacy mode; repository roles, with their conditions, always);
- the admin user of a registry: everything in that registry, while it is enabled;
- a registry token: what its scope map gives, never the catalog;
- anybody: pull, where the registry allows anonymous pull.
"""

from __future__ import annotations

import time

from dockyard.auth import roles, scopemaps
from dockyard.auth.assignments import AssignmentService, repository_condition
from dockyard.auth.principals import Principal
from dockyard.auth.scopes import Scope
from dockyard.services.registries import Registry

CACHE_SECONDS = 5.0
ALL = frozenset(roles.ALL)


class Authorizer:
    def __init__(self, assignments: AssignmentService | None = None) -> None:
        self.assignments = assignments
        self._cache: dict[tuple, tuple[float, int, frozenset[str]]] = {}

    async def permitted(self, principal: Principal, registry: Registry, scope: Scope) -> tuple[str, ...]:
        """The subset of ``scope.actions`` that ``principal`` may perform."""
        if scope.type == "repository":
            allowed = await self._cached(principal, registry, scope.name)
        elif scope.type == "registry" and scope.name == "catalog":
            allowed = frozenset({"*"}) if await self._catalog(principal, registry) else frozenset()
        else:
            return ()
        granted = []
        for action in scope.actions:
            if action in allowed or (action == "*" and (ALL <= allowed or "*" in allowed)):
                granted.append(action)
        return tuple(granted)

    async def grant(self, principal: Principal, registry: Registry, scopes: list[Scope]) -> list[Scope]:
        granted = []
        for scope in scopes:
            actions = await self.permitted(principal, registry, scope)
            if actions:
                granted.append(Scope(scope.type, scope.name, actions))
        return granted

    async def _cached(self, principal: Principal, registry: Registry, repository: str) -> frozenset[str]:
        # Everything the answer depends on is in the key, so a changed setting or scope map
        # takes effect at once; role assignments are covered by the service's version.
        key = (principal.kind, principal.id, principal.object_id, principal.actions, registry.id,
               registry.role_assignment_mode, registry.anonymous_pull, registry.admin_enabled, repository)
        version = self.assignments.version if self.assignments else 0
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit and hit[0] > now and hit[1] == version:
            return hit[2]
        allowed = frozenset(await self._repository(principal, registry, repository))
        if len(self._cache) > 50_000:
            self._cache.clear()
        self._cache[key] = (now + CACHE_SECONDS, version, allowed)
        return allowed

    async def _repository(self, principal: Principal, registry: Registry, repository: str) -> set[str]:
        kind = principal.kind
        if kind == "owner":
            return set(ALL)
        if kind == "anonymous":
            return {"pull"} if registry.anonymous_pull else set()
        if kind == "admin":
            return set(ALL) if principal.registry_id == registry.id and registry.admin_enabled else set()
        if kind == "token":
            return scopemaps.permitted(principal.actions, repository) if principal.registry_id == registry.id else set()
        if not principal.object_id or self.assignments is None:
            return set()
        allowed: set[str] = set()
        target = f"{registry.arm_id}/repositories/{repository}"
        for assignment in await self.assignments.covering(principal.object_id, target):
            role = assignment.role
            if not role.abac and registry.abac:
                continue
            condition = repository_condition(assignment.condition)
            if condition is not None and not condition(repository):
                continue
            allowed |= role.data
        return allowed

    async def _catalog(self, principal: Principal, registry: Registry) -> bool:
        kind = principal.kind
        if kind == "owner":
            return True
        if kind == "admin":
            return principal.registry_id == registry.id and registry.admin_enabled
        if kind in ("token", "anonymous") or not principal.object_id or self.assignments is None:
            return False
        for assignment in await self.assignments.covering(principal.object_id, registry.arm_id):
            if assignment.role.catalog and (assignment.role.abac or not registry.abac):
                return True
        return False

    async def control(self, principal: Principal, resource_id: str, need: str) -> bool:
        """Whether the principal may act on a management resource: need is read, write or owner."""
        if principal.kind == "owner":
            return True
        if not principal.object_id or self.assignments is None:
            return False
        rank = {"read": 1, "write": 2, "owner": 3}
        for assignment in await self.assignments.covering(principal.object_id, resource_id):
            have = assignment.role.control
            if have and rank[have] >= rank[need]:
                return True
        return False
