"""Principals (who can sign in) and checking their credentials.

A successful check is remembered for a short while under a hash of the
credentials, so repeated Basic-authenticated requests don't pay for argon2
each time; a failed one never is.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from dockyard.auth.passwords import generate_secret, hash_secret, verify_secret
from dockyard.metadata.database import Database, utcnow
from dockyard.metadata.schema import principals

OWNER = "owner"


@dataclass(frozen=True, slots=True)
class Principal:
    id: int
    name: str
    kind: str  # "owner", "user", "sp"; anonymous callers have id 0

    @property
    def is_anonymous(self) -> bool:
        return self.id == 0


ANONYMOUS = Principal(0, "", "anonymous")


class PrincipalService:
    def __init__(self, db: Database, cache_seconds: float = 60.0) -> None:
        self.db = db
        self.cache_seconds = cache_seconds
        self._verified: dict[bytes, tuple[float, Principal]] = {}

    async def bootstrap_owner(self, data_dir: Path, password: str | None) -> str | None:
        """Create ``owner`` on first start. Returns the generated password, if one was generated."""
        async with self.db.read() as conn:
            exists = (await conn.execute(sa.select(principals.c.id).where(principals.c.name == OWNER))).first()
        if exists:
            return None
        generated = None
        if not password:
            password = generated = generate_secret()
        hashed = await asyncio.to_thread(hash_secret, password)
        async with self.db.write() as conn:
            await conn.execute(
                self.db.insert(principals)
                .values(name=OWNER, kind="owner", secret_hash=hashed, created_at=utcnow())
                .on_conflict_do_nothing(index_elements=["name"])
            )
        if generated:
            path = data_dir / "owner.password"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(generated + "\n")
            os.chmod(path, 0o600)
        return generated

    async def authenticate(self, username: str, password: str) -> Principal | None:
        if not username or not password or len(username) > 255 or len(password) > 1024:
            return None
        key = hashlib.sha256(f"{username}\0{password}".encode()).digest()
        cached = self._verified.get(key)
        now = time.monotonic()
        if cached and cached[0] > now:
            return cached[1]
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(principals).where(principals.c.name == username))).first()
        if row is None or not row.secret_hash:
            # Spend the same time as a real check, so names can't be probed by timing.
            await asyncio.to_thread(verify_secret, _DUMMY_HASH, password)
            return None
        if not await asyncio.to_thread(verify_secret, row.secret_hash, password):
            return None
        principal = Principal(row.id, row.name, row.kind)
        if len(self._verified) > 10_000:
            self._verified.clear()
        self._verified[key] = (now + self.cache_seconds, principal)
        return principal

    async def by_name(self, name: str) -> Principal | None:
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(principals).where(principals.c.name == name))).first()
        return None if row is None else Principal(row.id, row.name, row.kind)


_DUMMY_HASH = hash_secret(generate_secret())
