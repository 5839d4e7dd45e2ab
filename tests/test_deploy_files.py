"""The deployment files (deploy/) and docs/deploy.md agree with the code and with each other.

No Docker or cluster is needed: the files are parsed and cross-checked the way `docker compose`,
HAProxy and `kubectl apply` would read them, against the real Settings and the real CLI.
"""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest
import typer.main
import yaml

from dockyard.cli import app
from dockyard.config import ENV_PREFIX, Settings, load

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
COMPOSE_DIR = DEPLOY / "compose"
KUBERNETES = DEPLOY / "kubernetes"
DEPLOY_DOC = ROOT / "docs" / "deploy.md"

YAML_FILES = sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")])
# every file whose text may name settings or commands
TEXT_FILES = sorted(p for p in DEPLOY.rglob("*") if p.is_file() and "__pycache__" not in p.parts) + [DEPLOY_DOC]

ALLOWED_VALUES = {
    "blob_delivery": {"redirect", "proxy"},
    "background_work": {"inline", "external"},
}


def _setting_env_names() -> set[str]:
    names = {ENV_PREFIX + f.name.upper() for f in fields(Settings) if f.name != "extra"}
    return names | {ENV_PREFIX + "CONFIG"}  # the settings file itself (config.load)


def _cli() -> typer.main.TyperGroup:
    return typer.main.get_command(app)


def _documents(path: Path) -> list:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _interpolate(value: str) -> str:
    """Compose's ${VAR:-default} / ${VAR:?error} / ${VAR}, with every variable unset."""

    def one(match: re.Match) -> str:
        body = match.group(1)
        for operator in (":-", "-"):
            if operator in body:
                return body.split(operator, 1)[1]
        if ":?" in body or "?" in body:
            return "set-by-the-user"
        return ""

    return re.sub(r"\$\{([^}]*)\}", one, value)


def _compose() -> dict:
    [document] = _documents(COMPOSE_DIR / "compose.yaml")
    return document


def _environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: _interpolate(str(value)) for key, value in env.items()}


def _is_dockyard_image(image: str) -> bool:
    return image.split("/")[-1].split(":")[0] == "dockyard"


def _kubernetes_objects() -> list[tuple[Path, dict]]:
    return [
        (path, doc)
        for path in sorted(KUBERNETES.glob("*.yaml"))
        if path.name != "kustomization.yaml"
        for doc in _documents(path)
    ]


def _by_kind(kind: str) -> list[dict]:
    return [doc for _, doc in _kubernetes_objects() if doc["kind"] == kind]


def _matches(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


# --- every file ----------------------------------------------------------------------------


def test_there_are_deployment_files():
    names = {p.relative_to(DEPLOY).as_posix() for p in DEPLOY.rglob("*")}
    assert {"Dockerfile", "compose/compose.yaml", "kubernetes/kustomization.yaml"} <= names
    assert DEPLOY_DOC.is_file()


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: p.relative_to(DEPLOY).as_posix())
def test_yaml_parses(path):
    assert _documents(path), f"{path} holds no document"


def test_every_dockyard_variable_is_a_setting():
    known = _setting_env_names()
    seen: dict[str, set[str]] = {}
    for path in TEXT_FILES:
        for name in re.findall(r"\bDOCKYARD_[A-Z0-9_]*[A-Z0-9]\b", path.read_text()):
            seen.setdefault(name, set()).add(path.relative_to(ROOT).as_posix())
    unknown = {name: sorted(where) for name, where in seen.items() if name not in known}
    assert not unknown, f"not settings of dockyard.config.Settings: {unknown}"
    # the scale-out settings must be what the files use (guards against a vacuous pass)
    assert {"DOCKYARD_DATABASE_URL", "DOCKYARD_STORAGE_URL", "DOCKYARD_BACKGROUND_WORK"} <= set(seen)


