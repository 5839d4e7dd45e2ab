"""Facts and secrets of the installation, kept in the database so that every node shares them.

The token-signing keys and the key that seals admin passwords are made by the
first node to start and read by all the others: nodes keep no state of their
own. Keys from a data dir made before this (``<data_dir>/keys/*``) are adopted
on their first start, so tokens already issued stay valid.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from dockyard.metadata.database import Database
from dockyard.metadata.schema import installation

TOKEN_SIGNING_KEY = "token-signing-key"  # ES256, signs the registry's access and refresh tokens
IDENTITY_SIGNING_KEY = "identity-signing-key"  # RS256, signs the OIDC issuer's identity tokens
SECRETS_KEY = "secrets-key"  # Fernet, seals secrets that must be shown again

LEGACY_FILES = {
    TOKEN_SIGNING_KEY: "token-signing.pem",
    IDENTITY_SIGNING_KEY: "identity-signing.pem",
    SECRETS_KEY: "secrets.key",
}


async def installation_value(db: Database, key: str, make: Callable[[], str]) -> str:
    """The value stored under ``key``; on first use, ``make()``'s, whichever node gets there first."""
    query = sa.select(installation.c.value).where(installation.c.key == key)
    async with db.read() as conn:
        value = (await conn.execute(query)).scalar()
    if value is not None:
        return value
    candidate = make()
    async with db.write() as conn:
        await conn.execute(
            db.insert(installation).values(key=key, value=candidate).on_conflict_do_nothing(index_elements=["key"])
        )
        return (await conn.execute(query)).scalar()


async def installation_secret(db: Database, key: str, make: Callable[[], str], keys_dir: Path | None) -> str:
    """A key of the installation, adopting the data dir's file of it where one exists."""

    def make_or_adopt() -> str:
        legacy = keys_dir / LEGACY_FILES[key] if keys_dir is not None else None
        if legacy is not None and legacy.is_file():
            return legacy.read_text().strip()
        return make()

    return await installation_value(db, key, make_or_adopt)
