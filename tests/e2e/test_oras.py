"""ORAS (the PyPI `oras` client): artifacts, subject/referrers.

oras-py 0.2.x can set a `subject` on push but not an `artifactType`, and has
no referrers API: the artifactType manifest is built here and PUT, and the
referrers list is read, through the client's own authenticated do_request().
"""

import hashlib
import json
from urllib.parse import urlencode

import oras.client
import oras.oci
import pytest

pytestmark = pytest.mark.e2e

REPO = "e2e/oras"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
SBOM_TYPE = "application/vnd.dockyard.e2e.sbom.v1+json"
EMPTY = {"mediaType": "application/vnd.oci.empty.v1+json", "size": 2,
         "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"}


@pytest.fixture(scope="module")
def client(dockyard_server, tmp_path_factory):
    home = tmp_path_factory.mktemp("oras-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(home))  # oras-py reads/writes ~/.docker/config.json
        c = oras.client.OrasClient(hostname=dockyard_server.host, insecure=True)
        c.login(username=dockyard_server.username, password=dockyard_server.password,
                hostname=dockyard_server.host,
                config_path=str(home / ".docker" / "config.json"))
        yield c


def url(server, path):
    return f"{server.url}/v2/{REPO}/{path}"


def push_file(client, server, tmp_path, tag, content, **kw):
    f = tmp_path / f"{tag}.txt"
    f.write_text(content)
    r = client.push(target=f"{server.host}/{REPO}:{tag}", files=[f"{f}:text/plain"],
                    disable_path_validation=True, quiet=True, **kw)
    assert r.status_code == 201, (r.status_code, r.headers, r.text)
    return r


def manifest_descriptor(client, server, ref):
    r = client.do_request(url(server, f"manifests/{ref}"), "GET",
                          headers={"Accept": OCI_MANIFEST})
    assert r.status_code == 200, (r.status_code, r.text)
    digest = "sha256:" + hashlib.sha256(r.content).hexdigest()
    assert r.headers["Docker-Content-Digest"] == digest
    return {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(r.content)}


def referrers(client, server, digest, query=""):
    r = client.do_request(url(server, f"referrers/{digest}{query}"), "GET")
    assert r.status_code == 200, (r.status_code, r.headers, r.text)
    assert r.headers["Content-Type"].split(";")[0] == OCI_INDEX, r.headers
    index = r.json()
    assert index["schemaVersion"] == 2 and index["mediaType"] == OCI_INDEX, index
    return r, index["manifests"]


def test_push_pull_artifact(client, dockyard_server, tmp_path):
    r = push_file(client, dockyard_server, tmp_path, "hello", "hello from oras\n")
    digest = r.headers["Docker-Content-Digest"]
    assert manifest_descriptor(client, dockyard_server, "hello")["digest"] == digest

    files = client.pull(target=f"{dockyard_server.host}/{REPO}:hello",
                        outdir=str(tmp_path / "out"))
    assert [open(f).read() for f in files] == ["hello from oras\n"]


def test_subject_and_referrers(client, dockyard_server, tmp_path):
    push_file(client, dockyard_server, tmp_path, "subject", "the subject\n")
    subject = manifest_descriptor(client, dockyard_server, "subject")

    # 1. a referrer pushed by oras itself (no artifactType: the config type counts)
    r = push_file(client, dockyard_server, tmp_path, "signature", "a signature\n",
                  subject=oras.oci.Subject(**subject))
    assert r.headers.get("OCI-Subject") == subject["digest"], dict(r.headers)
    sig = manifest_descriptor(client, dockyard_server, "signature")

    # 2. an artifact manifest with artifactType, built here and pushed by digest
    container = client.get_container(f"{dockyard_server.host}/{REPO}")
    (tmp_path / "empty.json").write_text("{}")
    assert client.upload_blob(str(tmp_path / "empty.json"), container, EMPTY).ok
    sbom = tmp_path / "sbom.json"
    sbom.write_text('{"packages": ["busybox"]}')
    layer = oras.oci.NewLayer(str(sbom), media_type="application/json")
    assert client.upload_blob(str(sbom), container, layer).ok
    annotations = {"org.opencontainers.image.created": "2024-01-01T00:00:00Z",
                   "dev.dockyard.e2e": "sbom"}
    body = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": SBOM_TYPE,
        "config": EMPTY, "layers": [layer], "subject": subject, "annotations": annotations,
    }).encode()
    sbom_digest = "sha256:" + hashlib.sha256(body).hexdigest()
    r = client.do_request(url(dockyard_server, f"manifests/{sbom_digest}"), "PUT",
                          data=body, headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 201, (r.status_code, r.headers, r.text)
    assert r.headers.get("Docker-Content-Digest") == sbom_digest, dict(r.headers)
    assert r.headers.get("OCI-Subject") == subject["digest"], dict(r.headers)

    _, listed = referrers(client, dockyard_server, subject["digest"])
    by_digest = {m["digest"]: m for m in listed}
    assert set(by_digest) == {sig["digest"], sbom_digest}, listed
    assert by_digest[sbom_digest] == {
        "mediaType": OCI_MANIFEST, "digest": sbom_digest, "size": len(body),
        "artifactType": SBOM_TYPE, "annotations": annotations,
    }
    assert by_digest[sig["digest"]]["size"] == sig["size"]
    assert by_digest[sig["digest"]]["artifactType"] == "application/vnd.unknown.config.v1+json"

    # filtering is optional; when applied the header says so
    r, filtered = referrers(client, dockyard_server, subject["digest"],
                            "?" + urlencode({"artifactType": SBOM_TYPE}))
    if "artifactType" in r.headers.get("OCI-Filters-Applied", ""):
        assert [m["digest"] for m in filtered] == [sbom_digest]
    else:
        assert {m["digest"] for m in filtered} == set(by_digest)


def test_referrers_of_unreferenced_digest_is_empty(client, dockyard_server):
    digest = "sha256:" + hashlib.sha256(b"nothing refers to this").hexdigest()
    _, listed = referrers(client, dockyard_server, digest)
    assert listed == []
