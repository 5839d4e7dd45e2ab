"""ACR's service tiers and their limits (../shared/reference/acr.md, section 1)."""

from __future__ import annotations

GIB = 1 << 30

SKUS = ("Basic", "Standard", "Premium")

LIMITS: dict[str, dict[str, int]] = {
    "Basic": {"Size": 10 * GIB, "Webhooks": 2, "Geo-replications": 0, "IPRules": 0, "VNetRules": 0,
              "PrivateEndpointConnections": 0, "ScopeMaps": 100, "Tokens": 100},
    "Standard": {"Size": 100 * GIB, "Webhooks": 10, "Geo-replications": 0, "IPRules": 0, "VNetRules": 0,
                 "PrivateEndpointConnections": 0, "ScopeMaps": 500, "Tokens": 500},
    "Premium": {"Size": 500 * GIB, "Webhooks": 500, "Geo-replications": -1, "IPRules": 200, "VNetRules": 100,
                "PrivateEndpointConnections": 200, "ScopeMaps": 50000, "Tokens": 50000},
}

UNITS = {"Size": "Bytes"}


def canonical(name: str | None) -> str | None:
    """The SKU's canonical spelling, or None if there is no such SKU."""
    if not name:
        return None
    for sku in SKUS:
        if sku.lower() == name.lower():
            return sku
    return None
