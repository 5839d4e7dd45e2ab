"""Azure role assignments and what they give on a registry's data plane.

Legacy mode (LegacyRegistryPermissions): AcrPull / AcrPush / AcrDelete and Owner /
Contributor / Reader (at the registry or any scope above it) reach the data plane.
ABAC mode (AbacRepositoryPermissions): only the "Container Registry Repository *" roles do,
filtered by their repository-name conditions; the Catalog Lister alone lists the catalog.

Every case is checked twice: with Basic credentials on /v2/ (403 DENIED when refused) and
through the token flow (GET /oauth2/token with Basic: the access claim holds only what's allowed).
"""

from __future__ import annotations

import uuid

import pytest

from dockyard.auth import roles

from .helpers import OTHER, OTHER_HOST, Seeder, access_of, basic, claim, describe, oci_error, sha256

PASSWORD = "alice's long password"
REPOSITORIES = ("team/app", "team/api", "other/app")
ALL_SCOPES = [f"repository:{name}:pull,push,delete" for name in REPOSITORIES] + ["registry:catalog:*"]
EQUALS_TEAM_APP = "@Request[Microsoft.ContainerRegistry/registries/repositories:name] StringEqualsIgnoreCase 'team/app'"
STARTS_WITH_TEAM = "@Request[Microsoft.ContainerRegistry/registries/repositories:name] StringStartsWith 'team/'"


def abac_condition(expression: str, action: str = "content/read") -> str:
    """A condition as the portal and the ACR docs write it (the expression is what counts here)."""
    return (
        "((!(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/" + action + "'}))"
        " OR (" + expression + "))"
    )


class World:
    """The default registry with three repositories, and alice, who holds no role yet."""

    def __init__(self, services, http, registry, alice, images) -> None:
        self.services = services
        self.http = http
        self.registry = registry
        self.alice = alice
        self.images = images
        self.headers = basic("alice", PASSWORD)

    @property
    def subscription_scope(self) -> str:
        return f"/subscriptions/{self.registry.subscription_id}"

    @property
    def group_scope(self) -> str:
        return f"/subscriptions/{self.registry.subscription_id}/resourceGroups/{self.registry.resource_group}"

    def scope(self, kind: str) -> str:
        return {"registry": self.registry.arm_id, "group": self.group_scope,
                "subscription": self.subscription_scope}[kind]

    async def assign(self, role: str, scope: str | None = None, condition: str | None = None):
        return await self.services.assignments.create(
            scope or self.registry.arm_id, roles.find(role), self.alice.object_id, condition=condition
        )

    async def abac(self) -> None:
        self.registry = await self.services.registries.update(
            self.registry.name, {"role_assignment_mode": "AbacRepositoryPermissions"}
        )

    # -- what alice can do with Basic credentials -------------------------------------
    async def pull(self, repository: str) -> int:
        response = await self.http.get(f"/v2/{repository}/manifests/v1", headers=self.headers)
        if response.status == 200:
            assert await response.read() == self.images[repository]["body"]
            blob = await self.http.get(f"/v2/{repository}/blobs/{self.images[repository]['layer']}", headers=self.headers)
            assert blob.status == 200, await describe(blob)
        else:
            await oci_error(response, 403, "DENIED")
        return response.status

    async def push(self, repository: str) -> int:
        data = f"alice's blob {uuid.uuid4()}".encode()
        response = await self.http.post(
            f"/v2/{repository}/blobs/uploads/?digest={sha256(data)}", data=data, headers=self.headers
        )
        if response.status != 201:
            await oci_error(response, 403, "DENIED")
        return response.status

    async def delete(self, repository: str) -> int:
        response = await self.http.delete(
            f"/v2/{repository}/manifests/{self.images[repository]['digest']}", headers=self.headers
        )
        if response.status != 202:
            await oci_error(response, 403, "DENIED")
        return response.status

    async def catalog(self) -> int:
        response = await self.http.get("/v2/_catalog", headers=self.headers)
        if response.status == 200:
            assert set(REPOSITORIES) <= set((await response.json())["repositories"])
        else:
            await oci_error(response, 403, "DENIED")
        return response.status

    async def access(self) -> list[dict]:
        return await access_of(self.http, *ALL_SCOPES, headers=self.headers)


