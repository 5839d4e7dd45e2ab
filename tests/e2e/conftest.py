"""End-to-end fixtures: a real Dockyard server, a private dockerd, test images.

Everything runs in temp dirs: the server gets its own data dir and port,
dockerd its own data root, exec root, socket and containerd namespace, the
docker CLI its own DOCKER_CONFIG. A missing external binary skips the tests
that need it, except under CI=true, where it is an error.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import platform
import shutil
import signal
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from .helpers import IN_CI, free_port, parse_challenge, require, run

SERVER_START_TIMEOUT = 60.0
DOCKERD_START_TIMEOUT = 60.0

# Log files whose new lines are attached to the report of a failing test,
# and how much of their tail to show.
_LOGS: dict[str, Path] = {}
_LOG_LIMITS = {"dockyard server": 40_000, "dockerd": 6_000}
_LOG_OFFSETS = pytest.StashKey[dict]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "e2e: end-to-end test against a real server with real clients"
    )
    config.addinivalue_line("markers", "slow: takes minutes (or installs a large tool); still in the default run")


def _log_sizes() -> dict[str, int]:
    return {name: (p.stat().st_size if p.exists() else 0) for name, p in _LOGS.items()}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.stash[_LOG_OFFSETS] = _log_sizes()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    offsets = item.stash.get(_LOG_OFFSETS, {})
    for name, path in _LOGS.items():
        if not path.exists():
            continue
        with open(path, "rb") as f:
            f.seek(offsets.get(name, 0))
            text = f.read().decode("utf-8", "replace")
        limit = _LOG_LIMITS.get(name, 10_000)
        if len(text) > limit:
            text = "[... cut, see the file ...]\n" + text[-limit:]
        if text:
            rep.sections.append((f"{name} log since this test started ({path})", text))


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if exitstatus != 0 and _LOGS:
        terminalreporter.write_sep("-", "e2e logs")
        for name, path in _LOGS.items():
            terminalreporter.write_line(f"{name}: {path}")


def _short_tmpdir(prefix: str) -> Path:
    # unix socket paths must stay short (108 bytes), so use /tmp directly
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


def _stop_process(proc: subprocess.Popen, timeout: float = 20) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


# ---------------------------------------------------------------- server


@dataclass
class DockyardServer:
    data_dir: Path
    log_path: Path
    port: int
    password: str
    username: str = "owner"
    # serve https with tls_dir/server.pem and server-key.pem; clients trust tls_dir/ca.pem
    tls_dir: Path | None = None
    bind: str = "127.0.0.1"  # the address listened on; clients use 127.0.0.1
    env: dict[str, str] = field(default_factory=dict)  # more settings (DOCKYARD_*) for this node
    args: list[str] = field(default_factory=list)  # more `dockyard serve` flags
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls_dir else 'http'}://{self.host}"

    @property
    def verify(self) -> str | bool:
        """requests' `verify=`: the CA file of a TLS server."""
        return str(self.tls_dir / "ca.pem") if self.tls_dir else True

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> None:
        env = dict(os.environ, DOCKYARD_OWNER_PASSWORD=self.password, **self.env)
        cmd = [sys.executable, "-m", "dockyard", "serve",
               "--data-dir", str(self.data_dir), "--listen", f"{self.bind}:{self.port}", *self.args]
        if self.tls_dir:
            cmd += ["--tls-cert", str(self.tls_dir / "server.pem"),
                    "--tls-key", str(self.tls_dir / "server-key.pem")]
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== starting: {' '.join(cmd)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"dockyard server exited with code {self.proc.returncode} during startup;"
                    f" log:\n{self.log_text()}"
                )
            try:
                r = requests.get(f"{self.url}/v2/", timeout=2, verify=self.verify)
            except requests.ConnectionError as e:
                last = repr(e)
            else:
                if r.status_code == 401:
                    return
                # auth must be on: anything but 401 is a broken server
                self.stop()
                raise RuntimeError(
                    f"GET /v2/ answered {r.status_code} (expected 401 with auth on):"
                    f" {r.headers!r} {r.text[:500]!r}\nlog:\n{self.log_text()}"
                )
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(
            f"dockyard server not ready after {SERVER_START_TIMEOUT}s ({last}); log:\n"
            f"{self.log_text()}"
        )

    def stop(self) -> None:
        if self.proc is not None:
            _stop_process(self.proc)
            with open(self.log_path, "ab") as log:
                log.write(f"\n===== stopped, exit code {self.proc.returncode}\n".encode())
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def kill(self) -> None:
        """SIGKILL: the node dies mid-whatever, as a crashed machine would."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            with open(self.log_path, "ab") as log:
                log.write(b"\n===== killed\n")
            self.proc = None

    # -- docker token auth, for tests that speak raw HTTP

    def token(self, scope: str) -> str:
        """Get a bearer token the way clients do: follow the /v2/ challenge."""
        r = requests.get(f"{self.url}/v2/", timeout=10, verify=self.verify)
        assert r.status_code == 401, (r.status_code, r.text)
        scheme, params = parse_challenge(r.headers["WWW-Authenticate"])
        assert scheme == "bearer", r.headers["WWW-Authenticate"]
        realm = params["realm"]
        if realm.startswith("/"):
            realm = self.url + realm
        query = {"scope": scope}
        if "service" in params:
            query["service"] = params["service"]
        t = requests.get(realm, params=query, auth=(self.username, self.password), timeout=10,
                         verify=self.verify)
        assert t.status_code == 200, (t.request.url, t.status_code, t.text)
        body = t.json()
        return body.get("token") or body["access_token"]


@pytest.fixture(scope="session")
def dockyard_server(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("dockyard")
    data_dir = base / "data"
    data_dir.mkdir()
    server = DockyardServer(
        data_dir=data_dir,
        log_path=base / "server.log",
        port=free_port(),
        password="pw-" + uuid.uuid4().hex,
    )
    _LOGS["dockyard server"] = server.log_path
    try:
        server.start()
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)
    yield server
    server.stop()


# ---------------------------------------------------------------- dockerd


@pytest.fixture(scope="session")
def dockerd(dockyard_server: DockyardServer, tmp_path_factory: pytest.TempPathFactory):
    """A private dockerd; yields the env dict for `docker` subprocess calls."""
    bins = require("dockerd", "docker", "containerd", "runc")
    root = _short_tmpdir("dy-dockerd-")
    sock = root / "docker.sock"
    log_path = tmp_path_factory.mktemp("dockerd") / "dockerd.log"
    config_dir = root / "docker-config"
    config_dir.mkdir()
    (config_dir / "config.json").write_text("{}")
    ns = f"dockyard-e2e-{uuid.uuid4().hex[:8]}"
    cmd = [
        bins["dockerd"],
        "--iptables=false", "--ip-masq=false", "--bridge=none",
        "--storage-driver=vfs",
        "--data-root", str(root / "data"),
        "--exec-root", str(root / "exec"),
        "--pidfile", str(root / "dockerd.pid"),
        "-H", f"unix://{sock}",
        # dockerd starts its own containerd unless /run/containerd/containerd.sock
        # exists; a namespace of our own keeps us apart from a system one.
        "--containerd-namespace", ns,
        "--containerd-plugins-namespace", ns + "-plugins",
        # 127.0.0.0/8 is insecure by default; be explicit anyway.
        "--insecure-registry", dockyard_server.host,
    ]
    _LOGS["dockerd"] = log_path
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("DOCKER_") and k != "BUILDKIT_HOST"}
    env.update(DOCKER_HOST=f"unix://{sock}", DOCKER_CONFIG=str(config_dir))
    try:
        deadline = time.monotonic() + DOCKERD_START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"dockerd exited with {proc.returncode}:\n{log_path.read_text()}",
                            pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail(f"dockerd not ready after {DOCKERD_START_TIMEOUT}s:\n"
                            f"{log_path.read_text()}", pytrace=False)
            if sock.exists() and subprocess.run(
                [bins["docker"], "version"], env=env, capture_output=True
            ).returncode == 0:
                break
            time.sleep(0.3)
        yield env
    finally:
        _stop_process(proc, timeout=30)
        # a killed dockerd can leave its managed containerd behind
        cpid = root / "exec" / "containerd" / "containerd.pid"
        if cpid.exists():
            try:
                os.kill(int(cpid.read_text().strip()), signal.SIGTERM)
            except (ValueError, ProcessLookupError):
                pass
        shutil.rmtree(root, ignore_errors=True)


# ---------------------------------------------------------------- images


def _is_static_elf(path: Path) -> bool:
    """True if an ELF executable has no PT_INTERP (program interpreter)."""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2:  # ELF64 only
        return False
    endian = "<" if data[5] == 1 else ">"
    phoff, = struct.unpack_from(endian + "Q", data, 0x20)
    phentsize, phnum = struct.unpack_from(endian + "HH", data, 0x36)
    for i in range(phnum):
        p_type, = struct.unpack_from(endian + "I", data, phoff + i * phentsize)
        if p_type == 3:  # PT_INTERP
            return False
    return True


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a static busybox and a few applet symlinks."""
    src = Path("/bin/busybox")
    if not src.exists():
        which = shutil.which("busybox")
        if which is None:
            msg = "busybox not found (Debian package busybox-static)"
            if IN_CI:
                pytest.fail(msg, pytrace=False)
            pytest.skip(msg)
        src = Path(which)
    if not _is_static_elf(src.resolve()):
        pytest.fail(f"{src} is not a static binary; install Debian's busybox-static",
                    pytrace=False)
    root = tmp_path_factory.mktemp("busybox-rootfs")
    (root / "bin").mkdir()
    shutil.copy2(src, root / "bin" / "busybox")
    for applet in ("sh", "echo", "cat", "ls", "true"):
        (root / "bin" / applet).symlink_to("busybox")
    return root


