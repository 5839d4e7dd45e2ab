"""PostgreSQL only: two Dockyards (two `Database`s, as two server processes would have) on one
database, racing the writes that read before they write; and outages of the server itself.

On SQLite every write transaction is serialized; on PostgreSQL (READ COMMITTED) these races are
only safe because of the locks the services take (``Database.lock``, ``repositories.lock``). Each
race repeats a few rounds: without the locks they end in IntegrityErrors or broken invariants.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError

from dockyard.auth.principals import PrincipalExists
from dockyard.auth.scopemaps import QuotaExceeded
from dockyard.config import load
from dockyard.core.errors import BlobUploadUnknown, ManifestBlobUnknown, NameUnknown, RegistryError, Unavailable
from dockyard.metadata.database import UnstorableText, _unavailable, utcnow
from dockyard.metadata.schema import manifests, registries, repositories, scope_maps, tags
from dockyard.server import open_services
from dockyard.services import skus
from dockyard.services.registries import RegistryConflict
from tests.conftest import OWNER_PASSWORD, sha256

ROUNDS = 4
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture
async def nodes(postgres_server, tmp_path):
    """Two services on one new PostgreSQL database and one data dir (blob store)."""
    url = postgres_server.new_database()
    settings = load(environ={}, data_dir=tmp_path / "data", owner_password=OWNER_PASSWORD, database_url=url)
    first, _ = await open_services(settings)
    second, _ = await open_services(settings)
    yield first, second
    await first.close()
    await second.close()
    postgres_server.drop_database(url)


async def race(*calls):
    """Run the calls at once; their results or exceptions. An IntegrityError fails the test."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    for result in results:
        if isinstance(result, (IntegrityError, DBAPIError, AssertionError)):
            raise result
    return results


async def seed_blobs(services, registry_id: int, repository: str, *contents: bytes) -> list[dict]:
    """Blob rows linked to the repository (the metadata of a push; no bytes needed for these races)."""
    descriptors = []
    async with services.db.write() as conn:
        for data in contents:
            await services.blobs.link(conn, registry_id, repository, sha256(data), len(data))
            descriptors.append({"mediaType": "application/octet-stream", "digest": sha256(data), "size": len(data)})
    return descriptors


def manifest(config: dict, layers: list[dict], note: str = "") -> bytes:
    body = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": layers}
    if note:
        body["annotations"] = {"note": note}
    return json.dumps(body).encode()


async def test_pushing_one_manifest_at_once_into_a_new_repository(nodes):
    a, b = nodes
    registry = await a.registries.default()
    for round in range(ROUNDS):
        repository = f"race/push{round}"
        config, layer = await seed_blobs(a, registry.id, repository, b"cfg %d" % round, b"layer %d" % round)
        body = manifest(config, [layer])
        pushes = [node.manifests.put(registry.id, repository, f"t{i}", body, OCI_MANIFEST)
                  for i in range(4) for node in (a, b)]
        results = await race(*pushes)
        assert {r.digest for r in results} == {sha256(body)}
        async with a.db.read() as conn:
            repository_id = (await conn.execute(sa.select(repositories.c.id).where(
                repositories.c.registry_id == registry.id, repositories.c.name == repository))).scalar_one()
            assert (await conn.execute(sa.select(sa.func.count()).where(
                manifests.c.repository_id == repository_id))).scalar() == 1
            assert (await conn.execute(sa.select(sa.func.count()).where(
                tags.c.repository_id == repository_id))).scalar() == 4


