"""ARM in process: resource groups, registries (with the long-running create), scope maps and tokens."""

from __future__ import annotations

from tests.arm.conftest import mint
from tests.arm.helpers import ACR, make_group, make_registry, read_json


# -- resource groups --------------------------------------------------------------------------
async def test_resource_group_lifecycle(arm):
    sub = await arm.subscription()
    path = f"/subscriptions/{sub}/resourcegroups/Lifecycle"
    response = await arm.request("PUT", path, json={"location": "East US", "tags": {"a": "b"}})
    assert response.status == 201
    assert await read_json(response) == {
        "id": f"/subscriptions/{sub}/resourceGroups/Lifecycle", "name": "Lifecycle",
        "type": "Microsoft.Resources/resourceGroups", "location": "eastus", "tags": {"a": "b"},
        "properties": {"provisioningState": "Succeeded"},
    }
    assert (await arm.request("PUT", path, json={"location": "eastus"})).status == 200
    moved = await arm.request("PUT", path, json={"location": "westus"})
    assert moved.status == 409
    assert (await read_json(moved))["error"]["code"] == "InvalidResourceGroupLocation"
    assert (await arm.request("HEAD", path.replace("Lifecycle", "LIFECYCLE"))).status == 204
    assert (await arm.request("HEAD", path + "x")).status == 404
    patched = await arm.request("PATCH", path, json={"tags": {"c": "d"}})
    assert (await read_json(patched))["tags"] == {"c": "d"}
    missing = await arm.request("GET", path + "x")
    assert missing.status == 404
    assert (await read_json(missing))["error"]["code"] == "ResourceGroupNotFound"


async def test_deleting_a_group_deletes_its_registries(arm):
    sub, registry = await make_registry(arm, "doomed01", group="doomedgroup")
    assert (await arm.request("DELETE", f"/subscriptions/{sub}/resourcegroups/doomedgroup")).status == 200
    assert await arm.services.registries.get("doomed01") is None
    assert (await arm.request("GET", registry)).status == 404
    assert (await arm.request("HEAD", f"/subscriptions/{sub}/resourcegroups/doomedgroup")).status == 404

# -- registries ---------------------------------------------------------------------------------
async def test_create_is_long_running_and_any_node_answers_the_poll(arm):
    sub = await make_group(arm)
    path = f"/subscriptions/{sub}/resourceGroups/armgroup/{ACR}/registries/lroreg01"
    response = await arm.request("PUT", path + "?api-version=2026-09-01-preview",
                                 json={"location": "eastus", "sku": {"name": "standard"}})
    assert response.status == 201
    body = await read_json(response)
    assert body["properties"]["provisioningState"] == "Creating"
    assert body["sku"] == {"name": "Standard", "tier": "Standard"}
    assert response.headers["Retry-After"] == "1"
    status_url = response.headers["Azure-AsyncOperation"]
    assert f"/subscriptions/{sub}/providers/Microsoft.ContainerRegistry/locations/eastus/operationResults/" in status_url
    assert status_url.endswith("?api-version=2026-09-01-preview")
    poll = await arm.client.session.get(status_url, headers=arm.headers)
    assert poll.status == 200
    assert (await read_json(poll))["status"] == "Succeeded"
    nobody = await arm.sp("nobody")
    assert (await arm.client.session.get(status_url, headers=mint(arm.services, nobody))).status == 403
    unknown = status_url.rsplit("/", 1)[0] + "/00000000-0000-0000-0000-000000000000"
    assert (await arm.client.session.get(unknown, headers=arm.headers)).status == 404
    final = await read_json(await arm.request("GET", path))
    assert final["properties"]["provisioningState"] == "Succeeded"
    again = await arm.request("PUT", path, json={"location": "eastus", "sku": {"name": "Standard"}})
    assert again.status == 200 and "Azure-AsyncOperation" not in again.headers


async def test_registry_body_has_acr_fields(arm):
    _, path = await make_registry(arm, "shapereg1")
    body = await read_json(await arm.request("GET", path))
    assert body["type"] == "Microsoft.ContainerRegistry/registries"
    props = body["properties"]
    assert props["adminUserEnabled"] is False and props["anonymousPullEnabled"] is False
    assert props["publicNetworkAccess"] == "Enabled"
    assert props["policies"]["retentionPolicy"] == {"days": 7, "status": "disabled"}
    assert props["policies"]["trustPolicy"] == {"type": "Notary", "status": "disabled"}
    assert props["policies"]["exportPolicy"] == {"status": "enabled"}
    assert props["encryption"] == {"status": "disabled"}
    assert props["dataEndpointEnabled"] is False
    assert props["zoneRedundancy"] == "Disabled"
    assert props["networkRuleBypassOptions"] == "AzureServices"
    assert props["roleAssignmentMode"] == "LegacyRegistryPermissions"
    assert props["creationDate"].endswith("Z")


