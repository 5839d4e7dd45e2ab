"""The real Azure CLI against Dockyard registered as a custom cloud, then the seed's commands
unchanged (except ``acr create``, where az 2.91 refuses upper case), with a real dockerd.

- az lives in its own venv outside the repo, ``~/.cache/dockyard/azure-cli-venv`` (or
  ``$DOCKYARD_AZ_VENV``), made here when missing (``python3 -m venv`` + ``pip install
  azure-cli==AZ_VERSION``: about 75 s and 730 MB, then reused on this machine). The module takes
  about 20 s with az installed, about 95 s without.
- Dockyard serves https for the domain ``dockyard.localhost`` with a certificate from
  dockyard/tls.py (``*.dockyard.localhost``, ``dockyard.localhost``, 127.0.0.1); az trusts its CA
  through ``REQUESTS_CA_BUNDLE``. ``dockyard.localhost`` and the registry's login server get
  /etc/hosts lines (root only) before dockerd starts.
- az runs with a config dir of its own, telemetry and the survey off, a seeded version-check
  cache (else its first run asks azcliprod.blob.core.windows.net for the latest version), and
  every proxy variable pointing at a trap that refuses and records whatever tries to leave the
  machine; the last test asserts nothing did.
- Two ways to sign in: ``core.instance_discovery=false`` with Entra's ``/<tenant>`` authority
  (ARM at ``https://dockyard.localhost:PORT/``), and the ``/adfs`` authority, which needs no setting
  (ARM at ``https://127.0.0.1:PORT/``).

Tests run in file order and share state.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socketserver
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from unittest import mock

import pytest
import requests

from .conftest import _LOGS, DockyardServer
from .helpers import etc_hosts, free_port, run

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

AZ_VERSION = "2.91.0"
AZ_VENV = Path(os.environ.get("DOCKYARD_AZ_VENV") or Path.home() / ".cache" / "dockyard" / "azure-cli-venv")
AZ_INSTALL_TIMEOUT = 1800

DOMAIN = "dockyard.localhost"
GROUP = "myResourceGroup"
REGISTRY = "myContainerRegistry"
NULL_GUID = "00000000-0000-0000-0000-000000000000"
LOGIN_HOST = f"{REGISTRY.lower()}.{DOMAIN}"


# ---------------------------------------------------------------- az itself


def _clean_env() -> dict[str, str]:
    """The environment without anything that would steer az or its Python elsewhere."""
    drop = ("AZURE_", "PYTHON", "VIRTUAL_ENV", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_",
            "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "DOCKER_", "PIP_")
    return {k: v for k, v in os.environ.items() if not k.upper().startswith(drop)}


def _installed_version(venv: Path) -> str | None:
    python = venv / "bin" / "python"
    if not (venv / "bin" / "az").exists() or not python.exists():
        return None
    out = subprocess.run([str(python), "-c", "from importlib.metadata import version; print(version('azure-cli'))"],
                         capture_output=True, text=True, env=_clean_env())
    return out.stdout.strip() if out.returncode == 0 else None


@pytest.fixture(scope="module")
def az_bin() -> Path:
    """``az`` AZ_VERSION, installed into AZ_VENV first if it isn't there (one installer at a time)."""
    AZ_VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(AZ_VENV.parent / f".{AZ_VENV.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _installed_version(AZ_VENV) != AZ_VERSION:
            env = _clean_env()
            if not (AZ_VENV / "bin" / "python").exists():
                python3 = shutil.which("python3") or sys.executable
                run([python3, "-m", "venv", str(AZ_VENV)], env=env, timeout=300)
            run([str(AZ_VENV / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                 f"azure-cli=={AZ_VERSION}"], env=env, timeout=AZ_INSTALL_TIMEOUT)
            installed = _installed_version(AZ_VENV)
            assert installed == AZ_VERSION, f"{AZ_VENV} holds azure-cli {installed}, not {AZ_VERSION}"
    return AZ_VENV / "bin" / "az"


# ---------------------------------------------------------------- nothing leaves the machine


class EgressTrap(socketserver.ThreadingTCPServer):
    """An HTTP proxy that refuses everything and records what was asked of it."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        self.attempts: list[str] = []
        super().__init__(("127.0.0.1", 0), _TrapHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _TrapHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        line = self.rfile.readline(4096).decode("latin-1").strip()
        self.server.attempts.append(line)
        self.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


@pytest.fixture(scope="module")
def egress_trap():
    trap = EgressTrap()
    thread = threading.Thread(target=trap.serve_forever, daemon=True)
    thread.start()
    yield trap
    trap.shutdown()
    trap.server_close()


# ---------------------------------------------------------------- Dockyard over TLS


@dataclass
class DomainServer(DockyardServer):
    domain: str = DOMAIN

    def start(self) -> None:
        with mock.patch.dict(os.environ, {"DOCKYARD_DOMAIN": self.domain}):
            super().start()

    @property
    def ca_file(self) -> str:
        return str(self.tls_dir / "ca.pem")

    def arm(self, host: str) -> str:
        return f"https://{host}:{self.port}/"


@pytest.fixture(scope="module")
def hosts():
    """/etc/hosts lines for the ARM host and the registry's login server (before dockerd starts)."""
    with etc_hosts([DOMAIN, LOGIN_HOST], f"dockyard-az-e2e-{os.getpid()}") as names:
        yield names


@pytest.fixture(scope="module")
def server(hosts, tmp_path_factory: pytest.TempPathFactory):
    from dockyard import tls

    base = tmp_path_factory.mktemp("dockyard-az")
    certs = base / "certs"
    ca, _ = tls.load_or_create_ca(certs)
    tls.issue_server_cert(ca, certs, DOMAIN)
    (base / "data").mkdir()
    server = DomainServer(data_dir=base / "data", log_path=base / "server.log", port=free_port(),
                          password="pw-" + uuid.uuid4().hex, tls_dir=certs)
    _LOGS["dockyard az server"] = server.log_path
    try:
        server.start()
    except RuntimeError as error:
        pytest.fail(str(error), pytrace=False)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def docker_env(hosts, dockerd: dict) -> dict:
    """dockerd's env, requested after ``hosts`` so that dockerd (when this module starts it) sees them."""
    return dockerd


# ---------------------------------------------------------------- running az


class Az:
    """Runs the real az with a config dir of its own, offline but for Dockyard."""

    def __init__(self, az_bin: Path, server: DomainServer, config_dir: Path, trap: EgressTrap,
                 extra_env: dict | None = None) -> None:
        self.az_bin, self.config_dir = az_bin, config_dir
        config_dir.mkdir(parents=True, exist_ok=True)
        self._seed_version_check()
        self.env = _clean_env()
        self.env.update(
            AZURE_CONFIG_DIR=str(config_dir),
            REQUESTS_CA_BUNDLE=server.ca_file,
            AZURE_CORE_COLLECT_TELEMETRY="false",
            AZURE_CORE_SURVEY_MESSAGE="false",
            AZURE_CORE_NO_COLOR="true",
            AZURE_CORE_OUTPUT="json",
            AZURE_CORE_LOGIN_EXPERIENCE_V2="off",
            AZURE_EXTENSION_USE_DYNAMIC_INSTALL="no",
            # anything that isn't Dockyard goes to the trap
            HTTP_PROXY=trap.url, HTTPS_PROXY=trap.url, ALL_PROXY=trap.url,
            http_proxy=trap.url, https_proxy=trap.url, all_proxy=trap.url,
            NO_PROXY=f"127.0.0.1,localhost,{DOMAIN}", no_proxy=f"127.0.0.1,localhost,{DOMAIN}",
        )
        self.env.update(extra_env or {})
        self.seconds: list[tuple[str, float]] = []

    def _seed_version_check(self) -> None:
        """What az writes after its daily version check, so that it doesn't make one."""
        path = self.config_dir / "versionCheck.json"
        if not path.exists():
            versions = {name: {"local": AZ_VERSION, "pypi": AZ_VERSION} for name in ("azure-cli", "core")}
            path.write_text(json.dumps({
                "versions": versions, "update_time": datetime.now().strftime("%Y-%m-%d %H:%M:%S.%f"),
            }))

    def __call__(self, *args: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
        started = time.monotonic()
        proc = subprocess.run([str(self.az_bin), *args], capture_output=True, text=True,
                              env={**self.env, **(env or {})}, timeout=300, stdin=subprocess.DEVNULL)
        self.seconds.append((" ".join(args[:3]), time.monotonic() - started))
        if check and proc.returncode != 0:
            raise AssertionError(f"az {' '.join(args)} exited {proc.returncode}\n"
                                 f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}")
        return proc

    def json(self, *args: str, **kwargs):
        out = self(*args, **kwargs).stdout
        return json.loads(out) if out.strip() else None


@pytest.fixture(scope="module")
def az(az_bin: Path, server: DomainServer, egress_trap: EgressTrap, tmp_path_factory) -> Az:
    return Az(az_bin, server, tmp_path_factory.mktemp("az-config"), egress_trap)


@pytest.fixture(scope="module")
def state() -> dict:
    return {}


@pytest.fixture(scope="module")
def service_principal(server: DomainServer, tmp_path_factory) -> dict:
    """An Owner of the subscription, made with Dockyard's own CLI (``dockyard ad sp create-for-rbac``)."""
    env = {**os.environ, "DOCKYARD_CONFIG_DIR": str(tmp_path_factory.mktemp("dockyard-cli")),
           "REQUESTS_CA_BUNDLE": server.ca_file}
    env.pop("DOCKYARD_ENDPOINT", None)
    dockyard = [sys.executable, "-m", "dockyard"]
    run([*dockyard, "login", "--endpoint", server.url, "-u", server.username, "-p", server.password,
         "-o", "none"], env=env)
    subscription = json.loads(run([*dockyard, "account", "show", "--query", "id"], env=env).stdout)
    sp = json.loads(run([*dockyard, "ad", "sp", "create-for-rbac", "--name", "az-e2e", "--role", "Owner",
                         "--scopes", f"/subscriptions/{subscription}"], env=env).stdout)
    return {**sp, "subscription": subscription}


# ---------------------------------------------------------------- the seed workflow


def test_cloud_register(az: Az, server: DomainServer):
    arm = server.arm(DOMAIN)
    az("cloud", "register", "-n", "Dockyard", "--endpoint-resource-manager", arm)
    az("cloud", "set", "-n", "Dockyard")
    az("config", "set", "core.instance_discovery=false")
    cloud = az.json("cloud", "show", "-n", "Dockyard")
    base = arm.rstrip("/")
    assert cloud["isActive"] is True
    assert cloud["endpoints"]["resourceManager"] == arm
    assert cloud["endpoints"]["activeDirectory"] == base
    assert cloud["endpoints"]["activeDirectoryResourceId"] == arm
    assert cloud["suffixes"]["acrLoginServerEndpoint"] == f".{DOMAIN}:{server.port}"


def test_login_service_principal(az: Az, service_principal: dict):
    sp = service_principal
    accounts = az.json("login", "--service-principal", "-u", sp["appId"], "-p", sp["password"],
                       "--tenant", sp["tenant"])
    assert [a["id"] for a in accounts] == [sp["subscription"]]
    account = accounts[0]
    assert account["cloudName"] == "Dockyard" and account["isDefault"] is True and account["state"] == "Enabled"
    assert account["tenantId"] == sp["tenant"]
    assert account["user"] == {"name": sp["appId"], "type": "servicePrincipal"}
    assert az.json("account", "show", "--query", "id") == sp["subscription"]


def test_group_create(az: Az, service_principal: dict):
    group = az.json("group", "create", "--name", GROUP, "--location", "eastus")
    assert group["name"] == GROUP and group["location"] == "eastus"
    assert group["id"] == f"/subscriptions/{service_principal['subscription']}/resourceGroups/{GROUP}"
    assert group["properties"]["provisioningState"] == "Succeeded"


def test_acr_create(az: Az, server: DomainServer, state: dict):
    registry = az.json("acr", "create", "--resource-group", GROUP, "--name", REGISTRY.lower(), "--sku", "Basic")
    assert registry["name"] == REGISTRY.lower()
    assert registry["loginServer"] == f"{LOGIN_HOST}:{server.port}"
    assert registry["provisioningState"] == "Succeeded"
    assert registry["sku"]["name"] == "Basic"
    assert registry["adminUserEnabled"] is False
    assert registry["location"] == "eastus"
    assert registry["resourceGroup"] == GROUP
    state["login_server"] = registry["loginServer"]


def test_acr_login_then_docker_push_and_pull(az: Az, docker_env: dict, busybox_image, state: dict):
    with_docker = {"DOCKER_HOST": docker_env["DOCKER_HOST"], "DOCKER_CONFIG": docker_env["DOCKER_CONFIG"]}
    out = az("acr", "login", "--name", REGISTRY, env=with_docker, check=False)
    if out.returncode != 0 and "no such host" in out.stderr:  # dockerd started before the hosts lines: Go re-reads in 5 s
        time.sleep(6)
        out = az("acr", "login", "--name", REGISTRY, env=with_docker, check=False)
    assert out.returncode == 0 and "Login Succeeded" in out.stdout + out.stderr, (out.stdout, out.stderr)
    auths = json.loads((Path(docker_env["DOCKER_CONFIG"]) / "config.json").read_text()).get("auths", {})
    assert state["login_server"] in auths, auths

    target = f"{state['login_server']}/hello-world:v1"
    run(["docker", "tag", busybox_image.ref, target], env=docker_env)
    run(["docker", "push", target], env=docker_env)
    run(["docker", "rmi", "-f", busybox_image.id], env=docker_env)
    run(["docker", "pull", target], env=docker_env)
    assert run(["docker", "image", "inspect", "--format", "{{.Id}}", target], env=docker_env).stdout.strip() \
        == busybox_image.id


def test_acr_login_expose_token(az: Az, state: dict):
    exposed = az.json("acr", "login", "--name", REGISTRY, "--expose-token")
    assert exposed["loginServer"] == state["login_server"]
    assert exposed["username"] == NULL_GUID
    assert exposed["accessToken"]


def test_acr_update_admin_enabled(az: Az):
    registry = az.json("acr", "update", "-n", REGISTRY, "--admin-enabled", "true")
    assert registry["adminUserEnabled"] is True and registry["provisioningState"] == "Succeeded"


def test_acr_credential_show(az: Az, server: DomainServer, state: dict):
    credentials = az.json("acr", "credential", "show", "-n", REGISTRY)
    assert credentials["username"] == REGISTRY.lower()
    assert [p["name"] for p in credentials["passwords"]] == ["password", "password2"]
    assert all(p["value"] for p in credentials["passwords"])
    # the admin user's Basic credentials list the catalog, as az's admin fallback does
    catalog = requests.get(f"https://{state['login_server']}/v2/_catalog", verify=server.ca_file, timeout=10,
                           auth=(credentials["username"], credentials["passwords"][0]["value"]))
    assert catalog.status_code == 200 and catalog.json() == {"repositories": ["hello-world"]}, catalog.text


def test_acr_repository_list_and_show_tags(az: Az):
    assert az.json("acr", "repository", "list", "-n", REGISTRY) == ["hello-world"]
    assert az.json("acr", "repository", "show-tags", "-n", REGISTRY, "--repository", "hello-world") == ["v1"]


def test_acr_check_name(az: Az):
    taken = az.json("acr", "check-name", "-n", REGISTRY.lower())
    assert taken["nameAvailable"] is False and taken["reason"] == "AlreadyExists", taken
    free = az.json("acr", "check-name", "-n", "nosuchregistry1")
    assert free["nameAvailable"] is True, free


def test_acr_show_usage(az: Az):
    usage = {u["name"]: u for u in az.json("acr", "show-usage", "-n", REGISTRY)["value"]}
    assert usage["Size"]["unit"] == "Bytes" and usage["Size"]["currentValue"] > 0
    assert usage["Size"]["limit"] > 0


def test_adfs_authority_without_instance_discovery_setting(az_bin: Path, server: DomainServer,
                                                           egress_trap: EgressTrap, service_principal: dict,
                                                           tmp_path_factory):
    """The /adfs authority: MSAL skips instance discovery by itself; ARM on 127.0.0.1 this time."""
    adfs = Az(az_bin, server, tmp_path_factory.mktemp("az-adfs"), egress_trap)
    arm = server.arm("127.0.0.1")
    adfs("cloud", "register", "-n", "DockyardAdfs", "--endpoint-resource-manager", arm,
         "--endpoint-active-directory", arm + "adfs")
    adfs("cloud", "set", "-n", "DockyardAdfs")
    assert adfs.json("cloud", "show", "--query", "endpoints.activeDirectory") == arm + "adfs"
    sp = service_principal
    accounts = adfs.json("login", "--service-principal", "-u", sp["appId"], "-p", sp["password"],
                         "--tenant", sp["tenant"])
    assert [a["id"] for a in accounts] == [sp["subscription"]]
    assert adfs.json("group", "show", "-n", GROUP, "--query", "name") == GROUP
    assert adfs.json("acr", "repository", "list", "-n", REGISTRY) == ["hello-world"]


def test_acr_delete(az: Az, server: DomainServer, state: dict):
    assert az("acr", "delete", "-n", REGISTRY, "--yes").returncode == 0
    assert REGISTRY.lower() not in az.json("acr", "list", "--query", "[].name")
    assert az.json("acr", "check-name", "-n", REGISTRY.lower())["nameAvailable"] is True
    # az, not finding it in ARM, guesses <name><suffix> and goes on: the name must lead nowhere
    # (in ACR it has no DNS record), not to the default registry
    gone = requests.get(f"https://{state['login_server']}/v2/", verify=server.ca_file, timeout=10)
    assert gone.status_code == 404 and gone.json()["errors"][0]["code"] == "NAME_UNKNOWN", gone.text
    listed = az("acr", "repository", "list", "-n", REGISTRY, check=False)
    assert listed.returncode != 0 and listed.stdout == "", (listed.stdout, listed.stderr)
    assert "did not issue a challenge" in listed.stderr, listed.stderr


def test_nothing_left_the_machine(az: Az, egress_trap: EgressTrap):
    assert egress_trap.attempts == []
    spent = sum(seconds for _, seconds in az.seconds)
    print(f"\n{len(az.seconds)} az commands took {spent:.1f} s: "
          + ", ".join(f"{name} {seconds:.1f}" for name, seconds in az.seconds))
