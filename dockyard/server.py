"""The composition root: builds every service from settings and runs the HTTP server."""

from __future__ import annotations

import asyncio
import os
import contextlib
import logging
import signal
import ssl
import sys
from dataclasses import dataclass
from datetime import timedelta

from aiohttp import web

from dockyard import tls
from dockyard.auth.access import Authorizer
from dockyard.auth.assignments import AssignmentService
from dockyard.auth.issuer import WELL_KNOWN_AUDIENCES, ExternalIssuer, IdentityIssuer, new_rsa_key, rsa_key
from dockyard.auth.principals import PrincipalService
from dockyard.auth.scopemaps import ScopeMapService
from dockyard.auth.sealing import Sealer
from dockyard.auth.signin import SignIn
from dockyard.auth.throttle import Throttle
from dockyard.auth.tokens import TokenService, new_signing_key, signing_key
from dockyard.config import Settings
from dockyard.metadata import migrate
from dockyard.metadata.database import Database
from dockyard.services.attributes import AttributeService
from dockyard.services.blobs import BlobService
from dockyard.services.listings import ListingService
from dockyard.services.manifests import ManifestService
from dockyard.services.operations import OperationStore
from dockyard.services.registries import RegistryService
from dockyard.services.tenancy import TenancyService, installation_tenant
from dockyard.services.uploads import UploadService
from dockyard.services.installation import (
    IDENTITY_SIGNING_KEY,
    SECRETS_KEY,
    TOKEN_SIGNING_KEY,
    installation_secret,
)
from dockyard.worker import run as worker
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
    attributes: AttributeService
    principals: PrincipalService
    tokens: TokenService
    authorizer: Authorizer
    tenancy: TenancyService
    assignments: AssignmentService
    scopemaps: ScopeMapService
    issuer: IdentityIssuer
    signin: SignIn
    operations: OperationStore

    async def close(self) -> None:
        await self.store.close()
        await self.db.close()


async def open_services(settings: Settings, *, owner: bool = True,
                        migrate_in_child: bool = False) -> tuple[Services, str | None]:
    """Build the services, migrate the database and bootstrap a new data dir.

    Returns the services and, on first start without DOCKYARD_OWNER_PASSWORD,
    the generated owner password. ``migrate_in_child``: for long-running
    processes, which then never load Alembic (migrate.upgrade_in_child).
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    db = Database(settings.database_url)
    await (migrate.upgrade_in_child(db) if migrate_in_child else migrate.upgrade(db))
    store = open_store(settings.storage_url, settings.storage_options)
    blobs = BlobService(db, store)
    keys = settings.data_dir / "keys"
    assignments = AssignmentService(db)
    tenant_id = settings.tenant_id or await installation_tenant(db)
    secrets_key = await installation_secret(db, SECRETS_KEY, Sealer.new_key, keys)
    token_key = await installation_secret(db, TOKEN_SIGNING_KEY, new_signing_key, keys)
    identity_key = await installation_secret(db, IDENTITY_SIGNING_KEY, new_rsa_key, keys)
    registries = RegistryService(db, settings.domain, settings.default_registry, Sealer(secrets_key.encode()))
    principals = PrincipalService(db)
    scopemaps = ScopeMapService(db)
    tokens = TokenService(
        signing_key(token_key),
        access_lifetime=settings.access_token_seconds,
        refresh_lifetime=settings.refresh_token_seconds,
    )
    services = Services(
        settings=settings,
        db=db,
        store=store,
        registries=registries,
        blobs=blobs,
        uploads=UploadService(db, store, blobs, timedelta(hours=settings.upload_expiry_hours)),
        manifests=ManifestService(db, settings.max_manifest_bytes),
        listings=ListingService(db, settings.max_page_size),
        attributes=AttributeService(db, store, ManifestService(db, settings.max_manifest_bytes), settings.max_page_size),
        principals=principals,
        tokens=tokens,
        authorizer=Authorizer(assignments),
        tenancy=TenancyService(db, tenant_id),
        assignments=assignments,
        scopemaps=scopemaps,
        issuer=IdentityIssuer(
            rsa_key(identity_key),
            tenant_id,
            WELL_KNOWN_AUDIENCES,
            tuple(ExternalIssuer(url, ()) for url in settings.oidc_issuer_list),
        ),
        signin=SignIn(principals, scopemaps, registries, tokens, Throttle(settings.login_throttle)),
        operations=OperationStore(db),
    )
    await bootstrap(services)
    if not owner:  # a worker: the first serving node makes the owner and shows its password
        return services, None
    generated = await services.principals.bootstrap_owner(settings.data_dir, settings.owner_password)
    return services, generated


async def bootstrap(services: Services) -> None:
    """First start: the default subscription, a resource group and the default registry in it."""
    settings = services.settings
    subscription = await services.tenancy.ensure_subscription(settings.subscription_id or None)
    default = await services.registries.get(settings.default_registry)
    if default is None or default.resource_group_id is None:
        group, _ = await services.tenancy.put_group(subscription.id, settings.default_registry, "local", None)
        if default is None:
            await services.registries.ensure(settings.default_registry, resource_group_id=group.id)
        else:
            await services.registries.attach(default, group.id)


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The server's TLS context if tls_cert and tls_key are set; ValueError if only one is."""
    if not settings.tls_cert and not settings.tls_key:
        return None
    if not (settings.tls_cert and settings.tls_key):
        have, missing = ("tls_cert", "tls_key") if settings.tls_cert else ("tls_key", "tls_cert")
        raise ValueError(
            f"{have} is set but {missing} is not: TLS needs both a certificate and its key"
            " (--tls-cert/--tls-key, DOCKYARD_TLS_CERT/DOCKYARD_TLS_KEY or tls_cert/tls_key in the file)"
        )
    return tls.server_ssl_context(settings.tls_cert, settings.tls_key)