async def test_registry_name_taken_elsewhere_is_a_conflict(arm):
    sub, _ = await make_registry(arm, "takenreg1")
    await make_group(arm, "othergroup")
    response = await arm.request("PUT", f"/subscriptions/{sub}/resourceGroups/othergroup/{ACR}/registries/TAKENREG1",
                                 json={"location": "eastus", "sku": {"name": "Basic"}})
    assert response.status == 409
    assert (await read_json(response))["error"]["code"] == "AlreadyExists"
    elsewhere = await arm.request("GET", f"/subscriptions/{sub}/resourceGroups/othergroup/{ACR}/registries/takenreg1")
    assert elsewhere.status == 404
    assert (await read_json(elsewhere))["error"]["code"] == "ResourceNotFound"


async def test_patch_and_sku_rules(arm):
    _, path = await make_registry(arm, "patchreg1")
    response = await arm.request("PATCH", path, json={"properties": {"anonymousPullEnabled": True}})
    assert response.status == 400
    assert (await read_json(response))["error"]["code"] == "FeatureNotSupportedForSku"
    premium = {
        "sku": {"name": "Premium"}, "tags": {"team": "a"},
        "properties": {
            "anonymousPullEnabled": True, "publicNetworkAccess": "disabled",
            "networkRuleSet": {"defaultAction": "Deny", "ipRules": [{"action": "Allow", "value": "10.0.0.0/24"}]},
            "policies": {"retentionPolicy": {"status": "enabled", "days": 30}, "exportPolicy": {"status": "disabled"}},
            "roleAssignmentMode": "AbacRepositoryPermissions", "networkRuleBypassOptions": "None",
        },
    }
    body = await read_json(await arm.request("PATCH", path, json=premium))
    props = body["properties"]
    assert body["sku"]["name"] == "Premium" and body["tags"] == {"team": "a"}
    assert props["anonymousPullEnabled"] is True and props["publicNetworkAccess"] == "Disabled"
    assert props["networkRuleSet"] == {"defaultAction": "Deny", "ipRules": [{"action": "Allow", "value": "10.0.0.0/24"}]}
    assert props["policies"]["retentionPolicy"] == {"days": 30, "status": "enabled"}
    assert props["policies"]["exportPolicy"] == {"status": "disabled"}
    assert props["roleAssignmentMode"] == "AbacRepositoryPermissions"
    assert props["networkRuleBypassOptions"] == "None"
    downgrade = await arm.request("PATCH", path, json={"sku": {"name": "Basic"}})
    assert downgrade.status == 400
    assert (await read_json(downgrade))["error"]["code"] == "FeatureNotSupportedForSku"


async def test_admin_credentials(arm):
    _, path = await make_registry(arm, "credreg01")
    refused = await arm.request("POST", path + "/listCredentials")
    assert refused.status == 400
    error = (await read_json(refused))["error"]
    assert error["code"] == "UnAuthorizedForCredentialOperations" and "admin user is disabled" in error["message"]
    await arm.request("PATCH", path, json={"properties": {"adminUserEnabled": True}})
    first = await read_json(await arm.request("POST", path + "/listCredentials"))
    assert first["username"] == "credreg01"
    assert [p["name"] for p in first["passwords"]] == ["password", "password2"]
    renewed = await read_json(await arm.request("POST", path + "/regenerateCredential", json={"name": "password2"}))
    assert renewed["passwords"][0] == first["passwords"][0]
    assert renewed["passwords"][1]["value"] != first["passwords"][1]["value"]
    bad = await arm.request("POST", path + "/regenerateCredential", json={"name": "password3"})
    assert bad.status == 400


async def test_check_name_and_usages(arm):
    sub, path = await make_registry(arm, "namereg01")
    check = f"/subscriptions/{sub}/{ACR}/checkNameAvailability"
    taken = await read_json(await arm.request("POST", check, json={"name": "NameReg01", "type": "Microsoft.ContainerRegistry/registries"}))
    assert taken == {"nameAvailable": False, "reason": "AlreadyExists", "message": "The registry NameReg01 is already in use."}
    free = await read_json(await arm.request("POST", check, json={"name": "freename1", "type": "Microsoft.ContainerRegistry/registries"}))
    assert free == {"nameAvailable": True}
    invalid = await read_json(await arm.request("POST", check, json={"name": "a-b", "type": "Microsoft.ContainerRegistry/registries"}))
    assert invalid["nameAvailable"] is False and invalid["reason"] == "Invalid"
    usages = await read_json(await arm.request("GET", path + "/listUsages"))
    names = {u["name"]: u for u in usages["value"]}
    assert names["Size"]["unit"] == "Bytes" and names["Tokens"]["limit"] == 100


