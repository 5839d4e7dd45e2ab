"""Scope maps and the repository-scoped (non-Entra) tokens bound to them, as ACR has them.

An action reads ``repositories/<repository>/<content|metadata>/<verb>``; the
repository is a name, ``<prefix>/*``, or ``*`` for the whole registry.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from dockyard.auth.passwords import (
    generate_secret,
    hash_secret_async,
    verify_secret_async,
)
from dockyard.auth.principals import Principal
from dockyard.core.errors import RegistryError
from dockyard.metadata.database import Database, utcnow
from dockyard.metadata.schema import registry_tokens, scope_maps
from dockyard.services import skus
from dockyard.services.registries import Registry

VERBS = {
    "content/read": "pull",
    "content/write": "push",
    "content/delete": "delete",
    "metadata/read": "metadata_read",
    "metadata/write": "metadata_write",
}
MAX_ACTIONS = 500
MAX_REPOSITORIES = 500
_NAME = re.compile(r"^[a-zA-Z0-9-]{5,50}$")
_REPOSITORY = re.compile(r"^(\*|[a-z0-9]+(?:[._/-]+[a-z0-9]+)*(?:/\*)?)$")

SYSTEM: dict[str, tuple[str, list[str]]] = {
    "_repositories_admin": (
        "Can perform all read, write and delete operations on the registry",
        [f"repositories/*/{verb}" for verb in VERBS],
    ),
    "_repositories_pull": ("Can pull any repository of the registry", ["repositories/*/content/read"]),
    "_repositories_pull_metadata_read": (
        "Can perform all read operations on the registry",
        ["repositories/*/content/read", "repositories/*/metadata/read"],
    ),
    "_repositories_push": (
        "Can push to any repository of the registry",
        ["repositories/*/content/read", "repositories/*/content/write"],
    ),
    "_repositories_push_metadata_write": (
        "Can perform all read and write operations on the registry",
        ["repositories/*/metadata/read", "repositories/*/metadata/write",
         "repositories/*/content/read", "repositories/*/content/write"],
    ),
}


class ScopeMapError(RegistryError):
    code, default_message = "InvalidRequestContent", "the scope map or token is invalid"


class ScopeMapNotFound(RegistryError):
    code, default_message = "ResourceNotFound", "the scope map was not found"


class TokenNotFound(RegistryError):
    code, default_message = "ResourceNotFound", "the token was not found"


class QuotaExceeded(RegistryError):
    code, default_message = "QuotaExceeded", "the SKU's limit is reached"


@dataclass(frozen=True, slots=True)
class ScopeMap:
    name: str
    description: str
    actions: tuple[str, ...]
    system: bool
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Token:
    name: str
    scope_map: str
    status: str
    created_at: datetime
    passwords: tuple[dict, ...]  # {"name", "creationTime", "expiry"} without values


def parse_action(action: str) -> tuple[str, str]:
    """(repository pattern, docker action) of a scope-map action, or an error saying why not."""
    if not action.startswith("repositories/"):
        raise ScopeMapError(f"Invalid action '{action[:120]}': actions start with 'repositories/'.")
    body = action[len("repositories/") :]
    for verb, docker_action in VERBS.items():
        if body.endswith("/" + verb):
            repository = body[: -len(verb) - 1]
            if repository.count("*") > 1 or ("*" in repository and repository != "*" and not repository.endswith("/*")):
                raise ScopeMapError(
                    f"Invalid repository '{repository[:100]}': a wildcard must end the name as '/*', once."
                )
            if not _REPOSITORY.match(repository):
                raise ScopeMapError(f"Invalid repository name '{repository[:100]}' in action.")
            return repository, docker_action
    raise ScopeMapError(f"Invalid action '{action[:120]}': use content/read|write|delete or metadata/read|write.")


def check_actions(actions: list[str]) -> list[str]:
    if not actions:
        raise ScopeMapError("A scope map needs at least one action.")
    if len(actions) > MAX_ACTIONS:
        raise ScopeMapError(f"A scope map holds at most {MAX_ACTIONS} actions.")
    repositories = {parse_action(action)[0] for action in actions}
    if len(repositories) > MAX_REPOSITORIES:
        raise ScopeMapError(f"A scope map covers at most {MAX_REPOSITORIES} repositories.")
    return list(dict.fromkeys(actions))


def permitted(actions: tuple[str, ...], repository: str) -> set[str]:
    """The Docker actions a scope map's actions give on one repository (matching rules add up)."""
    granted: set[str] = set()
    for action in actions:
        pattern, docker_action = parse_action(action)
        if pattern == "*" or pattern == repository or (
            pattern.endswith("/*") and repository.startswith(pattern[:-1])
        ):
            granted.add(docker_action)
    return granted


def _check_name(kind: str, name: str) -> None:
    if not _NAME.match(name or ""):
        raise ScopeMapError(f"The {kind} name '{(name or '')[:60]}' must be 5 to 50 letters, digits or dashes.")


