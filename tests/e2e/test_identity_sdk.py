"""Dockyard's identity issuer with the real Azure SDK and docker, over TLS:

owner password grant → directory API makes a service principal → ARM gives it AcrPush →
azure-identity's ClientSecretCredential gets an identity token from Dockyard →
POST /oauth2/exchange → ACR refresh token → `docker login -u <null GUID>` → docker push / pull.
"""

from __future__ import annotations

import base64
import json
import uuid

import jwt
import pytest
import requests

from dockyard import tls

from .conftest import _LOGS, DockyardServer
from .helpers import free_port, parse_challenge, run

pytestmark = pytest.mark.e2e

NULL_GUID = "00000000-0000-0000-0000-000000000000"
ACR_PUSH = "8311e382-0749-4cb8-b61a-304f252e45ec"
ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
ARM_API = "2022-12-01"
AUTHZ_API = "2022-04-01"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("dockyard-identity")
    certs = base / "certs"
    certs.mkdir()
    ca = tls.create_ca(certs)
    tls.issue_server_cert(ca, certs, "dockyard.localhost")
    data_dir = base / "data"
    data_dir.mkdir()
    server = DockyardServer(
        data_dir=data_dir,
        log_path=base / "server.log",
        port=free_port(),
        password="pw-" + uuid.uuid4().hex,
        tls_dir=certs,
    )
    _LOGS["dockyard identity server"] = server.log_path
    try:
        server.start()
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)
    yield server
    server.stop()


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def post(server: DockyardServer, path: str, **kwargs) -> requests.Response:
    return requests.post(server.url + path, timeout=30, verify=server.verify, **kwargs)


def get(server: DockyardServer, path: str, **kwargs) -> requests.Response:
    return requests.get(server.url + path, timeout=30, verify=server.verify, **kwargs)


@pytest.fixture(scope="module")
def owner_token(server) -> str:
    """The owner's identity token from the password grant (ADFS-shaped endpoint, which needs no tenant)."""
    r = post(server, "/adfs/oauth2/token", data={
        "grant_type": "password", "username": server.username, "password": server.password,
        "scope": f"{server.url}/.default",
    })
    assert r.status_code == 200, (r.status_code, r.text)
    return r.json()["access_token"]


@pytest.fixture(scope="module")
def tenant(server, owner_token) -> str:
    tid = claims_of(owner_token)["tid"]
    uuid.UUID(tid)
    doc = get(server, f"/{tid}/v2.0/.well-known/openid-configuration")
    assert doc.status_code == 200, doc.text
    assert doc.json()["issuer"] == f"{server.url}/{tid}/v2.0"
    assert doc.json()["token_endpoint"] == f"{server.url}/{tid}/oauth2/v2.0/token"
    return tid


def make_sp(server, owner_token: str, name: str) -> dict:
    r = post(server, "/directory/v1/servicePrincipals", json={"displayName": name},
             headers={"Authorization": f"Bearer {owner_token}"})
    assert r.status_code == 201, (r.status_code, r.text)
    return r.json()


def registry_id(server, owner_token: str) -> str:
    headers = {"Authorization": f"Bearer {owner_token}"}
    r = get(server, "/subscriptions", params={"api-version": ARM_API}, headers=headers)
    assert r.status_code == 200, (r.status_code, r.text)
    subscription = r.json()["value"][0]["subscriptionId"]
    r = get(server, f"/subscriptions/{subscription}/providers/Microsoft.ContainerRegistry/registries",
            params={"api-version": "2023-07-01"}, headers=headers)
    assert r.status_code == 200, (r.status_code, r.text)
    found = [reg["id"] for reg in r.json()["value"] if reg["name"] == "dockyard"]
    assert found, r.json()
    return found[0]


def assign(server, owner_token: str, scope: str, role: str, principal_id: str) -> None:
    r = requests.put(
        f"{server.url}{scope}/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}",
        params={"api-version": AUTHZ_API}, timeout=30, verify=server.verify,
        headers={"Authorization": f"Bearer {owner_token}"},
        json={"properties": {"roleDefinitionId": f"{scope}/providers/Microsoft.Authorization/roleDefinitions/{role}",
                             "principalId": principal_id, "principalType": "ServicePrincipal"}},
    )
    assert r.status_code == 201, (r.status_code, r.text)


def credential(server, tenant: str, sp: dict):
    from azure.identity import ClientSecretCredential

    return ClientSecretCredential(
        tenant_id=tenant, client_id=sp["appId"], client_secret=sp["password"],
        authority=server.url, disable_instance_discovery=True, connection_verify=str(server.tls_dir / "ca.pem"),
    )


def challenge_service(server) -> str:
    r = get(server, "/v2/")
    assert r.status_code == 401
    scheme, params = parse_challenge(r.headers["WWW-Authenticate"])
    assert scheme == "bearer" and params["realm"] == f"{server.url}/oauth2/token", params
    return params["service"]


def exchange(server, identity_token: str, service: str) -> str:
    r = post(server, "/oauth2/exchange", data={"grant_type": "access_token", "service": service,
                                               "access_token": identity_token})
    assert r.status_code == 200, (r.status_code, r.text)
    return r.json()["refresh_token"]


