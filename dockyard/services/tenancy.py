"""The installation's tenant, its subscriptions and their resource groups (ARM's containers)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

import sqlalchemy as sa

from dockyard.core.errors import RegistryError
from dockyard.metadata.database import Database, utcnow
from dockyard.metadata.schema import registries, resource_groups, subscriptions

_GROUP_NAME = re.compile(r"^[-\w._()]{1,90}$")


class NotFound(RegistryError):
    code, default_message = "ResourceNotFound", "the resource was not found"


class ResourceGroupNotFound(NotFound):
    code = "ResourceGroupNotFound"


class SubscriptionNotFound(NotFound):
    code = "SubscriptionNotFound"


class InvalidName(RegistryError):
    code, default_message = "InvalidResourceName", "the resource name is invalid"


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    display_name: str
    tenant_id: str
    state: str

    @property
    def arm_id(self) -> str:
        return f"/subscriptions/{self.id}"


@dataclass(frozen=True, slots=True)
class ResourceGroup:
    id: int
    subscription_id: str
    name: str
    location: str
    tags: dict

    @property
    def arm_id(self) -> str:
        return f"/subscriptions/{self.subscription_id}/resourceGroups/{self.name}"


def _group(row) -> ResourceGroup:
    return ResourceGroup(row.id, row.subscription_id, row.name, row.location, row.tags or {})


class TenancyService:
    def __init__(self, db: Database, tenant_id: str) -> None:
        self.db = db
        self.tenant_id = tenant_id

    async def ensure_subscription(self, subscription_id: str | None, display_name: str = "Dockyard") -> Subscription:
        async with self.db.write() as conn:
            await self.db.lock(conn, ("subscriptions",))  # nodes starting together make one
            row = (await conn.execute(sa.select(subscriptions).order_by(subscriptions.c.created_at))).first()
            if subscription_id:
                row = (
                    await conn.execute(sa.select(subscriptions).where(subscriptions.c.id == subscription_id.lower()))
                ).first()
            if row is None:
                new_id = (subscription_id or str(uuid.uuid4())).lower()
                await conn.execute(
                    sa.insert(subscriptions).values(
                        id=new_id, display_name=display_name, tenant_id=self.tenant_id, created_at=utcnow()
                    )
                )
                row = (await conn.execute(sa.select(subscriptions).where(subscriptions.c.id == new_id))).first()
        return Subscription(row.id, row.display_name, row.tenant_id, row.state)

    async def subscriptions(self) -> list[Subscription]:
        async with self.db.read() as conn:
            rows = (await conn.execute(sa.select(subscriptions).order_by(subscriptions.c.created_at))).all()
        return [Subscription(r.id, r.display_name, r.tenant_id, r.state) for r in rows]

    async def subscription(self, subscription_id: str) -> Subscription:
        async with self.db.read() as conn:
            row = (
                await conn.execute(sa.select(subscriptions).where(subscriptions.c.id == subscription_id.lower()))
            ).first()
        if row is None:
            raise SubscriptionNotFound(f"The subscription '{subscription_id}' could not be found.")
        return Subscription(row.id, row.display_name, row.tenant_id, row.state)

    # -- resource groups ---------------------------------------------------
    async def group(self, subscription_id: str, name: str) -> ResourceGroup:
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    sa.select(resource_groups).where(
                        resource_groups.c.subscription_id == subscription_id.lower(),
                        resource_groups.c.name_lower == name.lower(),
                    )
                )
            ).first()
        if row is None:
            raise ResourceGroupNotFound(f"Resource group '{name}' could not be found.")
        return _group(row)

    async def groups(self, subscription_id: str) -> list[ResourceGroup]:
        await self.subscription(subscription_id)
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    sa.select(resource_groups)
                    .where(resource_groups.c.subscription_id == subscription_id.lower())
                    .order_by(resource_groups.c.name_lower)
                )
            ).all()
        return [_group(r) for r in rows]

    async def put_group(
        self, subscription_id: str, name: str, location: str, tags: dict | None
    ) -> tuple[ResourceGroup, bool]:
        """Create or update a group. Returns the group and whether it was created."""
        if not _GROUP_NAME.match(name) or name.endswith("."):
            raise InvalidName(f"Resource group name '{name[:100]}' is invalid.")
        if not location:
            raise InvalidName("The location of a resource group is required.")
        await self.subscription(subscription_id)
        async with self.db.write() as conn:
            await self.db.lock(conn, ("resource group", subscription_id.lower(), name.lower()))
            query = sa.select(resource_groups).where(
                resource_groups.c.subscription_id == subscription_id.lower(),
                resource_groups.c.name_lower == name.lower(),
            )
            row = (await conn.execute(query)).first()
            created = row is None
            if created:
                await conn.execute(
                    sa.insert(resource_groups).values(
                        subscription_id=subscription_id.lower(),
                        name=name,
                        name_lower=name.lower(),
                        location=location.lower().replace(" ", ""),
                        tags=tags or {},
                        created_at=utcnow(),
                    )
                )
            elif tags is not None:
                await conn.execute(sa.update(resource_groups).where(resource_groups.c.id == row.id).values(tags=tags))
            row = (await conn.execute(query)).first()
        return _group(row), created

    async def update_group_tags(self, subscription_id: str, name: str, tags: dict) -> ResourceGroup:
        group = await self.group(subscription_id, name)
        async with self.db.write() as conn:
            await conn.execute(sa.update(resource_groups).where(resource_groups.c.id == group.id).values(tags=tags))
        return await self.group(subscription_id, name)

    async def registries_in_group(self, group_id: int) -> list[str]:
        async with self.db.read() as conn:
            return list(
                (await conn.execute(sa.select(registries.c.name).where(registries.c.resource_group_id == group_id))).scalars()
            )

    async def delete_group_row(self, group_id: int) -> None:
        async with self.db.write() as conn:
            await conn.execute(sa.delete(resource_groups).where(resource_groups.c.id == group_id))


async def installation_tenant(db: Database) -> str:
    """The installation's tenant id: made once, on first start, and kept in the database."""
    from dockyard.services.installation import installation_value

    return await installation_value(db, "tenant_id", lambda: str(uuid.uuid4()))
