"""skopeo copy in and out of the registry, list-tags, delete."""

import hashlib
import json

import pytest
import requests

from .helpers import require, run

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def skopeo(containers_env, dockyard_server):
    require("skopeo")
    creds = f"{dockyard_server.username}:{dockyard_server.password}"

    def skopeo(cmd, *args, check=True):
        flags = {
            "copy": ["--src-tls-verify=false", "--dest-tls-verify=false"],
            "inspect": ["--tls-verify=false", "--creds", creds],
            "list-tags": ["--tls-verify=false", "--creds", creds],
            "delete": ["--tls-verify=false", "--creds", creds],
        }[cmd]
        return run(["skopeo", "--policy", containers_env["policy"], cmd, *flags, *args],
                   env=containers_env["env"], check=check)

    skopeo.creds = creds
    return skopeo


def push(skopeo, oci, dest, tmp_path) -> str:
    # --preserve-digests: without it skopeo may swap our layer for an equivalent
    # (same uncompressed content) blob it knows is in the registry already,
    # e.g. one buildah pushed recompressed, and rewrite the manifest.
    digestfile = tmp_path / "digest"
    skopeo("copy", "--preserve-digests", "--dest-creds", skopeo.creds,
           "--digestfile", str(digestfile), oci.ref, dest)
    return digestfile.read_text().strip()


def test_copy_oci_to_registry_and_back(skopeo, busybox_oci, dockyard_server, tmp_path):
    remote = f"docker://{dockyard_server.host}/e2e/skopeo:v1"
    digest = push(skopeo, busybox_oci, remote, tmp_path)
    assert digest == busybox_oci.manifest_digest

    raw = skopeo("inspect", "--raw", remote).stdout
    assert raw.encode() == busybox_oci.manifest_bytes
    info = json.loads(skopeo("inspect", remote).stdout)
    assert info["Digest"] == busybox_oci.manifest_digest
    assert info["Layers"] == [busybox_oci.layer_digest]

    out = tmp_path / "out"
    skopeo("copy", "--src-creds", skopeo.creds, remote, f"oci:{out}:v1")
    index = json.loads((out / "index.json").read_text())
    assert [m["digest"] for m in index["manifests"]] == [busybox_oci.manifest_digest]
    wanted = {busybox_oci.manifest_digest, busybox_oci.config_digest, busybox_oci.layer_digest}
    blobs = {"sha256:" + p.name: p.read_bytes() for p in (out / "blobs" / "sha256").iterdir()}
    assert set(blobs) == wanted
    for digest, data in blobs.items():
        assert "sha256:" + hashlib.sha256(data).hexdigest() == digest


def test_copy_between_repositories(skopeo, busybox_oci, dockyard_server, tmp_path):
    src = f"docker://{dockyard_server.host}/e2e/skopeo-src:v1"
    dst = f"docker://{dockyard_server.host}/e2e/skopeo-dst:v1"
    push(skopeo, busybox_oci, src, tmp_path)
    skopeo("copy", "--preserve-digests", "--src-creds", skopeo.creds,
           "--dest-creds", skopeo.creds, src, dst)
    info = json.loads(skopeo("inspect", dst).stdout)
    assert info["Digest"] == busybox_oci.manifest_digest


def test_list_tags(skopeo, busybox_oci, dockyard_server, tmp_path):
    repo = f"{dockyard_server.host}/e2e/skopeo-tags"
    for tag in ("b", "a", "1.0"):
        push(skopeo, busybox_oci, f"docker://{repo}:{tag}", tmp_path)
    listed = json.loads(skopeo("list-tags", f"docker://{repo}").stdout)
    assert sorted(listed["Tags"]) == ["1.0", "a", "b"]


def test_delete(skopeo, busybox_oci, dockyard_server, tmp_path):
    repo = "e2e/skopeo-del"
    remote = f"docker://{dockyard_server.host}/{repo}:gone"
    digest = push(skopeo, busybox_oci, remote, tmp_path)
    skopeo("delete", remote)

    after = skopeo("inspect", "--raw", remote, check=False)
    assert after.returncode != 0, after.stdout
    assert "manifest unknown" in after.stderr, after.stderr
    token = dockyard_server.token(f"repository:{repo}:pull")
    r = requests.get(f"{dockyard_server.url}/v2/{repo}/manifests/{digest}",
                     headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert r.status_code == 404, (r.status_code, dict(r.headers), r.text)
