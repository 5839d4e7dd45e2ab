"""The seed workflow with `dockyard` in place of `az`, against a real `dockyard serve` over TLS:
login, group create, acr create, acr login (a real dockerd), docker push/pull; then every
command group of the client on the registry it made. Tests run in file order and share state."""

from __future__ import annotations

import hashlib
import json
import stat
import time
from pathlib import Path

import pytest
import requests

from e2e.helpers import run

from .conftest import Cli, CliServer

pytestmark = pytest.mark.e2e

GROUP = "myResourceGroup"
REGISTRY = "myContainerRegistry"
NULL_GUID = "00000000-0000-0000-0000-000000000000"


@pytest.fixture(scope="module")
def state() -> dict:
    return {}


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push(server: CliServer, login_server: str, refresh_token: str, repo: str, tag: str,
         subject: dict | None = None) -> tuple[str, int]:
    """Push a tiny OCI image (or an artifact referring to ``subject``) with the token the CLI exposed."""
    base = server.url
    host = {"Host": login_server}
    token = requests.post(f"{base}/oauth2/token", headers=host, verify=server.verify, timeout=10, data={
        "grant_type": "refresh_token", "service": login_server.rsplit(":", 1)[0],
        "scope": f"repository:{repo}:pull,push", "refresh_token": refresh_token,
    })
    assert token.status_code == 200, token.text
    auth = {**host, "Authorization": f"Bearer {token.json()['access_token']}"}

    def blob(data: bytes) -> str:
        digest = _sha(data)
        r = requests.post(f"{base}/v2/{repo}/blobs/uploads/", headers=auth, verify=server.verify, timeout=10)
        assert r.status_code == 202, r.text
        location = r.headers["Location"]
        location = base + location if location.startswith("/") else base + "/" + location.split("/", 3)[3]
        r = requests.put(location, params={"digest": digest}, data=data, verify=server.verify, timeout=10,
                         headers={**auth, "Content-Type": "application/octet-stream"})
        assert r.status_code == 201, r.text
        return digest

    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    layer = f"{repo}:{tag}".encode() * 10
    manifest = {
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": blob(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": blob(layer), "size": len(layer)}],
    }
    if subject:
        manifest["subject"] = subject
        manifest["artifactType"] = "application/vnd.example.sbom"
    body = json.dumps(manifest).encode()
    r = requests.put(f"{base}/v2/{repo}/manifests/{tag}", data=body, verify=server.verify, timeout=10,
                     headers={**auth, "Content-Type": manifest["mediaType"]})
    assert r.status_code == 201, r.text
    return r.headers["Docker-Content-Digest"], len(body)


# ---------------------------------------------------------------- the seed workflow


def test_login_as_user(fresh_cli: Cli, dockyard_server: CliServer):
    accounts = fresh_cli.json("login", "--endpoint", dockyard_server.url, "-u", "owner", "-p", dockyard_server.password)
    assert len(accounts) == 1
    account = accounts[0]
    assert account["isDefault"] is True and account["state"] == "Enabled"
    assert account["cloudName"] == "Dockyard"
    assert account["user"] == {"name": "owner", "type": "user"}
    assert account["tenantId"]
    profile = fresh_cli.config_dir / "profile.json"
    assert stat.S_IMODE(profile.stat().st_mode) == 0o600
    shown = fresh_cli.json("account", "show")
    assert shown["id"] == account["id"] and shown["tenantId"] == account["tenantId"]
    assert fresh_cli.json("account", "list", "--query", "[].id") == [account["id"]]
    fresh_cli("logout")
    failed = fresh_cli("account", "show", check=False)
    assert failed.returncode == 1 and failed.stderr.startswith("ERROR: Please run 'dockyard login'")


def test_login_with_wrong_password_fails_in_one_line(fresh_cli: Cli, dockyard_server: CliServer):
    failed = fresh_cli("login", "--endpoint", dockyard_server.url, "-u", "owner", "-p", "wrong-password", check=False)
    assert failed.returncode == 1
    assert failed.stderr.strip().count("\n") == 0 and failed.stderr.startswith("ERROR: (invalid_grant)")


def test_group_create(cli: Cli):
    group = cli.json("group", "create", "--name", GROUP, "--location", "eastus")
    assert group["name"] == GROUP and group["location"] == "eastus"
    assert cli.json("group", "show", "-n", GROUP)["id"] == group["id"]
    assert GROUP in cli.json("group", "list", "--query", "[].name")
    assert cli("group", "list", "-o", "table").stdout.splitlines()[0].split() == ["Name", "Location", "Status"]


