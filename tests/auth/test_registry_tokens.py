"""Non-Entra registry tokens and their scope maps (ACR's `az acr token` / `az acr scope-map`)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from dockyard.auth import scopemaps
from dockyard.auth.scopemaps import MAX_ACTIONS, QuotaExceeded, ScopeMapError
from dockyard.metadata.database import utcnow

from .helpers import OTHER, OTHER_HOST, Seeder, access_of, basic, bearer, claim, describe, get_token, oci_error, sha256

SAMPLES_READ = ["repositories/samples/*/content/read"]


class Tokens:
    def __init__(self, services, http, registry, images) -> None:
        self.services = services
        self.http = http
        self.registry = registry
        self.images = images

    async def make(self, name: str, actions: list[str] | None = None, scope_map: str | None = None,
                   expiry=None, registry=None) -> str:
        registry = registry or self.registry
        if scope_map is None:
            scope_map = f"{name}-scope-map"
            await self.services.scopemaps.put_map(registry, scope_map, actions, f"actions of {name}")
        await self.services.scopemaps.put_token(registry, name, scope_map, "enabled")
        return (await self.services.scopemaps.generate_password(registry, name, "password1", expiry))["value"]

    async def pull(self, headers: dict[str, str], repository: str, host: str | None = None) -> int:
        if host:
            headers = {**headers, "Host": host}
        response = await self.http.get(f"/v2/{repository}/manifests/v1", headers=headers)
        if response.status == 200:
            assert await response.read() == self.images[repository]["body"]
        return response.status

    async def push(self, headers: dict[str, str], repository: str) -> int:
        data = f"token blob for {repository}".encode()
        response = await self.http.post(f"/v2/{repository}/blobs/uploads/?digest={sha256(data)}", data=data,
                                        headers=headers)
        return response.status

    async def delete(self, headers: dict[str, str], repository: str) -> int:
        response = await self.http.delete(f"/v2/{repository}/manifests/{self.images[repository]['digest']}",
                                          headers=headers)
        return response.status


REPOSITORIES = ("samples/x", "samples/deep/y", "samples", "other/x")


@pytest.fixture
async def tokens(services, anonymous, client) -> Tokens:
    seeder = Seeder(client)
    images = {name: await seeder.image(name) for name in REPOSITORIES}
    return Tokens(services, anonymous, await services.registries.default(), images)


async def assert_refused(http, headers: dict[str, str]) -> None:
    for path in ("/v2/", "/v2/samples/x/manifests/v1"):
        await oci_error(await http.get(path, headers=headers), 401, "UNAUTHORIZED")
    response = await get_token(http, "repository:samples/x:pull", headers=headers)
    await oci_error(response, 401, "UNAUTHORIZED")


# -- scope maps with wildcards ---------------------------------------------------------------------


async def test_wildcard_read_token_pulls_under_the_prefix_only(tokens):
    password = await tokens.make("samples-reader", SAMPLES_READ)
    headers = basic("samples-reader", password)
    assert await tokens.pull(headers, "samples/x") == 200
    assert await tokens.pull(headers, "samples/deep/y") == 200
    for name in ("other/x", "samples"):  # "samples/*" covers what is below samples/, not samples itself
        assert await tokens.pull(headers, name) == 403
        await oci_error(await tokens.http.get(f"/v2/{name}/manifests/v1", headers=headers), 403, "DENIED")
    blob = await tokens.http.get(f"/v2/samples/x/blobs/{tokens.images['samples/x']['layer']}", headers=headers)
    assert blob.status == 200, await describe(blob)
    access = await access_of(tokens.http, "repository:samples/x:pull,push,delete", "repository:other/x:pull",
                             "repository:samples:pull", "repository:samples/new/one:pull", "registry:catalog:*",
                             headers=headers)
    assert access == [claim("samples/x", "pull"), claim("samples/new/one", "pull")]


async def test_read_token_cannot_push_or_delete(tokens):
    password = await tokens.make("samples-reader", SAMPLES_READ)
    headers = basic("samples-reader", password)
    assert await tokens.push(headers, "samples/x") == 403
    response = await tokens.http.post("/v2/samples/x/blobs/uploads/", headers=headers)
    await oci_error(response, 403, "DENIED")
    assert await tokens.delete(headers, "samples/x") == 403
    token = (await (await get_token(tokens.http, "repository:samples/x:pull,push", headers=headers)).json())["access_token"]
    response = await tokens.http.post("/v2/samples/x/blobs/uploads/", headers=bearer(token))
    await oci_error(response, 403, "DENIED")


async def test_write_with_read_pushes(tokens):
    password = await tokens.make("samples-writer", ["repositories/samples/*/content/read",
                                                    "repositories/samples/*/content/write"])
    headers = basic("samples-writer", password)
    assert await tokens.push(headers, "samples/x") == 201
    image = await Seeder(tokens.http, headers=headers).image("samples/brand-new", "v1")
    response = await tokens.http.get("/v2/samples/brand-new/manifests/v1", headers=headers)
    assert response.status == 200 and await response.read() == image["body"]
    assert await tokens.push(headers, "other/x") == 403
    assert await tokens.delete(headers, "samples/x") == 403


async def test_matching_rules_add_up(tokens):
    password = await tokens.make("adds-up", ["repositories/samples/*/content/read",
                                             "repositories/samples/x/content/delete",
                                             "repositories/other/x/content/read"])
    headers = basic("adds-up", password)
    assert await tokens.pull(headers, "other/x") == 200
    assert await access_of(tokens.http, "repository:samples/x:pull,push,delete", headers=headers) == [
        claim("samples/x", "pull", "delete")
    ]
    assert await tokens.delete(headers, "samples/x") == 202


async def test_token_cannot_list_the_catalog(tokens):
    for name, actions in (("samples-reader", SAMPLES_READ), ("everything", None)):
        if actions is None:
            password = await tokens.make(name, scope_map="_repositories_admin")
        else:
            password = await tokens.make(name, actions)
        headers = basic(name, password)
        for path in ("/v2/_catalog", "/acr/v1/_catalog"):
            await oci_error(await tokens.http.get(path, headers=headers), 403, "DENIED")
        assert await access_of(tokens.http, "registry:catalog:*", headers=headers) == []


# -- status, expiry, passwords ---------------------------------------------------------------------


async def test_disabled_token_is_refused_after_being_used(tokens):
    password = await tokens.make("soon-disabled", SAMPLES_READ)
    headers = basic("soon-disabled", password)
    assert await tokens.pull(headers, "samples/x") == 200
    assert await access_of(tokens.http, "repository:samples/x:pull", headers=headers) == [claim("samples/x", "pull")]
    await tokens.services.scopemaps.put_token(tokens.registry, "soon-disabled", None, "disabled")
    await assert_refused(tokens.http, headers)
    await tokens.services.scopemaps.put_token(tokens.registry, "soon-disabled", None, "enabled")
    assert await tokens.pull(headers, "samples/x") == 200


async def test_deleted_token_is_refused_after_being_used(tokens):
    password = await tokens.make("soon-deleted", SAMPLES_READ)
    headers = basic("soon-deleted", password)
    assert await tokens.pull(headers, "samples/x") == 200
    await tokens.services.scopemaps.delete_token(tokens.registry, "soon-deleted")
    await assert_refused(tokens.http, headers)


async def test_expired_password_is_refused(tokens):
    password = await tokens.make("expired", SAMPLES_READ, expiry=utcnow() - timedelta(days=1))
    await assert_refused(tokens.http, basic("expired", password))


async def test_password_that_expires_while_remembered_is_refused(tokens):
    password = await tokens.make("expiring", SAMPLES_READ, expiry=utcnow() + timedelta(seconds=2))
    headers = basic("expiring", password)
    assert await tokens.pull(headers, "samples/x") == 200  # checked once, and remembered
    await asyncio.sleep(2.5)
    await assert_refused(tokens.http, headers)


async def test_password2_works_and_each_password_is_its_own(tokens):
    password1 = await tokens.make("two-passwords", SAMPLES_READ, expiry=utcnow() - timedelta(seconds=1))
    password2 = (await tokens.services.scopemaps.generate_password(tokens.registry, "two-passwords", "password2",
                                                                    None))["value"]
    assert password1 != password2
    await assert_refused(tokens.http, basic("two-passwords", password1))
    assert await tokens.pull(basic("two-passwords", password2), "samples/x") == 200


async def test_regenerated_password_refuses_the_old_one(tokens):
    old = await tokens.make("regenerated", SAMPLES_READ)
    assert await tokens.pull(basic("regenerated", old), "samples/x") == 200
    new = (await tokens.services.scopemaps.generate_password(tokens.registry, "regenerated", "password1", None))["value"]
    await assert_refused(tokens.http, basic("regenerated", old))
    assert await tokens.pull(basic("regenerated", new), "samples/x") == 200


async def test_deleted_password_is_refused(tokens):
    password = await tokens.make("no-password", SAMPLES_READ)
    assert await tokens.pull(basic("no-password", password), "samples/x") == 200
    await tokens.services.scopemaps.delete_password(tokens.registry, "no-password", "password1")
    await assert_refused(tokens.http, basic("no-password", password))


async def test_token_without_passwords_signs_nobody_in(tokens):
    await tokens.services.scopemaps.put_map(tokens.registry, "nopass-map", SAMPLES_READ, None)
    await tokens.services.scopemaps.put_token(tokens.registry, "nopass", "nopass-map", "enabled")
    for password in ("", "x", "None", "null"):
        await assert_refused(tokens.http, basic("nopass", password))


async def test_narrowing_the_scope_map_takes_effect_at_once(tokens):
    password = await tokens.make("narrowed", ["repositories/samples/*/content/read",
                                              "repositories/other/x/content/read"])
    headers = basic("narrowed", password)
    assert await tokens.pull(headers, "other/x") == 200
    await tokens.services.scopemaps.put_map(tokens.registry, "narrowed-scope-map", SAMPLES_READ, None)
    assert await tokens.pull(headers, "samples/x") == 200
    assert await tokens.pull(headers, "other/x") == 403
    assert await access_of(tokens.http, "repository:other/x:pull", headers=headers) == []


async def test_token_of_one_registry_is_refused_on_another(tokens, client):
    other = await tokens.services.registries.ensure(OTHER)
    await Seeder(client, host=OTHER_HOST).image("samples/x")
    password = await tokens.make("samples-reader", SAMPLES_READ)
    there = {**basic("samples-reader", password), "Host": OTHER_HOST}
    await oci_error(await tokens.http.get("/v2/samples/x/manifests/v1", headers=there), 401, "UNAUTHORIZED")
    response = await tokens.http.get("/oauth2/token", params={"service": OTHER_HOST, "scope": "repository:samples/x:pull"},
                                     headers=there)
    await oci_error(response, 401, "UNAUTHORIZED")
    # a token of the same name in the other registry has its own passwords
    other_password = await tokens.make("samples-reader", SAMPLES_READ, registry=other)
    response = await tokens.http.get("/v2/samples/x/manifests/v1", headers={**basic("samples-reader", other_password),
                                                                            "Host": OTHER_HOST})
    assert response.status == 200, await describe(response)
    assert await tokens.pull(basic("samples-reader", other_password), "samples/x") == 401


# -- system scope maps -------------------------------------------------------------------------------


async def test_system_scope_maps_are_listed_with_their_actions(tokens):
    maps = {m.name: m for m in await tokens.services.scopemaps.list_maps(tokens.registry)}
    assert maps["_repositories_admin"].system
    assert set(maps["_repositories_admin"].actions) == {
        f"repositories/*/{verb}" for verb in ("content/read", "content/write", "content/delete",
                                               "metadata/read", "metadata/write")
    }
    assert maps["_repositories_admin"].description == "Can perform all read, write and delete operations on the registry"
    assert maps["_repositories_pull"].actions == ("repositories/*/content/read",)
    assert set(maps["_repositories_push"].actions) == {"repositories/*/content/read", "repositories/*/content/write"}
    with pytest.raises(ScopeMapError):
        await tokens.services.scopemaps.put_map(tokens.registry, "_repositories_pull", ["repositories/*/content/write"], None)
    with pytest.raises(ScopeMapError):
        await tokens.services.scopemaps.delete_map(tokens.registry, "_repositories_admin")


async def test_repositories_pull(tokens):
    headers = basic("puller", await tokens.make("puller", scope_map="_repositories_pull"))
    for name in REPOSITORIES:
        assert await tokens.pull(headers, name) == 200
    assert await tokens.push(headers, "samples/x") == 403
    assert await tokens.delete(headers, "other/x") == 403
    response = await tokens.http.get("/acr/v1/other/x/_tags", headers=headers)  # metadata/read is not in it
    await oci_error(response, 403, "DENIED")


async def test_repositories_pull_metadata_read(tokens):
    headers = basic("pull-meta", await tokens.make("pull-meta", scope_map="_repositories_pull_metadata_read"))
    assert await tokens.pull(headers, "other/x") == 200
    response = await tokens.http.get("/acr/v1/other/x/_tags", headers=headers)
    assert response.status == 200, await describe(response)
    assert await tokens.push(headers, "other/x") == 403


async def test_repositories_push(tokens):
    headers = basic("pusher", await tokens.make("pusher", scope_map="_repositories_push"))
    assert await tokens.push(headers, "anything/at/all") == 201
    assert await tokens.pull(headers, "other/x") == 200
    assert await tokens.delete(headers, "other/x") == 403


async def test_repositories_push_metadata_write(tokens):
    headers = basic("push-meta", await tokens.make("push-meta", scope_map="_repositories_push_metadata_write"))
    assert await tokens.push(headers, "other/x") == 201
    response = await tokens.http.patch("/acr/v1/other/x", json={"deleteEnabled": True}, headers=headers)
    assert response.status == 200, await describe(response)
    assert await tokens.delete(headers, "other/x") == 403


async def test_repositories_admin(tokens):
    headers = basic("admin-token", await tokens.make("admin-token", scope_map="_repositories_admin"))
    assert await tokens.pull(headers, "other/x") == 200
    assert await tokens.push(headers, "other/x") == 201
    assert await tokens.delete(headers, "other/x") == 202
    assert await access_of(tokens.http, "repository:samples/x:pull,push,delete,metadata_read,metadata_write",
                           headers=headers) == [
        claim("samples/x", "pull", "push", "delete", "metadata_read", "metadata_write")
    ]


# -- validation ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "says"),
    [
        ("repositories/a/*/b/content/read", "wildcard"),
        ("repositories/a*/content/read", "wildcard"),
        ("repositories/a/*/b/*/content/read", "wildcard"),
        ("repositories/sample/teamA*/content/read", "wildcard"),
        ("repositories/**/content/read", "wildcard"),
        ("foo/bar", "repositories/"),
        ("repositories/a/content/fly", "content/read"),
        ("repositories/a/content", "content/read"),
        ("repositories//content/read", "Invalid repository"),
        ("repositories/UPPER/content/read", "Invalid repository"),
        ("repositories/a b/content/read", "Invalid repository"),
    ],
)
async def test_invalid_actions_are_rejected_with_a_clear_error(tokens, action, says):
    with pytest.raises(ScopeMapError) as raised:
        await tokens.services.scopemaps.put_map(tokens.registry, "badmap", ["repositories/ok/content/read", action], None)
    assert says in raised.value.message, raised.value.message
    assert raised.value.code == "InvalidRequestContent"
    with pytest.raises(Exception):
        await tokens.services.scopemaps.get_map(tokens.registry, "badmap")  # nothing was stored


@pytest.mark.parametrize("action", ["repositories/*/content/read", "repositories/a/*/metadata/write",
                                    "repositories/a.b/c_d/e-f/content/delete", "repositories/x/metadata/read"])
async def test_valid_actions_are_accepted(tokens, action):
    stored = await tokens.services.scopemaps.put_map(tokens.registry, "goodmap", [action], None)
    assert stored.actions == (action,)


async def test_a_scope_map_needs_an_action(tokens):
    with pytest.raises(ScopeMapError, match="at least one action"):
        await tokens.services.scopemaps.put_map(tokens.registry, "emptymap", [], None)


async def test_at_most_500_actions(tokens):
    assert MAX_ACTIONS == 500
    actions = [f"repositories/repo{i}/content/read" for i in range(500)]
    stored = await tokens.services.scopemaps.put_map(tokens.registry, "bigmap", actions, None)
    assert len(stored.actions) == 500
    password = await tokens.make("bigtoken", scope_map="bigmap")
    assert await access_of(tokens.http, "repository:repo499:pull", "repository:repo500:pull",
                           headers=basic("bigtoken", password)) == [claim("repo499", "pull")]
    with pytest.raises(ScopeMapError, match="at most 500 actions"):
        await tokens.services.scopemaps.put_map(tokens.registry, "bigmap", actions + ["repositories/repo500/content/read"],
                                                None)
    assert len((await tokens.services.scopemaps.get_map(tokens.registry, "bigmap")).actions) == 500


async def test_scope_map_and_token_quota_of_the_sku(tokens):
    for i in range(100):
        await tokens.services.scopemaps.put_map(tokens.registry, f"map-{i:03d}", SAMPLES_READ, None)
    with pytest.raises(QuotaExceeded):
        await tokens.services.scopemaps.put_map(tokens.registry, "map-100", SAMPLES_READ, None)


@pytest.mark.parametrize("name", ["abcd", "a" * 51, "has space", "under_score", "dots.dots"])
async def test_token_and_scope_map_names(tokens, name):
    with pytest.raises(ScopeMapError):
        await tokens.services.scopemaps.put_map(tokens.registry, name, SAMPLES_READ, None)
    with pytest.raises(ScopeMapError):
        await tokens.services.scopemaps.put_token(tokens.registry, name, "_repositories_pull", "enabled")


def test_permitted_matches_like_acr():
    assert scopemaps.permitted(("repositories/*/content/read",), "x") == {"pull"}
    assert scopemaps.permitted(("repositories/samples/*/content/read",), "samples/a/b") == {"pull"}
    assert scopemaps.permitted(("repositories/samples/*/content/read",), "samplesx/a") == set()
    assert scopemaps.permitted(("repositories/samples/*/content/read",), "samples") == set()
    assert scopemaps.permitted(("repositories/samples/content/read",), "samples/a") == set()
