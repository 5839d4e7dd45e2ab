"""buildah builds (from scratch, and from an OCI layout) and pushes to the registry."""

import json

import pytest

from .helpers import require, run

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def buildah(containers_env, dockyard_server):
    require("buildah", "skopeo")
    env = containers_env["env"]
    # isolated storage (also set in CONTAINERS_STORAGE_CONF): never the host's
    storage = ["--root", containers_env["root"], "--runroot", containers_env["runroot"],
               "--storage-driver", "vfs"]
    creds = f"{dockyard_server.username}:{dockyard_server.password}"

    def buildah(*args):
        return run(["buildah", *storage, *args], env=env)

    def push(image, dest, *flags) -> str:
        digestfile = containers_env["base"] / "buildah-digest"
        buildah("push", "--signature-policy", containers_env["policy"], "--tls-verify=false",
                "--creds", creds, "--digestfile", str(digestfile), *flags, image, dest)
        return digestfile.read_text().strip()

    def inspect(ref, raw=False):
        out = run(["skopeo", "--policy", containers_env["policy"], "inspect",
                   "--tls-verify=false", "--creds", creds, *(["--raw"] if raw else []),
                   f"docker://{ref}"], env=env).stdout
        return json.loads(out)

    buildah.push, buildah.inspect = push, inspect
    return buildah


def test_from_scratch_commit_push(buildah, busybox_rootfs, dockyard_server):
    ctr = buildah("from", "scratch").stdout.strip()
    buildah("copy", ctr, f"{busybox_rootfs}/", "/")
    buildah("config", "--cmd", '["/bin/sh"]', "--label", "dockyard.e2e=buildah", ctr)
    buildah("commit", "--format", "oci", ctr, "localhost/e2e-buildah:scratch")
    buildah("rm", ctr)

    ref = f"{dockyard_server.host}/e2e/buildah:scratch"
    digest = buildah.push("localhost/e2e-buildah:scratch", f"docker://{ref}")
    info = buildah.inspect(ref)
    assert info["Digest"] == digest
    assert info["Labels"]["dockyard.e2e"] == "buildah"
    assert buildah.inspect(ref, raw=True)["mediaType"] == \
        "application/vnd.oci.image.manifest.v1+json"


def test_pull_oci_layout_push_docker_format(buildah, busybox_oci, dockyard_server,
                                            containers_env):
    pulled = buildah("pull", "--signature-policy", containers_env["policy"], busybox_oci.ref)
    image = pulled.stdout.split()[-1]  # buildah pull prints the image ID last

    ref = f"{dockyard_server.host}/e2e/buildah:v2s2"
    digest = buildah.push(image, f"docker://{ref}", "--format", "v2s2")
    raw = buildah.inspect(ref, raw=True)
    assert raw["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert buildah.inspect(ref)["Digest"] == digest
    assert [layer["mediaType"] for layer in raw["layers"]] == \
        ["application/vnd.docker.image.rootfs.diff.tar.gzip"]
