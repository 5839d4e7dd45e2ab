"""The real Azure SDKs against a real Dockyard over TLS, signed in as service principals through
Dockyard's OpenID Connect token endpoint (azure-identity's ClientSecretCredential)."""

from __future__ import annotations

import importlib
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import requests

importlib.import_module("azure.mgmt.containerregistry")
importlib.import_module("azure.mgmt.resource.resources")

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError  # noqa: E402
from azure.mgmt.containerregistry import ContainerRegistryManagementClient  # noqa: E402
from azure.mgmt.resource.resources import ResourceManagementClient  # noqa: E402

from tests.arm.conftest import DOMAIN  # noqa: E402

GROUP = "sdkGroup"
REGISTRY = "armsdkreg"
REGISTRY_TYPE = "Microsoft.ContainerRegistry/registries"


@pytest.fixture(scope="module")
def rm(arm_server):
    return arm_server.client(ResourceManagementClient)


@pytest.fixture(scope="module")
def acr(arm_server):
    return arm_server.client(ContainerRegistryManagementClient)


@pytest.fixture(scope="module")
def registry(rm, acr):
    rm.resource_groups.create_or_update(GROUP, {"location": "eastus", "tags": {"purpose": "sdk"}})
    # as az does: the group's name lower-cased in the path
    poller = acr.registries.begin_create(
        GROUP.lower(), REGISTRY, {"location": "eastus", "sku": {"name": "Basic"}, "properties": {"adminUserEnabled": False}}
    )
    return poller.result()


def _error(excinfo) -> tuple[int, str]:
    error = excinfo.value
    return error.status_code, error.error.code if error.error else ""


def _bearer(arm_server, who: str = "admin") -> dict[str, str]:
    token = arm_server.credential(who).get_token(arm_server.url + "/.default").token
    return {"Authorization": f"Bearer {token}"}


def test_cloud_metadata_over_tls(arm_server):
    response = requests.get(arm_server.url + "//metadata/endpoints?api-version=2022-09-01", verify=arm_server.ca, timeout=10)
    assert response.status_code == 200
    document = response.json()
    port = arm_server.url.rsplit(":", 1)[1]
    assert document["authentication"]["loginEndpoint"] == arm_server.url
    assert document["authentication"]["audiences"][0] == arm_server.url + "/"
    assert document["suffixes"]["acrLoginServer"] == f".{DOMAIN}:{port}"


def test_subscriptions_and_tenants(arm_server):
    subscriptions = importlib.import_module("azure.mgmt.resource.subscriptions")
    client = arm_server.client(subscriptions.SubscriptionClient, subscription=False)
    found = list(client.subscriptions.list())
    assert [s.subscription_id for s in found] == [arm_server.subscription_id]
    assert found[0].tenant_id == arm_server.tenant_id and found[0].state == "Enabled"
    assert client.subscriptions.get(arm_server.subscription_id).display_name
    assert [t.tenant_id for t in client.tenants.list()] == [arm_server.tenant_id]
    nobody = arm_server.client(subscriptions.SubscriptionClient, "nobody", subscription=False)
    assert list(nobody.subscriptions.list()) == []


def test_resource_groups(rm):
    group = rm.resource_groups.create_or_update("sdkGroups2", {"location": "westeurope", "tags": {"a": "1"}})
    assert (group.name, group.location, group.tags) == ("sdkGroups2", "westeurope", {"a": "1"})
    assert rm.resource_groups.get("SDKGROUPS2").id.endswith("/resourceGroups/sdkGroups2")
    assert rm.resource_groups.check_existence("sdkgroups2") is True
    assert rm.resource_groups.check_existence("sdkNoSuchGroup") is False
    assert rm.resource_groups.update("sdkGroups2", {"tags": {"b": "2"}}).tags == {"b": "2"}
    assert "sdkGroups2" in [g.name for g in rm.resource_groups.list()]
    with pytest.raises(HttpResponseError) as excinfo:
        rm.resource_groups.create_or_update("sdkGroups2", {"location": "eastus"})
    assert _error(excinfo) == (409, "InvalidResourceGroupLocation")
    with pytest.raises(ResourceNotFoundError) as excinfo:
        rm.resource_groups.get("sdkNoSuchGroup")
    assert _error(excinfo) == (404, "ResourceGroupNotFound")
    rm.resource_groups.begin_delete("sdkGroups2").result()
    assert rm.resource_groups.check_existence("sdkGroups2") is False


