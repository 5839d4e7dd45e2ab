"""Dockyard's Azure Resource Manager: the management API that az, the Azure SDKs and Terraform
speak (subscriptions, resource groups, registries, scope maps, tokens, role assignments).

The application's middleware (`http/app.py`) sends every ARM path (`arm_path`) to
`routing.dispatch`. It is done there (rather than by router routes) so paths are matched without
regard to the case of their fixed segments and with double slashes merged: ``az cloud register``
asks for ``//metadata/endpoints``, and SDKs build ``//subscriptions/...`` from scopes that start with "/".
"""

from __future__ import annotations

import re

from dockyard.http.arm.routing import dispatch

__all__ = ["ROOTS", "arm_path", "dispatch"]

ROOTS = frozenset({"subscriptions", "providers", "tenants", "metadata"})
_SLASHES = re.compile(r"/{2,}")


def arm_path(path: str) -> str | None:
    """The normalised path if it is an ARM path, else None."""
    merged = _SLASHES.sub("/", path)
    first = merged[1:].split("/", 1)[0].lower()
    if first not in ROOTS:
        return None
    return merged.rstrip("/") or "/"
