"""ARM in process: paths, authentication, who sees which subscription, and refusals that reveal nothing."""

from __future__ import annotations

from dockyard.auth import roles
from tests.arm.conftest import mint
from tests.arm.helpers import ACR, make_registry, read_json


# -- metadata and paths ---------------------------------------------------------------
async def test_metadata_endpoints_needs_no_token_and_merges_slashes(arm):
    response = await arm.client.session.get(str(arm.client.make_url("/")) + "/metadata/endpoints?api-version=2022-09-01")
    assert response.status == 200
    document = await read_json(response)
    base = str(arm.client.make_url("/")).rstrip("/")
    port = base.rsplit(":", 1)[1]
    assert document["name"] == "Dockyard"
    assert document["authentication"]["loginEndpoint"] == base
    assert document["authentication"]["audiences"] == [base + "/"]
    assert document["resourceManager"] == base + "/"
    assert document["suffixes"]["acrLoginServer"] == f".localhost:{port}"


async def test_metadata_suffix_has_no_port_when_the_host_has_none(arm):
    response = await arm.request("GET", "/metadata/endpoints", headers={"Host": "arm.example.com"})
    document = await read_json(response)
    assert document["suffixes"]["acrLoginServer"] == ".localhost"
    assert document["authentication"]["loginEndpoint"] == "http://arm.example.com"


async def test_fixed_segments_and_names_match_without_case(arm):
    sub, _ = await make_registry(arm, "CaseReg01")
    path = f"/SUBSCRIPTIONS/{sub.upper()}/RESOURCEGROUPS/ARMGROUP/PROVIDERS/microsoft.containerregistry/REGISTRIES/casereg01"
    response = await arm.request("GET", path)
    assert response.status == 200, await response.text()
    body = await read_json(response)
    assert body["name"] == "CaseReg01"
    assert body["id"] == f"/subscriptions/{sub}/resourceGroups/armgroup/{ACR}/registries/CaseReg01"
    assert body["properties"]["loginServer"].startswith("casereg01.localhost:")


async def test_unknown_paths_and_methods_get_arm_errors(arm):
    sub = await arm.subscription()
    response = await arm.request("GET", f"/subscriptions/{sub}/providers/Microsoft.Compute/virtualMachines")
    assert response.status == 404
    assert (await read_json(response))["error"]["code"] == "NotFound"
    response = await arm.request("POST", f"/subscriptions/{sub}")
    assert response.status == 405
    assert "error" in await read_json(response)

# -- authentication ----------------------------------------------------------------------
async def test_missing_or_bad_tokens_are_401_with_a_challenge(arm):
    sub = await arm.subscription()
    base = str(arm.client.make_url("/")).rstrip("/")
    for headers, code in (
        ({}, "AuthenticationFailed"),
        ({"Authorization": "Basic b3duZXI6eA=="}, "AuthenticationFailed"),
        ({"Authorization": "Bearer not-a-token"}, "InvalidAuthenticationToken"),
        (mint(arm.services, arm.owner, audience="https://elsewhere.example/"), "InvalidAuthenticationToken"),
    ):
        response = await arm.client.session.get(f"{base}/subscriptions/{sub}?api-version=2022-12-01", headers=headers)
        assert response.status == 401
        assert (await read_json(response))["error"]["code"] == code
        challenge = response.headers["WWW-Authenticate"]
        assert challenge.startswith(f'Bearer authorization_uri="{base}/{arm.services.tenancy.tenant_id}/oauth2/authorize"')
        assert 'error="invalid_token"' in challenge


async def test_token_for_dockyards_own_audience_is_accepted(arm):
    base = str(arm.client.make_url("/")).rstrip("/")
    response = await arm.request("GET", "/subscriptions", headers=mint(arm.services, arm.owner, base + "/"))
    assert response.status == 200

# -- subscriptions -------------------------------------------------------------------------
async def test_subscriptions_show_only_where_the_caller_has_a_role(arm):
    sub = await arm.subscription()
    document = await read_json(await arm.request("GET", "/subscriptions"))
    assert [s["subscriptionId"] for s in document["value"]] == [sub]
    assert document["value"][0]["tenantId"] == arm.services.tenancy.tenant_id
    nobody = await arm.sp("nobody")
    assert (await read_json(await arm.request("GET", "/subscriptions", as_=nobody)))["value"] == []
    response = await arm.request("GET", f"/subscriptions/{sub}", as_=nobody)
    assert response.status == 403
    assert (await read_json(response))["error"]["code"] == "AuthorizationFailed"
    _, registry = await make_registry(arm)
    await arm.services.assignments.create(registry, roles.find("AcrPull"), nobody.object_id, "ServicePrincipal")
    visible = await read_json(await arm.request("GET", "/subscriptions", as_=nobody))
    assert [s["subscriptionId"] for s in visible["value"]] == [sub]
    tenants = await read_json(await arm.request("GET", "/tenants", as_=nobody))
    assert tenants["value"][0]["tenantId"] == arm.services.tenancy.tenant_id

