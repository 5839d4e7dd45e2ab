"""PostgreSQL or the object store restarting under load: clear 503s while it is away, nothing
committed lost, and service back by itself when it returns, without restarting Dockyard."""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter

import pytest
import requests

from .scaleout import Client, make_cluster, sha256, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture(scope="module", params=["azure", "s3"])
def cluster(request, postgres_server, tmp_path_factory):
    cluster = make_cluster(request, postgres_server, tmp_path_factory.mktemp(f"faults-{request.param}"),
                           request.param, nodes=1)
    cluster.start()
    yield cluster
    cluster.stop()


def push_image(client: Client, tag: str) -> tuple[str, bytes]:
    layer = os.urandom(64 << 10)
    config = json.dumps({"tag": tag}).encode()
    for blob in (layer, config):
        response = client.request("POST", 0, f"/v2/{client.repository}/blobs/uploads/",
                                  params={"digest": sha256(blob)}, data=blob)
        assert response.status_code == 201, response.text
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(config),
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha256(layer),
                    "size": len(layer)}],
    }).encode()
    response = client.request("PUT", 0, f"/v2/{client.repository}/manifests/{tag}", data=manifest,
                              headers={"Content-Type": OCI_MANIFEST})
    assert response.status_code == 201, response.text
    return sha256(manifest), layer


class Load:
    """Requests in a loop from another thread, counting the answers, while a dependency goes away."""

    def __init__(self, client: Client, path: str) -> None:
        self.client, self.path = client, path
        self.statuses: Counter[int | str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                response = self.client.request("GET", 0, self.path, timeout=20,
                                               headers={"Accept": OCI_MANIFEST})
                self.statuses[response.status_code] += 1
                if response.status_code == 503:
                    assert response.json()["errors"][0]["code"] == "UNAVAILABLE"
            except requests.RequestException as exc:
                self.statuses[type(exc).__name__] += 1
            time.sleep(0.05)

    def __enter__(self) -> "Load":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def assert_unavailable(response: requests.Response) -> None:
    assert response.status_code == 503, (response.status_code, response.text[:300])
    assert response.json()["errors"][0]["code"] == "UNAVAILABLE"


def test_postgresql_restarting_under_load(cluster, postgres_server):
    client = Client(cluster, "faults/database")
    digest, layer = push_image(client, "before")
    manifest_path = f"/v2/{client.repository}/manifests/before"
    with Load(client, manifest_path) as load:
        time.sleep(0.5)
        postgres_server.stop()
        try:
            wait_for(lambda: load.statuses[503], timeout=30, what="a 503 while PostgreSQL is away")
            assert_unavailable(client.request("GET", 0, manifest_path, timeout=20))
            config = b"{}"
            assert_unavailable(client.request("POST", 0, f"/v2/{client.repository}/blobs/uploads/",
                                              params={"digest": sha256(config)}, data=config, timeout=20))
            health = requests.get(cluster.nodes[0].url + "/healthz", timeout=20)
            assert health.status_code == 503
        finally:
            postgres_server.start()
        wait_for(lambda: client.request("GET", 0, manifest_path).status_code == 200, timeout=60,
                 what="service back after PostgreSQL returned")
    assert set(load.statuses) <= {200, 503}, load.statuses  # never a 500, never a hang
    assert load.statuses[200] and load.statuses[503]
    # What was committed before is all there, and new writes work.
    response = client.request("GET", 0, manifest_path, headers={"Accept": OCI_MANIFEST})
    assert response.headers["Docker-Content-Digest"] == digest
    blob = client.request("GET", 0, f"/v2/{client.repository}/blobs/{sha256(layer)}")
    assert requests.get(blob.headers["Location"], timeout=30).content == layer
    push_image(client, "after")
    assert requests.get(cluster.nodes[0].url + "/healthz", timeout=20).status_code == 200


def test_the_object_store_restarting_under_load(cluster):
    client = Client(cluster, "faults/store")
    digest, layer = push_image(client, "before")
    store = cluster.store
    started = client.request("POST", 0, f"/v2/{client.repository}/blobs/uploads/")
    location = started.headers["Location"]
    first = client.request("PATCH", 0, location, data=layer[:40_000],
                           headers={"Content-Type": "application/octet-stream"})
    assert first.status_code == 202
    with Load(client, f"/v2/{client.repository}/manifests/before") as load:
        store.stop()
        try:
            began = time.monotonic()
            refused = client.request("PATCH", 0, first.headers["Location"], data=layer[40_000:],
                                     headers={"Content-Type": "application/octet-stream"}, timeout=60)
            assert_unavailable(refused)
            assert time.monotonic() - began < 30, "an outage answers in seconds, not minutes"
            blob = os.urandom(1000)
            assert_unavailable(client.request("POST", 0, f"/v2/{client.repository}/blobs/uploads/",
                                              params={"digest": sha256(blob)}, data=blob, timeout=60))
        finally:
            store.start()
    # Manifests come from the database: they were served all along.
    assert set(load.statuses) == {200}, load.statuses
    # The upload goes on from what was acknowledged before the outage.
    status = client.request("GET", 0, location)
    assert status.headers["Range"] == f"0-{40_000 - 1}"
    rest = wait_for(
        lambda: (r := client.request("PATCH", 0, status.headers["Location"], data=layer[40_000:],
                                     headers={"Content-Type": "application/octet-stream"})).status_code == 202 and r,
        timeout=60, what="the store back",
    )
    done = client.request("PUT", 0, rest.headers["Location"], params={"digest": sha256(layer)})
    assert done.status_code == 201, done.text
    blob = client.request("GET", 0, f"/v2/{client.repository}/blobs/{sha256(layer)}")
    assert requests.get(blob.headers["Location"], timeout=30).content == layer
    push_image(client, "after")