def test_acr_create_mixed_case(cli: Cli, dockyard_server: CliServer, state: dict):
    registry = cli.json("acr", "create", "--resource-group", GROUP, "--name", REGISTRY, "--sku", "Basic")
    assert registry["name"] == REGISTRY
    assert registry["provisioningState"] == "Succeeded"
    assert registry["sku"]["name"] == "Basic"
    assert registry["adminUserEnabled"] is False
    assert registry["resourceGroup"] == GROUP
    login_server = registry["loginServer"]
    assert login_server == login_server.lower()
    assert login_server.startswith(f"mycontainerregistry.{dockyard_server.domain}")
    state["login_server"] = login_server
    state["id"] = registry["id"]
    # names match without regard to case, as az's do
    assert cli.json("acr", "show", "-n", "MYCONTAINERREGISTRY", "--query", "loginServer") == login_server
    assert cli.json("acr", "show-endpoints", "-n", REGISTRY) == {
        "loginServer": login_server, "dataEndpoints": [], "regionalEndpoints": []}
    taken = cli.json("acr", "check-name", "-n", REGISTRY)
    assert taken["nameAvailable"] is False and taken["reason"] == "AlreadyExists"


def test_acr_login_with_docker_then_push_and_pull(cli: Cli, login_server_resolves, dockerd: dict, busybox_image,
                                                  state: dict):
    # login_server_resolves comes first: dockerd (Go) caches /etc/hosts for 5 s after each read
    docker_cli = cli.with_env(dockerd)
    out = docker_cli("acr", "login", "--name", REGISTRY, check=False)
    if out.returncode != 0 and "no such host" in out.stderr:
        time.sleep(6)
        out = docker_cli("acr", "login", "--name", REGISTRY, check=False)
    assert out.returncode == 0 and "Login Succeeded" in out.stdout, (out.stdout, out.stderr)
    config = json.loads((Path(dockerd["DOCKER_CONFIG"]) / "config.json").read_text())
    assert state["login_server"] in config.get("auths", {}), config

    def docker(*args: str, check: bool = True):
        return run(["docker", *args], env=dockerd, check=check)

    target = f"{state['login_server']}/hello-world:v1"
    docker("tag", busybox_image.ref, target)
    docker("push", target)
    docker("rmi", "-f", busybox_image.id)
    docker("pull", target)
    assert cli.json("acr", "repository", "show-tags", "-n", REGISTRY, "--repository", "hello-world") == ["v1"]


def test_acr_login_expose_token(cli: Cli, state: dict):
    result = cli("acr", "login", "-n", REGISTRY, "--expose-token")
    exposed = json.loads(result.stdout)
    assert exposed["loginServer"] == state["login_server"]
    assert exposed["username"] == NULL_GUID
    assert exposed["accessToken"]
    assert "docker login" in result.stderr  # az's hint, as a warning
    state["refresh_token"] = exposed["accessToken"]


# ---------------------------------------------------------------- repositories and manifests


def test_repository_commands(cli: Cli, dockyard_server: CliServer, state: dict):
    server, refresh = state["login_server"], state["refresh_token"]
    v1, v1_size = push(dockyard_server, server, refresh, "hello", "v1")
    push(dockyard_server, server, refresh, "hello", "v2")
    push(dockyard_server, server, refresh, "samples/nginx", "latest")
    state["v1"], state["v1_size"] = v1, v1_size

    repos = cli.json("acr", "repository", "list", "-n", REGISTRY)
    assert {"hello", "samples/nginx"} <= set(repos)
    assert cli("acr", "repository", "list", "-n", REGISTRY, "--top", "1", "-o", "tsv").stdout.count("\n") == 1
    shown = cli.json("acr", "repository", "show", "-n", REGISTRY, "--repository", "hello")
    assert shown["imageName"] == "hello" and shown["tagCount"] == 2
    tag = cli.json("acr", "repository", "show", "-n", REGISTRY, "--image", "hello:v1")
    assert tag["name"] == "v1" and tag["digest"] == v1
    assert cli.json("acr", "repository", "show-tags", "-n", REGISTRY, "--repository", "hello",
                    "--orderby", "time_asc") == ["v1", "v2"]
    detail = cli.json("acr", "repository", "show-tags", "-n", REGISTRY, "--repository", "hello", "--detail", "--top", "1",
                      "--orderby", "time_desc")
    assert [t["name"] for t in detail] == ["v2"]
    manifests = cli.json("acr", "repository", "show-manifests", "-n", REGISTRY, "--repository", "hello")
    assert v1 in [m["digest"] for m in manifests]