# -- authorization ---------------------------------------------------------------------------------
async def test_refusals_do_not_tell_whether_the_target_exists(arm):
    sub, path = await make_registry(arm, "secretreg1")
    nobody = await arm.sp("nobody")
    exists = await arm.request("GET", path, as_=nobody)
    missing = await arm.request("GET", path.replace("secretreg1", "nosuchreg1"), as_=nobody)
    no_group = await arm.request("GET", path.replace("armgroup", "nosuchgroup"), as_=nobody)
    for response in (exists, missing, no_group):
        assert response.status == 403
        error = (await read_json(response))["error"]
        assert error["code"] == "AuthorizationFailed"
        assert f"with object id '{nobody.object_id}'" in error["message"]
        assert "Microsoft.ContainerRegistry/registries/read" in error["message"]


async def test_reader_reads_but_cannot_write(arm):
    sub, path = await make_registry(arm, "readreg01")
    reader = await arm.sp("reader")
    await arm.services.assignments.create(path, roles.find("Reader"), reader.object_id, "ServicePrincipal")
    assert (await arm.request("GET", path, as_=reader)).status == 200
    listed = await read_json(await arm.request("GET", f"/subscriptions/{sub}/{ACR}/registries", as_=reader))
    assert [r["name"] for r in listed["value"]] == ["readreg01"]
    for method, suffix, body in (
        ("PATCH", "", {"properties": {"adminUserEnabled": True}}),
        ("DELETE", "", None),
        ("POST", "/listCredentials", None),
        ("PUT", "/scopeMaps/readmap1", {"properties": {"actions": ["repositories/a/content/read"]}}),
    ):
        response = await arm.request(method, path + suffix, json=body, as_=reader)
        assert response.status == 403, (method, suffix)
        assert (await read_json(response))["error"]["code"] == "AuthorizationFailed"
    contributor = await arm.sp("contributor")
    await arm.services.assignments.create(path, roles.find("Contributor"), contributor.object_id, "ServicePrincipal")
    assert (await arm.request("PATCH", path, json={"tags": {"x": "y"}}, as_=contributor)).status == 200
    assignment = f"{path}/providers/Microsoft.Authorization/roleAssignments/6f0a1c55-8b76-4a43-9d38-6d2f6c1a0a11"
    grant = {"properties": {"roleDefinitionId": roles.definition_id(roles.find("AcrPull")), "principalId": reader.object_id}}
    assert (await arm.request("PUT", assignment, json=grant, as_=contributor)).status == 403

# -- identities of an external OpenID Connect issuer ---------------------------------------------------------
async def test_external_identity_is_authorized_by_its_assignments(arm):
    import dataclasses
    import json as jsonlib
    import socket
    import time

    import jwt
    from aiohttp import web
    from cryptography.hazmat.primitives.asymmetric import rsa

    from dockyard.auth.issuer import ExternalIssuer

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"

    async def discovery(request):
        return web.json_response({"issuer": url, "jwks_uri": f"{url}/keys"})

    async def keys(request):
        jwk = jsonlib.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
        jwk.update(kid="ext", use="sig", alg="RS256")
        return web.json_response({"keys": [jwk]})

    issuer_app = web.Application()
    issuer_app.router.add_get("/.well-known/openid-configuration", discovery)
    issuer_app.router.add_get("/keys", keys)
    runner = web.AppRunner(issuer_app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        services = arm.services
        services.issuer.external = (ExternalIssuer(url, ()),)
        services.settings = dataclasses.replace(services.settings, oidc_issuers=url)
        _, path = await make_registry(arm, "extreg001")
        now = int(time.time())
        subject = "ext-subject-1"
        token = jwt.encode({"iss": url, "aud": "https://management.azure.com/", "sub": subject, "iat": now,
                            "exp": now + 600, "preferred_username": "pat@external.example"},
                           key, algorithm="RS256", headers={"kid": "ext"})
        headers = {"Authorization": f"Bearer {token}"}
        refused = await arm.request("GET", path, headers=headers)
        assert refused.status == 403
        assert f"object id '{subject}'" in (await read_json(refused))["error"]["message"]
        # an owner may name a principal the directory doesn't know when external issuers are trusted
        grant = {"properties": {"roleDefinitionId": roles.definition_id(roles.find("Reader")), "principalId": subject}}
        assignment = f"{path}/providers/Microsoft.Authorization/roleAssignments/5b7d0c1e-3a39-4c5c-9a39-2b6b3b9a8d11"
        created = await arm.request("PUT", assignment, json=grant)
        assert created.status == 201, await created.text()
        assert (await read_json(created))["properties"]["principalType"] == "User"
        assert (await arm.request("GET", path, headers=headers)).status == 200
        assert (await arm.request("PATCH", path, json={"tags": {}}, headers=headers)).status == 403
    finally:
        await runner.cleanup()
