"""Host routing to registries, and the first start of a data dir."""

from __future__ import annotations

import stat

from dockyard.config import load
from dockyard.server import open_services


async def test_host_routes_to_its_registry_and_falls_back_to_default(services):
    default = await services.registries.default()
    team = await services.registries.ensure("TeamRegistry")
    assert team.login_server == "teamregistry.localhost"
    assert (await services.registries.for_host("teamregistry.localhost:5000")).id == team.id
    assert (await services.registries.for_host("TEAMREGISTRY.LOCALHOST")).id == team.id
    assert (await services.registries.for_host("127.0.0.1:5000")).id == default.id
    # A login-server-shaped name of no registry names nothing (the data plane answers 404 there).
    assert await services.registries.for_host("unknown.localhost") is None
    assert (await services.registries.for_host("a.b.localhost")).id == default.id
    assert (await services.registries.by_login_server("teamregistry.localhost")).id == team.id
    assert await services.registries.by_login_server("teamregistry.example.com") is None


async def test_first_start_generates_owner_password_once(tmp_path):
    settings = load(environ={}, data_dir=tmp_path / "fresh")
    services, generated = await open_services(settings)
    try:
        assert generated and len(generated) >= 32
        password_file = settings.data_dir / "owner.password"
        assert password_file.read_text().strip() == generated
        assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
        assert (await services.principals.authenticate("owner", generated)).name == "owner"
        assert await services.principals.authenticate("owner", "wrong") is None
        assert (await services.registries.default()).name == "dockyard"
    finally:
        await services.close()
    again, generated_again = await open_services(settings)
    try:
        assert generated_again is None
    finally:
        await again.close()


async def test_owner_password_from_environment_is_stored_hashed(tmp_path):
    settings = load(environ={"DOCKYARD_OWNER_PASSWORD": "from-env-secret"}, data_dir=tmp_path / "d")
    services, generated = await open_services(settings)
    try:
        assert generated is None
        assert not (settings.data_dir / "owner.password").exists()
        assert (await services.principals.authenticate("owner", "from-env-secret")) is not None
        db_bytes = (settings.data_dir / "metadata.db").read_bytes()
        assert b"from-env-secret" not in db_bytes
    finally:
        await services.close()
