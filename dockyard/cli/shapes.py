"""az's output shapes: ARM resources as the Azure SDK models print them, and table transforms.

The SDK models az prints flatten ``properties`` into the resource (``loginServer``,
``adminUserEnabled``, ``scopeMapId``...), and az adds ``resourceGroup`` to anything whose id
names one. Resource groups keep their ``properties`` (a nested model in the SDK).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Any

_GROUP = re.compile(r"/resourcegroups/([^/]+)", re.IGNORECASE)


def resource_group_of(resource_id: str) -> str | None:
    match = _GROUP.search(resource_id or "")
    return match.group(1) if match else None


def flatten(resource: Any) -> Any:
    """``{"properties": {...}, ...}`` → the properties merged into the top level, plus resourceGroup."""
    if isinstance(resource, list):
        return [flatten(item) for item in resource]
    if not isinstance(resource, dict):
        return resource
    result = {k: v for k, v in resource.items() if k != "properties"}
    properties = resource.get("properties")
    if isinstance(properties, dict):
        for key, value in properties.items():
            result.setdefault(key, value)
    return with_resource_group(result)


def with_resource_group(resource: Any) -> Any:
    if isinstance(resource, dict) and "resourceGroup" not in resource:
        group = resource_group_of(str(resource.get("id", "")))
        if group and "/providers/" in str(resource.get("id", "")):
            resource["resourceGroup"] = group
    return resource


def _date(value: Any) -> str:
    return str(value or "")[:19].replace("T", " ") if value else ""


def _rows(result: Any) -> list[dict]:
    return result if isinstance(result, list) else [result]


def registry_table(result: Any) -> list[OrderedDict]:
    return [OrderedDict([
        ("NAME", r.get("name")),
        ("RESOURCE GROUP", r.get("resourceGroup")),
        ("LOCATION", r.get("location")),
        ("SKU", (r.get("sku") or {}).get("name")),
        ("LOGIN SERVER", r.get("loginServer")),
        ("CREATION DATE", _date(r.get("creationDate"))),
        ("ADMIN ENABLED", r.get("adminUserEnabled")),
    ]) for r in _rows(result)]


def group_table(result: Any) -> list[OrderedDict]:
    return [OrderedDict([
        ("Name", g.get("name")),
        ("Location", g.get("location")),
        ("Status", (g.get("properties") or {}).get("provisioningState")),
    ]) for g in _rows(result)]


def usage_table(result: Any) -> list[OrderedDict]:
    values = result.get("value", []) if isinstance(result, dict) else result
    return [OrderedDict([("NAME", u.get("name")), ("LIMIT", u.get("limit")), ("CURRENT VALUE", u.get("currentValue")),
                         ("UNIT", u.get("unit"))]) for u in values]


def credential_table(result: Any) -> list[OrderedDict]:
    passwords = {p.get("name"): p.get("value") for p in result.get("passwords", [])}
    return [OrderedDict([("USERNAME", result.get("username")), ("PASSWORD", passwords.get("password")),
                         ("PASSWORD2", passwords.get("password2"))])]


def scope_map_table(result: Any) -> list[OrderedDict]:
    return [OrderedDict([
        ("NAME", s.get("name")),
        ("TYPE", s.get("scopeMapType") or s.get("type")),
        ("CREATION DATE", _date(s.get("creationDate"))),
        ("DESCRIPTION", s.get("description")),
    ]) for s in _rows(result)]


def token_table(result: Any) -> list[OrderedDict]:
    rows = []
    for t in _rows(result):
        passwords = ((t.get("credentials") or {}).get("passwords")) or []
        expiry = {p.get("name"): _date(p.get("expiry")) for p in passwords}
        rows.append(OrderedDict([
            ("NAME", t.get("name")),
            ("SCOPE MAP", str(t.get("scopeMapId") or "").rsplit("/", 1)[-1]),
            ("PASSWORD1 EXPIRY", expiry.get("password1", "")),
            ("PASSWORD2 EXPIRY", expiry.get("password2", "")),
            ("STATUS", t.get("status")),
            ("PROVISIONING STATE", t.get("provisioningState")),
            ("RESOURCE GROUP", t.get("resourceGroup")),
        ]))
    return rows


def role_assignment_table(result: Any) -> list[OrderedDict]:
    return [OrderedDict([
        ("Principal", a.get("principalName") or a.get("principalId")),
        ("Role", a.get("roleDefinitionName") or str(a.get("roleDefinitionId", "")).rsplit("/", 1)[-1]),
        ("Scope", a.get("scope")),
    ]) for a in _rows(result)]


def role_definition_table(result: Any) -> list[OrderedDict]:
    return [OrderedDict([
        ("Name", d.get("roleName")),
        ("Type", d.get("roleType")),
        ("Description", d.get("description")),
    ]) for d in _rows(result)]
