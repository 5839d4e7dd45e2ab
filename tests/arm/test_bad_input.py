"""ARM in process: bad input is a 4xx in ARM's error envelope, never a 500."""

from __future__ import annotations

import pytest

from tests.arm.helpers import ACR, make_group, make_registry, read_json


# -- bad input ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "body, code",
    [
        ("{bad json", "InvalidRequestContent"),
        ("[1, 2]", "InvalidRequestContent"),
        ("", "InvalidRequestContent"),
        ("\xff\xfe", "InvalidRequestContent"),
        ("[" * 100_000 + "]" * 100_000, "InvalidRequestContent"),
        ('{"location": "eastus", "sku": {"name": "Gold"}}', "InvalidSku"),
        ('{"location": "eastus", "sku": "Basic"}', "InvalidRequestContent"),
        ('{"location": "eastus"}', "InvalidSku"),
        ('{"location": 5, "sku": {"name": "Basic"}}', "InvalidRequestContent"),
        ('{"location": "east/us", "sku": {"name": "Basic"}}', "InvalidResourceLocation"),
        ('{"location": "eastus", "sku": {"name": "Basic"}, "properties": {"adminUserEnabled": "yes"}}', "InvalidRequestContent"),
        ('{"location": "eastus", "sku": {"name": "Basic"}, "properties": {"publicNetworkAccess": "Maybe"}}', "InvalidRequestContent"),
        ('{"location": "eastus", "sku": {"name": "Premium"}, "properties": {"networkRuleSet": {"ipRules": [{"value": "x"}]}}}',
         "InvalidIpRule"),
        ('{"location": "eastus", "sku": {"name": "Basic"}, "properties": {"policies": {"retentionPolicy": {"days": 1000}}}}',
         "InvalidRequestContent"),
        ('{"location": "eastus", "sku": {"name": "Basic"}, "tags": {"a": 1}}', "InvalidTag"),
        ('{"location": "eastus", "sku": {"name": "Basic"}, "properties": []}', "InvalidRequestContent"),
    ],
)
async def test_bad_registry_bodies_are_400(arm, body, code):
    sub = await make_group(arm)
    response = await arm.request("PUT", f"/subscriptions/{sub}/resourceGroups/armgroup/{ACR}/registries/badbody01",
                                 data=body.encode("latin-1"), headers={"Content-Type": "application/json"})
    assert response.status == 400, await response.text()
    assert (await read_json(response))["error"]["code"] == code


@pytest.mark.parametrize("name", ["ab1", "has-dash1", "x" * 51, "under_score"])
async def test_bad_registry_names_are_400(arm, name):
    sub = await make_group(arm)
    response = await arm.request("PUT", f"/subscriptions/{sub}/resourceGroups/armgroup/{ACR}/registries/{name}",
                                 json={"location": "eastus", "sku": {"name": "Basic"}})
    assert response.status == 400
    assert (await read_json(response))["error"]["code"] == "InvalidResourceName"


async def test_oversized_body_is_413(arm):
    sub = await arm.subscription()
    response = await arm.request("PUT", f"/subscriptions/{sub}/resourcegroups/big",
                                 data=b'{"location": "' + b"x" * (2 << 20) + b'"}')
    assert response.status == 413
    assert (await read_json(response))["error"]["code"] == "RequestEntityTooLarge"


async def test_no_input_yields_a_500(arm):
    """Odd values in every writable place answer 4xx in ARM's envelope, never 500."""
    sub, path = await make_registry(arm, "fuzzreg01")
    await arm.request("PUT", path + "/scopeMaps/fuzzmap1", json={"properties": {"actions": ["repositories/a/content/read"]}})
    oddities = [None, 0, -1, 1e308, True, "", "x" * 5000, [], {}, [None], {"": None}, "\u0000", {"a": {"b": []}}]
    targets = [
        ("PUT", f"/subscriptions/{sub}/resourcegroups/fuzzgroup", ("location", "tags")),
        ("PATCH", f"/subscriptions/{sub}/resourcegroups/armgroup", ("tags",)),
        ("PATCH", path, ("sku", "tags", "properties")),
        ("PUT", path + "/scopeMaps/fuzzmap2", ("properties",)),
        ("PUT", path + "/tokens/fuzztok01", ("properties",)),
        ("PATCH", path + "/tokens/fuzztok01", ("properties",)),
        ("POST", path + "/generateCredentials", ("tokenId", "name", "expiry")),
        ("POST", path + "/regenerateCredential", ("name",)),
        ("POST", f"/subscriptions/{sub}/{ACR}/checkNameAvailability", ("name", "type")),
        ("PUT", f"{path}/providers/Microsoft.Authorization/roleAssignments/3b7d0c1e-3a39-4c5c-9a39-2b6b3b9a8d11",
         ("properties",)),
    ]
    for method, url, keys in targets:
        for key in keys:
            for value in oddities:
                for body in ({key: value}, {"properties": {key: value}}):
                    response = await arm.request(method, url, json=body)
                    assert response.status < 500, (method, url, body, await response.text())
                    if response.status >= 400:
                        assert "code" in (await read_json(response))["error"]