@dataclass
class DockerImage:
    ref: str
    id: str


@pytest.fixture(scope="session")
def busybox_tar(busybox_rootfs: Path) -> bytes:
    return subprocess.run(
        ["tar", "-C", str(busybox_rootfs), "--owner=0", "--group=0", "--numeric-owner",
         "-c", "."], capture_output=True, check=True,
    ).stdout


@pytest.fixture
def busybox_image(dockerd: dict, busybox_tar: bytes) -> DockerImage:
    """dockyard-e2e/busybox:latest in the private dockerd, from `docker import`.

    Function-scoped: tests may remove it; it is imported again when missing.
    """
    ref = "dockyard-e2e/busybox:latest"
    have = run(["docker", "image", "inspect", "--format", "{{.Id}}", ref], env=dockerd,
               check=False)
    if have.returncode == 0:
        return DockerImage(ref=ref, id=have.stdout.strip())
    out = run(["docker", "import", "-c", 'CMD ["/bin/sh"]', "-", ref], env=dockerd,
              input=busybox_tar)
    return DockerImage(ref=ref, id=out.stdout.strip())


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _host_arch() -> str:
    m = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(m, m)


@dataclass
class OciLayout:
    path: Path
    tag: str
    manifest_digest: str
    manifest_bytes: bytes
    config_digest: str
    layer_digest: str

    @property
    def ref(self) -> str:
        """containers-image (skopeo/buildah) transport reference."""
        return f"oci:{self.path}:{self.tag}"