@pytest.fixture
async def world(services, anonymous, client) -> World:
    seeder = Seeder(client)
    images = {name: await seeder.image(name) for name in REPOSITORIES}
    alice = await services.principals.create_user("alice", PASSWORD)
    registry = await services.registries.default()
    return World(services, anonymous, registry, alice, images)


# -- no role ----------------------------------------------------------------------------


async def test_signed_in_user_without_a_role_gets_nothing(world):
    response = await world.http.get("/v2/", headers=world.headers)
    assert response.status == 200, await describe(response)  # signed in...
    assert await world.pull("team/app") == 403  # ...but allowed nothing
    assert await world.push("team/app") == 403
    assert await world.delete("team/app") == 403
    assert await world.catalog() == 403
    assert await world.access() == []


# -- legacy roles at the registry scope ---------------------------------------------------


async def test_acrpull_pulls_but_does_not_push_or_delete(world):
    await world.assign("AcrPull")
    for repository in REPOSITORIES:
        assert await world.pull(repository) == 200
        assert await world.push(repository) == 403
        assert await world.delete(repository) == 403
    assert await world.catalog() == 200  # AcrPull lists the catalog (ACR's roles reference)
    assert await world.access() == [claim(name, "pull") for name in REPOSITORIES] + [claim("catalog", "*", kind="registry")]


async def test_acrpull_token_pulls_and_is_refused_push(world):
    access = await access_of(world.http, "repository:team/app:pull,push", headers=world.headers)
    assert access == []  # before the assignment
    await world.assign("AcrPull")
    response = await world.http.get(
        "/oauth2/token", params={"service": "dockyard.localhost", "scope": "repository:team/app:pull,push"},
        headers=world.headers,
    )
    token = (await response.json())["access_token"]
    pulled = await world.http.get("/v2/team/app/manifests/v1", headers={"Authorization": f"Bearer {token}"})
    assert pulled.status == 200, await describe(pulled)
    refused = await world.http.post("/v2/team/app/blobs/uploads/", headers={"Authorization": f"Bearer {token}"})
    await oci_error(refused, 403, "DENIED")
    assert 'error="insufficient_scope"' in refused.headers["WWW-Authenticate"]


async def test_acrpush_pushes_and_pulls_but_does_not_delete(world):
    await world.assign("AcrPush")
    assert await world.push("team/app") == 201
    assert await world.pull("team/app") == 200
    assert await world.delete("team/app") == 403
    # a whole image, manifest included
    pushed = await Seeder(world.http, headers=world.headers).image("team/new", "v1")
    response = await world.http.get("/v2/team/new/manifests/v1", headers=world.headers)
    assert response.status == 200 and await response.read() == pushed["body"]
    assert await world.access() == [claim(name, "pull", "push") for name in REPOSITORIES] + [
        claim("catalog", "*", kind="registry")
    ]


async def test_acrdelete_deletes_only(world):
    await world.assign("AcrDelete")
    assert await world.pull("team/app") == 403
    assert await world.push("team/app") == 403
    assert await world.catalog() == 403
    assert await world.access() == [claim(name, "delete") for name in REPOSITORIES]
    assert await world.delete("team/app") == 202
    gone = await world.http.get("/v2/team/app/manifests/v1", headers=basic())
    await oci_error(gone, 404, "MANIFEST_UNKNOWN")


async def test_roles_add_up(world):
    await world.assign("AcrPull")
    await world.assign("AcrDelete")
    assert await world.pull("team/app") == 200
    assert await world.push("team/app") == 403
    assert await world.delete("team/app") == 202


async def test_role_at_a_repository_scope_covers_that_repository_only(world):
    await world.assign("AcrPush", f"{world.registry.arm_id}/repositories/team/app")
    assert await world.pull("team/app") == 200
    assert await world.push("team/app") == 201
    assert await world.pull("team/api") == 403
    assert await world.pull("other/app") == 403
    assert await world.catalog() == 403
    assert await world.access() == [claim("team/app", "pull", "push")]


