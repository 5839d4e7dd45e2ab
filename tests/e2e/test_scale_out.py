"""Two `dockyard serve` nodes and two `dockyard worker`s on one PostgreSQL and one object store
(Azurite, Ceph radosgw) behave as one registry: uploads hop between nodes, a push to one is pulled
from the other, a node killed mid-upload loses nothing, events are logged once."""

from __future__ import annotations

import json
import os

import pytest
import requests

from .helpers import require, run
from .scaleout import Client, make_cluster, sha256, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MiB = 1 << 20


@pytest.fixture(scope="module", params=["azure", "s3"])
def cluster(request, postgres_server, tmp_path_factory):
    cluster = make_cluster(request, postgres_server, tmp_path_factory.mktemp(f"cluster-{request.param}"),
                           request.param)
    try:
        cluster.start()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield cluster
    cluster.stop()


def fetch_blob(client: Client, node: int, digest: str) -> bytes:
    """GET a blob the way docker does: follow the 307 to the store, without our token."""
    response = client.request("GET", node, f"/v2/{client.repository}/blobs/{digest}")
    assert response.status_code == 307, (response.status_code, response.text[:300])
    location = response.headers["Location"]
    assert not location.startswith(client.cluster.nodes[node].url), location
    response = requests.get(location, timeout=60)
    assert response.status_code == 200, (response.status_code, response.text[:300])
    return response.content


def test_a_chunked_upload_alternating_between_nodes_completes(cluster):
    client = Client(cluster, "scale/chunks")
    data = os.urandom(13 * MiB + 12345)
    # Chunks of every awkward size: larger than a block/part, one byte, below the S3 part minimum.
    cuts = [0, 6 * MiB, 6 * MiB + 1, 9 * MiB, 13 * MiB, len(data)]
    started = client.request("POST", 0, f"/v2/{client.repository}/blobs/uploads/")
    assert started.status_code == 202, started.text
    location = started.headers["Location"]
    for i, (begin, end) in enumerate(zip(cuts, cuts[1:])):
        node = (i + 1) % 2
        response = client.request(
            "PATCH", node, location, data=data[begin:end],
            headers={"Content-Type": "application/octet-stream", "Content-Range": f"{begin}-{end - 1}"},
        )
        assert response.status_code == 202, (node, response.status_code, response.text)
        assert response.headers["Range"] == f"0-{end - 1}"
        location = response.headers["Location"]
    digest = sha256(data)
    done = client.request("PUT", 1, location, params={"digest": digest})
    assert done.status_code == 201, done.text
    assert fetch_blob(client, 0, digest) == data
    head = client.request("HEAD", 1, f"/v2/{client.repository}/blobs/{digest}")
    assert head.status_code == 200 and int(head.headers["Content-Length"]) == len(data)


def test_a_node_killed_mid_upload_loses_nothing(cluster):
    client = Client(cluster, "scale/killed")
    data = os.urandom(24 * MiB)
    started = client.request("POST", 0, f"/v2/{client.repository}/blobs/uploads/")
    location = started.headers["Location"]
    first = client.request("PATCH", 0, location, data=data[: 8 * MiB],
                           headers={"Content-Type": "application/octet-stream"})
    assert first.status_code == 202
    location = first.headers["Location"]
    victim = cluster.nodes[0]

    def dying_body():
        for offset in range(8 * MiB, 16 * MiB, MiB):
            if offset == 11 * MiB:
                victim.kill()  # three MiB of this chunk are on their way
            yield data[offset : offset + MiB]

    with pytest.raises(requests.RequestException):
        client.request("PATCH", 0, location, data=dying_body(), headers={"Content-Type": "application/octet-stream"})
    try:
        # The client asks the other node where the upload stands, and goes on from there.
        status = client.request("GET", 1, location)
        assert status.status_code == 204, status.text
        end = int(status.headers["Range"].split("-")[1]) + 1
        assert end == 8 * MiB, "only what was acknowledged counts"
        rest = client.request("PATCH", 1, status.headers["Location"], data=data[end:],
                              headers={"Content-Type": "application/octet-stream"})
        assert rest.status_code == 202, rest.text
        digest = sha256(data)
        done = client.request("PUT", 1, rest.headers["Location"], params={"digest": digest})
        assert done.status_code == 201, done.text
        assert fetch_blob(client, 1, digest) == data
    finally:
        victim.start()