def _dockyard_environments() -> list[tuple[str, dict[str, str]]]:
    """Every DOCKYARD_* environment the files give a Dockyard process, as one mapping each."""
    result = []
    for name, service in _compose()["services"].items():
        if _is_dockyard_image(service.get("image", "")):
            result.append((f"compose:{name}", _environment(service)))
    config_maps = {doc["metadata"]["name"]: doc.get("data", {}) for doc in _by_kind("ConfigMap")}
    for deployment in _by_kind("Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            env: dict[str, str] = {}
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    env.update(config_maps[source["configMapRef"]["name"]])
            env.update({item["name"]: str(item["value"]) for item in container.get("env", []) if "value" in item})
            result.append((f"kubernetes:{deployment['metadata']['name']}/{container['name']}", env))
    return result


def test_setting_values_load():
    environments = _dockyard_environments()
    assert len(environments) >= 4
    for where, env in environments:
        settings = load(environ={k: v for k, v in env.items() if k.startswith(ENV_PREFIX)})
        for name, allowed in ALLOWED_VALUES.items():
            assert getattr(settings, name) in allowed, f"{where}: {name}={getattr(settings, name)!r}"
        settings.port  # noqa: B018 - DOCKYARD_LISTEN must be HOST:PORT


# --- the CLI -------------------------------------------------------------------------------


def _commands_in_files() -> list[tuple[str, list[str]]]:
    """(where, argv after `dockyard`) for every Dockyard invocation in deploy/ and the doc."""
    found = []
    for name, service in _compose()["services"].items():
        if _is_dockyard_image(service.get("image", "")) and "entrypoint" not in service:
            found.append((f"compose:{name}", list(service.get("command") or ["serve"])))
    for deployment in _by_kind("Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            if _is_dockyard_image(container["image"]):
                found.append((f"kubernetes:{deployment['metadata']['name']}", list(container.get("args") or ["serve"])))
    in_fence = False
    for number, line in enumerate(DEPLOY_DOC.read_text().splitlines(), 1):
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
            continue
        match = re.match(r"\s*(?:\$ )?(?:[A-Z_][A-Z0-9_]*=\S+\s+)*dockyard\s+(.*)", line)
        if in_fence and match:
            argv = match.group(1).split("#")[0].split()
            found.append((f"docs/deploy.md:{number}", argv))
    return found


def test_commands_are_real_subcommands():
    cli = _cli()
    used = _commands_in_files()
    problems = []
    for where, argv in used:
        if not argv or argv[0] not in cli.commands:
            problems.append(f"{where}: `dockyard {' '.join(argv)}` is no command of the CLI")
            continue
        command = cli.commands[argv[0]]
        options = {opt for param in command.params for opt in getattr(param, "opts", [])}
        for word in argv[1:]:
            flag = word.split("=", 1)[0]
            if flag.startswith("--") and not hasattr(command, "commands") and flag not in options:
                problems.append(f"{where}: `dockyard {argv[0]}` has no option {flag}")
    assert not problems, "\n".join(problems)
    assert {"serve", "worker"} <= {argv[0] for _, argv in used}


# --- the image -----------------------------------------------------------------------------


def test_dockerfile():
    text = (DEPLOY / "Dockerfile").read_text()
    instructions = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert instructions[0].startswith("FROM python:3.11-slim")
    assert 'ENTRYPOINT ["dockyard"]' in instructions
    users = [line.split()[1] for line in instructions if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("0", "root"), "the image must not run as root"
    assert any(re.match(r"RUN .*pip install \.", line) for line in instructions)
    for line in instructions:
        if line.startswith("COPY ") and "--from" not in line:
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), f"COPY {source}: no such path in the build context"
    exposed = {int(line.split()[1]) for line in instructions if line.startswith("EXPOSE ")}
    listen = re.search(r"DOCKYARD_LISTEN=(\S+)", text)
    assert listen and int(listen.group(1).rsplit(":", 1)[1]) in exposed


# --- compose -------------------------------------------------------------------------------


def test_compose_services():
    services = _compose()["services"]
    for name, service in services.items():
        build = service.get("build")
        if build:
            context = (COMPOSE_DIR / build["context"]).resolve()
            assert (context / build.get("dockerfile", "Dockerfile")).is_file(), name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source", "")
            if source.startswith("."):
                assert (COMPOSE_DIR / source).exists(), f"{name}: mounts missing {source}"
            elif source:
                assert source in (_compose().get("volumes") or {}), f"{name}: undeclared volume {source}"
        depends = service.get("depends_on", [])
        for other in depends:
            assert other in services, f"{name} depends on unknown service {other}"
    dockyard = {name: s for name, s in services.items() if _is_dockyard_image(s.get("image", "")) and "entrypoint" not in s}
    nodes = [name for name, s in dockyard.items() if (s.get("command") or ["serve"])[0] == "serve"]
    workers = [name for name, s in dockyard.items() if (s.get("command") or [None])[0] == "worker"]
    assert len(nodes) >= 2 and len(workers) == 1
    for name in nodes:
        env = _environment(services[name])
        assert env.get("DOCKYARD_BACKGROUND_WORK") == "external", name
        assert env["DOCKYARD_DATABASE_URL"].startswith("postgresql://"), name
        assert env["DOCKYARD_STORAGE_URL"].startswith("azure://"), name
    assert any("azure-storage/azurite" in s.get("image", "") for s in services.values())


def _haproxy_servers() -> list[tuple[str, int]]:
    text = (COMPOSE_DIR / "haproxy.cfg").read_text()
    return [(host, int(port)) for host, port in re.findall(r"^\s*server\s+\S+\s+([\w.-]+):(\d+)", text, re.M)]


def test_load_balancer_points_at_compose_nodes():
    services = _compose()["services"]
    servers = _haproxy_servers()
    assert len(servers) >= 2
    for host, port in servers:
        assert host in services, f"haproxy.cfg names {host}, which is no compose service"
        env = _environment(services[host])
        assert (services[host].get("command") or ["serve"])[0] == "serve", f"{host} is no Dockyard node"
        assert int(env["DOCKYARD_LISTEN"].rsplit(":", 1)[1]) == port, f"{host} does not listen on {port}"
    lb = next(s for s in services.values() if any("haproxy.cfg" in str(v) for v in s.get("volumes", [])))
    for name in {host for host, _ in servers}:
        assert name in lb.get("depends_on", []), f"the load balancer should start after {name}"


def test_load_balancer_lets_layers_through():
    text = (COMPOSE_DIR / "haproxy.cfg").read_text()
    active = "\n".join(line.split("#")[0] for line in text.splitlines())
    assert "http-buffer-request" not in active, "request bodies must stream, not be buffered"
    for kind in ("client", "server"):
        match = re.search(rf"timeout\s+{kind}\s+(\d+)(ms|s|m|h)?", active)
        assert match, f"no timeout {kind}"
        seconds = int(match.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 0.001}[match.group(2)]
        assert seconds >= 600, f"timeout {kind} is too short for large layers"
    assert re.search(r"http-check send .*uri /healthz", active)


# --- Kubernetes ----------------------------------------------------------------------------


def test_kubernetes_objects_can_be_applied():
    objects = _kubernetes_objects()
    assert objects
    for path, doc in objects:
        assert doc.get("apiVersion") and doc.get("kind"), path
        assert doc.get("metadata", {}).get("name"), f"{path}: {doc['kind']} without metadata.name"
        assert "namespace" not in doc["metadata"], f"{path}: manifests are namespace-free"


def test_kustomization_lists_the_manifests():
    [kustomization] = _documents(KUBERNETES / "kustomization.yaml")
    assert kustomization["kind"] == "Kustomization"
    listed = set(kustomization["resources"])
    present = {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
    examples = {name for name in present if ".example." in name}
    assert listed == present - examples, "kustomization.yaml must list every manifest except the examples"
    assert examples, "the Secret example is missing"


def test_kubernetes_wiring():
    deployments = {d["metadata"]["name"]: d for d in _by_kind("Deployment")}
    secrets = {s["metadata"]["name"]: s for s in _by_kind("Secret")}
    config_maps = {c["metadata"]["name"] for c in _by_kind("ConfigMap")}
    nodes = [d for d in deployments.values() if _pod_args(d)[:1] == ["serve"]]
    workers = [d for d in deployments.values() if _pod_args(d)[:1] == ["worker"]]
    assert len(nodes) == 1 and len(workers) == 1
    [node] = nodes
    assert node["spec"]["replicas"] >= 2
    for deployment in deployments.values():
        spec = deployment["spec"]
        labels = spec["template"]["metadata"]["labels"]
        assert _matches(spec["selector"]["matchLabels"], labels), deployment["metadata"]["name"]
        pod = spec["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in pod["containers"]:
            assert container["resources"]["requests"] and container["resources"]["limits"]
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            for source in container.get("envFrom", []):
                if "secretRef" in source:
                    assert source["secretRef"]["name"] in secrets
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in config_maps
            mounts = {m["name"] for m in container.get("volumeMounts", [])}
            assert mounts <= {v["name"] for v in pod.get("volumes", [])}
        for volume in pod.get("volumes", []):
            if "secret" in volume:
                assert volume["secret"]["secretName"] in secrets
    # the Secret carries what the brief puts there
    [secret] = [s for s in secrets.values() if s.get("type", "Opaque") == "Opaque"]
    assert {"DOCKYARD_DATABASE_URL", "AZURE_STORAGE_CONNECTION_STRING", "DOCKYARD_OWNER_PASSWORD"} <= set(secret["stringData"])
    assert all("REPLACE-ME" in value for value in secret["stringData"].values()), "example values must be placeholders"


def _pod_args(deployment: dict) -> list[str]:
    return list(deployment["spec"]["template"]["spec"]["containers"][0].get("args") or [])


def _container_ports(container: dict) -> set:
    ports = container.get("ports", [])
    return {p["containerPort"] for p in ports} | {p["name"] for p in ports if "name" in p}


def test_probes_point_at_exposed_ports():
    [node] = [d for d in _by_kind("Deployment") if _pod_args(d)[:1] == ["serve"]]
    [container] = node["spec"]["template"]["spec"]["containers"]
    ports = _container_ports(container)
    assert ports
    env = {item["name"]: item.get("value") for item in container.get("env", [])}
    assert int(env["DOCKYARD_LISTEN"].rsplit(":", 1)[1]) in {p["containerPort"] for p in container["ports"]}
    for probe_name in ("readinessProbe", "livenessProbe"):
        assert probe_name in container, f"the node has no {probe_name}"
    for probe_name in ("startupProbe", "readinessProbe", "livenessProbe"):
        probe = container.get(probe_name)
        if probe is None:
            continue
        handler = probe.get("httpGet") or probe.get("tcpSocket")
        assert handler, f"{probe_name} must be httpGet or tcpSocket"
        assert handler["port"] in ports, f"{probe_name} points at port {handler['port']!r}, not exposed"
    http = container["readinessProbe"]["httpGet"]
    assert http["path"] == "/healthz"
    # /healthz fails while the database is down: as liveness it would restart every node
    assert container["livenessProbe"].get("httpGet", {}).get("path") != "/healthz"
    # the probe speaks TLS exactly when the node serves it
    assert (http.get("scheme", "HTTP") == "HTTPS") == bool(env.get("DOCKYARD_TLS_CERT"))


def test_service_pdb_and_ingress_reach_the_nodes():
    [node] = [d for d in _by_kind("Deployment") if _pod_args(d)[:1] == ["serve"]]
    pod_labels = node["spec"]["template"]["metadata"]["labels"]
    [container] = node["spec"]["template"]["spec"]["containers"]
    services = {s["metadata"]["name"]: s for s in _by_kind("Service")}
    for service in services.values():
        assert _matches(service["spec"]["selector"], pod_labels)
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in _container_ports(container)
    for pdb in _by_kind("PodDisruptionBudget"):
        assert _matches(pdb["spec"]["selector"]["matchLabels"], pod_labels)
    [ingress] = _by_kind("Ingress")
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-body-size"] == "0"
    assert annotations["nginx.ingress.kubernetes.io/proxy-request-buffering"] == "off"
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 600
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-send-timeout"]) >= 600
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            assert backend["name"] in services
            port_names = {p.get("name") for p in services[backend["name"]]["spec"]["ports"]}
            port_numbers = {p["port"] for p in services[backend["name"]]["spec"]["ports"]}
            assert backend["port"].get("name") in port_names or backend["port"].get("number") in port_numbers
