"""Helpers shared by the in-process ARM tests."""

from __future__ import annotations

ACR = "providers/Microsoft.ContainerRegistry"


async def read_json(response):
    return await response.json(content_type=None)


async def make_group(arm, name="armgroup", location="eastus"):
    sub = await arm.subscription()
    response = await arm.request("PUT", f"/subscriptions/{sub}/resourcegroups/{name}", json={"location": location})
    assert response.status in (200, 201), await response.text()
    return sub


async def make_registry(arm, name="armreg1", group="armgroup", **properties):
    sub = await make_group(arm, group)
    body = {"location": "eastus", "sku": {"name": properties.pop("sku", "Basic")}, "properties": properties}
    response = await arm.request("PUT", f"/subscriptions/{sub}/resourceGroups/{group}/{ACR}/registries/{name}", json=body)
    assert response.status in (200, 201), await response.text()
    return sub, f"/subscriptions/{sub}/resourceGroups/{group}/{ACR}/registries/{name}"
