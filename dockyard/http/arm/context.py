"""What an ARM handler gets (`Call`) and gives back (`respond`), plus the JSON readers every
handler shares: bodies, case-insensitive fields, enums, tags and times."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from dockyard.http.arm.errors import ArmError, bad_request

if TYPE_CHECKING:
    from dockyard.auth.principals import Principal
    from dockyard.server import Services

DEFAULT_API_VERSION = "2025-11-01"
MAX_TAGS = 50


@dataclass
class Call:
    request: web.Request
    services: "Services"
    path: str
    params: dict[str, str] = field(default_factory=dict)
    principal: "Principal | None" = None

    @property
    def base(self) -> str:
        return f"{self.request.scheme}://{self.request.host}"

    @property
    def api_version(self) -> str:
        return self.request.query.get("api-version") or DEFAULT_API_VERSION

    @property
    def port(self) -> str | None:
        return host_port(self.request.host)

    def login_server(self, registry) -> str:
        """The registry's login server as clients reach it: with this request's port, if it has one."""
        port = self.port
        return f"{registry.login_server}:{port}" if port else registry.login_server

    async def body(self, required: bool = True) -> dict[str, Any]:
        """The JSON object the request carries; {} for no body when not required."""
        try:
            raw = await self.request.read()
        except web.HTTPRequestEntityTooLarge:
            raise ArmError(413, "RequestEntityTooLarge", "The request content is too large.") from None
        except (aiohttp.ClientPayloadError, ConnectionError, asyncio.IncompleteReadError):
            raise bad_request("The request content ended before it was complete.") from None
        if not raw.strip():
            if required:
                raise bad_request("The request content was invalid and could not be deserialized: the body is empty.")
            return {}
        try:
            document = json.loads(raw)
        except (ValueError, RecursionError):
            raise bad_request("The request content was invalid and could not be deserialized: it is not JSON.") from None
        if not isinstance(document, dict):
            raise bad_request("The request content was invalid: a JSON object is expected.")
        return document


def host_port(host: str | None) -> str | None:
    if not host:
        return None
    if host.startswith("["):
        _, _, rest = host.partition("]")
        return rest[1:] if rest.startswith(":") and rest[1:].isdigit() else None
    if host.count(":") == 1:
        port = host.rsplit(":", 1)[1]
        return port if port.isdigit() else None
    return None


def respond(document: Any = None, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    if document is None:
        return web.Response(status=status, headers=headers)
    return web.Response(status=status, body=json.dumps(document).encode(), content_type="application/json", headers=headers)


def listing(values: list) -> web.Response:
    return respond({"value": values})


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_time(value: Any, where: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 64:
        raise bad_request(f"'{where}' must be an ISO 8601 date and time.")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # Python reads at most 6 fractional digits; .NET writes 7.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise bad_request(f"'{where}' must be an ISO 8601 date and time, not '{value[:64]}'.") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# -- reading fields -------------------------------------------------------
def fields(value: Any, where: str) -> dict[str, Any]:
    """An object's members by lower-cased name (ARM reads property names without regard to case)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad_request(f"'{where}' must be a JSON object.")
    return {str(key).lower(): item for key, item in value.items()}


def text(value: Any, where: str, limit: int = 1024) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise bad_request(f"'{where}' must be a string of at most {limit} characters.")
    return value


def flag(value: Any, where: str) -> bool | None:
    if value is None:
        return None
    if not isinstance(value, bool):
        raise bad_request(f"'{where}' must be true or false.")
    return value


def integer(value: Any, where: str, low: int, high: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise bad_request(f"'{where}' must be a whole number from {low} to {high}.")
    return value


def choice(value: Any, where: str, allowed: tuple[str, ...]) -> str | None:
    """One of ``allowed``, matched without regard to case and returned as spelled there."""
    if value is None:
        return None
    if isinstance(value, str):
        for option in allowed:
            if option.lower() == value.lower():
                return option
    shown = value[:60] if isinstance(value, str) else json.dumps(value)[:60]
    raise bad_request(f"'{where}' must be one of {', '.join(allowed)}, not '{shown}'.")


def tags(value: Any, where: str = "tags") -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise bad_request(f"'{where}' must be a JSON object of names and string values.")
    if len(value) > MAX_TAGS:
        raise bad_request(f"At most {MAX_TAGS} tags are allowed.", "InvalidTag")
    result = {}
    for key, item in value.items():
        if not key or len(key) > 512 or any(c in key for c in "<>%&\\?/"):
            raise bad_request(f"The tag name '{key[:60]}' is invalid.", "InvalidTagNameCharacters")
        if item is None:
            item = ""
        if not isinstance(item, str) or len(item) > 256:
            raise bad_request(f"The value of tag '{key[:60]}' must be a string of at most 256 characters.", "InvalidTag")
        result[key] = item
    return result
