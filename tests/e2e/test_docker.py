"""The seed workflow with the real docker CLI and a private dockerd."""

import json

import pytest
import requests

from .helpers import run

pytestmark = pytest.mark.e2e

REPO = "e2e/docker-busybox"


@pytest.fixture(scope="module")
def docker(dockerd, dockyard_server):
    """`docker ...` runner, logged in to the registry for the module."""
    def docker(*args, check=True, input=None):
        return run(["docker", *args], env=dockerd, check=check, input=input)

    login(docker, dockyard_server)
    return docker


def login(docker, server):
    out = docker("login", server.host, "-u", server.username, "--password-stdin",
                 input=server.password + "\n")
    assert "Login Succeeded" in out.stdout, out


def registry_digest(server, ref: str) -> str:
    """Digest of a manifest as the registry reports it (HEAD with a bearer token)."""
    token = server.token(f"repository:{REPO}:pull")
    r = requests.head(
        f"{server.url}/v2/{REPO}/manifests/{ref}",
        headers={"Authorization": f"Bearer {token}", "Accept": ", ".join([
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.oci.image.manifest.v1+json",
        ])},
        timeout=10,
    )
    assert r.status_code == 200, ("HEAD", r.url, r.status_code, dict(r.headers))
    return r.headers["Docker-Content-Digest"]


def repo_digest(docker, ref: str) -> str:
    out = docker("image", "inspect", "--format", "{{json .RepoDigests}}", ref).stdout
    digests = {d.split("@", 1)[1] for d in json.loads(out)}
    assert len(digests) == 1, out
    return digests.pop()


def remove_image(docker, image_id: str) -> None:
    """Remove an image with all its tags, so a later pull really downloads it."""
    docker("rmi", "-f", image_id)
    assert docker("image", "inspect", image_id, check=False).returncode != 0


def test_push_rmi_pull_run(docker, busybox_image, dockyard_server):
    target = f"{dockyard_server.host}/{REPO}:v1"
    docker("tag", busybox_image.ref, target)
    push = docker("push", target)
    digest = repo_digest(docker, target)
    assert f"v1: digest: {digest}" in push.stdout, push.stdout

    remove_image(docker, busybox_image.id)
    pull = docker("pull", target)
    assert f"Digest: {digest}" in pull.stdout, pull.stdout
    out = docker("run", "--rm", "--network", "none", target, "echo", "hello")
    assert out.stdout == "hello\n", out
    assert registry_digest(dockyard_server, "v1") == digest


def test_second_tag_and_pull_by_digest(docker, busybox_image, dockyard_server):
    target = f"{dockyard_server.host}/{REPO}:v2"
    docker("tag", busybox_image.ref, target)
    docker("push", target)
    digest = repo_digest(docker, target)

    remove_image(docker, busybox_image.id)
    by_digest = f"{dockyard_server.host}/{REPO}@{digest}"
    pull = docker("pull", by_digest)
    assert f"Digest: {digest}" in pull.stdout, pull.stdout
    out = docker("run", "--rm", "--network", "none", by_digest, "echo", "hello")
    assert out.stdout == "hello\n", out
    assert registry_digest(dockyard_server, "v2") == digest


def test_logout_then_pull_fails(docker, busybox_image, dockyard_server):
    target = f"{dockyard_server.host}/{REPO}:logout"
    docker("tag", busybox_image.ref, target)
    docker("push", target)
    remove_image(docker, busybox_image.id)

    docker("logout", dockyard_server.host)
    try:
        pull = docker("pull", target, check=False)
        assert pull.returncode != 0, pull.stdout
        err = pull.stderr.lower()
        assert any(s in err for s in (
            "unauthorized", "authentication required", "no basic auth credentials",
            "access to the resource is denied",
        )), pull.stderr
        assert docker("image", "inspect", target, check=False).returncode != 0
    finally:
        login(docker, dockyard_server)