def test_registry_create_get_and_list(arm_server, rm, acr, registry):
    port = arm_server.url.rsplit(":", 1)[1]
    assert registry.provisioning_state == "Succeeded"
    assert registry.login_server == f"{REGISTRY}.{DOMAIN}:{port}"
    assert registry.sku.name == "Basic" and registry.sku.tier == "Basic"
    assert registry.id == f"/subscriptions/{arm_server.subscription_id}/resourceGroups/{GROUP}/providers/{REGISTRY_TYPE}/{REGISTRY}"
    fetched = acr.registries.get("SDKGROUP", "ArmSdkReg")
    assert fetched.name == REGISTRY and fetched.admin_user_enabled is False
    assert fetched.policies.retention_policy.status == "disabled"
    assert REGISTRY in [r.name for r in acr.registries.list()]
    assert [r.name for r in acr.registries.list_by_resource_group(GROUP)] == [REGISTRY]
    found = list(rm.resources.list(filter=f"resourceType eq '{REGISTRY_TYPE}'"))
    assert registry.id in [r.id for r in found]
    assert [r.name for r in rm.resources.list_by_resource_group(GROUP)] == [REGISTRY]
    assert rm.resources.check_existence_by_id(registry.id, api_version="2025-11-01") is True
    assert rm.resources.check_existence_by_id(registry.id.replace(REGISTRY, "sdknosuchreg"), api_version="2025-11-01") is False
    taken = acr.registries.check_name_availability({"name": REGISTRY.upper(), "type": REGISTRY_TYPE})
    assert (taken.name_available, taken.reason) == (False, "AlreadyExists")
    assert acr.registries.check_name_availability({"name": "sdkfreename", "type": REGISTRY_TYPE}).name_available is True
    with pytest.raises(ResourceNotFoundError):
        acr.registries.get(GROUP, "sdknosuchreg")


def test_registry_update_credentials_and_usages(arm_server, acr, registry):
    updated = acr.registries.begin_update(GROUP, REGISTRY, {"properties": {"adminUserEnabled": True}, "tags": {"t": "v"}}).result()
    assert updated.admin_user_enabled is True and updated.tags == {"t": "v"}
    credentials = acr.registries.list_credentials(GROUP, REGISTRY)
    assert credentials.username == REGISTRY
    assert [p.name for p in credentials.passwords] == ["password", "password2"]
    renewed = acr.registries.regenerate_credential(GROUP, REGISTRY, {"name": "password"})
    assert renewed.passwords[0].value != credentials.passwords[0].value
    assert renewed.passwords[1].value == credentials.passwords[1].value
    # the admin user signs in to the registry's data plane with what ARM handed out
    port = arm_server.url.rsplit(":", 1)[1]
    answer = requests.get(arm_server.url + "/v2/", auth=(REGISTRY, renewed.passwords[0].value), verify=arm_server.ca,
                          headers={"Host": f"{REGISTRY}.{DOMAIN}:{port}"}, timeout=10)
    assert answer.status_code == 200, answer.text
    usages = {u.name: u for u in acr.registries.list_usages(GROUP, REGISTRY).value}
    assert usages["Size"].unit == "Bytes" and usages["ScopeMaps"].limit == 100
    premium = acr.registries.begin_update(GROUP, REGISTRY, {
        "sku": {"name": "Premium"},
        "properties": {"networkRuleSet": {"defaultAction": "Allow", "ipRules": [{"action": "Allow", "value": "192.0.2.0/24"}]},
                       "policies": {"retentionPolicy": {"status": "enabled", "days": 14}}},
    }).result()
    assert premium.sku.name == "Premium"
    assert premium.network_rule_set.ip_rules[0].ip_address_or_range == "192.0.2.0/24"
    assert premium.policies.retention_policy.days == 14
    with pytest.raises(HttpResponseError) as excinfo:
        acr.registries.begin_update(GROUP, REGISTRY, {"sku": {"name": "Basic"}}).result()
    assert _error(excinfo) == (400, "FeatureNotSupportedForSku")
    acr.registries.begin_update(GROUP, REGISTRY, {
        "sku": {"name": "Basic"}, "properties": {"adminUserEnabled": False, "networkRuleSet": {"defaultAction": "Allow", "ipRules": []},
                                                 "policies": {"retentionPolicy": {"status": "disabled"}}},
    }).result()
    with pytest.raises(HttpResponseError) as excinfo:
        acr.registries.list_credentials(GROUP, REGISTRY)
    assert _error(excinfo) == (400, "UnAuthorizedForCredentialOperations")


