"""The directory API behind `dockyard ad`: only an owner may create principals and secrets."""

from __future__ import annotations

from tests.conftest import OWNER_PASSWORD


async def identity_token(client, username: str, password: str) -> str:
    base = f"http://{client.server.host}:{client.server.port}"
    response = await client.post(
        "/organizations/oauth2/v2.0/token",
        data={"grant_type": "password", "username": username, "password": password, "scope": f"{base}/.default"},
    )
    assert response.status == 200, await response.text()
    return (await response.json())["access_token"]


async def test_owner_creates_a_service_principal_that_can_sign_in(anonymous, services):
    token = await identity_token(anonymous, "owner", OWNER_PASSWORD)
    response = await anonymous.post(
        "/directory/v1/servicePrincipals", json={"displayName": "ci"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status == 201
    created = await response.json()
    assert set(created) >= {"appId", "password", "tenant", "displayName", "objectId"}
    assert created["tenant"] == services.tenancy.tenant_id
    principal = await services.principals.authenticate(created["appId"], created["password"])
    assert principal is not None and principal.kind == "sp"

    reset = await anonymous.post(
        f"/directory/v1/servicePrincipals/{created['appId']}/credentials", json={},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert reset.status == 200
    services.principals.forget()
    assert await services.principals.authenticate(created["appId"], created["password"]) is None
    assert await services.principals.authenticate(created["appId"], (await reset.json())["password"]) is not None


async def test_a_user_without_owner_rights_is_refused(anonymous, services):
    await services.principals.create_user("alice", "alice-password-1")
    token = await identity_token(anonymous, "alice", "alice-password-1")
    for path, body in (("/directory/v1/servicePrincipals", {}), ("/directory/v1/users", {"name": "b", "password": "x" * 12})):
        response = await anonymous.post(path, json=body, headers={"Authorization": f"Bearer {token}"})
        assert response.status == 403
        assert (await response.json())["error"]["code"] == "Authorization_RequestDenied"
    response = await anonymous.post("/directory/v1/servicePrincipals", json={})
    assert response.status == 401


async def test_bad_input_is_a_400_not_a_500(anonymous):
    token = await identity_token(anonymous, "owner", OWNER_PASSWORD)
    headers = {"Authorization": f"Bearer {token}"}
    for body in ({"years": "ten"}, {"years": -1}, {"years": 1000}):
        response = await anonymous.post("/directory/v1/servicePrincipals", json=body, headers=headers)
        assert response.status == 400, body
    response = await anonymous.post(
        "/directory/v1/users", data=b"{not json", headers={**headers, "Content-Type": "application/json"}
    )
    assert response.status == 400
    response = await anonymous.post("/directory/v1/users", json={"name": "bob", "password": "short"}, headers=headers)
    assert response.status == 400
    response = await anonymous.post("/directory/v1/users", json={"name": "owner", "password": "long-enough-pw"},
                                    headers=headers)
    assert response.status == 409
