"""Registries: their settings, how a request's Host finds one, and their lifecycle."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from dockyard.auth.passwords import generate_secret
from dockyard.auth.sealing import Sealer
from dockyard.core.errors import RegistryError
from dockyard.metadata.database import Database, utcnow
from dockyard.metadata.schema import (
    blobs,
    registries,
    registry_tokens,
    repositories,
    repository_blobs,
    resource_groups,
    role_assignments,
    scope_maps,
)
from dockyard.services import skus

_NAME = re.compile(r"^[a-zA-Z0-9]{5,50}$")
CACHE_SECONDS = 2.0
PROVIDER = "Microsoft.ContainerRegistry/registries"


class RegistryNotFound(RegistryError):
    code, default_message = "ResourceNotFound", "the registry was not found"


class RegistryConflict(RegistryError):
    code, default_message = "AlreadyExists", "the registry name is already in use"


class InvalidRegistry(RegistryError):
    code, default_message = "InvalidRequestContent", "the registry request is invalid"


@dataclass(frozen=True, slots=True)
class Registry:
    id: int
    name: str
    login_server: str
    sku: str = "Basic"
    subscription_id: str = ""
    resource_group: str = ""
    resource_group_id: int | None = None
    location: str = "local"
    admin_enabled: bool = False
    anonymous_pull: bool = False
    public_network_access: str = "Enabled"
    network_rule_set: dict | None = None
    role_assignment_mode: str = "LegacyRegistryPermissions"
    policies: dict = field(default_factory=dict)
    tags: dict = field(default_factory=dict)
    properties: dict = field(default_factory=dict)
    provisioning_state: str = "Succeeded"
    created_at: datetime | None = None

    @property
    def arm_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/{PROVIDER}/{self.name}"
        )

    @property
    def abac(self) -> bool:
        return self.role_assignment_mode == "AbacRepositoryPermissions"


_COLUMNS = (registries, resource_groups.c.name.label("group_name"), resource_groups.c.subscription_id)


class RegistryService:
    def __init__(self, db: Database, domain: str, default_name: str, sealer: Sealer | None = None) -> None:
        self.db = db
        self.domain = domain.lower().strip(".")
        self.default_name = default_name.lower()
        self.sealer = sealer
        self._by_name: dict[str, tuple[float, Registry]] = {}

    def login_server(self, name: str) -> str:
        return f"{name.lower()}.{self.domain}"

    def _registry(self, row) -> Registry:
        return Registry(
            id=row.id,
            name=row.name,
            login_server=self.login_server(row.name),
            sku=row.sku,
            subscription_id=row.subscription_id or "",
            resource_group=row.group_name or "",
            resource_group_id=row.resource_group_id,
            location=row.location,
            admin_enabled=bool(row.admin_enabled),
            anonymous_pull=bool(row.anonymous_pull),
            public_network_access=row.public_network_access,
            network_rule_set=row.network_rule_set,
            role_assignment_mode=row.role_assignment_mode,
            policies=row.policies or {},
            tags=row.tags or {},
            properties=row.properties or {},
            provisioning_state=row.provisioning_state,
            created_at=row.created_at,
        )

    def _select(self):
        return sa.select(*_COLUMNS).select_from(
            registries.outerjoin(resource_groups, resource_groups.c.id == registries.c.resource_group_id)
        )

    # -- lookups -----------------------------------------------------------
    async def get(self, name: str) -> Registry | None:
        key = name.lower()
        cached = self._by_name.get(key)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        async with self.db.read() as conn:
            row = (await conn.execute(self._select().where(registries.c.name_lower == key))).first()
        if row is None:
            self._by_name.pop(key, None)
            return None
        registry = self._registry(row)
        self._by_name[key] = (now + CACHE_SECONDS, registry)
        return registry

    async def require(self, name: str) -> Registry:
        registry = await self.get(name)
        if registry is None:
            raise RegistryNotFound(
                f"The Resource '{PROVIDER}/{name}' was not found."
            )
        return registry

    async def default(self) -> Registry:
        registry = await self.get(self.default_name)
        if registry is None:
            registry = await self.ensure(self.default_name)
        return registry

    async def for_host(self, host: str | None) -> Registry | None:
        """The registry a request's Host names.

        ``<registry>.<domain>`` is that registry; a host of that shape that names no registry (one
        never made, or since deleted) is None: in ACR such a name doesn't exist at all. Any other
        host (an IP address, the bare domain, a deeper name) reaches the default registry.
        """
        if host and not host.endswith("]"):
            hostname = host.rsplit(":", 1)[0].lower().rstrip(".")
            suffix = "." + self.domain
            if hostname.endswith(suffix):
                label = hostname[: -len(suffix)]
                if label and "." not in label:
                    return await self.get(label)
        return await self.default()

    async def by_login_server(self, login_server: str) -> Registry | None:
        suffix = "." + self.domain
        server = login_server.lower().rsplit(":", 1)[0] if ":" in login_server else login_server.lower()
        if not server.endswith(suffix):
            return None
        label = server[: -len(suffix)]
        return await self.get(label) if label and "." not in label else None

    async def list(self, subscription_id: str | None = None, group_id: int | None = None) -> list[Registry]:
        query = self._select().order_by(registries.c.name_lower)
        if subscription_id is not None:
            query = query.where(resource_groups.c.subscription_id == subscription_id.lower())
        if group_id is not None:
            query = query.where(registries.c.resource_group_id == group_id)
        async with self.db.read() as conn:
            rows = (await conn.execute(query)).all()
        return [self._registry(row) for row in rows]

    def forget(self, name: str) -> None:
        self._by_name.pop(name.lower(), None)

    # -- lifecycle ---------------------------------------------------------
    async def check_name(self, name: str) -> tuple[bool, str | None, str | None]:
        if not _NAME.match(name or ""):
            return (
                False,
                "Invalid",
                "The specified resource name is invalid: registry names may contain only alpha numeric "
                "characters and must be between 5 and 50 characters.",
            )
        if await self.get(name) is not None:
            return False, "AlreadyExists", f"The registry {name} is already in use."
        return True, None, None

    async def ensure(self, name: str, sku: str = "Basic", resource_group_id: int | None = None) -> Registry:
        async with self.db.write() as conn:
            await conn.execute(
                self.db.insert(registries)
                .values(
                    name=name,
                    name_lower=name.lower(),
                    sku=sku,
                    created_at=utcnow(),
                    resource_group_id=resource_group_id,
                )
                .on_conflict_do_nothing(index_elements=["name_lower"])
            )
        self.forget(name)
        registry = await self.get(name)
        assert registry is not None
        return registry

    async def attach(self, registry: Registry, group_id: int) -> None:
        async with self.db.write() as conn:
            await conn.execute(sa.update(registries).where(registries.c.id == registry.id).values(resource_group_id=group_id))
        self.forget(registry.name)

    async def create(self, group_id: int, name: str, location: str, values: dict[str, Any]) -> Registry:
        available, _, message = await self.check_name(name)
        if not available:
            existing = await self.get(name)
            if existing is None or existing.resource_group_id != group_id:
                raise (RegistryConflict(message) if existing else InvalidRegistry(message))
            return await self.update(name, values)
        row = {"name": name, "name_lower": name.lower(), "created_at": utcnow(), "updated_at": utcnow(),
               "resource_group_id": group_id, "location": location.lower().replace(" ", "")}
        row.update(self._columns(values))
        if row.get("admin_enabled"):
            row.update(self._new_admin_passwords())
        async with self.db.write() as conn:
            # two creations of one name: the second finds the first's row and conflicts, no IntegrityError
            await self.db.lock(conn, ("registry name", name.lower()))
            taken = (await conn.execute(sa.select(registries.c.id).where(registries.c.name_lower == name.lower()))).scalar()
            if taken is not None:
                raise RegistryConflict(f"The registry {name} is already in use.")
            await conn.execute(sa.insert(registries).values(**row))
        self.forget(name)
        return await self.require(name)

    async def update(self, name: str, values: dict[str, Any]) -> Registry:
        registry = await self.require(name)
        row = self._columns(values)
        if row.get("admin_enabled") and not registry.admin_enabled:
            async with self.db.read() as conn:
                sealed = (
                    await conn.execute(sa.select(registries.c.admin_password1).where(registries.c.id == registry.id))
                ).scalar()
            if not sealed:
                row.update(self._new_admin_passwords())
        if row:
            row["updated_at"] = utcnow()
            async with self.db.write() as conn:
                await conn.execute(sa.update(registries).where(registries.c.id == registry.id).values(**row))
        self.forget(name)
        return await self.require(name)

    def _columns(self, values: dict[str, Any]) -> dict[str, Any]:
        """Map settings (already validated by the caller) to columns."""
        mapping = {
            "sku": "sku",
            "admin_enabled": "admin_enabled",
            "anonymous_pull": "anonymous_pull",
            "public_network_access": "public_network_access",
            "network_rule_set": "network_rule_set",
            "role_assignment_mode": "role_assignment_mode",
            "policies": "policies",
            "tags": "tags",
            "properties": "properties",
        }
        row = {column: values[key] for key, column in mapping.items() if key in values}
        if "sku" in row:
            sku = skus.canonical(row["sku"])
            if sku is None:
                raise InvalidRegistry(f"The SKU '{row['sku']}' is not valid; use Basic, Standard or Premium.")
            row["sku"] = sku
        return row

    async def delete(self, name: str) -> Registry:
        """Delete a registry with its repositories, tokens, scope maps and role assignments."""
        registry = await self.require(name)
        async with self.db.write() as conn:
            # alone: no push, delete or token change of this registry runs meanwhile (they share the key)
            await self.db.lock(conn, ("registry", registry.id))
            await conn.execute(sa.delete(registry_tokens).where(registry_tokens.c.registry_id == registry.id))
            await conn.execute(sa.delete(scope_maps).where(scope_maps.c.registry_id == registry.id))
            await conn.execute(sa.delete(repositories).where(repositories.c.registry_id == registry.id))
            await conn.execute(
                sa.delete(role_assignments).where(
                    sa.or_(
                        role_assignments.c.scope_lower == registry.arm_id.lower(),
                        role_assignments.c.scope_lower.startswith(registry.arm_id.lower() + "/"),
                    )
                )
            )
            await conn.execute(sa.delete(registries).where(registries.c.id == registry.id))
        self.forget(name)
        return registry

    # -- the admin user ----------------------------------------------------
    def _new_admin_passwords(self) -> dict[str, str]:
        assert self.sealer is not None
        return {
            "admin_password1": self.sealer.seal(generate_secret()),
            "admin_password2": self.sealer.seal(generate_secret()),
        }

    async def admin_passwords(self, registry: Registry) -> tuple[str | None, str | None]:
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    sa.select(registries.c.admin_password1, registries.c.admin_password2).where(
                        registries.c.id == registry.id
                    )
                )
            ).first()
        if row is None or self.sealer is None:
            return None, None
        return self.sealer.open(row.admin_password1), self.sealer.open(row.admin_password2)

    async def regenerate_admin_password(self, registry: Registry, which: str) -> None:
        assert self.sealer is not None
        column = {"password": "admin_password1", "password2": "admin_password2"}.get(which)
        if column is None:
            raise InvalidRegistry("The password name must be 'password' or 'password2'.")
        async with self.db.write() as conn:
            await conn.execute(
                sa.update(registries)
                .where(registries.c.id == registry.id)
                .values(**{column: self.sealer.seal(generate_secret())})
            )

    # -- usage -------------------------------------------------------------
    async def usages(self, registry: Registry) -> list[dict[str, Any]]:
        size_query = (
            sa.select(sa.func.coalesce(sa.func.sum(blobs.c.size), 0))
            .select_from(blobs)
            .where(
                blobs.c.digest.in_(
                    sa.select(repository_blobs.c.digest)
                    .join(repositories, repositories.c.id == repository_blobs.c.repository_id)
                    .where(repositories.c.registry_id == registry.id)
                )
            )
        )
        async with self.db.read() as conn:
            size = (await conn.execute(size_query)).scalar() or 0
            maps = (
                await conn.execute(sa.select(sa.func.count()).where(scope_maps.c.registry_id == registry.id))
            ).scalar()
            tokens = (
                await conn.execute(sa.select(sa.func.count()).where(registry_tokens.c.registry_id == registry.id))
            ).scalar()
        rules = len((registry.network_rule_set or {}).get("ipRules") or [])
        current = {"Size": int(size), "ScopeMaps": maps, "Tokens": tokens, "IPRules": rules}
        limits = skus.LIMITS[registry.sku]
        return [
            {"name": name, "limit": limit, "currentValue": current.get(name, 0), "unit": skus.UNITS.get(name, "Count")}
            for name, limit in limits.items()
        ]