class ScopeMapService:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._verified: dict[bytes, tuple[float, Principal]] = {}
        self.cache_seconds = 60.0

    def forget(self) -> None:
        self._verified.clear()

    # -- scope maps --------------------------------------------------------
    async def list_maps(self, registry: Registry) -> list[ScopeMap]:
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    sa.select(scope_maps).where(scope_maps.c.registry_id == registry.id).order_by(scope_maps.c.name)
                )
            ).all()
        system = [ScopeMap(name, text, tuple(actions), True) for name, (text, actions) in SYSTEM.items()]
        return system + [ScopeMap(r.name, r.description or "", tuple(r.actions), False, r.created_at) for r in rows]

    async def get_map(self, registry: Registry, name: str) -> ScopeMap:
        if name in SYSTEM:
            text, actions = SYSTEM[name]
            return ScopeMap(name, text, tuple(actions), True)
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    sa.select(scope_maps).where(scope_maps.c.registry_id == registry.id, scope_maps.c.name == name)
                )
            ).first()
        if row is None:
            raise ScopeMapNotFound(f"The scope map '{name}' was not found in registry '{registry.name}'.")
        return ScopeMap(row.name, row.description or "", tuple(row.actions), False, row.created_at)

    async def _lock(self, conn, registry: Registry) -> None:
        """One writer at a time of a registry's scope maps and tokens (their quota, and which map a
        token uses); the registry's shared key keeps its deletion out meanwhile."""
        await self.db.lock(conn, ("scope maps and tokens", registry.id), shared=(("registry", registry.id),))

    async def put_map(self, registry: Registry, name: str, actions: list[str], description: str | None) -> ScopeMap:
        if name in SYSTEM:
            raise ScopeMapError(f"The system scope map '{name}' cannot be changed.")
        _check_name("scope map", name)
        actions = check_actions(actions)
        if description is not None and len(description) > 256:
            raise ScopeMapError("The description holds at most 256 characters.")
        async with self.db.write() as conn:
            await self._lock(conn, registry)
            query = sa.select(scope_maps.c.id).where(scope_maps.c.registry_id == registry.id, scope_maps.c.name == name)
            existing = (await conn.execute(query)).scalar()
            if existing is None:
                count = (
                    await conn.execute(sa.select(sa.func.count()).where(scope_maps.c.registry_id == registry.id))
                ).scalar()
                if count >= skus.LIMITS[registry.sku]["ScopeMaps"]:
                    raise QuotaExceeded(f"The {registry.sku} SKU allows {count} scope maps; delete one first.")
                await conn.execute(
                    sa.insert(scope_maps).values(
                        registry_id=registry.id, name=name, description=description, actions=actions, created_at=utcnow()
                    )
                )
            else:
                values = {"actions": actions}
                if description is not None:
                    values["description"] = description
                await conn.execute(sa.update(scope_maps).where(scope_maps.c.id == existing).values(**values))
        self.forget()
        return await self.get_map(registry, name)

    async def delete_map(self, registry: Registry, name: str) -> None:
        if name in SYSTEM:
            raise ScopeMapError(f"The system scope map '{name}' cannot be deleted.")
        async with self.db.write() as conn:
            await self._lock(conn, registry)
            used = (
                await conn.execute(
                    sa.select(registry_tokens.c.name).where(
                        registry_tokens.c.registry_id == registry.id, registry_tokens.c.scope_map == name
                    )
                )
            ).scalar()
            if used:
                raise ScopeMapError(f"The scope map '{name}' is used by token '{used}'; delete the token first.")
            result = await conn.execute(
                sa.delete(scope_maps).where(scope_maps.c.registry_id == registry.id, scope_maps.c.name == name)
            )
        if result.rowcount == 0:
            raise ScopeMapNotFound(f"The scope map '{name}' was not found in registry '{registry.name}'.")
        self.forget()

    # -- tokens ------------------------------------------------------------
    def _token(self, row) -> Token:
        passwords = []
        for which in ("password1", "password2"):
            if getattr(row, f"{which}_hash"):
                passwords.append(
                    {"name": which, "creationTime": getattr(row, f"{which}_created"),
                     "expiry": getattr(row, f"{which}_expiry")}
                )
        return Token(row.name, row.scope_map, row.status, row.created_at, tuple(passwords))

    async def list_tokens(self, registry: Registry) -> list[Token]:
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    sa.select(registry_tokens)
                    .where(registry_tokens.c.registry_id == registry.id)
                    .order_by(registry_tokens.c.name)
                )
            ).all()
        return [self._token(r) for r in rows]

    async def get_token(self, registry: Registry, name: str) -> Token:
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    sa.select(registry_tokens).where(
                        registry_tokens.c.registry_id == registry.id, registry_tokens.c.name == name
                    )
                )
            ).first()
        if row is None:
            raise TokenNotFound(f"The token '{name}' was not found in registry '{registry.name}'.")
        return self._token(row)

    async def put_token(self, registry: Registry, name: str, scope_map: str | None, status: str | None) -> Token:
        _check_name("token", name)
        if status is not None and status.lower() not in ("enabled", "disabled"):
            raise ScopeMapError("The status must be 'enabled' or 'disabled'.")
        if scope_map is not None:
            await self.get_map(registry, scope_map)
        async with self.db.write() as conn:
            await self._lock(conn, registry)
            query = sa.select(registry_tokens.c.id).where(
                registry_tokens.c.registry_id == registry.id, registry_tokens.c.name == name
            )
            existing = (await conn.execute(query)).scalar()
            if existing is None:
                if scope_map is None:
                    raise ScopeMapError("A new token needs a scope map.")
                count = (
                    await conn.execute(sa.select(sa.func.count()).where(registry_tokens.c.registry_id == registry.id))
                ).scalar()
                if count >= skus.LIMITS[registry.sku]["Tokens"]:
                    raise QuotaExceeded(f"The {registry.sku} SKU allows {count} tokens; delete one first.")
                await conn.execute(
                    sa.insert(registry_tokens).values(
                        registry_id=registry.id, name=name, scope_map=scope_map,
                        status=(status or "enabled").lower(), created_at=utcnow(),
                    )
                )
            else:
                values = {}
                if scope_map is not None:
                    values["scope_map"] = scope_map
                if status is not None:
                    values["status"] = status.lower()
                if values:
                    await conn.execute(sa.update(registry_tokens).where(registry_tokens.c.id == existing).values(**values))
        self.forget()
        return await self.get_token(registry, name)

    async def generate_password(self, registry: Registry, name: str, which: str, expiry: datetime | None) -> dict:
        if which not in ("password1", "password2"):
            raise ScopeMapError("The password name must be 'password1' or 'password2'.")
        await self.get_token(registry, name)
        secret = generate_secret()
        hashed = await hash_secret_async(secret)
        now = utcnow()
        async with self.db.write() as conn:
            await conn.execute(
                sa.update(registry_tokens)
                .where(registry_tokens.c.registry_id == registry.id, registry_tokens.c.name == name)
                .values(**{f"{which}_hash": hashed, f"{which}_created": now, f"{which}_expiry": expiry})
            )
        self.forget()
        return {"name": which, "value": secret, "creationTime": now, "expiry": expiry}

    async def delete_password(self, registry: Registry, name: str, which: str) -> None:
        if which not in ("password1", "password2"):
            raise ScopeMapError("The password name must be 'password1' or 'password2'.")
        await self.get_token(registry, name)
        async with self.db.write() as conn:
            await conn.execute(
                sa.update(registry_tokens)
                .where(registry_tokens.c.registry_id == registry.id, registry_tokens.c.name == name)
                .values(**{f"{which}_hash": None, f"{which}_created": None, f"{which}_expiry": None})
            )
        self.forget()

    async def delete_token(self, registry: Registry, name: str) -> None:
        async with self.db.write() as conn:
            await self._lock(conn, registry)
            result = await conn.execute(
                sa.delete(registry_tokens).where(
                    registry_tokens.c.registry_id == registry.id, registry_tokens.c.name == name
                )
            )
        if result.rowcount == 0:
            raise TokenNotFound(f"The token '{name}' was not found in registry '{registry.name}'.")
        self.forget()

    async def authenticate(self, registry: Registry, name: str, password: str) -> Principal | None:
        """An enabled token of this registry with an unexpired password."""
        key = hashlib.sha256(f"{registry.id}\0{name}\0{password}".encode()).digest()
        cached = self._verified.get(key)
        now = time.monotonic()
        if cached and cached[0] > now:
            return cached[1]
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    sa.select(registry_tokens).where(
                        registry_tokens.c.registry_id == registry.id, registry_tokens.c.name == name
                    )
                )
            ).first()
        if row is None or row.status != "enabled":
            return None
        current = utcnow()
        for which in ("password1", "password2"):
            hashed, expiry = getattr(row, f"{which}_hash"), getattr(row, f"{which}_expiry")
            if not hashed or (expiry is not None and _aware(expiry) <= current):
                continue
            if await verify_secret_async(hashed, password):
                scope_map = await self.get_map(registry, row.scope_map)
                principal = Principal(-row.id, name, "token", registry_id=registry.id, actions=scope_map.actions)
                lifetime = self.cache_seconds
                if expiry is not None:  # remembered no longer than the password is valid
                    lifetime = min(lifetime, (_aware(expiry) - current).total_seconds())
                self._verified[key] = (now + lifetime, principal)
                return principal
        return None


def _aware(value: datetime) -> datetime:
    from datetime import UTC

    return value if value.tzinfo else value.replace(tzinfo=UTC)


def expiry_in_days(days: int | None) -> datetime | None:
    return None if days is None else utcnow() + timedelta(days=days)
