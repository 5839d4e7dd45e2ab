"""A real `dockyard serve --tls-cert --tls-key` with a CA from `dockyard cert create`, and clients
that trust the CA: Python (ssl + aiohttp), docker (certs.d), skopeo (--cert-dir)."""

from __future__ import annotations

import importlib
import base64
import contextlib
import hashlib
import ipaddress
import json
import os
import shutil
import socket
import ssl
import sys
import uuid
from pathlib import Path

import aiohttp
import pytest
import requests
from aiohttp.abc import AbstractResolver

from .conftest import _LOGS, DockyardServer
from .helpers import IN_CI, free_port, parse_challenge, run

pytestmark = pytest.mark.e2e

DOMAIN = "dockyard.localhost"
DOCKER_CERTS_D = Path("/etc/docker/certs.d")


def _host_address() -> str | None:
    """This machine's address on its default route, if not a loopback one.

    Docker treats registries on 127.0.0.0/8 as insecure: it speaks https to them but does
    not verify the certificate. Only on another address does it check it against certs.d.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # a UDP connect picks a route; nothing is sent
        except OSError:
            return None
        address = s.getsockname()[0]
    return None if ipaddress.ip_address(address).is_loopback else address


@pytest.fixture(scope="module")
def host_address() -> str | None:
    return _host_address()


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory, host_address):
    base = tmp_path_factory.mktemp("dockyard-tls")
    certs = base / "certs"
    out = run([sys.executable, "-m", "dockyard", "cert", "create", "--domain", DOMAIN, "--out", str(certs),
               "--registry", "tlsreg1", *(["--san", host_address] if host_address else [])])
    assert "Created the CA" in out.stdout, out.stdout
    data_dir = base / "data"
    data_dir.mkdir()
    server = DockyardServer(
        data_dir=data_dir,
        log_path=base / "server.log",
        port=free_port(),
        password="pw-" + uuid.uuid4().hex,
        tls_dir=certs,
        # docker verifies certificates only off loopback, so listen there too when we can
        bind="0.0.0.0" if host_address else "127.0.0.1",
    )
    _LOGS["dockyard tls server"] = server.log_path
    try:
        server.start()
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def ca_file(tls_server) -> Path:
    return tls_server.tls_dir / "ca.pem"


def test_server_says_https(tls_server):
    assert f"Dockyard listening on https://{tls_server.bind}:{tls_server.port}" in tls_server.log_text()


# ------------------------------------------------------------------------- Python: ssl + aiohttp


class _Loopback(AbstractResolver):
    """Every name is 127.0.0.1, so the certificate's names can be tried without DNS."""

    async def resolve(self, host, port=0, family=socket.AF_INET):
        return [{"hostname": host, "host": "127.0.0.1", "port": port, "family": socket.AF_INET,
                 "proto": 0, "flags": socket.AI_NUMERICHOST}]

    async def close(self) -> None:
        pass


def _session(context: ssl.SSLContext | bool = True) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context, resolver=_Loopback()))


def _basic(server: DockyardServer) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{server.username}:{server.password}".encode()).decode()}


async def _token(session, base: str, basic: dict[str, str], scope: str) -> str:
    async with session.get(f"{base}/v2/") as r:
        assert r.status == 401, (r.status, await r.text())
        scheme, params = parse_challenge(r.headers["WWW-Authenticate"])
    assert scheme == "bearer"
    assert params["realm"] == f"{base}/oauth2/token", params
    async with session.get(params["realm"], params={"service": params["service"], "scope": scope}, headers=basic) as t:
        assert t.status == 200, (t.status, await t.text())
        body = await t.json()
    return body.get("token") or body["access_token"]


@pytest.mark.parametrize("name", ["127.0.0.1", "localhost", DOMAIN, "tlsreg1." + DOMAIN, "any." + DOMAIN])
async def test_python_client_trusting_the_ca_gets_an_https_challenge_and_a_token(tls_server, ca_file, name):
    base = f"https://{name}:{tls_server.port}"
    context = ssl.create_default_context(cafile=str(ca_file))
    async with _session(context) as session:
        token = await _token(session, base, _basic(tls_server), "repository:e2e/tls-python:pull,push")
        async with session.get(f"{base}/v2/", headers={"Authorization": f"Bearer {token}"}) as r:
            assert r.status == 200, (r.status, await r.text())


