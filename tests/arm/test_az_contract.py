"""What the real Azure CLI (2.91) relies on, pinned in-process (the end-to-end run with az itself is
tests/e2e/test_azure_cli.py): cloud metadata under doubled slashes, any api-version, Retry-After on
long-running operations, and a data-plane challenge az's own parser can read."""

from __future__ import annotations

import pytest

from .helpers import ACR, make_registry, read_json


def az_challenge_params(header: str) -> dict[str, str] | None:
    """azure-cli's acr/_docker_utils._handle_challenge_phase, verbatim in effect: it splits on the first
    two spaces and then on commas, so a space between parameters loses them."""
    tokens = header.split(" ", 2)
    if len(tokens) < 2 or tokens[0].lower() != "bearer":
        return None
    return {y[0]: y[1].strip('"') for y in (x.strip().split("=", 2) for x in tokens[1].split(","))}


@pytest.mark.parametrize("path", ["/metadata/endpoints", "//metadata/endpoints", "////metadata/endpoints"])
async def test_cloud_metadata_answers_the_paths_az_cloud_register_sends(arm, path):
    base = str(arm.client.make_url("/")).rstrip("/")
    response = await arm.client.session.get(base + path + "?api-version=2022-09-01")
    assert response.status == 200, await response.text()
    document = await read_json(response)
    assert document["authentication"]["loginEndpoint"] == base
    assert document["authentication"]["audiences"][0] == base + "/"
    assert document["suffixes"]["acrLoginServer"] == f".localhost:{base.rsplit(':', 1)[1]}"


@pytest.mark.parametrize("version", ["2026-09-01-preview", "2099-12-31", "2019-05-01", "not-a-version"])
async def test_any_api_version_is_accepted(arm, version):
    sub, registry = await make_registry(arm, "azversions")
    response = await arm.request("GET", f"{registry}?api-version={version}")
    assert response.status == 200, await response.text()
    response = await arm.request("GET", f"/subscriptions/{sub}/resources?$filter=resourceType eq "
                                        f"'Microsoft.ContainerRegistry/registries'&api-version={version}")
    assert response.status == 200, await response.text()


async def test_names_as_az_sends_them_match_without_case(arm):
    """az puts the name as typed in the path, and the group lower-cased from the resource id."""
    sub, _ = await make_registry(arm, "mycontainerregistry", group="myResourceGroup")
    path = f"/subscriptions/{sub}/resourceGroups/myresourcegroup/{ACR}/registries/myContainerRegistry"
    response = await arm.request("GET", path + "?api-version=2026-09-01-preview")
    assert response.status == 200, await response.text()
    assert (await read_json(response))["name"] == "mycontainerregistry"
    response = await arm.request("PATCH", path, json={"properties": {"adminUserEnabled": True}})
    assert response.status == 200, await response.text()
    response = await arm.request("POST", path + "/listCredentials?api-version=2026-09-01-preview")
    assert response.status == 200, await response.text()
    assert (await read_json(response))["username"] == "mycontainerregistry"


async def test_registry_create_says_when_to_poll(arm):
    """Without Retry-After the SDK's poller waits 30 s between polls."""
    sub, _ = await make_registry(arm, "azpollreg1")
    path = f"/subscriptions/{sub}/resourceGroups/armgroup/{ACR}/registries/azpollreg2"
    response = await arm.request("PUT", path, json={"location": "eastus", "sku": {"name": "Basic"}})
    assert response.status == 201, await response.text()
    assert response.headers["Retry-After"] == "1"
    status = await arm.client.session.get(response.headers["Azure-AsyncOperation"], headers=arm.headers)
    assert status.status == 200 and (await read_json(status))["status"] == "Succeeded"


@pytest.mark.parametrize("path", ["/v2/", "/v2/_catalog", "/acr/v1/_catalog"])
async def test_data_plane_challenge_reads_the_az_way(anonymous, path):
    response = await anonymous.get(path)
    assert response.status == 401
    header = response.headers["WWW-Authenticate"]
    assert ", " not in header
    params = az_challenge_params(header)
    assert params is not None and params["realm"].endswith("/oauth2/token"), header
    assert params["service"] == "dockyard.localhost", header
