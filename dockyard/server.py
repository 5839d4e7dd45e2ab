"""The composition root: builds every service from settings and runs the HTTP server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from dataclasses import dataclass
from datetime import timedelta

from aiohttp import web

from dockyard.auth.access import Authorizer
from dockyard.auth.principals import PrincipalService
from dockyard.auth.tokens import TokenService, load_or_create_key
from dockyard.config import Settings
from dockyard.metadata import migrate
from dockyard.metadata.database import Database, utcnow
from dockyard.services.blobs import BlobService
from dockyard.services.listings import ListingService
from dockyard.services.manifests import ManifestService
from dockyard.services.registries import RegistryService
from dockyard.services.uploads import UploadService
from dockyard.storage import BlobStore, open_store

log = logging.getLogger("dockyard")


@dataclass
class Services:
    settings: Settings
    db: Database
    store: BlobStore
    registries: RegistryService
    blobs: BlobService
    uploads: UploadService
    manifests: ManifestService
    listings: ListingService
    principals: PrincipalService
    tokens: TokenService
    authorizer: Authorizer

    async def close(self) -> None:
        await self.store.close()
        await self.db.close()


async def open_services(settings: Settings) -> tuple[Services, str | None]:
    """Build the services, migrate the database and bootstrap a new data dir.

    Returns the services and, on first start without DOCKYARD_OWNER_PASSWORD,
    the generated owner password.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    db = Database(settings.database_url)
    await migrate.upgrade(db)
    store = open_store(settings.storage_url)
    blobs = BlobService(db, store)
    services = Services(
        settings=settings,
        db=db,
        store=store,
        registries=RegistryService(db, settings.domain, settings.default_registry),
        blobs=blobs,
        uploads=UploadService(db, store, blobs),
        manifests=ManifestService(db, settings.max_manifest_bytes),
        listings=ListingService(db, settings.max_page_size),
        principals=PrincipalService(db),
        tokens=TokenService(
            load_or_create_key(settings.data_dir / "keys" / "token-signing.pem"),
            access_lifetime=settings.access_token_seconds,
            refresh_lifetime=settings.refresh_token_seconds,
        ),
        authorizer=Authorizer(),
    )
    await services.registries.default()
    generated = await services.principals.bootstrap_owner(settings.data_dir, settings.owner_password)
    return services, generated


async def _expire_uploads(services: Services) -> None:
    period = timedelta(hours=services.settings.upload_expiry_hours)
    while True:
        try:
            count = await services.uploads.expire(utcnow() - period)
            if count:
                log.info("expired %d abandoned uploads", count)
        except Exception:
            log.exception("expiring uploads failed")
        await asyncio.sleep(600)


async def run(settings: Settings) -> None:
    from dockyard.http.app import create_app
    from dockyard.http.protocol import Runner

    services, generated = await open_services(settings)
    if generated:
        print(
            f"Created the owner principal 'owner' with password: {generated}\n"
            f"(shown once; also written to {settings.data_dir / 'owner.password'})",
            flush=True,
        )
    app = create_app(services)
    runner = Runner(app, access_log=log if settings.log_level == "debug" else None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, backlog=1024)
    await site.start()
    default = await services.registries.default()
    print(
        f"Dockyard listening on http://{settings.listen} (default registry {default.name!r}, "
        f"login server {default.login_server}, data in {settings.data_dir})",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    janitor = asyncio.create_task(_expire_uploads(services))
    try:
        await stop.wait()
    finally:
        janitor.cancel()
        await runner.cleanup()
        await services.close()


def main(settings: Settings) -> None:
    logging.basicConfig(
        level=getattr(logging, settings.log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    asyncio.run(run(settings))
