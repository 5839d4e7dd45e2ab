"""A registry's firewall: public network access and IP rules (ACR's networkRuleSet)."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from dockyard.core.errors import Denied
from dockyard.services.registries import Registry


@lru_cache(maxsize=1024)
def _networks(values: tuple[str, ...]) -> tuple:
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value, strict=False))
        except ValueError:
            continue
    return tuple(networks)


def check_client(registry: Registry, client_ip: str) -> None:
    """Raise DENIED unless the registry's network settings let ``client_ip`` in."""
    if registry.public_network_access.lower() == "disabled":
        raise Denied(f"client with IP '{client_ip}' is not allowed access: public network access is disabled")
    rules = registry.network_rule_set or {}
    if str(rules.get("defaultAction", "Allow")).lower() != "deny":
        return
    allowed = tuple(
        str(rule.get("value") or rule.get("ipAddressOrRange") or "")
        for rule in rules.get("ipRules") or []
        if str(rule.get("action", "Allow")).lower() == "allow"
    )
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        raise Denied(f"client with IP '{client_ip}' is not allowed access") from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if not any(address in network for network in _networks(allowed)):
        raise Denied(f"client with IP '{client_ip}' is not allowed access")
