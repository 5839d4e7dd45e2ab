"""``GET /subscriptions``, ``GET /subscriptions/{id}`` and ``GET /tenants``.

A caller sees the subscriptions it holds any role in or under (the installation owner, and
whoever holds a role at "/", sees them all).
"""

from __future__ import annotations

from aiohttp import web

from dockyard.http.arm.auth import require_subscription, visible_subscription_ids
from dockyard.http.arm.context import Call, listing, respond


def subscription_body(subscription) -> dict:
    return {
        "id": subscription.arm_id,
        "authorizationSource": "RoleBased",
        "managedByTenants": [],
        "subscriptionId": subscription.id,
        "tenantId": subscription.tenant_id,
        "displayName": subscription.display_name,
        "state": subscription.state,
        "subscriptionPolicies": {
            "locationPlacementId": "Public_2014-09-01",
            "quotaId": "Dockyard_2026-01-01",
            "spendingLimit": "Off",
        },
        "tags": {},
    }


async def list_subscriptions(call: Call) -> web.Response:
    visible = await visible_subscription_ids(call)
    found = await call.services.tenancy.subscriptions()
    return listing([subscription_body(s) for s in found if visible is None or s.id.lower() in visible])


async def get_subscription(call: Call) -> web.Response:
    subscription = await require_subscription(call, call.params["sub"])
    return respond(subscription_body(subscription))


async def list_tenants(call: Call) -> web.Response:
    tenant = call.services.tenancy.tenant_id
    domain = call.services.registries.domain
    return listing(
        [
            {
                "id": f"/tenants/{tenant}",
                "tenantId": tenant,
                "tenantCategory": "Home",
                "displayName": "Dockyard",
                "domains": [domain],
                "defaultDomain": domain,
                "tenantType": "AAD",
            }
        ]
    )
