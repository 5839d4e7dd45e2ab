"""The installation's keys live in the database: every node signs and verifies with the same ones."""

from __future__ import annotations

import asyncio

import pytest

from dockyard.auth.tokens import new_signing_key, signing_key
from dockyard.config import load
from dockyard.server import open_services


async def test_two_nodes_on_one_database_accept_each_others_tokens(settings):
    first, _ = await open_services(settings)
    # A second node: its own (empty) data dir, the same database and store.
    other_dir = settings.data_dir.parent / "other-node"
    second, _ = await open_services(
        load(environ={}, data_dir=other_dir, database_url=settings.database_url, storage_url=settings.storage_url)
    )
    try:
        assert not (other_dir / "keys").exists()
        assert first.tokens.key.private_numbers() == second.tokens.key.private_numbers()
        assert first.issuer.kid == second.issuer.kid
        assert first.tenancy.tenant_id == second.tenancy.tenant_id
        assert second.registries.sealer.open(first.registries.sealer.seal("admin password")) == "admin password"
    finally:
        await first.close()
        await second.close()


async def test_nodes_starting_together_agree_on_one_set_of_keys(settings):
    nodes = await asyncio.gather(
        *(
            open_services(load(environ={}, data_dir=settings.data_dir.parent / f"node{i}",
                               database_url=settings.database_url, storage_url=settings.storage_url))
            for i in range(3)
        )
    )
    try:
        keys = {services.tokens.key.private_numbers().private_value for services, _ in nodes}
        assert len(keys) == 1
    finally:
        for services, _ in nodes:
            await services.close()


async def test_keys_of_an_older_data_dir_are_adopted(tmp_path):
    pem = new_signing_key()
    (tmp_path / "data" / "keys").mkdir(parents=True)
    (tmp_path / "data" / "keys" / "token-signing.pem").write_text(pem)
    services, _ = await open_services(load(environ={}, data_dir=tmp_path / "data", owner_password="x" * 16))
    try:
        assert services.tokens.key.private_numbers() == signing_key(pem).private_numbers()
    finally:
        await services.close()


def test_the_newest_migration_is_the_one_alembic_calls_head():
    from alembic.script import ScriptDirectory

    from dockyard.metadata.migrate import alembic_config, head_revision

    assert head_revision() == ScriptDirectory.from_config(alembic_config()).get_current_head()


async def test_a_current_database_starts_without_loading_alembic(settings):
    import subprocess
    import sys

    code = (
        "import asyncio, sys\n"
        "from dockyard.metadata.database import Database\n"
        "from dockyard.metadata import migrate\n"
        f"db = Database({settings.database_url!r})\n"
        "asyncio.run(migrate.upgrade(db))\n"
        "print('alembic' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_serve_and_worker_migrate_a_new_database_in_a_child_and_never_load_alembic(tmp_path):
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'new.db'}"
    code = (
        "import asyncio, sys\n"
        "import sqlalchemy as sa\n"
        "from dockyard.metadata.database import Database\n"
        "from dockyard.metadata import migrate\n"
        "async def main():\n"
        f"    db = Database({url!r})\n"
        "    await migrate.upgrade_in_child(db)\n"
        "    print(await migrate.current_revision(db) == migrate.head_revision())\n"
        "    await db.close()\n"
        "asyncio.run(main())\n"
        "print('alembic' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "False"]


def test_a_migration_that_fails_in_the_child_stops_the_start(tmp_path):
    import asyncio

    from dockyard.metadata import migrate
    from dockyard.metadata.database import Database

    path = tmp_path / "not-a-database.db"
    path.write_bytes(b"this is not SQLite" * 100)

    async def main():
        db = Database(f"sqlite:///{path}")
        try:
            await migrate.upgrade_in_child(db)
        finally:
            await db.close()

    with pytest.raises(RuntimeError, match="migrating the database failed"):
        asyncio.run(main())