def _announce_owner(settings: Settings, generated: str | None) -> None:
    if generated:
        print(
            f"Created the owner principal 'owner' with password: {generated}\n"
            f"(shown once; also written to {settings.data_dir / 'owner.password'})",
            flush=True,
        )


async def prepare(settings: Settings) -> None:
    """First-start work (migrations, keys, the owner) once, before worker processes fork."""
    services, generated = await open_services(settings, migrate_in_child=True)
    _announce_owner(settings, generated)
    await services.close()


async def run(settings: Settings, *, reuse_port: bool = False, background_work: bool = True,
              announce: bool = True) -> None:
    from dockyard.http.app import create_app
    from dockyard.http.protocol import Runner

    context = ssl_context(settings)  # before anything is created: a bad certificate stops here
    services, generated = await open_services(settings, migrate_in_child=True)
    _announce_owner(settings, generated)
    app = create_app(services)
    runner = Runner(app, access_log=log if settings.log_level == "debug" else None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, backlog=1024, ssl_context=context,
                       reuse_port=reuse_port or None)
    await site.start()
    default = await services.registries.default()
    if announce:
        print(
            f"Dockyard listening on {'https' if context else 'http'}://{settings.listen} (default registry "
            f"{default.name!r}, login server {default.login_server}, data in {settings.data_dir})",
            flush=True,
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    background = None
    if settings.background_work == "inline" and background_work:
        background = asyncio.create_task(worker.background(services, stop))
    try:
        await stop.wait()
    finally:
        if background is not None:
            await background
        await runner.cleanup()
        await services.close()


async def run_worker(settings: Settings) -> None:
    """``dockyard worker``: the background work alone, until SIGINT or SIGTERM."""
    services, _ = await open_services(settings, owner=False, migrate_in_child=True)
    print(f"Dockyard worker {worker.this_worker()} started", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    try:
        await worker.background(services, stop)
    finally:
        await services.close()


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=getattr(logging, settings.log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    # The cloud SDKs log every request at INFO: keep that for debug.
    if settings.log_level != "debug":
        for name in ("azure", "botocore", "aiobotocore"):
            logging.getLogger(name).setLevel(logging.WARNING)


def main(settings: Settings, workers: int = 1) -> None:
    configure_logging(settings)
    if workers <= 1:
        asyncio.run(run(settings))
        return
    asyncio.run(prepare(settings))
    sys.exit(_serve_in_processes(settings, workers))


def _serve_child(settings: Settings, index: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent says when to stop (SIGTERM)
    asyncio.run(run(settings, reuse_port=True, background_work=index == 0, announce=index == 0))


def _serve_in_processes(settings: Settings, workers: int) -> int:
    """``serve --workers N``: N processes accept on one port (SO_REUSEPORT); the first also runs
    the background work. If one dies, the others are stopped too, for a supervisor to restart."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    children = [context.Process(target=_serve_child, args=(settings, i), daemon=False) for i in range(workers)]
    for child in children:
        child.start()
    stopping = False

    def stop(signum=None, frame=None) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.is_alive():
                os.kill(child.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    code = 0
    from multiprocessing.connection import wait

    pending = {child.sentinel: child for child in children}
    while pending:
        for sentinel in wait(list(pending)):
            child = pending.pop(sentinel)
            child.join()
            if not stopping:
                log.error("serving process %d exited with code %s; stopping the others", child.pid, child.exitcode)
                code = child.exitcode or 1
                stop()
    return code


def main_worker(settings: Settings) -> None:
    configure_logging(settings)
    asyncio.run(run_worker(settings))
