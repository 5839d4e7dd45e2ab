"""The directory: users, service principals and the bootstrap owner, and checking their secrets.

A successful check is remembered for a short while under a hash of the
credentials, so repeated Basic-authenticated requests don't pay for argon2
each time; a failed one never is. Any change to the directory forgets them all.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from dockyard.auth.passwords import (
    generate_secret,
    hash_secret,
    hash_secret_async,
    in_pool,
    verify_secret,
    verify_secret_async,
)
from dockyard.core.errors import RegistryError
from dockyard.metadata.database import Database, utcnow
from dockyard.metadata.schema import client_secrets, principals

OWNER = "owner"


class PrincipalExists(RegistryError):
    code, default_message = "Conflict", "a principal with that name already exists"


class PrincipalNotFound(RegistryError):
    code, default_message = "NotFound", "the principal was not found"


@dataclass(frozen=True, slots=True)
class Principal:
    id: int
    name: str
    kind: str  # owner | user | sp | external | admin | token | anonymous
    object_id: str = ""
    app_id: str = ""
    display_name: str = ""
    registry_id: int | None = None  # the admin user and registry tokens belong to one registry
    actions: tuple[str, ...] = ()  # a registry token's scope-map actions

    @property
    def is_anonymous(self) -> bool:
        return self.kind == "anonymous"


ANONYMOUS = Principal(0, "", "anonymous")


def _principal(row) -> Principal:
    return Principal(
        row.id, row.name, row.kind, row.object_id or "", row.app_id or "", row.display_name or row.name
    )


class PrincipalService:
    def __init__(self, db: Database, cache_seconds: float = 60.0) -> None:
        self.db = db
        self.cache_seconds = cache_seconds
        self._verified: dict[bytes, tuple[float, Principal]] = {}

    def forget(self) -> None:
        self._verified.clear()

    async def bootstrap_owner(self, data_dir: Path, password: str | None) -> str | None:
        """Create ``owner`` on first start. Returns the generated password, if one was generated."""
        if await self.by_name(OWNER) is not None:
            return None
        generated = None
        if not password:
            password = generated = generate_secret()
        try:
            await self.create_user(OWNER, password, kind="owner", display_name="Owner")
        except (PrincipalExists, sa.exc.IntegrityError):
            return None  # another node starting at the same moment made it first
        if generated:
            path = data_dir / "owner.password"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(generated + "\n")
            os.chmod(path, 0o600)
        return generated

    # -- creation ----------------------------------------------------------
    async def create_user(self, name: str, password: str, kind: str = "user", display_name: str | None = None) -> Principal:
        if not name or len(name) > 255 or ":" in name:
            raise RegistryError(f"invalid user name {name[:60]!r}")
        hashed = await hash_secret_async(password)
        async with self.db.write() as conn:
            await self.db.lock(conn, ("principal name", name))  # two creations of one name: the second is told
            exists = (await conn.execute(sa.select(principals.c.id).where(principals.c.name == name))).first()
            if exists:
                raise PrincipalExists(f"a principal named {name!r} already exists")
            await conn.execute(
                sa.insert(principals).values(
                    name=name, kind=kind, secret_hash=hashed, created_at=utcnow(),
                    object_id=str(uuid.uuid4()), display_name=display_name or name,
                )
            )
        self.forget()
        principal = await self.by_name(name)
        assert principal is not None
        return principal

    async def create_service_principal(self, display_name: str, years: float = 1.0) -> tuple[Principal, str]:
        """A new app registration and its service principal with one client secret."""
        app_id = str(uuid.uuid4())
        async with self.db.write() as conn:
            await conn.execute(
                sa.insert(principals).values(
                    name=f"sp:{app_id}", kind="sp", created_at=utcnow(), object_id=str(uuid.uuid4()),
                    app_id=app_id, display_name=display_name,
                )
            )
        principal = await self.by_app_id(app_id)
        assert principal is not None
        secret = await self.add_secret(principal, years=years)
        return principal, secret

    async def add_secret(self, principal: Principal, years: float = 1.0, append: bool = True,
                         display_name: str | None = None) -> str:
        secret = generate_secret()
        hashed = await hash_secret_async(secret)
        now = utcnow()
        async with self.db.write() as conn:
            # the principal's row stays while its secret is added (a concurrent delete waits, or went first)
            alive = (
                await conn.execute(
                    sa.select(principals.c.id).where(principals.c.id == principal.id).with_for_update(key_share=True)
                )
            ).scalar()
            if alive is None:
                raise PrincipalNotFound(f"the principal {principal.name!r} was deleted")
            if not append:
                await conn.execute(sa.delete(client_secrets).where(client_secrets.c.principal_id == principal.id))
            await conn.execute(
                sa.insert(client_secrets).values(
                    principal_id=principal.id, key_id=str(uuid.uuid4()), display_name=display_name,
                    hint=secret[:3], secret_hash=hashed, created_at=now,
                    expires_at=now + timedelta(days=365.25 * years),
                )
            )
        self.forget()
        return secret

    async def delete(self, principal: Principal) -> None:
        async with self.db.write() as conn:
            await conn.execute(sa.delete(principals).where(principals.c.id == principal.id))
        self.forget()

    # -- lookups -----------------------------------------------------------
    async def _one(self, condition) -> Principal | None:
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(principals).where(condition))).first()
        return None if row is None else _principal(row)

    async def by_name(self, name: str) -> Principal | None:
        return await self._one(principals.c.name == name)

    async def by_app_id(self, app_id: str) -> Principal | None:
        return await self._one(principals.c.app_id == app_id.lower())

    async def by_object_id(self, object_id: str) -> Principal | None:
        return await self._one(principals.c.object_id == object_id.lower())

    async def find(self, reference: str) -> Principal | None:
        """By object id, app id or name: how `--assignee` names a principal."""
        reference = reference.strip()
        return (
            await self.by_object_id(reference) or await self.by_app_id(reference) or await self.by_name(reference)
        )

    async def list(self, kind: str | None = None) -> list[Principal]:
        query = sa.select(principals).order_by(principals.c.id)
        if kind:
            query = query.where(principals.c.kind == kind)
        async with self.db.read() as conn:
            return [_principal(row) for row in (await conn.execute(query)).all()]

    async def secrets(self, principal: Principal) -> list[dict]:
        async with self.db.read() as conn:
            rows = (
                await conn.execute(sa.select(client_secrets).where(client_secrets.c.principal_id == principal.id))
            ).all()
        return [
            {"keyId": r.key_id, "displayName": r.display_name, "hint": r.hint,
             "startDateTime": r.created_at, "endDateTime": r.expires_at}
            for r in rows
        ]

    # -- checking credentials ---------------------------------------------
    async def authenticate(self, username: str, password: str) -> Principal | None:
        """A user (or the owner) by name and password, or a service principal by appId and secret."""
        if not username or not password or len(username) > 255 or len(password) > 1024:
            return None
        key = hashlib.sha256(f"{username}\0{password}".encode()).digest()
        cached = self._verified.get(key)
        now = time.monotonic()
        if cached and cached[0] > now:
            return cached[1]
        principal, expires_at = await self._check(username, password)
        if principal is not None:
            if len(self._verified) > 10_000:
                self._verified.clear()
            lifetime = self.cache_seconds
            if expires_at is not None:  # remembered no longer than the secret is valid
                lifetime = min(lifetime, (_aware(expires_at) - utcnow()).total_seconds())
            self._verified[key] = (now + lifetime, principal)
        return principal

    async def _check(self, username: str, password: str) -> tuple[Principal | None, datetime | None]:
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(principals).where(principals.c.name == username))).first()
            candidates: list[tuple[str, datetime | None]] = []
            if row is not None and row.secret_hash:
                candidates = [(row.secret_hash, None)]
            elif row is None:
                row = (
                    await conn.execute(sa.select(principals).where(principals.c.app_id == username.lower()))
                ).first()
                if row is not None:
                    candidates = [
                        (secret.secret_hash, secret.expires_at)
                        for secret in await conn.execute(
                            sa.select(client_secrets.c.secret_hash, client_secrets.c.expires_at).where(
                                client_secrets.c.principal_id == row.id, client_secrets.c.expires_at > utcnow()
                            )
                        )
                    ]
        if not candidates:
            # Spend the same time as a real check, so names can't be probed by timing.
            await in_pool(_verify_decoy, password)
            return None, None
        for hashed, expires_at in candidates:
            if await verify_secret_async(hashed, password):
                return _principal(row), expires_at
        return None, None


_DUMMY: list[str] = []


def _verify_decoy(password: str) -> None:
    """A check against a hash nobody holds (made on first use), in the caller's worker thread."""
    if not _DUMMY:
        _DUMMY.append(hash_secret(generate_secret()))
    verify_secret(_DUMMY[0], password)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