def test_manifest_commands(cli: Cli, dockyard_server: CliServer, state: dict):
    v1 = state["v1"]
    by_id = cli.json("acr", "manifest", "show", f"{state['login_server']}/hello:v1")
    assert by_id["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    raw = cli("acr", "manifest", "show", "-r", REGISTRY, "-n", "hello:v1", "--raw").stdout.encode()
    assert _sha(raw) == v1
    assert cli.json("acr", "manifest", "show", "-r", REGISTRY, "-n", f"hello@{v1}") == by_id
    listed = cli.json("acr", "manifest", "list-metadata", "-r", REGISTRY, "-n", "hello")
    assert v1 in [m["digest"] for m in listed]
    assert cli.json("acr", "manifest", "show-metadata", "-r", REGISTRY, "-n", f"hello@{v1}",
                    "--query", "tags") == ["v1"]

    sbom, _ = push(dockyard_server, state["login_server"], state["refresh_token"], "hello", "sbom",
                   subject={"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": v1,
                            "size": state["v1_size"]})
    referrers = cli.json("acr", "manifest", "list-referrers", "-r", REGISTRY, "-n", "hello:v1")
    assert [m["digest"] for m in referrers["manifests"]] == [sbom]
    filtered = cli.json("acr", "manifest", "list-referrers", "-r", REGISTRY, "-n", "hello:v1",
                        "--artifact-type", "application/vnd.other")
    assert filtered["manifests"] == []


def test_locks_untag_and_deletes(cli: Cli, state: dict):
    locked = cli.json("acr", "repository", "update", "-n", REGISTRY, "--image", "hello:v2",
                      "--delete-enabled", "false", "--write-enabled", "false")
    assert locked["changeableAttributes"]["deleteEnabled"] is False
    refused = cli("acr", "repository", "untag", "-n", REGISTRY, "--image", "hello:v2", check=False)
    assert refused.returncode == 1 and refused.stderr.startswith("ERROR: (")
    cli("acr", "repository", "update", "-n", REGISTRY, "--image", "hello:v2", "--delete-enabled", "--write-enabled")
    cli("acr", "repository", "untag", "-n", REGISTRY, "--image", "hello:v2")
    assert "v2" not in cli.json("acr", "repository", "show-tags", "-n", REGISTRY, "--repository", "hello")

    no_tty = cli("acr", "repository", "delete", "-n", REGISTRY, "--image", "hello:sbom", check=False)
    assert no_tty.returncode == 2 and "--yes" in no_tty.stderr
    cli("acr", "repository", "delete", "-n", REGISTRY, "--image", "hello:sbom", "--yes")
    cli("acr", "manifest", "delete", "-r", REGISTRY, "-n", f"hello@{state['v1']}", "--yes")
    assert cli.json("acr", "manifest", "list-metadata", "-r", REGISTRY, "-n", "hello", "--query", "[].digest") \
        .count(state["v1"]) == 0
    cli("acr", "repository", "delete", "-n", REGISTRY, "--repository", "samples/nginx", "-y")
    assert "samples/nginx" not in cli.json("acr", "repository", "list", "-n", REGISTRY)


# ---------------------------------------------------------------- registry settings, admin user


def test_update_and_admin_credentials(cli: Cli):
    refused = cli("acr", "credential", "show", "-n", REGISTRY, check=False)
    assert refused.returncode == 1 and "--admin-enabled true" in refused.stderr
    updated = cli.json("acr", "update", "-n", REGISTRY, "--admin-enabled", "--tags", "team=core", "env=dev")
    assert updated["adminUserEnabled"] is True and updated["tags"] == {"team": "core", "env": "dev"}
    creds = cli.json("acr", "credential", "show", "-n", REGISTRY)
    assert creds["username"] == REGISTRY
    assert [p["name"] for p in creds["passwords"]] == ["password", "password2"]
    renewed = cli.json("acr", "credential", "renew", "-n", REGISTRY, "--password-name", "password2")
    assert renewed["passwords"][1]["value"] != creds["passwords"][1]["value"]
    table = cli("acr", "credential", "show", "-n", REGISTRY, "-o", "table").stdout.splitlines()
    assert table[0].split() == ["USERNAME", "PASSWORD", "PASSWORD2"]
    usage = cli.json("acr", "show-usage", "-n", REGISTRY, "--query", "value[?name=='Size'] | [0]")
    assert usage["unit"] == "Bytes"
    listed = cli("acr", "list", "-g", GROUP, "-o", "tsv", "--query", "[].[name, loginServer]").stdout
    assert listed.startswith(f"{REGISTRY}\t")


# ---------------------------------------------------------------- scope maps and tokens


def test_scope_maps_and_tokens(cli: Cli, dockyard_server: CliServer, state: dict):
    made = cli.json("acr", "scope-map", "create", "-r", REGISTRY, "-n", "readers", "--repository", "hello",
                    "content/read", "metadata/read", "--repository", "samples/*", "content/read",
                    "--description", "read hello")
    assert made["actions"] == ["repositories/hello/content/read", "repositories/hello/metadata/read",
                               "repositories/samples/*/content/read"]
    updated = cli.json("acr", "scope-map", "update", "-r", REGISTRY, "-n", "readers",
                       "--add-repository", "other", "content/write", "--remove-repository", "samples/*", "content/read")
    assert "repositories/other/content/write" in updated["actions"]
    assert "repositories/samples/*/content/read" not in updated["actions"]
    assert "readers" in cli.json("acr", "scope-map", "list", "-r", REGISTRY, "--query", "[].name")

    token = cli.json("acr", "token", "create", "-r", REGISTRY, "-n", "cibuild", "--repository", "hello",
                     "content/read", "content/write", "--expiration-in-days", "30")
    assert token["name"] == "cibuild" and token["status"] == "enabled"
    assert token["scopeMapId"].endswith("/scopeMaps/cibuild-scope-map")
    passwords = token["credentials"]["passwords"]
    assert [p["name"] for p in passwords] == ["password1", "password2"] and all(p["value"] for p in passwords)
    assert token["credentials"]["username"] == "cibuild"
    # the token's password works on the data plane (Basic on /oauth2/token, as docker login does)
    login_server = state["login_server"]
    answer = requests.get(f"{dockyard_server.url}/oauth2/token", headers={"Host": login_server},
                          params={"service": login_server.rsplit(":", 1)[0], "scope": "repository:hello:pull"},
                          auth=("cibuild", passwords[0]["value"]), verify=dockyard_server.verify, timeout=10)
    assert answer.status_code == 200, answer.text

    bare = cli.json("acr", "token", "create", "-r", REGISTRY, "-n", "reader1", "--scope-map", "readers", "--no-passwords")
    assert not (bare.get("credentials") or {}).get("passwords")
    generated = cli.json("acr", "token", "credential", "generate", "-r", REGISTRY, "-n", "reader1", "--password2",
                         "--expiration-in-days", "5")
    assert [p["name"] for p in generated["passwords"]] == ["password2"]
    assert cli.json("acr", "token", "update", "-r", REGISTRY, "-n", "reader1", "--status", "disabled",
                    "--query", "status") == "disabled"
    assert set(cli.json("acr", "token", "list", "-r", REGISTRY, "--query", "[].name")) >= {"cibuild", "reader1"}
    assert cli.json("acr", "token", "show", "-r", REGISTRY, "-n", "reader1", "--query", "status") == "disabled"
    cli("acr", "token", "delete", "-r", REGISTRY, "-n", "reader1", "--yes")
    cli("acr", "scope-map", "delete", "-r", REGISTRY, "-n", "readers", "--yes")
    gone = cli("acr", "scope-map", "show", "-r", REGISTRY, "-n", "readers", check=False)
    assert gone.returncode == 1 and gone.stderr.startswith("ERROR: (")


# ---------------------------------------------------------------- directory and roles


def test_service_principal_with_a_role(cli: Cli, fresh_cli: Cli, dockyard_server: CliServer, state: dict):
    sp = cli.json("ad", "sp", "create-for-rbac", "--name", "ci-puller", "--role", "AcrPull", "--scopes", state["id"])
    assert set(sp) == {"appId", "displayName", "password", "tenant"}
    assert sp["appId"] in cli.json("ad", "sp", "list", "--query", "[].appId")
    assignments = cli.json("role", "assignment", "list", "--scope", state["id"], "--assignee", sp["appId"])
    assert [a["roleDefinitionName"] for a in assignments] == ["AcrPull"]

    accounts = fresh_cli.json("login", "--service-principal", "-u", sp["appId"], "-p", sp["password"],
                              "--tenant", sp["tenant"], "--endpoint", dockyard_server.url)
    assert accounts[0]["user"] == {"name": sp["appId"], "type": "servicePrincipal"}
    # AcrPull can't read the registry in ARM: the login server is found as az finds it
    assert "hello" in fresh_cli.json("acr", "repository", "list", "-n", REGISTRY)
    denied = fresh_cli("acr", "update", "-n", REGISTRY, "--admin-enabled", "false", "-g", GROUP, check=False)
    assert denied.returncode == 1 and denied.stderr.startswith("ERROR: (AuthorizationFailed)")

    reset = cli.json("ad", "sp", "credential", "reset", "--id", sp["appId"])
    assert reset["appId"] == sp["appId"] and reset["password"] != sp["password"]
    cli("role", "assignment", "delete", "--assignee", sp["appId"], "--role", "AcrPull", "--scope", state["id"])
    assert cli.json("role", "assignment", "list", "--scope", state["id"], "--assignee", sp["appId"]) == []


def test_user_and_role_assignment(cli: Cli, fresh_cli: Cli, dockyard_server: CliServer, state: dict):
    user = cli.json("ad", "user", "create", "--display-name", "Alice", "--user-principal-name", "alice",
                    "--password", "alice-password-1")
    assert user["userPrincipalName"] == "alice" and user["id"]
    assert "alice" in cli.json("ad", "user", "list", "--query", "[].userPrincipalName")
    made = cli.json("role", "assignment", "create", "--assignee", "alice", "--role", "Reader", "--scope", state["id"])
    assert made["principalId"] == user["id"] and made["scope"].lower() == state["id"].lower()
    listed = cli.json("role", "assignment", "list", "--all", "--query", f"[?principalId=='{user['id']}'].roleDefinitionName")
    assert listed == ["Reader"]
    fresh_cli("login", "--endpoint", dockyard_server.url, "-u", "alice", "-p", "alice-password-1", "-o", "none")
    assert fresh_cli.json("acr", "show", "-n", REGISTRY, "--query", "name") == REGISTRY
    assert "AcrPush" in cli.json("role", "definition", "list", "--query", "[].roleName")
    cli("role", "assignment", "delete", "--ids", made["id"])


# ---------------------------------------------------------------- errors and cleanup


def test_expired_tokens_are_renewed_with_the_stored_secret(cli: Cli):
    path = cli.config_dir / "profile.json"
    profile = json.loads(path.read_text())
    assert any(key.startswith("acr:") for key in profile["tokens"])  # the registry refresh token is cached too
    stale = {key: {"accessToken": "expired-" + key, "expiresOn": 1} for key in profile["tokens"]}
    profile["tokens"] = stale
    path.write_text(json.dumps(profile))
    assert REGISTRY in cli.json("acr", "list", "--query", "[].name")
    assert "hello" in cli.json("acr", "repository", "list", "-n", REGISTRY)
    renewed = json.loads(path.read_text())["tokens"]
    assert renewed and all(not entry["accessToken"].startswith("expired-") for entry in renewed.values())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600



def test_errors_are_one_line(cli: Cli):
    missing = cli("acr", "show", "-n", "nosuchregistry", check=False)
    assert missing.returncode == 1
    assert missing.stderr.startswith("ERROR: (ResourceNotFound)") and missing.stderr.count("\n") == 1
    assert missing.stdout == ""
    group = cli("group", "show", "-n", "no-such-group", check=False)
    assert group.returncode == 1 and group.stderr.startswith("ERROR: (ResourceGroupNotFound)")
    bad_name = cli("acr", "create", "-n", "bad-name!", "-g", GROUP, "--sku", "Basic", check=False)
    assert bad_name.returncode == 2
    bad_flag = cli("acr", "show", "--no-such-flag", check=False)
    assert bad_flag.returncode == 2


def test_delete_registry_and_group(cli: Cli):
    cli("acr", "delete", "-n", REGISTRY, "--yes")
    assert REGISTRY not in cli.json("acr", "list", "--query", "[].name")
    cli("group", "delete", "-n", GROUP, "--yes")
    assert cli.json("group", "exists", "-n", GROUP) is False
