"""Who is calling ARM (a Bearer identity token from Dockyard's issuer or a trusted external one)
and whether they may: `services.authorizer.control` with read, write or owner.

A refusal never tells whether the target exists: rights are checked on the scope the path
names before anything is looked up.
"""

from __future__ import annotations

from dockyard.auth.issuer import WELL_KNOWN_AUDIENCES, InvalidIdentityToken
from dockyard.auth.principals import Principal
from dockyard.http.arm.context import Call
from dockyard.http.oauth import principal_from_identity
from dockyard.http.arm.errors import ArmError, not_found
from dockyard.services.tenancy import SubscriptionNotFound

MAX_TOKEN_CHARS = 16 << 10


def _unauthenticated(call: Call, code: str, message: str) -> ArmError:
    tenant = call.services.tenancy.tenant_id
    challenge = f'Bearer authorization_uri="{call.base}/{tenant}/oauth2/authorize", error="invalid_token"'
    return ArmError(401, code, message, {"WWW-Authenticate": challenge})


async def authenticate(call: Call) -> Principal:
    header = call.request.headers.get("Authorization", "")
    scheme, _, token = header.strip().partition(" ")
    if not header:
        raise _unauthenticated(call, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthenticated(
            call, "AuthenticationFailed", "Authentication failed. The 'Authorization' header must be 'Bearer <token>'."
        )
    token = token.strip()
    if len(token) > MAX_TOKEN_CHARS:
        raise _unauthenticated(call, "InvalidAuthenticationToken", "The access token is invalid: it is too long.")
    services = call.services
    try:
        claims = await services.issuer.verify(token, WELL_KNOWN_AUDIENCES + (call.base, call.base + "/"))
    except InvalidIdentityToken as error:
        raise _unauthenticated(call, "InvalidAuthenticationToken", f"The access token is invalid: {error}.") from None
    except Exception:  # an external issuer that can't be reached, a key we can't read
        raise _unauthenticated(call, "InvalidAuthenticationToken", "The access token could not be verified.") from None
    principal = await principal_from_identity(services, claims)
    if principal is None:
        raise _unauthenticated(
            call, "InvalidAuthenticationToken", "The access token's principal is not known to this installation."
        )
    return principal


def client_name(principal: Principal) -> str:
    return principal.app_id or principal.name or principal.object_id


def forbidden(principal: Principal, action: str, scope: str) -> ArmError:
    return ArmError(
        403,
        "AuthorizationFailed",
        f"The client '{client_name(principal)}' with object id '{principal.object_id}' does not have authorization "
        f"to perform action '{action}' over scope '{scope}' or the scope is invalid. If access was recently "
        "granted, please refresh your credentials.",
    )


async def can(call: Call, scope: str, need: str) -> bool:
    assert call.principal is not None
    return await call.services.authorizer.control(call.principal, scope, need)


async def require(call: Call, scope: str, need: str, action: str) -> None:
    if not await can(call, scope, need):
        raise forbidden(call.principal, action, scope)


# -- subscriptions ----------------------------------------------------------
async def visible_subscription_ids(call: Call) -> set[str] | None:
    """Ids of the subscriptions the caller has any role in or under; None means all of them."""
    principal = call.principal
    assert principal is not None
    if principal.kind == "owner":
        return None
    if not principal.object_id:
        return set()
    ids: set[str] = set()
    for assignment in await call.services.assignments.list(principal_object_id=principal.object_id):
        parts = assignment.scope.strip("/").split("/")
        if parts == [""]:
            return None  # an assignment at "/" covers every subscription
        if len(parts) >= 2 and parts[0].lower() == "subscriptions":
            ids.add(parts[1].lower())
    return ids


async def require_subscription(call: Call, subscription_id: str, action: str = "Microsoft.Resources/subscriptions/read"):
    """The subscription if the caller may see it: 403 if not (existing or not), else 404 if missing."""
    visible = await visible_subscription_ids(call)
    scope = f"/subscriptions/{subscription_id}"
    if visible is not None and subscription_id.lower() not in visible:
        raise forbidden(call.principal, action, scope)
    try:
        return await call.services.tenancy.subscription(subscription_id)
    except SubscriptionNotFound:
        raise not_found(f"The subscription '{subscription_id}' could not be found.", "SubscriptionNotFound") from None