@pytest.fixture(scope="session")
def busybox_oci(busybox_rootfs: Path, tmp_path_factory: pytest.TempPathFactory) -> OciLayout:
    """The busybox folder as an OCI image layout, built here without docker."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for path in sorted(busybox_rootfs.rglob("*")):
            info = tf.gettarinfo(str(path), arcname=str(path.relative_to(busybox_rootfs)))
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mtime = 0
            if info.isfile():
                with open(path, "rb") as f:
                    tf.addfile(info, f)
            else:
                tf.addfile(info)
    layer_tar = buf.getvalue()
    layer = gzip.compress(layer_tar, mtime=0)
    config = json.dumps({
        "architecture": _host_arch(),
        "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [_sha256(layer_tar)]},
        "history": [{"created_by": "dockyard e2e busybox_oci fixture"}],
    }, separators=(",", ":")).encode()
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": _sha256(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": _sha256(layer), "size": len(layer)}],
    }, separators=(",", ":")).encode()
    out = tmp_path_factory.mktemp("busybox-oci")
    blobs = out / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    for blob in (layer, config, manifest):
        (blobs / _sha256(blob).split(":", 1)[1]).write_bytes(blob)
    (out / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    (out / "index.json").write_text(json.dumps({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": _sha256(manifest), "size": len(manifest),
            "annotations": {"org.opencontainers.image.ref.name": "latest"},
        }],
    }))
    return OciLayout(path=out, tag="latest", manifest_digest=_sha256(manifest),
                     manifest_bytes=manifest, config_digest=_sha256(config),
                     layer_digest=_sha256(layer))


# ------------------------------------------- containers-image tools (skopeo, buildah)


@pytest.fixture(scope="session")
def containers_env(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Env + paths that keep skopeo/buildah away from the host's config and storage."""
    base = tmp_path_factory.mktemp("containers")
    policy = base / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    storage_conf = base / "storage.conf"
    storage_conf.write_text(
        "[storage]\n"
        'driver = "vfs"\n'
        f'runroot = "{base / "runroot"}"\n'
        f'graphroot = "{base / "root"}"\n'
    )
    registries_conf = base / "registries.conf"
    registries_conf.write_text('unqualified-search-registries = []\n')
    auth_file = base / "auth.json"
    auth_file.write_text('{"auths": {}}')
    env = dict(os.environ)
    env.update(
        CONTAINERS_STORAGE_CONF=str(storage_conf),
        CONTAINERS_REGISTRIES_CONF=str(registries_conf),
        REGISTRY_AUTH_FILE=str(auth_file),
        TMPDIR=str(base),
    )
    return {"env": env, "policy": str(policy), "base": base,
            "root": str(base / "root"), "runroot": str(base / "runroot")}