def test_scope_maps_and_tokens(acr, registry):
    scope_map = acr.scope_maps.begin_create(GROUP, REGISTRY, "sdk-pull-map", {
        "properties": {"description": "pull hello", "actions": ["repositories/hello/content/read"]},
    }).result()
    assert scope_map.properties.type == "UserDefined" and scope_map.actions == ["repositories/hello/content/read"]
    assert acr.scope_maps.get(GROUP, REGISTRY, "sdk-pull-map").description == "pull hello"
    maps = {m.name: m for m in acr.scope_maps.list(GROUP, REGISTRY)}
    assert maps["_repositories_pull"].properties.type == "SystemDefined" and "sdk-pull-map" in maps
    changed = acr.scope_maps.begin_update(GROUP, REGISTRY, "sdk-pull-map", {
        "properties": {"description": "pull and read", "actions": ["repositories/hello/content/read",
                                                                   "repositories/hello/metadata/read"]},
    }).result()
    assert changed.description == "pull and read" and len(changed.actions) == 2

    token = acr.tokens.begin_create(GROUP, REGISTRY, "sdk-token", {
        "properties": {"scopeMapId": scope_map.id, "status": "enabled"},
    }).result()
    assert token.scope_map_id == scope_map.id and token.status == "enabled"
    expiry = datetime.now(UTC) + timedelta(days=30)
    generated = acr.registries.begin_generate_credentials(GROUP, REGISTRY, {
        "tokenId": token.id, "name": "password1", "expiry": expiry.isoformat(),
    }).result()
    assert generated.username == "sdk-token"
    assert [p.name for p in generated.passwords] == ["password1"] and generated.passwords[0].value
    both = acr.registries.begin_generate_credentials(GROUP, REGISTRY, {"tokenId": token.id}).result()
    assert [p.name for p in both.passwords] == ["password1", "password2"]
    shown = acr.tokens.get(GROUP, REGISTRY, "sdk-token")
    assert [p.name for p in shown.credentials.passwords] == ["password1", "password2"]
    assert all(p.value is None for p in shown.credentials.passwords)
    dropped = acr.tokens.begin_update(GROUP, REGISTRY, "sdk-token", {
        "properties": {"credentials": {"passwords": [{"name": "password2"}]}},  # az acr token credential delete --password1
    }).result()
    assert [p.name for p in dropped.credentials.passwords] == ["password2"]
    disabled = acr.tokens.begin_update(GROUP, REGISTRY, "sdk-token", {"properties": {"status": "disabled"}}).result()
    assert disabled.status == "disabled"
    assert [t.name for t in acr.tokens.list(GROUP, REGISTRY)] == ["sdk-token"]
    with pytest.raises(HttpResponseError) as excinfo:
        acr.scope_maps.begin_delete(GROUP, REGISTRY, "sdk-pull-map").result()
    assert excinfo.value.status_code == 400
    acr.tokens.begin_delete(GROUP, REGISTRY, "sdk-token").result()
    with pytest.raises(ResourceNotFoundError):
        acr.tokens.get(GROUP, REGISTRY, "sdk-token")
    acr.scope_maps.begin_delete(GROUP, REGISTRY, "sdk-pull-map").result()
    with pytest.raises(ResourceNotFoundError):
        acr.scope_maps.get(GROUP, REGISTRY, "sdk-pull-map")