async def test_resources_list_finds_registries_by_filter(arm):
    sub, _ = await make_registry(arm, "findme001")
    query = "$filter=resourceType eq 'Microsoft.ContainerRegistry/registries'&api-version=2024-11-01"
    found = await read_json(await arm.request("GET", f"/subscriptions/{sub}/resources?{query}"))
    assert {"findme001", "dockyard"} <= {r["name"] for r in found["value"]}
    other = "$filter=resourceType eq 'Microsoft.Compute/virtualMachines'&api-version=2024-11-01"
    assert (await read_json(await arm.request("GET", f"/subscriptions/{sub}/resources?{other}")))["value"] == []
    bad = await arm.request("GET", f"/subscriptions/{sub}/resources?$filter=location eq 'x'&api-version=1")
    assert bad.status == 400


# -- scope maps and tokens ------------------------------------------------------------
async def test_scope_maps_and_tokens_match_names_without_case(arm):
    _, path = await make_registry(arm, "tokreg001")
    made = await arm.request("PUT", path + "/scopeMaps/Team-Map", json={"properties": {
        "description": "team", "actions": ["repositories/team/*/content/read"]}})
    assert made.status == 201
    assert (await read_json(made))["properties"]["type"] == "UserDefined"
    again = await arm.request("PUT", path + "/scopemaps/team-map", json={"properties": {
        "actions": ["repositories/team/*/content/write", "repositories/team/*/content/read"]}})
    assert again.status == 200
    body = await read_json(again)
    assert body["name"] == "Team-Map" and body["properties"]["description"] == "team"
    system = await read_json(await arm.request("GET", path + "/scopeMaps/_REPOSITORIES_PULL"))
    assert system["properties"]["type"] == "SystemDefined"
    token = await arm.request("PUT", path + "/tokens/Team-Token",
                              json={"properties": {"scopeMapId": f"{path}/scopeMaps/TEAM-MAP"}})
    assert token.status == 201, await token.text()
    assert (await read_json(token))["properties"]["scopeMapId"] == f"{path}/scopeMaps/Team-Map"
    generated = await read_json(await arm.request("POST", path + "/generateCredentials", json={
        "tokenId": f"{path}/tokens/team-token", "name": "password2", "expiry": "2099-01-01T00:00:00.0000000Z"}))
    assert generated["username"] == "Team-Token"
    assert [p["name"] for p in generated["passwords"]] == ["password2"]
    assert generated["passwords"][0]["expiry"] == "2099-01-01T00:00:00Z"
    shown = await read_json(await arm.request("GET", path + "/tokens/TEAM-TOKEN"))
    assert shown["properties"]["credentials"]["passwords"] == [
        {"name": "password2", "creationTime": generated["passwords"][0]["creationTime"], "expiry": "2099-01-01T00:00:00Z"}]
    other = await arm.request("POST", path + "/generateCredentials",
                              json={"tokenId": path.replace("tokreg001", "otherreg1") + "/tokens/team-token"})
    assert other.status == 400
    in_use = await arm.request("DELETE", path + "/scopeMaps/team-map")
    assert in_use.status == 400
    assert (await arm.request("DELETE", path + "/tokens/team-token")).status == 200
    assert (await arm.request("DELETE", path + "/tokens/team-token")).status == 204
    assert (await arm.request("DELETE", path + "/scopeMaps/TEAM-MAP")).status == 200
    assert (await arm.request("GET", path + "/scopeMaps/team-map")).status == 404


async def test_head_on_a_registry_tells_whether_it_exists(arm):
    _, path = await make_registry(arm, "headreg01")
    assert (await arm.request("HEAD", path)).status == 204
    assert (await arm.request("HEAD", path.replace("headreg01", "headreg02"))).status == 404


async def test_patching_a_tokens_password_list_deletes_the_others(arm):
    _, path = await make_registry(arm, "tokreg002")
    await arm.request("PUT", path + "/tokens/two-pass", json={"properties": {"scopeMapId": "_repositories_pull"}})
    await arm.request("POST", path + "/generateCredentials", json={"tokenId": f"{path}/tokens/two-pass"})
    patched = await arm.request("PATCH", path + "/tokens/two-pass",
                                json={"properties": {"credentials": {"passwords": [{"name": "password2"}]}}})
    assert patched.status == 200, await patched.text()
    names = [p["name"] for p in (await read_json(patched))["properties"]["credentials"]["passwords"]]
    assert names == ["password2"]
    bad = await arm.request("PATCH", path + "/tokens/two-pass",
                            json={"properties": {"credentials": {"passwords": [{"name": "password3"}]}}})
    assert bad.status == 400
