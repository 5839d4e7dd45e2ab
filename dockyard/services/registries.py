"""Registries and how a request's Host finds one."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from dockyard.metadata.database import Database, utcnow
from dockyard.metadata.schema import registries


@dataclass(frozen=True, slots=True)
class Registry:
    id: int
    name: str
    login_server: str


class RegistryService:
    def __init__(self, db: Database, domain: str, default_name: str) -> None:
        self.db = db
        self.domain = domain.lower().strip(".")
        self.default_name = default_name.lower()
        self._by_name: dict[str, Registry] = {}

    def login_server(self, name: str) -> str:
        return f"{name.lower()}.{self.domain}"

    def _registry(self, row) -> Registry:
        return Registry(id=row.id, name=row.name, login_server=self.login_server(row.name))

    async def ensure(self, name: str, sku: str = "Basic") -> Registry:
        async with self.db.write() as conn:
            await conn.execute(
                self.db.insert(registries)
                .values(name=name, name_lower=name.lower(), sku=sku, created_at=utcnow())
                .on_conflict_do_nothing(index_elements=["name_lower"])
            )
        registry = await self.get(name)
        assert registry is not None
        return registry

    async def get(self, name: str) -> Registry | None:
        key = name.lower()
        cached = self._by_name.get(key)
        if cached is not None:
            return cached
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(registries).where(registries.c.name_lower == key))).first()
        if row is None:
            return None
        registry = self._by_name[key] = self._registry(row)
        return registry

    async def default(self) -> Registry:
        registry = await self.get(self.default_name)
        if registry is None:
            registry = await self.ensure(self.default_name)
        return registry

    async def for_host(self, host: str | None) -> Registry:
        """``<registry>.<domain>`` routes to that registry; any other host to the default one."""
        if host:
            hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            hostname = hostname.lower().rstrip(".")
            suffix = "." + self.domain
            if hostname.endswith(suffix):
                label = hostname[: -len(suffix)]
                if label and "." not in label:
                    registry = await self.get(label)
                    if registry is not None:
                        return registry
        return await self.default()

    async def by_login_server(self, login_server: str) -> Registry | None:
        suffix = "." + self.domain
        server = login_server.lower()
        if not server.endswith(suffix):
            return None
        label = server[: -len(suffix)]
        return await self.get(label) if label and "." not in label else None

    def forget(self, name: str) -> None:
        self._by_name.pop(name.lower(), None)
