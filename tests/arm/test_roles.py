"""ARM in process: role assignments and role definitions (Microsoft.Authorization)."""

from __future__ import annotations

from dockyard.auth import roles
from tests.arm.helpers import ACR, make_registry, read_json


# -- role assignments ----------------------------------------------------------------------------------
async def test_role_assignments(arm):
    sub, path = await make_registry(arm, "rolereg01")
    user = await arm.sp("assignee")
    name = "0b7d0c1e-3a39-4c5c-9a39-2b6b3b9a8d11"
    url = f"{path}/providers/Microsoft.Authorization/roleAssignments/{name}"
    body = {"properties": {"roleDefinitionId": f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/"
                                                 "7f951dda-4ed3-4680-a7ca-43fe172d538d",
                           "principalId": user.object_id}}
    created = await arm.request("PUT", url, json=body)
    assert created.status == 201, await created.text()
    document = await read_json(created)
    assert document["name"] == name and document["type"] == "Microsoft.Authorization/roleAssignments"
    assert document["properties"]["scope"] == path
    assert document["properties"]["principalType"] == "ServicePrincipal"
    assert document["properties"]["roleDefinitionId"].endswith("/roleDefinitions/7f951dda-4ed3-4680-a7ca-43fe172d538d")
    assert (await arm.request("PUT", url, json=body)).status == 200
    duplicate = await arm.request("PUT", url.replace(name, "1b7d0c1e-3a39-4c5c-9a39-2b6b3b9a8d11"), json=body)
    assert duplicate.status == 409
    assert (await read_json(await arm.request("GET", url)))["id"] == url
    listed = await read_json(await arm.request(
        "GET", f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleAssignments"
               f"?$filter=principalId eq '{user.object_id}'&api-version=2022-04-01"))
    assert [a["name"] for a in listed["value"]] == [name]
    at_scope = await read_json(await arm.request(
        "GET", f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleAssignments?$filter=atScope()&api-version=1"))
    assert name not in [a["name"] for a in at_scope["value"]]
    assert (await arm.request("DELETE", url)).status == 200
    assert (await arm.request("DELETE", url)).status == 204
    assert (await arm.request("GET", url)).status == 404


async def test_role_assignment_bad_input(arm):
    sub, path = await make_registry(arm, "rolebad01")
    user = await arm.sp("assignee")
    base = f"{path}/providers/Microsoft.Authorization/roleAssignments"
    good_role = roles.definition_id(roles.find("AcrPush"))
    for name, body, code in (
        ("not-a-guid", {"properties": {"roleDefinitionId": good_role, "principalId": user.object_id}}, "InvalidRoleAssignmentId"),
        ("2b7d0c1e-3a39-4c5c-9a39-2b6b3b9a8d11", {"properties": {"roleDefinitionId": "nope", "principalId": user.object_id}},
         "RoleDefinitionDoesNotExist"),
        ("2b7d0c1e-3a39-4c5c-9a39-2b6b3b9a8d11", {"properties": {"roleDefinitionId": good_role, "principalId": "ghost"}},
         "PrincipalNotFound"),
        ("2b7d0c1e-3a39-4c5c-9a39-2b6b3b9a8d11", {"properties": {"roleDefinitionId": good_role}}, "InvalidPrincipalId"),
        ("2b7d0c1e-3a39-4c5c-9a39-2b6b3b9a8d11", {"properties": "x"}, "InvalidRequestContent"),
    ):
        response = await arm.request("PUT", f"{base}/{name}", json=body)
        assert response.status == 400, (name, body, await response.text())
        assert (await read_json(response))["error"]["code"] == code
    bad_scope = await arm.request("PUT", f"/subscriptions/{sub}/resourceGroups/armgroup/{ACR}/registries/rolebad01/x/y"
                                          "/providers/Microsoft.Authorization/roleAssignments/2b7d0c1e-3a39-4c5c-9a39-2b6b3b9a8d11",
                                  json={"properties": {"roleDefinitionId": good_role, "principalId": user.object_id}})
    assert bad_scope.status == 400


async def test_role_definitions(arm):
    sub = await arm.subscription()
    listed = await read_json(await arm.request(
        "GET", f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions?$filter=roleName eq 'acrpush'&api-version=1"))
    assert [d["properties"]["roleName"] for d in listed["value"]] == ["AcrPush"]
    one = await arm.request("GET", "/providers/Microsoft.Authorization/roleDefinitions/8311e382-0749-4cb8-b61a-304f252e45ec")
    assert (await read_json(one))["properties"]["roleName"] == "AcrPush"
    assert (await arm.request("GET", "/providers/Microsoft.Authorization/roleDefinitions/nope")).status == 404