def test_an_image_pushed_to_one_node_is_pulled_from_the_other(cluster, containers_env, busybox_oci, tmp_path):
    require("skopeo")
    a, b = cluster.nodes
    creds = f"{a.username}:{a.password}"

    def skopeo(*args: str):
        return run(["skopeo", "--policy", containers_env["policy"], "copy", "--src-tls-verify=false",
                    "--dest-tls-verify=false", *args], env=containers_env["env"])

    digestfile = tmp_path / "digest"
    skopeo("--preserve-digests", "--dest-creds", creds, "--digestfile", str(digestfile), busybox_oci.ref,
           f"docker://{a.host}/scale/busybox:v1")
    pushed = digestfile.read_text().strip()
    out = tmp_path / "pulled"
    skopeo("--src-creds", creds, f"docker://{b.host}/scale/busybox:v1", f"oci:{out}:v1")
    index = json.loads((out / "index.json").read_text())
    assert index["manifests"][0]["digest"] == pushed
    for descriptor in json.loads((out / "blobs" / "sha256" / pushed.split(":")[1]).read_bytes())["layers"]:
        blob = (out / "blobs" / "sha256" / descriptor["digest"].split(":")[1]).read_bytes()
        assert sha256(blob) == descriptor["digest"]


def test_tags_and_listings_agree_on_every_node(cluster):
    client = Client(cluster, "scale/tags")
    manifests = []
    for i in range(6):
        config = json.dumps({"n": i}).encode()
        assert client.request("POST", i % 2, f"/v2/{client.repository}/blobs/uploads/",
                              params={"digest": sha256(config)}, data=config).status_code == 201
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(config),
                       "size": len(config)},
            "layers": [],
        }).encode()
        manifests.append(manifest)
        put = client.request("PUT", i % 2, f"/v2/{client.repository}/manifests/t{i}", data=manifest,
                             headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
        assert put.status_code == 201, put.text
    # The tag `latest` moves back and forth between nodes; every node sees its last place.
    for i, manifest in enumerate(manifests):
        put = client.request("PUT", i % 2, f"/v2/{client.repository}/manifests/latest", data=manifest,
                             headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
        assert put.status_code == 201
    answers = []
    for node in (0, 1):
        tags = client.request("GET", node, f"/v2/{client.repository}/tags/list").json()
        latest = client.request("HEAD", node, f"/v2/{client.repository}/manifests/latest",
                                headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
        answers.append((tags, latest.headers["Docker-Content-Digest"]))
    assert answers[0] == answers[1]
    assert answers[0][0]["tags"] == ["latest"] + [f"t{i}" for i in range(6)]
    assert answers[0][1] == sha256(manifests[-1])


def test_workers_log_every_event_once_even_when_one_dies(cluster):
    client = Client(cluster, "scale/events")
    config = b"{}"
    assert client.request("POST", 0, f"/v2/{client.repository}/blobs/uploads/", params={"digest": sha256(config)},
                          data=config).status_code == 201

    def push(tag: str, node: int) -> None:
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(config),
                       "size": len(config)},
            "layers": [], "annotations": {"tag": tag},
        }).encode()
        response = client.request("PUT", node, f"/v2/{client.repository}/manifests/{tag}", data=manifest,
                                  headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
        assert response.status_code == 201

    for i in range(10):
        push(f"a{i}", i % 2)
    settled = "SELECT count(*) = 0 FROM events WHERE processed_at IS NULL"
    wait_for(lambda: cluster.query(settled), what="every event processed")
    victim = cluster.workers[0]
    victim.kill()
    victim.wait(timeout=10)
    for i in range(10):
        push(f"b{i}", i % 2)
    wait_for(lambda: cluster.query(settled), what="every event processed by the surviving worker")
    assert cluster.query("SELECT count(*) FROM audit_log") == cluster.query("SELECT count(*) FROM events")
    assert cluster.query(
        "SELECT count(*) FROM audit_log WHERE repository = 'scale/events' AND operation = 'Push'"
    ) == 20
    cluster.start_worker()


def test_in_proxy_mode_the_node_streams_blobs_itself(request, postgres_server, tmp_path, cluster):
    kind = "azure" if "azure" in cluster.env["DOCKYARD_STORAGE_URL"] else "s3"
    proxied = make_cluster(request, postgres_server, tmp_path, kind, nodes=1, blob_delivery="proxy")
    proxied.start()
    try:
        client = Client(proxied, "scale/proxied")
        data = os.urandom(3 * MiB)
        digest = sha256(data)
        assert client.request("POST", 0, f"/v2/{client.repository}/blobs/uploads/", params={"digest": digest},
                              data=data).status_code == 201
        response = client.request("GET", 0, f"/v2/{client.repository}/blobs/{digest}")
        assert response.status_code == 200 and response.content == data
        ranged = client.request("GET", 0, f"/v2/{client.repository}/blobs/{digest}", headers={"Range": "bytes=5-9"})
        assert ranged.status_code == 206 and ranged.content == data[5:10]
    finally:
        proxied.stop()
