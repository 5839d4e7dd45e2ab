"""The azure-containerregistry SDK, unmodified, against a real `dockyard serve` over TLS.

It signs in the way it does against Azure: a service principal's Entra-shaped token from
Dockyard's own issuer (azure-identity's ClientSecretCredential), exchanged at /oauth2/exchange
for a refresh token, then at /oauth2/token for access tokens, on the challenges it gets. Then it
uses /acr/v1 (properties, listings followed through Link headers, PATCH of the locks, deletes)
and /v2 (blob upload, manifests).
"""

from __future__ import annotations

import importlib
import asyncio
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from .conftest import _LOGS
from .helpers import free_port

pytestmark = pytest.mark.e2e

DOMAIN = "dockyard.localhost"
AUDIENCE = "https://containerregistry.azure.net"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


@dataclass
class AcrServer:
    url: str
    ca: str
    tenant_id: str
    app_id: str
    secret: str
    log_path: Path
    proc: subprocess.Popen | None = field(default=None, repr=False)

    def client(self):
        from azure.containerregistry import ContainerRegistryClient
        from azure.identity import ClientSecretCredential

        credential = ClientSecretCredential(
            self.tenant_id, self.app_id, self.secret, authority=self.url,
            disable_instance_discovery=True, connection_verify=self.ca,
        )
        return ContainerRegistryClient(self.url, credential, audience=AUDIENCE, connection_verify=self.ca)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


async def _prepare(data_dir: Path) -> tuple[str, str, str]:
    """A first start of the data dir with a service principal that is Owner of the subscription."""
    from dockyard.auth import roles
    from dockyard.config import load
    from dockyard.server import open_services

    services, _ = await open_services(load(environ={}, data_dir=data_dir, owner_password="pw-" + uuid.uuid4().hex))
    try:
        subscription = (await services.tenancy.subscriptions())[0].id
        principal, secret = await services.principals.create_service_principal("acr-sdk-tests")
        await services.assignments.create(
            f"/subscriptions/{subscription}", roles.find("Owner"), principal.object_id, "ServicePrincipal"
        )
        return services.tenancy.tenant_id, principal.app_id, secret
    finally:
        await services.close()


@pytest.fixture(scope="module")
def acr_server(tmp_path_factory) -> AcrServer:
    importlib.import_module("azure.containerregistry")
    importlib.import_module("azure.identity")
    from dockyard import tls

    base = tmp_path_factory.mktemp("acr-sdk")
    certs = base / "certs"
    tls.issue_server_cert(tls.create_ca(certs), certs, DOMAIN)
    data_dir = base / "data"
    tenant_id, app_id, secret = asyncio.run(_prepare(data_dir))
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    server = AcrServer(url, str(certs / tls.CA_CERT), tenant_id, app_id, secret, base / "server.log")
    _LOGS["dockyard acr-sdk server"] = server.log_path
    cmd = [sys.executable, "-m", "dockyard", "serve", "--data-dir", str(data_dir), "--listen", f"127.0.0.1:{port}",
           "--domain", DOMAIN, "--tls-cert", str(certs / tls.SERVER_CERT), "--tls-key", str(certs / tls.SERVER_KEY)]
    with open(server.log_path, "ab") as log:
        server.proc = subprocess.Popen(cmd, env=dict(os.environ, DOCKYARD_LOG_LEVEL="debug"), stdout=log,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
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


@pytest.fixture
def client(acr_server):
    with acr_server.client() as client:
        yield client


def push_image(client, repository: str, tag: str | None, marker: str, architecture: str = "amd64") -> tuple[str, bytes]:
    """Upload a config and a layer with the SDK and set an OCI manifest; returns its digest and bytes."""
    config = json.dumps({"architecture": architecture, "os": "linux", "marker": marker}).encode()
    layer = f"layer of {marker}".encode()
    config_digest, config_size = client.upload_blob(repository, io.BytesIO(config))
    layer_digest, layer_size = client.upload_blob(repository, io.BytesIO(layer))
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": OCI_LAYER, "digest": layer_digest, "size": layer_size}],
    }
    body = json.dumps(manifest).encode()
    digest = client.set_manifest(repository, io.BytesIO(body), tag=tag, media_type=OCI_MANIFEST)
    assert digest == "sha256:" + hashlib.sha256(body).hexdigest()
    return digest, body


def test_repository_properties_and_catalog(client):
    digest, _ = push_image(client, "sdk/props", "v1", "props")
    properties = client.get_repository_properties("sdk/props")
    assert properties.name == "sdk/props"
    assert (properties.manifest_count, properties.tag_count) == (1, 1)
    assert (properties.can_read, properties.can_write, properties.can_delete, properties.can_list) == (True,) * 4
    assert properties.created_on <= properties.last_updated_on
    for name in ("sdk/cat-a", "sdk/cat-b", "sdk/cat-c"):
        push_image(client, name, "v1", name)
    names = list(client.list_repository_names(results_per_page=1))  # one page per repository, through Link
    assert names == sorted(names)
    assert {"sdk/props", "sdk/cat-a", "sdk/cat-b", "sdk/cat-c"} <= set(names)
    manifest = client.get_manifest("sdk/props", "v1")
    assert manifest.digest == digest and manifest.manifest["mediaType"] == OCI_MANIFEST


