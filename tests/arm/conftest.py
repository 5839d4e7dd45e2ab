"""Fixtures for the ARM tests: in-process clients signed in with identity tokens minted by the
installation's own issuer (for shape tests), and a real TLS server for the Azure SDK tests."""

from __future__ import annotations

import importlib
import pytest

from dockyard.http.app import create_app
from tests.conftest import DockyardTestServer

ARM_AUDIENCE = "https://management.azure.com/"


def mint(services, principal, audience: str = ARM_AUDIENCE) -> dict[str, str]:
    """An Authorization header with an identity token for ``principal``."""
    issuer = services.issuer.issuer_url("https://login.example", None)
    return {"Authorization": "Bearer " + services.issuer.issue(principal, audience, issuer)}


class Arm:
    """An in-process ARM client: the app, the services, and headers per principal."""

    def __init__(self, client, services, owner) -> None:
        self.client = client
        self.services = services
        self.owner = owner
        self.headers = mint(services, owner)

    async def subscription(self) -> str:
        return (await self.services.tenancy.subscriptions())[0].id

    async def request(self, method: str, path: str, *, as_=None, json=None, data=None, headers=None, **kwargs):
        sent = dict(self.headers if as_ is None else mint(self.services, as_))
        sent.update(headers or {})
        if "?" not in path:
            path += "?api-version=2025-11-01"
        base = str(self.client.make_url("/")).rstrip("/")
        return await self.client.session.request(method, base + path, json=json, data=data, headers=sent, **kwargs)

    async def sp(self, name: str):
        principal, _ = await self.services.principals.create_service_principal(name)
        return principal


@pytest.fixture
async def arm(aiohttp_client, services):
    client = await aiohttp_client(DockyardTestServer(create_app(services)))
    owner = await services.principals.by_name("owner")
    return Arm(client, services, owner)


# ---------------------------------------------------------------- a real server over TLS

import asyncio  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import requests  # noqa: E402

from dockyard import tls  # noqa: E402
from dockyard.auth import roles  # noqa: E402
from dockyard.config import load  # noqa: E402
from dockyard.server import open_services  # noqa: E402

DOMAIN = "dockyard.localhost"
OWNER_PASSWORD = "arm-owner-password"


@dataclass
class ServicePrincipal:
    app_id: str
    secret: str
    object_id: str


@dataclass
class ArmServer:
    url: str
    ca: str
    tenant_id: str
    subscription_id: str
    principals: dict[str, ServicePrincipal]
    log_path: Path
    proc: subprocess.Popen | None = field(default=None, repr=False)

    def credential(self, who: str):
        from azure.identity import ClientSecretCredential

        sp = self.principals[who]
        return ClientSecretCredential(
            self.tenant_id, sp.app_id, sp.secret, authority=self.url,
            disable_instance_discovery=True, connection_verify=self.ca,
        )

    def client(self, kind, who: str = "admin", subscription: bool = True, **kwargs):
        """An Azure SDK management client of ``kind`` signed in as the service principal ``who``."""
        args = (self.credential(who), self.subscription_id) if subscription else (self.credential(who),)
        return kind(
            *args, base_url=self.url, credential_scopes=[self.url + "/.default"],
            connection_verify=self.ca, polling_interval=1, **kwargs,
        )

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _prepare(data_dir: Path) -> tuple[str, str, dict[str, ServicePrincipal]]:
    """First start of the data dir, with service principals: admin (Owner of the subscription),
    reader and nobody (no roles; tests grant what they need)."""
    services, _ = await open_services(load(environ={}, data_dir=data_dir, owner_password=OWNER_PASSWORD))
    try:
        subscription = (await services.tenancy.subscriptions())[0].id
        made = {}
        for who in ("admin", "reader", "nobody"):
            principal, secret = await services.principals.create_service_principal(f"arm-tests-{who}")
            made[who] = ServicePrincipal(principal.app_id, secret, principal.object_id)
        await services.assignments.create(
            f"/subscriptions/{subscription}", roles.find("Owner"), made["admin"].object_id, "ServicePrincipal"
        )
        return services.tenancy.tenant_id, subscription, made
    finally:
        await services.close()


@pytest.fixture(scope="session")
def arm_server(tmp_path_factory) -> ArmServer:
    importlib.import_module("azure.identity")
    base = tmp_path_factory.mktemp("arm-server")
    certs = base / "certs"
    ca = tls.create_ca(certs)
    tls.issue_server_cert(ca, certs, DOMAIN, registries=("armsdkreg", "armsdkdeny"))
    data_dir = base / "data"
    tenant_id, subscription_id, principals = asyncio.run(_prepare(data_dir))
    port = _free_port()
    url = f"https://127.0.0.1:{port}"
    server = ArmServer(url, str(certs / tls.CA_CERT), tenant_id, subscription_id, principals, base / "server.log")
    cmd = [sys.executable, "-m", "dockyard", "serve", "--data-dir", str(data_dir), "--listen", f"127.0.0.1:{port}",
           "--domain", DOMAIN, "--tls-cert", str(certs / tls.SERVER_CERT), "--tls-key", str(certs / tls.SERVER_KEY)]
    env = dict(os.environ, DOCKYARD_OWNER_PASSWORD=OWNER_PASSWORD, DOCKYARD_LOG_LEVEL="debug")
    with open(server.log_path, "ab") as log:
        server.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    try:
        while True:
            if server.proc.poll() is not None:
                pytest.fail(f"dockyard exited with {server.proc.returncode}:\n{server.log_text()}", pytrace=False)
            try:
                if requests.get(url + "/v2/", timeout=2, verify=server.ca).status_code == 401:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"dockyard did not start in 60 s:\n{server.log_text()}", pytrace=False)
            time.sleep(0.2)
        yield server
    finally:
        if server.proc.poll() is None:
            server.proc.send_signal(signal.SIGTERM)
            try:
                server.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.proc.kill()
                server.proc.wait(timeout=10)
