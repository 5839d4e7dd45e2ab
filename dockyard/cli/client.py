"""The client CLI's control-plane client: Entra-shaped tokens, ARM, and the directory API.

- Tokens: ``POST <endpoint>/<tenant>/oauth2/v2.0/token`` with ``client_credentials`` (a service
  principal) or ``password`` (a user), scope ``<endpoint>/.default``; the token is cached in
  the profile until shortly before it expires, then fetched again with the stored secret.
- ARM: ``<endpoint>/subscriptions/...?api-version=...``. Long-running PUT/PATCH/DELETE/POST
  answers (201/202 with ``Azure-AsyncOperation`` or ``Location``) are polled, honouring
  ``Retry-After``, until they end; a PUT or PATCH then reads the resource once more, as az does.
- Directory: ``<endpoint>/directory/v1/...`` (service principals and users).

Any failure becomes a :class:`~dockyard.cli.console.CLIError`: ``(Code) message`` from an ARM
``{"error":{"code","message"}}``, an OAuth ``{"error","error_description"}`` or a registry
``{"errors":[...]}`` body.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote, urljoin

from dockyard.cli import console
from dockyard.cli.console import CLIError, NotFoundError
from dockyard.cli.profile import Profile
from dockyard.cli.transport import Response, Transport

API_RESOURCES = "2024-11-01"
API_SUBSCRIPTIONS = "2022-12-01"
API_ACR = "2025-11-01"
API_AUTHORIZATION = "2022-04-01"
# az's public client id; Dockyard accepts any client id with the password grant
CLIENT_ID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
LRO_TIMEOUT_SECONDS = 600
_STATUS_CODES = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "Conflict",
                 412: "PreconditionFailed", 429: "TooManyRequests", 500: "InternalServerError",
                 503: "ServiceUnavailable"}


def error_from(response: Response, what: str | None = None) -> CLIError:
    """One CLIError from any of the error bodies Dockyard (or Azure) sends."""
    body = response.json()
    code = message = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            code, message = error.get("code"), error.get("message")
        elif isinstance(error, str):
            code, message = error, body.get("error_description") or body.get("message")
        elif isinstance(body.get("errors"), list) and body["errors"]:
            first = body["errors"][0] if isinstance(body["errors"][0], dict) else {}
            code, message = first.get("code"), first.get("message")
        elif "message" in body:
            code, message = body.get("code"), body.get("message")
    if not message:
        message = response.text.strip()[:300] or f"Operation returned an invalid status {response.status}"
        if what:
            message = f"{what}: {message}"
    code = code or _STATUS_CODES.get(response.status, f"HTTP{response.status}")
    kind = NotFoundError if response.status == 404 else CLIError
    return kind(message, code)


def fetch_token(transport: Transport, tenant: str, user_type: str, username: str, secret: str,
                audience: str | None = None) -> tuple[str, float]:
    """A fresh access token for ``audience`` (default: the endpoint's); returns (token, expires_on)."""
    endpoint = transport.endpoint
    form = {"scope": f"{(audience or endpoint).rstrip('/')}/.default", "client_info": "1"}
    if user_type == "servicePrincipal":
        form.update(grant_type="client_credentials", client_id=username, client_secret=secret)
    else:
        form.update(grant_type="password", client_id=CLIENT_ID, username=username, password=secret)
    url = f"{endpoint}/{quote(tenant or 'organizations', safe='')}/oauth2/v2.0/token"
    response = transport.request("POST", url, form=form)
    if not response.ok:
        raise error_from(response, "sign-in failed")
    body = response.json() or {}
    token = body.get("access_token")
    if not token:
        raise CLIError(f"the token endpoint {url} answered without an access_token")
    expires_in = float(body.get("expires_in") or 3600)
    return token, time.time() + expires_in


class Client:
    """ARM + directory calls as the signed-in principal. Use as a context manager."""

    def __init__(self, profile: Profile, transport: Transport | None = None) -> None:
        self.profile = profile
        self.transport = transport or Transport(profile.endpoint, profile.ca_bundle)
        if profile.registry_suffix:
            self.transport.map_domain(profile.registry_suffix)
        self._dirty = False

    @classmethod
    def from_profile(cls) -> "Client":
        return cls(Profile.require())

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._dirty:
            self.profile.save()
            self._dirty = False
        self.transport.close()

    @property
    def endpoint(self) -> str:
        return self.transport.endpoint

    @property
    def audience(self) -> str:
        return self.endpoint + "/"

    @property
    def subscription_id(self) -> str:
        return self.profile.subscription(console.state.subscription)["id"]

    @property
    def tenant_id(self) -> str:
        return self.profile.tenant_id

    # -- tokens ------------------------------------------------------------------

    def access_token(self, fresh: bool = False, audience: str | None = None) -> str:
        """The identity token for ``audience``: by default ``<endpoint>/`` (ARM and the directory)."""
        audience = audience or self.audience
        if not fresh:
            cached = self.profile.cached_token(audience)
            if cached:
                return cached
        p = self.profile
        token, expires_on = fetch_token(self.transport, p.tenant_id, p.user_type, p.user_name, p.secret, audience)
        p.cache_token(audience, token, expires_on)
        self.save_later()
        return token

    def save_later(self) -> None:
        self._dirty = True

    # -- plain authenticated requests --------------------------------------------

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.endpoint + "/" + path.lstrip("/")

    def send(self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None) -> Response:
        """One request with the bearer token; a 401 gets one retry with a fresh token."""
        url = self.url(path)
        response = None
        for fresh in (False, True):
            headers = {"Authorization": f"Bearer {self.access_token(fresh=fresh)}", "Accept": "application/json"}
            response = self.transport.request(method, url, headers=headers, params=params, json_body=body)
            if response.status != 401:
                break
            console.debug("401: retrying with a fresh token")
        assert response is not None
        return response

    # -- ARM ---------------------------------------------------------------------

    def arm(self, method: str, path: str, api_version: str, body: Any = None, *,
            params: dict[str, Any] | None = None, final_get: bool = True) -> Any:
        """Call ARM and wait for a long-running operation; returns the final body (or None)."""
        query = {"api-version": api_version, **(params or {})}
        response = self.send(method, path, params=query, body=body)
        if not response.ok:
            raise error_from(response)
        if response.status in (201, 202) and (
            "azure-asyncoperation" in response.headers or "location" in response.headers
        ):
            result = self._wait(response)
            if method in ("PUT", "PATCH") and final_get:
                return self.arm("GET", path, api_version)
            return result if method == "POST" else None
        if method == "DELETE":
            return None
        return response.json()

    def _wait(self, first: Response) -> Any:
        status_url = first.headers.get("azure-asyncoperation")
        location = first.headers.get("location")
        poll_url = self.url(status_url or location or "")
        deadline = time.monotonic() + LRO_TIMEOUT_SECONDS
        previous = first
        while True:
            if time.monotonic() > deadline:
                raise CLIError(f"timed out waiting for {poll_url}", "OperationTimeout")
            time.sleep(_retry_after(previous))
            previous = response = self.send("GET", poll_url)
            if not response.ok:
                raise error_from(response)
            if status_url:
                body = response.json() or {}
                status = str(body.get("status", "")).lower()
                if status == "succeeded":
                    if location:
                        final = self.send("GET", self.url(location))
                        return final.json() if final.ok else None
                    return body.get("properties")
                if status in ("failed", "canceled", "cancelled"):
                    error = body.get("error") or {}
                    raise CLIError(error.get("message") or f"the operation ended {body.get('status')}",
                                   error.get("code") or "OperationFailed")
            elif response.status != 202:
                return response.json()

    def arm_list(self, path: str, api_version: str, params: dict[str, Any] | None = None) -> list[Any]:
        """GET a collection, following ``nextLink``."""
        items: list[Any] = []
        body = self.arm("GET", path, api_version, params=params) or {}
        while True:
            items += body.get("value", []) if isinstance(body, dict) else []
            next_link = body.get("nextLink") if isinstance(body, dict) else None
            if not next_link:
                return items
            response = self.send("GET", urljoin(self.endpoint + "/", next_link))
            if not response.ok:
                raise error_from(response)
            body = response.json() or {}

    def subscription_path(self, *parts: str) -> str:
        tail = "/".join(quote(p, safe="") for p in parts)
        return f"/subscriptions/{self.subscription_id}" + (f"/{tail}" if tail else "")

    # -- directory ---------------------------------------------------------------

    def directory(self, method: str, path: str, body: Any = None) -> Any:
        response = self.send(method, "/directory/v1/" + path.lstrip("/"), body=body)
        if not response.ok:
            raise error_from(response)
        return response.json()

    def directory_list(self, collection: str) -> list[dict[str, Any]]:
        body = self.directory("GET", collection) or {}
        return body.get("value", []) if isinstance(body, dict) else list(body)


def _retry_after(response: Response) -> float:
    raw = response.headers.get("retry-after")
    try:
        seconds = float(raw) if raw else 1.0
    except ValueError:
        seconds = 1.0
    return min(max(seconds, 0.2), 5.0)