async def test_python_blob_push_and_ranged_pull_over_tls(tls_server, ca_file):
    base = f"https://127.0.0.1:{tls_server.port}"
    repo = "e2e/tls-python"
    data = os.urandom(3 << 20)  # several TLS records and more than one upload buffer
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    context = ssl.create_default_context(cafile=str(ca_file))
    async with _session(context) as session:
        bearer = {"Authorization": "Bearer " + await _token(session, base, _basic(tls_server), f"repository:{repo}:pull,push")}
        async with session.post(f"{base}/v2/{repo}/blobs/uploads/", params={"digest": digest}, data=data,
                                headers={**bearer, "Content-Type": "application/octet-stream"}) as r:
            assert r.status == 201, (r.status, await r.text())
        async with session.get(f"{base}/v2/{repo}/blobs/{digest}", headers=bearer) as r:
            assert r.status == 200
            assert await r.read() == data
        async with session.get(f"{base}/v2/{repo}/blobs/{digest}", headers={**bearer, "Range": "bytes=1000-1999999"}) as r:
            assert r.status == 206
            assert await r.read() == data[1000:2000000]


async def test_python_clients_refuse_what_the_certificate_does_not_vouch_for(tls_server, ca_file):
    port = tls_server.port
    async with _session(True) as session:  # the public CAs only
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await session.get(f"https://127.0.0.1:{port}/v2/")
    async with _session(ssl.create_default_context(cafile=str(ca_file))) as session:
        # a wildcard covers one label
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await session.get(f"https://a.b.{DOMAIN}:{port}/v2/")
        # and there is no plain http on the TLS port
        with pytest.raises(aiohttp.ClientError):
            async with session.get(f"http://127.0.0.1:{port}/v2/") as r:
                await r.read()


def test_requests_with_a_bundle_of_certifi_and_the_ca(tls_server, ca_file, tmp_path):
    certifi = importlib.import_module("certifi")
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(Path(certifi.where()).read_bytes() + b"\n" + ca_file.read_bytes())
    r = requests.get(f"{tls_server.url}/v2/", timeout=10, verify=str(bundle))
    assert r.status_code == 401
    assert parse_challenge(r.headers["WWW-Authenticate"])[1]["realm"] == f"{tls_server.url}/oauth2/token"
    assert r.headers["Docker-Distribution-API-Version"] == "registry/2.0"


# ---------------------------------------------------------------------------------- docker


@contextlib.contextmanager
def docker_trusts(host: str, ca: Path):
    """/etc/docker/certs.d/<host>/ca.crt for as long as the block runs (dockerd has no flag to
    move certs.d; it reads the folder on every pull, push and login)."""
    folder = DOCKER_CERTS_D / host
    made = [p for p in (DOCKER_CERTS_D.parent, DOCKER_CERTS_D, folder) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ca, folder / "ca.crt")
    except PermissionError as e:
        if IN_CI:
            pytest.fail(f"cannot write {folder}: {e} (the e2e tests run as root)", pytrace=False)
        pytest.skip(f"cannot write {folder}: {e}")
    try:
        yield
    finally:
        (folder / "ca.crt").unlink(missing_ok=True)
        for p in reversed(made):
            with contextlib.suppress(OSError):
                p.rmdir()


@pytest.fixture(scope="module")
def docker(dockerd):
    def docker(*args, check=True, input=None):
        return run(["docker", *args], env=dockerd, check=check, input=input)

    return docker


def _registry_digest(server: DockyardServer, repo: str, ref: str) -> str:
    token = server.token(f"repository:{repo}:pull")
    r = requests.head(
        f"{server.url}/v2/{repo}/manifests/{ref}", timeout=10, verify=server.verify,
        headers={"Authorization": f"Bearer {token}", "Accept": ", ".join([
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.oci.image.manifest.v1+json",
        ])},
    )
    assert r.status_code == 200, (r.status_code, dict(r.headers))
    return r.headers["Docker-Content-Digest"]


