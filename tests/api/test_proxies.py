"""Behind a trusted load balancer, the forwarded scheme, host and client address count; from anyone else they don't."""

from __future__ import annotations

import dataclasses

import pytest

from dockyard.http.app import create_app
from dockyard.http.proxies import client_address, parse_networks
from tests.conftest import DockyardTestServer


async def challenge_realm(client, headers) -> str:
    response = await client.get("/v2/", headers=headers)
    assert response.status == 401
    return response.headers["WWW-Authenticate"]


@pytest.fixture
async def behind_proxy(aiohttp_client, services):
    services.settings = dataclasses.replace(services.settings, trusted_proxies="127.0.0.0/8, ::1")
    return await aiohttp_client(DockyardTestServer(create_app(services)))


FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "dockyard.localhost", "X-Forwarded-For": "203.0.113.9"}


async def test_a_trusted_proxys_scheme_and_host_make_the_token_realm(behind_proxy):
    realm = await challenge_realm(behind_proxy, FORWARDED)
    assert 'realm="https://dockyard.localhost/oauth2/token"' in realm


async def test_forwarded_headers_from_an_untrusted_peer_are_ignored(anonymous):
    realm = await challenge_realm(anonymous, FORWARDED)
    assert 'realm="http://' in realm and "https://" not in realm


async def test_network_rules_see_the_forwarded_client_not_the_proxy(behind_proxy, services):
    rules = {"defaultAction": "Deny", "ipRules": [{"action": "Allow", "value": "203.0.113.0/24"}]}
    await services.registries.update("dockyard", {"network_rule_set": rules})
    allowed = await behind_proxy.get("/v2/", headers=FORWARDED)
    assert allowed.status == 401  # past the firewall, asked to sign in
    denied = await behind_proxy.get("/v2/", headers={**FORWARDED, "X-Forwarded-For": "198.51.100.1"})
    assert denied.status == 403


def test_the_client_is_the_first_untrusted_hop_from_the_right():
    networks = parse_networks("10.0.0.0/8")
    assert client_address("198.51.100.7, 10.1.1.1", "10.2.2.2", networks) == "198.51.100.7"
    # A client can prepend whatever it likes: only the hops our proxies appended are believed.
    assert client_address("127.0.0.1, 203.0.113.5", "10.2.2.2", networks) == "203.0.113.5"
    assert client_address(None, "10.2.2.2", networks) == "10.2.2.2"


def test_a_bad_trusted_proxies_entry_stops_the_start():
    from dockyard.config import load

    with pytest.raises(ValueError, match="not-an-ip"):
        load(environ={"DOCKYARD_TRUSTED_PROXIES": "10.0.0.0/8,not-an-ip"})