def test_role_assignments_grant_and_deny(arm_server, acr, registry):
    authorization = importlib.import_module("azure.mgmt.authorization")
    admin = arm_server.client(authorization.AuthorizationManagementClient)
    reader_acr = arm_server.client(ContainerRegistryManagementClient, "reader")
    reader_id = arm_server.principals["reader"].object_id
    with pytest.raises(HttpResponseError) as excinfo:
        reader_acr.registries.get(GROUP, REGISTRY)
    assert _error(excinfo) == (403, "AuthorizationFailed")

    definition = list(admin.role_definitions.list(f"/subscriptions/{arm_server.subscription_id}",
                                                  filter="roleName eq 'Reader'"))
    assert [d.role_name for d in definition] == ["Reader"]
    assert admin.role_definitions.get_by_id(definition[0].id).role_name == "Reader"
    name = str(uuid.uuid4())
    created = admin.role_assignments.create(registry.id, name, {
        "role_definition_id": definition[0].id, "principal_id": reader_id, "principal_type": "ServicePrincipal",
    })
    assert (created.name, created.scope, created.principal_id) == (name, registry.id, reader_id)
    assert admin.role_assignments.get(registry.id, name).id == created.id
    assert admin.role_assignments.get_by_id(created.id).name == name
    assert [a.name for a in admin.role_assignments.list_for_scope(registry.id, filter=f"principalId eq '{reader_id}'")] == [name]
    assert name in [a.name for a in admin.role_assignments.list_for_subscription()]
    assert name in [a.name for a in admin.role_assignments.list_for_resource_group(GROUP)]

    assert reader_acr.registries.get(GROUP, REGISTRY).name == REGISTRY
    for attempt in (
        lambda: reader_acr.registries.begin_update(GROUP, REGISTRY, {"properties": {"adminUserEnabled": True}}).result(),
        lambda: reader_acr.registries.list_credentials(GROUP, REGISTRY),
        lambda: reader_acr.registries.begin_delete(GROUP, REGISTRY).result(),
    ):
        with pytest.raises(HttpResponseError) as excinfo:
            attempt()
        assert _error(excinfo) == (403, "AuthorizationFailed")
    reader_authorization = arm_server.client(authorization.AuthorizationManagementClient, "reader")
    with pytest.raises(HttpResponseError) as excinfo:
        reader_authorization.role_assignments.create(registry.id, str(uuid.uuid4()), {
            "role_definition_id": definition[0].id.replace("acdd72a7-3385-48ef-bd42-f606fba81ae7",
                                                           "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"),
            "principal_id": reader_id,
        })
    assert _error(excinfo) == (403, "AuthorizationFailed")

    nobody = arm_server.client(ContainerRegistryManagementClient, "nobody")
    messages = []
    for name_tried in (REGISTRY, "sdknosuchreg"):
        with pytest.raises(HttpResponseError) as excinfo:
            nobody.registries.get(GROUP, name_tried)
        assert _error(excinfo) == (403, "AuthorizationFailed")
        messages.append(excinfo.value.error.message.replace(name_tried, "NAME"))
    assert messages[0] == messages[1]

    admin.role_assignments.delete(registry.id, name)
    with pytest.raises(HttpResponseError) as excinfo:
        reader_acr.registries.get(GROUP, REGISTRY)
    assert _error(excinfo) == (403, "AuthorizationFailed")


def test_delete_registry_and_group(rm, acr):
    rm.resource_groups.create_or_update("sdkDelete", {"location": "eastus"})
    acr.registries.begin_create("sdkDelete", "sdkdelete01", {"location": "eastus", "sku": {"name": "Standard"}}).result()
    acr.registries.begin_create("sdkDelete", "sdkdelete02", {"location": "eastus", "sku": {"name": "Basic"}}).result()
    acr.registries.begin_delete("sdkDelete", "sdkdelete01").result()
    with pytest.raises(ResourceNotFoundError):
        acr.registries.get("sdkDelete", "sdkdelete01")
    acr.registries.begin_delete("sdkDelete", "sdkdelete01").result()  # already gone: 204
    rm.resource_groups.begin_delete("sdkDelete").result()
    assert rm.resource_groups.check_existence("sdkDelete") is False
    assert acr.registries.check_name_availability({"name": "sdkdelete02", "type": REGISTRY_TYPE}).name_available is True


def test_bad_input_is_an_arm_400(arm_server, acr, registry):
    with pytest.raises(HttpResponseError) as excinfo:
        acr.registries.begin_create(GROUP, "sdkgoldreg", {"location": "eastus", "sku": {"name": "Gold"}}).result()
    assert _error(excinfo) == (400, "InvalidSku")
    with pytest.raises(HttpResponseError) as excinfo:
        acr.registries.begin_create(GROUP, "ab", {"location": "eastus", "sku": {"name": "Basic"}}).result()
    assert _error(excinfo) == (400, "InvalidResourceName")
    url = f"{arm_server.url}{registry.id}?api-version=2025-11-01"
    for body in ("{not json", "[]", '{"sku": {"name": 7}}'):
        response = requests.patch(url, data=body, headers={**_bearer(arm_server), "Content-Type": "application/json"},
                                  verify=arm_server.ca, timeout=10)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] in ("InvalidRequestContent", "InvalidSku")
