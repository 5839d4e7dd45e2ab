"""The registry data plane as az drives it: challenge, token exchange, access tokens, paging.

1. ``GET https://<login server>/v2/`` answers 401 with ``Bearer realm="...",service="..."``.
2. ``POST <realm scheme+host>/oauth2/exchange`` (``grant_type=access_token``, ``service``,
   ``tenant``, ``access_token`` = the signed-in principal's token for ACR's audience
   ``https://containerregistry.azure.net``, as az asks for it) gives an ACR refresh token,
   cached in the profile until it expires. (A token for ``<endpoint>/`` is refused there:
   the server checks it against the login server's own URL.)
3. ``POST <realm scheme+host>/oauth2/token`` (``grant_type=refresh_token``, ``service``,
   ``scope``) gives an access token for one scope, kept for this invocation.

The login server is reached through the endpoint (see :mod:`dockyard.cli.transport`).
"""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import urljoin, urlsplit

from dockyard.cli import console
from dockyard.cli.client import Client, error_from
from dockyard.cli.console import CLIError
from dockyard.cli.profile import jwt_expiry
from dockyard.cli.transport import Response

NULL_GUID = "00000000-0000-0000-0000-000000000000"
# the audience az asks Entra for before the exchange; Dockyard's issuer serves it too
ACR_AUDIENCE = "https://containerregistry.azure.net"
PAGE_SIZE = 100
MANIFEST_ACCEPT = ", ".join([
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.artifact.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
])
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
_LINK_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower(), dict(_CHALLENGE_PARAM.findall(rest))


class RegistryClient:
    """Data-plane calls to one login server, as the signed-in principal."""

    def __init__(self, client: Client, login_server: str) -> None:
        self.client = client
        self.login_server = login_server.lower()
        self.base = f"{client.transport.scheme}://{self.login_server}"
        client.transport.map_login_server(self.login_server)
        self._realm: str | None = None
        self._service: str | None = None
        self._access: dict[str, str] = {}

    # -- tokens ------------------------------------------------------------------

    def challenge(self) -> tuple[str, str]:
        """(realm base, service) from the 401 on ``/v2/``."""
        if self._realm is None:
            response = self.client.transport.request("GET", self.base + "/v2/")
            header = response.headers.get("www-authenticate", "")
            scheme, params = parse_challenge(header)
            if response.status == 403:
                raise CLIError(f"Access to {self.login_server} is forbidden (403). Check the registry's network rules.",
                               "CONNECTIVITY_FORBIDDEN_ERROR")
            if response.status != 401 or scheme != "bearer" or "realm" not in params:
                raise CLIError(f"{self.login_server}/v2/ answered {response.status} without a Bearer challenge "
                               f"(WWW-Authenticate: {header!r})", "CONNECTIVITY_CHALLENGE_ERROR")
            realm = urlsplit(urljoin(self.base + "/", params["realm"]))
            self._realm = f"{realm.scheme}://{realm.netloc}"
            self._service = params.get("service") or self.login_server
            self.client.transport.map_login_server(realm.netloc)
        assert self._service is not None
        return self._realm, self._service

    @property
    def _cache_key(self) -> str:
        return f"acr:{self.login_server}"

    def refresh_token(self, fresh: bool = False) -> str:
        """An ACR refresh token for this login server, from the exchange (cached until expiry)."""
        profile = self.client.profile
        if not fresh:
            cached = profile.cached_token(self._cache_key)
            if cached:
                return cached
        realm, service = self.challenge()
        form = {"grant_type": "access_token", "service": service, "tenant": self.client.tenant_id,
                "access_token": self.client.access_token(audience=ACR_AUDIENCE)}
        response = self.client.transport.request("POST", realm + "/oauth2/exchange", form=form)
        if response.status == 401:
            form["access_token"] = self.client.access_token(fresh=True, audience=ACR_AUDIENCE)
            response = self.client.transport.request("POST", realm + "/oauth2/exchange", form=form)
        if not response.ok:
            raise error_from(response, "token exchange failed")
        token = (response.json() or {}).get("refresh_token")
        if not token:
            raise CLIError(f"{realm}/oauth2/exchange answered without a refresh_token", "CONNECTIVITY_REFRESH_TOKEN_ERROR")
        expires_on = jwt_expiry(token)
        if expires_on is not None and expires_on > time.time():
            profile.cache_token(self._cache_key, token, expires_on)
            self.client.save_later()
        return token

    def access_token(self, scope: str, fresh: bool = False) -> str:
        if not fresh and scope in self._access:
            return self._access[scope]
        realm, _ = self.challenge()
        for retry in (False, True):
            form = {"grant_type": "refresh_token", "service": self.login_server, "scope": scope,
                    "refresh_token": self.refresh_token(fresh=fresh or retry)}
            response = self.client.transport.request("POST", realm + "/oauth2/token", form=form)
            if response.status != 401:
                break
            console.debug("the cached refresh token was refused: exchanging again")
        if not response.ok:
            raise error_from(response, "access token request failed")
        token = (response.json() or {}).get("access_token")
        if not token:
            raise CLIError(f"{realm}/oauth2/token answered without an access_token", "CONNECTIVITY_ACCESS_TOKEN_ERROR")
        self._access[scope] = token
        return token

    # -- requests ----------------------------------------------------------------

    def request(self, method: str, path: str, scope: str, *, params: dict[str, Any] | None = None,
                headers: dict[str, str] | None = None, json_body: Any = None, expect_ok: bool = True) -> Response:
        url = path if path.startswith(("http://", "https://")) else self.base + path
        response = None
        for fresh in (False, True):
            all_headers = {"Authorization": f"Bearer {self.access_token(scope, fresh=fresh)}", **(headers or {})}
            response = self.client.transport.request(method, url, headers=all_headers, params=params,
                                                     json_body=json_body)
            if response.status != 401:
                break
        assert response is not None
        if expect_ok and not response.ok:
            raise error_from(response)
        return response

    def get_json(self, path: str, scope: str, params: dict[str, Any] | None = None) -> Any:
        return self.request("GET", path, scope, params=params).json()

    def paged(self, path: str, scope: str, key: str, params: dict[str, Any] | None = None,
              top: int | None = None) -> list[Any]:
        """Every item under ``key`` across the pages ``Link: <...>; rel="next"`` leads to."""
        items: list[Any] = []
        query: dict[str, Any] | None = {"n": min(top, PAGE_SIZE) if top else PAGE_SIZE, **(params or {})}
        url = path
        while True:
            response = self.request("GET", url, scope, params=query)
            body = response.json() or {}
            items += body.get(key) or []
            if top is not None and len(items) >= top:
                return items[:top]
            match = _LINK_NEXT.search(response.headers.get("link", ""))
            if not match:
                return items
            url = urljoin(self.base + "/", match.group(1))
            query = None


def catalog_scope() -> str:
    return "registry:catalog:*"


def repo_scope(repository: str, *actions: str) -> str:
    return f"repository:{repository}:{','.join(actions)}"
