"""Requests that arrive through a trusted load balancer or ingress.

Behind a proxy the connection's peer is the proxy, and TLS may end there: the
scheme, host and client address that token realms, OIDC discovery, network
rules and the sign-in throttle need come from ``X-Forwarded-Proto``,
``X-Forwarded-Host`` and ``X-Forwarded-For``. They are believed only from the
addresses in ``trusted_proxies``; from anyone else they are ignored, so a client
can't pick its own address or scheme.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from aiohttp import web

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(spec: str) -> tuple[Network, ...]:
    """``"10.0.0.0/8, 192.168.1.7"`` as networks; ValueError names a bad entry."""
    networks = []
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"trusted_proxies: {item!r} is not an IP address or network") from None
    return tuple(networks)


def _trusted(address: str | None, networks: Iterable[Network]) -> bool:
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    return any(ip in network for network in networks)


def _last(value: str | None) -> str | None:
    """The value the nearest proxy appended to a comma-separated header."""
    if not value:
        return None
    last = value.rsplit(",", 1)[-1].strip()
    return last or None


def client_address(forwarded_for: str | None, peer: str, networks: Iterable[Network]) -> str:
    """The first address, walking back from the peer, that isn't one of our proxies."""
    hops = [hop.strip() for hop in (forwarded_for or "").split(",") if hop.strip()]
    address = peer
    while hops and _trusted(address, networks):
        address = hops.pop()
    return address


def middleware(networks: tuple[Network, ...]):
    @web.middleware
    async def forwarded(request: web.Request, handler):
        if not _trusted(request.remote, networks):
            return await handler(request)
        changes: dict[str, str] = {}
        scheme = _last(request.headers.get("X-Forwarded-Proto"))
        if scheme in ("http", "https"):
            changes["scheme"] = scheme
        host = _last(request.headers.get("X-Forwarded-Host"))
        if host and len(host) <= 300 and all(c.isalnum() or c in ".-:[]" for c in host):
            changes["host"] = host
        changes["remote"] = client_address(request.headers.get("X-Forwarded-For"), request.remote or "", networks)
        return await handler(request.clone(**changes))

    return forwarded