def test_client_secret_credential_gets_a_token_from_dockyard(server, owner_token, tenant):
    sp = make_sp(server, owner_token, "sdk-credential")
    assert sp["tenant"] == tenant
    cred = credential(server, tenant, sp)
    token = cred.get_token(f"{server.url}/.default")
    claims = claims_of(token.token)
    assert claims["appid"] == sp["appId"]
    assert claims["oid"] == sp["objectId"]
    assert claims["tid"] == tenant
    assert claims["aud"] == f"{server.url}/"
    assert claims["iss"] == f"{server.url}/{tenant}/v2.0"
    assert token.expires_on > claims["iat"]
    # verified with the key the issuer publishes
    keys = get(server, f"/{tenant}/discovery/v2.0/keys").json()["keys"]
    jwt.decode(token.token, jwt.PyJWK(keys[0]).key, algorithms=["RS256"], audience=f"{server.url}/")
    # and the ARM audience, as `az acr login` asks for it
    arm = cred.get_token("https://management.azure.com/.default")
    assert claims_of(arm.token)["aud"].rstrip("/") == "https://management.azure.com"


def test_wrong_secret_is_refused_by_the_sdk(server, owner_token, tenant):
    from azure.core.exceptions import ClientAuthenticationError

    sp = make_sp(server, owner_token, "sdk-wrong-secret")
    cred = credential(server, tenant, {**sp, "password": sp["password"] + "x"})
    with pytest.raises(ClientAuthenticationError) as raised:
        cred.get_token(f"{server.url}/.default")
    assert "the credentials are not valid" in str(raised.value)  # Dockyard's error_description, passed on


def test_directory_api_refuses_a_service_principal_that_holds_no_owner_role(server, owner_token, tenant):
    sp = make_sp(server, owner_token, "sdk-not-an-owner")
    token = credential(server, tenant, sp).get_token(f"{server.url}/.default").token
    r = post(server, "/directory/v1/servicePrincipals", json={"displayName": "nope"},
             headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 403, (r.status_code, r.text)


@pytest.fixture(scope="module")
def docker(dockerd):
    def docker(*args, check=True, input=None):
        return run(["docker", *args], env=dockerd, check=check, input=input)

    return docker


def test_docker_login_with_the_exchanged_refresh_token_pushes_and_pulls(server, owner_token, tenant, docker,
                                                                        busybox_image):
    sp = make_sp(server, owner_token, "sdk-docker")
    assign(server, owner_token, registry_id(server, owner_token), ACR_PUSH, sp["objectId"])
    identity_token = credential(server, tenant, sp).get_token(f"{server.url}/.default").token
    service = challenge_service(server)
    refresh = exchange(server, identity_token, service)
    claims = claims_of(refresh)
    assert claims["aud"] == service and claims["grant_type"] == "refresh_token"
    assert claims["oid"] == sp["objectId"] and claims["tenant"] == tenant

    host = server.host
    out = docker("login", host, "-u", NULL_GUID, "--password-stdin", input=refresh + "\n")
    assert "Login Succeeded" in out.stdout, out
    try:
        target = f"{host}/sdk/busybox:v1"
        docker("tag", busybox_image.ref, target)
        push = docker("push", target)
        digests = {d.split("@", 1)[1] for d in json.loads(
            docker("image", "inspect", "--format", "{{json .RepoDigests}}", target).stdout)}
        assert len(digests) == 1, digests
        digest = digests.pop()
        assert f"v1: digest: {digest}" in push.stdout, push.stdout
        docker("rmi", "-f", target)
        docker("rmi", "-f", busybox_image.id, check=False)
        assert docker("image", "inspect", target, check=False).returncode != 0
        pull = docker("pull", target)
        assert f"Digest: {digest}" in pull.stdout, pull.stdout
    finally:
        docker("logout", host, check=False)

    # what the SP may do, seen through the token endpoint with docker's credentials
    basic = base64.b64encode(f"{NULL_GUID}:{refresh}".encode()).decode()
    r = get(server, "/oauth2/token", params={"service": service, "scope": "repository:sdk/busybox:pull,push,delete"},
            headers={"Authorization": f"Basic {basic}"})
    assert r.status_code == 200, r.text
    assert claims_of(r.json()["access_token"])["access"] == [
        {"type": "repository", "name": "sdk/busybox", "actions": ["pull", "push"]}
    ]


def test_docker_push_is_refused_for_a_pull_only_service_principal(server, owner_token, tenant, docker, busybox_image):
    sp = make_sp(server, owner_token, "sdk-pull-only")
    assign(server, owner_token, registry_id(server, owner_token), ACR_PULL, sp["objectId"])
    identity_token = credential(server, tenant, sp).get_token(f"{server.url}/.default").token
    refresh = exchange(server, identity_token, challenge_service(server))
    host = server.host
    out = docker("login", host, "-u", NULL_GUID, "--password-stdin", input=refresh + "\n")
    assert "Login Succeeded" in out.stdout, out
    try:
        target = f"{host}/sdk/pull-only:v1"
        docker("tag", busybox_image.ref, target)
        push = docker("push", target, check=False)
        assert push.returncode != 0, push.stdout
        assert "denied" in (push.stdout + push.stderr).lower() or "unauthorized" in (push.stdout + push.stderr).lower(), (
            push.stdout, push.stderr)
        docker("rmi", "-f", target, check=False)
    finally:
        docker("logout", host, check=False)


def test_docker_login_refuses_the_identity_token_itself(server, owner_token, tenant, docker):
    """The null GUID takes ACR refresh or access tokens, not the identity token they were exchanged from."""
    sp = make_sp(server, owner_token, "sdk-unexchanged")
    assign(server, owner_token, registry_id(server, owner_token), ACR_PULL, sp["objectId"])
    identity_token = credential(server, tenant, sp).get_token(f"{server.url}/.default").token
    out = docker("login", server.host, "-u", NULL_GUID, "--password-stdin", input=identity_token + "\n", check=False)
    assert out.returncode != 0, out.stdout
    assert "unauthorized" in (out.stdout + out.stderr).lower(), (out.stdout, out.stderr)
    docker("logout", server.host, check=False)