def _push_pull(docker, server: DockyardServer, host: str, image, tag: str) -> None:
    out = docker("login", host, "-u", server.username, "--password-stdin", input=server.password + "\n")
    assert "Login Succeeded" in out.stdout, out
    repo = "e2e/tls-docker"
    target = f"{host}/{repo}:{tag}"
    docker("tag", image.ref, target)
    push = docker("push", target)
    digests = {d.split("@", 1)[1] for d in json.loads(
        docker("image", "inspect", "--format", "{{json .RepoDigests}}", target).stdout)}
    assert len(digests) == 1, digests
    digest = digests.pop()
    assert f"{tag}: digest: {digest}" in push.stdout, push.stdout

    docker("rmi", "-f", image.id)
    assert docker("image", "inspect", target, check=False).returncode != 0
    pull = docker("pull", target)
    assert f"Digest: {digest}" in pull.stdout, pull.stdout
    assert _registry_digest(server, repo, tag) == digest
    docker("logout", host)


def test_docker_push_and_pull_over_tls_on_loopback(docker, tls_server, ca_file, busybox_image):
    # docker skips verification on 127.0.0.0/8 but must speak https: the port has no plain http
    with docker_trusts(tls_server.host, ca_file):
        _push_pull(docker, tls_server, tls_server.host, busybox_image, "loopback")


def test_docker_verifies_the_certificate_with_certs_d(docker, tls_server, ca_file, busybox_image, host_address):
    if host_address is None:
        pytest.skip("no address but loopback, where docker does not verify certificates")
    host = f"{host_address}:{tls_server.port}"
    login = ["login", host, "-u", tls_server.username, "--password-stdin"]
    refused = docker(*login, check=False, input=tls_server.password + "\n")
    assert refused.returncode != 0, refused.stdout
    assert "x509" in refused.stderr or "certificate" in refused.stderr, refused.stderr
    with docker_trusts(host, ca_file):
        _push_pull(docker, tls_server, host, busybox_image, "verified")
    assert not (DOCKER_CERTS_D / host).exists()


# ---------------------------------------------------------------------------------- skopeo


@pytest.fixture(scope="module")
def skopeo(containers_env):
    from .helpers import require

    require("skopeo")

    def skopeo(*args, check=True):
        return run(["skopeo", "--policy", containers_env["policy"], *args], env=containers_env["env"], check=check)

    return skopeo


@pytest.fixture(scope="module")
def cert_dir(ca_file, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("skopeo-certs")
    shutil.copyfile(ca_file, folder / "ca.crt")
    return folder


def test_skopeo_copy_in_and_out_with_cert_dirs(skopeo, tls_server, cert_dir, busybox_oci, tmp_path):
    creds = f"{tls_server.username}:{tls_server.password}"
    remote = f"docker://{tls_server.host}/e2e/tls-skopeo:v1"

    refused = skopeo("inspect", "--creds", creds, remote, check=False)
    assert refused.returncode != 0
    assert "certificate signed by unknown authority" in refused.stderr, refused.stderr

    digestfile = tmp_path / "digest"
    skopeo("copy", "--preserve-digests", "--dest-cert-dir", str(cert_dir), "--dest-creds", creds,
           "--digestfile", str(digestfile), busybox_oci.ref, remote)
    assert digestfile.read_text().strip() == busybox_oci.manifest_digest

    info = json.loads(skopeo("inspect", "--cert-dir", str(cert_dir), "--creds", creds, remote).stdout)
    assert info["Digest"] == busybox_oci.manifest_digest

    out = tmp_path / "out"
    skopeo("copy", "--src-cert-dir", str(cert_dir), "--src-creds", creds, remote, f"oci:{out}:v1")
    index = json.loads((out / "index.json").read_text())
    assert [m["digest"] for m in index["manifests"]] == [busybox_oci.manifest_digest]