async def test_pushing_into_a_repository_being_deleted(nodes):
    a, b = nodes
    registry = await a.registries.default()
    for round in range(ROUNDS):
        repository = f"race/doomed{round}"
        config, layer = await seed_blobs(a, registry.id, repository, b"c%d" % round, b"l%d" % round)
        await a.manifests.put(registry.id, repository, "first", manifest(config, [layer]), OCI_MANIFEST)
        pushes = [node.manifests.put(registry.id, repository, f"p{i}", manifest(config, [layer], f"{i}"), OCI_MANIFEST)
                  for i in range(3) for node in (a, b)]
        links = [node.blobs.mount(registry.id, repository, _digest(layer), repository, _yes) for node in (a, b)]
        results = await race(b.attributes.delete_repository(registry, repository), *pushes, *links)
        for result in results:
            # a push after the delete finds its blobs gone from the (new) repository
            assert not isinstance(result, Exception) or isinstance(result, (ManifestBlobUnknown, NameUnknown)), result


async def test_deleting_a_registry_while_pushing_into_it(nodes):
    a, b = nodes
    for round in range(ROUNDS):
        name = f"doomedregistry{round}"
        registry = await a.registries.ensure(name)
        config, layer = await seed_blobs(a, registry.id, "app", b"c", b"l")
        pushes = [node.manifests.put(registry.id, f"app{i}", "v1", manifest(config, [layer]), OCI_MANIFEST)
                  for i in range(3) for node in (a, b)]
        links = [_link(node, registry.id, f"new{i}", b"x") for i in range(2) for node in (a, b)]
        results = await race(b.registries.delete(name), *pushes, *links)
        for result in results:
            assert not isinstance(result, Exception) or isinstance(result, (ManifestBlobUnknown, NameUnknown)), result
        async with a.db.read() as conn:
            assert (await conn.execute(sa.select(sa.func.count()).where(
                repositories.c.registry_id == registry.id))).scalar() == 0


async def test_creating_one_registry_name_twice(nodes, ):
    a, b = nodes
    group_id = (await a.registries.default()).resource_group_id
    for round in range(ROUNDS):
        name = f"twinregistry{round}"
        results = await race(*[node.registries.create(group_id, name, "local", {}) for node in (a, b, a, b)])
        assert sum(not isinstance(r, Exception) for r in results) >= 1
        assert all(isinstance(r, RegistryConflict) for r in results if isinstance(r, Exception))
        async with a.db.read() as conn:
            assert (await conn.execute(sa.select(sa.func.count()).where(
                registries.c.name_lower == name))).scalar() == 1


async def test_completing_one_upload_on_two_nodes(nodes):
    a, b = nodes
    registry = await a.registries.default()
    for round in range(ROUNDS):
        data = b"upload %d" % round
        upload = await a.uploads.start(registry.id, "race/upload")
        upload = await a.uploads.append(upload, _body(data))
        from dockyard.core.digests import Digest

        digest = Digest.parse(sha256(data))
        results = await race(a.uploads.complete(upload, digest), b.uploads.complete(upload, digest))
        won = [r for r in results if not isinstance(r, Exception)]
        assert len(won) == 1 and all(isinstance(r, BlobUploadUnknown) for r in results if isinstance(r, Exception))
        assert (await b.blobs.stat(registry.id, "race/upload", digest)).size == len(data)


async def test_scope_map_quota_holds_under_concurrent_creations(nodes):
    a, b = nodes
    registry = await a.registries.default()
    limit = skus.LIMITS[registry.sku]["ScopeMaps"]
    for round in range(2):
        async with a.db.write() as conn:
            await conn.execute(sa.delete(scope_maps).where(scope_maps.c.registry_id == registry.id))
            await conn.execute(sa.insert(scope_maps), [
                {"registry_id": registry.id, "name": f"filler{i}", "actions": ["repositories/a/content/read"],
                 "created_at": utcnow()} for i in range(limit - 1)
            ])
        results = await race(*[node.scopemaps.put_map(registry, f"last{round}x{i}{j}", ["repositories/a/content/read"],
                                                      None) for i in range(3) for j, node in enumerate((a, b))])
        assert sum(not isinstance(r, Exception) for r in results) == 1, results
        assert all(isinstance(r, QuotaExceeded) for r in results if isinstance(r, Exception))