async def test_removing_the_assignment_takes_effect_at_once(world):
    assignment = await world.assign("AcrPull")
    assert await world.pull("team/app") == 200  # remembered by the authorizer's cache
    await world.services.assignments.delete(assignment.id)
    assert await world.pull("team/app") == 403
    assert await world.access() == []


# -- Owner / Contributor / Reader above the registry, legacy mode ---------------------------------


@pytest.mark.parametrize("where", ["subscription", "group", "registry"])
async def test_reader_above_the_registry_pulls_in_legacy_mode(world, where):
    await world.assign("Reader", world.scope(where))
    assert await world.pull("team/app") == 200
    assert await world.push("team/app") == 403
    assert await world.delete("team/app") == 403
    access = await world.access()
    assert [a for a in access if a["type"] == "repository"] == [claim(name, "pull") for name in REPOSITORIES]


@pytest.mark.parametrize("role", ["Contributor", "Owner"])
@pytest.mark.parametrize("where", ["subscription", "group"])
async def test_contributor_and_owner_above_the_registry_have_the_whole_data_plane(world, role, where):
    await world.assign(role, world.scope(where))
    assert await world.pull("other/app") == 200
    assert await world.push("other/app") == 201
    assert await world.catalog() == 200
    assert await world.access() == [claim(name, "pull", "push", "delete") for name in REPOSITORIES] + [
        claim("catalog", "*", kind="registry")
    ]
    assert await world.delete("other/app") == 202


async def test_role_on_another_resource_group_gives_nothing_here(world):
    subscription = world.registry.subscription_id
    group, _ = await world.services.tenancy.put_group(subscription, "elsewhere", "local", None)
    await world.assign("Owner", f"/subscriptions/{subscription}/resourceGroups/elsewhere")
    assert group.name == "elsewhere"
    assert await world.pull("team/app") == 403
    assert await world.access() == []


# -- ABAC mode ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "where"),
    [("AcrPull", "registry"), ("AcrPush", "registry"), ("AcrDelete", "registry"), ("Owner", "subscription"),
     ("Contributor", "group"), ("Reader", "registry"), ("Owner", "registry")],
)
async def test_legacy_roles_give_no_data_plane_rights_in_abac_mode(world, role, where):
    await world.abac()
    await world.assign(role, world.scope(where))
    assert await world.pull("team/app") == 403
    assert await world.push("team/app") == 403
    assert await world.delete("team/app") == 403
    assert await world.catalog() == 403
    assert await world.access() == []


async def test_switching_to_abac_mode_withdraws_acrpull_at_once(world):
    await world.assign("AcrPull")
    assert await world.pull("team/app") == 200  # and now cached
    await world.abac()
    assert await world.pull("team/app") == 403
    assert await world.access() == []


async def test_repository_reader_with_equals_condition_pulls_that_repository_only(world):
    await world.abac()
    await world.assign("Container Registry Repository Reader", condition=abac_condition(EQUALS_TEAM_APP))
    assert await world.pull("team/app") == 200
    assert await world.pull("team/api") == 403
    assert await world.pull("other/app") == 403
    assert await world.push("team/app") == 403
    assert await world.delete("team/app") == 403
    assert await world.catalog() == 403
    assert await world.access() == [claim("team/app", "pull")]
    # the comparison ignores case; a longer or shorter name does not match
    for name in ("team/app2", "team", "xteam/app"):
        assert await access_of(world.http, f"repository:{name}:pull", headers=world.headers) == []


async def test_repository_reader_condition_ignores_case_of_the_value(world):
    await world.abac()
    condition = "@Request[Microsoft.ContainerRegistry/registries/repositories:name] StringEqualsIgnoreCase 'Team/App'"
    await world.assign("Container Registry Repository Reader", condition=condition)
    assert await world.pull("team/app") == 200
    assert await world.pull("team/api") == 403


