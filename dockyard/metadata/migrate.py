"""Bringing a database to the newest schema with Alembic, at startup."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from dockyard.metadata.database import Database

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url:
        config.set_main_option("sqlalchemy.url", url)
    return config


async def upgrade(database: Database) -> None:
    def _run(connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")

    async with database.engine.begin() as conn:
        await conn.run_sync(_run)