async def test_creating_one_user_name_twice(nodes):
    a, b = nodes
    for round in range(ROUNDS):
        name = f"twin{round}"
        results = await race(*[node.principals.create_user(name, "pw-" + uuid.uuid4().hex) for node in (a, b, a, b)])
        assert sum(not isinstance(r, Exception) for r in results) == 1
        assert all(isinstance(r, PrincipalExists) for r in results if isinstance(r, Exception))


async def test_nodes_starting_together_on_a_new_database(postgres_server, tmp_path):
    """Migrations, the subscription, the default registry and the owner: made once, no errors."""
    url = postgres_server.new_database(empty=True)
    settings = [load(environ={}, data_dir=tmp_path / f"n{i}", owner_password=OWNER_PASSWORD, database_url=url)
                for i in range(3)]
    started = await asyncio.gather(*[open_services(s) for s in settings])
    try:
        async with started[0][0].db.read() as conn:
            assert (await conn.execute(sa.select(sa.func.count()).select_from(registries))).scalar() == 1
        assert len(await started[0][0].tenancy.subscriptions()) == 1
    finally:
        for services, _ in started:
            await services.close()
        postgres_server.drop_database(url)


# ---------------------------------------------------------------- the schema


async def test_names_tags_and_digests_compare_bytewise(nodes):
    a, _ = nodes
    async with a.db.read() as conn:
        rows = (await conn.execute(sa.text(
            "SELECT table_name || '.' || column_name, collation_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND (column_name IN ('name', 'name_lower', 'digest', 'subject', 'tag') "
            "OR (column_name = 'repository'))"
        ))).all()
    collations = dict(rows)
    for column in ("repositories.name", "tags.name", "manifests.digest", "blobs.digest", "uploads.repository",
                   "events.tag", "registries.name_lower", "scope_maps.name", "registry_tokens.name",
                   "resource_groups.name_lower"):
        assert collations[column] == "C", (column, collations[column])
    registry = await a.registries.default()
    names = ["b", "B", "a-b", "a_b", "a.b", "a", "Z/z", "z"]
    config, layer = await seed_blobs(a, registry.id, "order", b"c", b"l")
    for name in names:
        await seed_blobs(a, registry.id, name, b"c")
        await a.manifests.put(registry.id, "order", name.replace("/", "-"), manifest(config, [layer]), OCI_MANIFEST)
    listed = [n for n in (await a.listings.catalog(registry.id, 100, None)).items if n in names]
    assert listed == sorted(names, key=lambda n: n.encode())


async def test_values_round_trip(nodes):
    """Booleans, JSON, big sizes, timezone-aware times and generated ids as SQLite gives them."""
    a, _ = nodes
    registry = await a.registries.default()
    big = 5 << 40  # a 5 TiB blob: BIGINT
    await seed_blobs(a, registry.id, "types", b"")
    async with a.db.write() as conn:
        await a.blobs.link(conn, registry.id, "types", "sha256:" + "ab" * 32, big)
    assert (await a.blobs.stat(registry.id, "types", _digest({"digest": "sha256:" + "ab" * 32}))).size == big
    updated = await a.registries.update(registry.name, {"anonymous_pull": True, "tags": {"k": ["v", 1, None]}})
    assert updated.anonymous_pull is True and updated.tags == {"k": ["v", 1, None]}
    assert updated.created_at.tzinfo is not None


# ---------------------------------------------------------------- outages


async def test_a_stopped_server_is_unavailable_and_the_pool_recovers(postgres_server, nodes):
    a, _ = nodes
    async with a.db.read() as conn:  # the pool holds a connection to the server about to go
        await conn.execute(sa.text("SELECT 1"))
    postgres_server.stop()
    try:
        with pytest.raises(Unavailable):
            async with a.db.read() as conn:
                await conn.execute(sa.text("SELECT 1"))
        with pytest.raises(Unavailable):
            async with a.db.write() as conn:
                await conn.execute(sa.update(registries).values(updated_at=sa.func.now()))
        with pytest.raises(Unavailable):
            await a.principals.create_user("during-outage", "pw")
    finally:
        postgres_server.start()
    async with a.db.read() as conn:  # pool_pre_ping throws the dead connections away
        assert (await conn.execute(sa.text("SELECT 1"))).scalar() == 1
    assert (await a.principals.create_user("after-outage", "pw")).name == "after-outage"