def test_tags_listed_by_time_through_pages(client):
    from azure.containerregistry import ArtifactTagOrder

    tags = ["t3", "t1", "t4", "t2"]
    for tag in tags:
        push_image(client, "sdk/tags", tag, tag)
    listed = [t.name for t in client.list_tag_properties("sdk/tags", results_per_page=1)]
    assert listed == sorted(tags)
    newest_first = client.list_tag_properties(
        "sdk/tags", order_by=ArtifactTagOrder.LAST_UPDATED_ON_DESCENDING, results_per_page=2
    )
    assert [t.name for t in newest_first] == tags[::-1]
    oldest_first = client.list_tag_properties("sdk/tags", order_by="timeasc", results_per_page=3)
    assert [t.name for t in oldest_first] == tags


def test_manifest_properties(client):
    from azure.containerregistry import ArtifactArchitecture, ArtifactManifestOrder, ArtifactOperatingSystem

    first, _ = push_image(client, "sdk/manifests", "v1", "first")
    second, _ = push_image(client, "sdk/manifests", "v2", "second", architecture="arm64")
    properties = client.get_manifest_properties("sdk/manifests", "v1")  # by tag: the SDK asks _tags first
    assert properties.digest == first
    assert properties.architecture == ArtifactArchitecture.AMD64
    assert properties.operating_system == ArtifactOperatingSystem.LINUX
    assert properties.tags == ["v1"]
    assert properties.size_in_bytes > 0
    assert properties.can_delete and properties.can_write and properties.can_read and properties.can_list
    listed = list(
        client.list_manifest_properties(
            "sdk/manifests", order_by=ArtifactManifestOrder.LAST_UPDATED_ON_DESCENDING, results_per_page=1
        )
    )
    assert [m.digest for m in listed] == [second, first]
    assert listed[0].architecture == ArtifactArchitecture.ARM64


def test_locks_through_the_sdk(client):
    from azure.core.exceptions import HttpResponseError

    digest, _ = push_image(client, "sdk/locks", "v1", "locked")
    other, other_body = push_image(client, "sdk/locks", None, "other")

    tag = client.update_tag_properties("sdk/locks", "v1", can_write=False)
    assert tag.can_write is False and tag.can_delete is True
    assert client.get_tag_properties("sdk/locks", "v1").can_write is False
    with pytest.raises(HttpResponseError) as refused:
        client.set_manifest("sdk/locks", io.BytesIO(other_body), tag="v1", media_type=OCI_MANIFEST)
    assert refused.value.status_code == 403
    with pytest.raises(HttpResponseError) as refused:
        client.delete_tag("sdk/locks", "v1")
    assert refused.value.status_code == 403
    client.update_tag_properties("sdk/locks", "v1", can_write=True)

    manifest = client.update_manifest_properties("sdk/locks", digest, can_delete=False)
    assert manifest.can_delete is False
    with pytest.raises(HttpResponseError) as refused:
        client.delete_manifest("sdk/locks", digest)
    assert refused.value.status_code == 403
    client.update_manifest_properties("sdk/locks", "v1", can_delete=True)

    hidden = client.update_repository_properties("sdk/locks", can_list=False)
    assert hidden.can_list is False
    assert "sdk/locks" not in list(client.list_repository_names())
    client.update_repository_properties("sdk/locks", can_list=True)
    assert "sdk/locks" in list(client.list_repository_names())

    client.update_manifest_properties("sdk/locks", other, can_read=False)
    with pytest.raises(HttpResponseError) as refused:
        client.get_manifest("sdk/locks", other)
    assert refused.value.status_code == 403

    client.delete_manifest("sdk/locks", digest)
    assert [t.name for t in client.list_tag_properties("sdk/locks")] == []


def test_deletes(client):
    from azure.core.exceptions import ResourceNotFoundError

    push_image(client, "sdk/deletes", "v1", "one")
    push_image(client, "sdk/deletes", "v2", "two")
    client.delete_tag("sdk/deletes", "v1")
    assert [t.name for t in client.list_tag_properties("sdk/deletes")] == ["v2"]
    client.delete_tag("sdk/deletes", "v1")  # a 404 is not an error to the SDK
    client.delete_repository("sdk/deletes")
    with pytest.raises(ResourceNotFoundError):
        client.get_repository_properties("sdk/deletes")
    assert "sdk/deletes" not in list(client.list_repository_names())
    client.delete_repository("sdk/deletes")
