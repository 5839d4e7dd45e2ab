"""Fixtures shared by the in-process tests: a real Dockyard app on a temporary data dir."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import shutil

import pytest

from aiohttp.test_utils import TestServer

from dockyard.config import load
from dockyard.http.app import create_app
from dockyard.http.protocol import Runner
from dockyard.server import open_services

pytest_plugins = ["tests.servers.postgres", "tests.servers.azurite", "tests.servers.radosgw"]

OWNER_PASSWORD = "correct horse battery staple"


def basic(username: str = "owner", password: str = OWNER_PASSWORD) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database(request) -> str:
    """The metadata database the in-process tests run on: each such test runs on both."""
    return request.param


@pytest.fixture(scope="session")
def data_template(tmp_path_factory, database, request):
    """A data dir after its first start (migrated, owner created), built once and copied per test.

    On PostgreSQL its database is made a template database, which ``make_settings`` copies.
    """
    template = tmp_path_factory.mktemp(f"template-{database}") / "data"
    database_url = None
    if database == "postgresql":
        postgres = request.getfixturevalue("postgres_server")
        database_url = postgres.new_database(name="dockyard_first_start")

    async def first_start():
        settings = load(environ={}, data_dir=template, owner_password=OWNER_PASSWORD, database_url=database_url)
        services, _ = await open_services(settings)
        await services.close()

    asyncio.run(first_start())
    if database_url:
        (template / TEMPLATE_DATABASE).write_text(postgres.make_template(database_url))
    return template


TEMPLATE_DATABASE = "template-database"  # in a PostgreSQL data template: the template database's name


@pytest.fixture
def make_settings(tmp_path, data_template, request):
    """Settings of a new data dir (a copy of the template, with its own database), with ``flags`` on top."""

    def make(**flags):
        data_dir = tmp_path / "data"
        shutil.copytree(data_template, data_dir)
        marker = data_dir / TEMPLATE_DATABASE
        if marker.exists():
            postgres = request.getfixturevalue("postgres_server")
            flags["database_url"] = postgres.new_database(marker.read_text())
            marker.unlink()
            request.addfinalizer(lambda: postgres.drop_database(flags["database_url"]))
        return load(environ={}, data_dir=data_dir, owner_password=OWNER_PASSWORD, **flags)

    return make


@pytest.fixture
def settings(make_settings):
    return make_settings()


@pytest.fixture
async def services(settings):
    services, _ = await open_services(settings)
    yield services
    await services.close()


class DockyardTestServer(TestServer):
    """A test server that runs the app the way `dockyard serve` does (with its protocol runner)."""

    async def _make_runner(self, **kwargs):
        return Runner(self.app, **kwargs)


@pytest.fixture
async def client(aiohttp_client, services):
    """An HTTP client for the app, signed in as the owner with Basic credentials."""
    return await aiohttp_client(DockyardTestServer(create_app(services)), headers=basic())


@pytest.fixture
async def anonymous(aiohttp_client, services):
    return await aiohttp_client(DockyardTestServer(create_app(services)))


class Pusher:
    """Small helpers to put content in a repository through the HTTP API."""

    def __init__(self, client) -> None:
        self.client = client

    async def blob(self, repository: str, data: bytes) -> dict:
        digest = sha256(data)
        response = await self.client.post(f"/v2/{repository}/blobs/uploads/?digest={digest}", data=data)
        assert response.status == 201, await response.text()
        return {"mediaType": "application/octet-stream", "digest": digest, "size": len(data)}

    async def image(self, repository: str, tag: str | None = "latest", layers: int = 1, **extra) -> tuple[str, bytes]:
        config = await self.blob(repository, json.dumps({"architecture": "amd64", "os": "linux", "n": tag}).encode())
        config["mediaType"] = "application/vnd.oci.image.config.v1+json"
        descriptors = []
        for i in range(layers):
            layer = await self.blob(repository, f"layer {i} of {repository}:{tag}".encode())
            layer["mediaType"] = "application/vnd.oci.image.layer.v1.tar"
            descriptors.append(layer)
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config,
            "layers": descriptors,
            **extra,
        }
        body = json.dumps(manifest).encode()
        reference = tag or sha256(body)
        response = await self.client.put(
            f"/v2/{repository}/manifests/{reference}",
            data=body,
            headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
        )
        assert response.status == 201, await response.text()
        return response.headers["Docker-Content-Digest"], body


@pytest.fixture
def push(client) -> Pusher:
    return Pusher(client)