async def test_repository_reader_with_starts_with_condition_covers_the_prefix(world):
    await world.abac()
    await world.assign("Container Registry Repository Reader", condition=abac_condition(STARTS_WITH_TEAM))
    assert await world.pull("team/app") == 200
    assert await world.pull("team/api") == 200
    assert await world.pull("other/app") == 403
    assert await world.access() == [claim("team/app", "pull"), claim("team/api", "pull")]
    assert await access_of(world.http, "repository:teams/app:pull", headers=world.headers) == []
    assert await access_of(world.http, "repository:team/not/yet/pushed:pull", headers=world.headers) == [
        claim("team/not/yet/pushed", "pull")
    ]


async def test_repository_writer_and_contributor_in_abac_mode(world):
    await world.abac()
    await world.assign("Container Registry Repository Writer", condition=abac_condition(STARTS_WITH_TEAM))
    assert await world.push("team/app") == 201
    assert await world.push("other/app") == 403
    assert await world.delete("team/app") == 403
    await world.assign("Container Registry Repository Contributor", condition=abac_condition(EQUALS_TEAM_APP))
    assert await world.delete("team/app") == 202
    assert await world.delete("team/api") == 403


async def test_repository_roles_also_work_in_legacy_mode(world):
    await world.assign("Container Registry Repository Reader", condition=EQUALS_TEAM_APP)
    assert await world.pull("team/app") == 200
    assert await world.pull("team/api") == 403


async def test_catalog_lister_lists_the_catalog_and_nothing_else(world):
    await world.abac()
    await world.assign("Container Registry Repository Catalog Lister")
    assert await world.catalog() == 200
    response = await world.http.get("/acr/v1/_catalog", headers=world.headers)
    assert response.status == 200, await describe(response)
    assert await world.pull("team/app") == 403
    assert await world.access() == [claim("catalog", "*", kind="registry")]


async def test_repository_roles_do_not_list_the_catalog(world):
    await world.abac()
    for role in ("Container Registry Repository Reader", "Container Registry Repository Writer",
                 "Container Registry Repository Contributor"):
        await world.assign(role)
    assert await world.pull("other/app") == 200
    assert await world.catalog() == 403
    response = await world.http.get("/acr/v1/_catalog", headers=world.headers)
    await oci_error(response, 403, "DENIED")
    assert [a for a in await world.access() if a["type"] == "registry"] == []


async def test_legacy_roles_cannot_take_a_condition(world):
    with pytest.raises(Exception) as raised:
        await world.assign("AcrPull", condition=EQUALS_TEAM_APP)
    assert "does not support conditions" in str(raised.value)


# -- another registry --------------------------------------------------------------------------


@pytest.fixture
async def other(world, client):
    group, _ = await world.services.tenancy.put_group(world.registry.subscription_id, "othergroup", "local", None)
    registry = await world.services.registries.ensure(OTHER, resource_group_id=group.id)
    await Seeder(client, host=OTHER_HOST).image("team/app")
    return registry


@pytest.mark.parametrize("role", ["AcrPull", "AcrPush", "Owner", "Container Registry Repository Reader",
                                  "Container Registry Repository Catalog Lister"])
async def test_assignment_on_another_registry_gives_nothing_here(world, other, role):
    await world.services.assignments.create(other.arm_id, roles.find(role), world.alice.object_id)
    assert await world.pull("team/app") == 403
    assert await world.catalog() == 403
    assert await world.access() == []
    # the control: on the other registry, the same assignment works
    there = {**world.headers, "Host": OTHER_HOST}
    if role != "Container Registry Repository Catalog Lister":
        response = await world.http.get("/v2/team/app/manifests/v1", headers=there)
        assert response.status == 200, await describe(response)
    else:
        response = await world.http.get("/v2/_catalog", headers=there)
        assert response.status == 200, await describe(response)


async def test_assignment_on_a_registry_whose_name_extends_this_one_gives_nothing_here(world, client):
    # ".../registries/dockyard2" must not be mistaken for a scope below ".../registries/dockyard"
    longer = await world.services.registries.ensure("dockyard2", resource_group_id=world.registry.resource_group_id)
    assert longer.arm_id.startswith(world.registry.arm_id)
    await world.services.assignments.create(longer.arm_id, roles.find("AcrPush"), world.alice.object_id)
    assert await world.pull("team/app") == 403
    assert await world.access() == []