async def test_connections_killed_mid_transaction_are_unavailable_then_recover(postgres_server, nodes):
    a, _ = nodes
    with pytest.raises(Unavailable):
        async with a.db.write() as conn:
            await conn.execute(sa.text("SELECT 1"))
            # what an admin shutdown or a restart does to a session: 57P01 admin_shutdown
            postgres_server.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                .replace("current_database()", repr(a.db.engine.url.database).replace('"', "'"))
            )
            await conn.execute(sa.text("SELECT 1"))
    async with a.db.write() as conn:
        assert (await conn.execute(sa.text("SELECT 1"))).scalar() == 1


async def test_sql_errors_stay_errors(nodes):
    a, _ = nodes
    with pytest.raises(DBAPIError) as raised:
        async with a.db.read() as conn:
            await conn.execute(sa.text("SELECT no_such_column FROM registries"))
    assert not isinstance(raised.value, Unavailable)
    with pytest.raises(IntegrityError):
        async with a.db.write() as conn:
            await conn.execute(sa.insert(registries).values(name="dockyard", name_lower="dockyard",
                                                            created_at=utcnow()))


async def test_text_with_nul_is_a_bad_request_not_a_500(nodes):
    a, _ = nodes
    with pytest.raises(UnstorableText) as raised:
        await a.registries.get("bad\x00name")
    assert isinstance(raised.value, RegistryError)


@pytest.mark.parametrize("error", [
    asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
    asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"),
    asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    asyncpg.exceptions.CrashShutdownError("terminating connection because of crash of another server process"),
    asyncpg.exceptions.DeadlockDetectedError("deadlock detected"),
    ConnectionRefusedError(111, "Connect call failed"),
    ConnectionResetError(104, "Connection reset by peer"),
], ids=lambda e: type(e).__name__)
def test_outage_errors_of_asyncpg_are_unavailable(error):
    wrapped = _wrap(error)
    assert isinstance(_unavailable(wrapped), Unavailable)


@pytest.mark.parametrize("error", [
    asyncpg.exceptions.UndefinedColumnError("column does not exist"),
    asyncpg.exceptions.PostgresSyntaxError("syntax error"),
    asyncpg.exceptions.NumericValueOutOfRangeError("integer out of range"),
    asyncpg.exceptions.InterfaceError("cannot perform operation: another operation is in progress"),
], ids=lambda e: type(e).__name__)
def test_sql_errors_of_asyncpg_are_not_unavailable(error):
    wrapped = _wrap(error)
    assert _unavailable(wrapped) is wrapped


# ---------------------------------------------------------------- helpers


def _wrap(error: BaseException) -> DBAPIError:
    """An asyncpg error as SQLAlchemy hands it over (its adapted error, caused by asyncpg's)."""
    from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi, dialect

    dbapi = dialect.import_dbapi()
    adapted = dbapi.OperationalError(str(error))
    adapted.__cause__ = error
    if getattr(error, "sqlstate", None):
        adapted.sqlstate = adapted.pgcode = error.sqlstate
    assert AsyncAdapt_asyncpg_dbapi
    return DBAPIError.instance("SELECT 1", {}, adapted, dbapi.Error)


def _digest(descriptor: dict):
    from dockyard.core.digests import Digest

    return Digest.parse(descriptor["digest"])


async def _yes(_name: str) -> bool:
    return True


async def _link(services, registry_id: int, repository: str, data: bytes) -> None:
    async with services.db.write() as conn:
        await services.blobs.link(conn, registry_id, repository, sha256(data), len(data))


async def _body(data: bytes):
    yield data
