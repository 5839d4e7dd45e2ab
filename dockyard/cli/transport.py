"""HTTP for the client CLI, with ``--endpoint``-relative resolution of login servers.

Every request (ARM, directory, registry data plane) goes through one :class:`Transport`: an
aiohttp session on a private event loop, so commands stay plain synchronous code.

A registry's login server, ``<name>.<domain>``, often has no DNS record on a workstation.
Since one Dockyard serves the endpoint and every login server, the transport resolves every
host under the registry domain (``*.<domain>``, learned from the server) to the *endpoint's*
address and port. The request still names the login server in its URL, so it is sent as
``Host``, used for TLS SNI, and checked against the server certificate: only the TCP
destination changes. (``docker`` doesn't know this trick: see ``dockyard acr login --help``.)
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from dockyard.cli import console
from dockyard.cli.console import CLIError

TIMEOUT_SECONDS = 120
USER_AGENT = "dockyard-cli/0.1.0"


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes
    url: str

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class EndpointResolver(AbstractResolver):
    """Resolves hosts under the registry domain to the endpoint's address and port."""

    def __init__(self, endpoint_host: str, endpoint_port: int) -> None:
        self.endpoint_host = endpoint_host
        self.endpoint_port = endpoint_port
        self.domains: set[str] = set()
        self._default = DefaultResolver()

    def maps(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return any(host == domain or host.endswith("." + domain) for domain in self.domains)

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[ResolveResult]:
        if not self.maps(host):
            return await self._default.resolve(host, port, family)
        found = await self._default.resolve(self.endpoint_host, self.endpoint_port, family)
        console.debug(f"resolve {host}:{port} -> {self.endpoint_host}:{self.endpoint_port} (the endpoint)")
        return [ResolveResult(hostname=host, host=r["host"], port=self.endpoint_port, family=r["family"],
                              proto=r["proto"], flags=r["flags"]) for r in found]

    async def close(self) -> None:
        await self._default.close()


def ssl_context(ca_bundle: str | None) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=ca_bundle) if ca_bundle else ssl.create_default_context()
    except (OSError, ssl.SSLError) as exc:
        raise CLIError(f"cannot load the CA bundle {ca_bundle}: {exc}") from None


class Transport:
    def __init__(self, endpoint: str, ca_bundle: str | None = None) -> None:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CLIError(f"invalid endpoint '{endpoint}': expected https://HOST[:PORT]")
        self.endpoint = endpoint.rstrip("/")
        self.scheme = parts.scheme
        self.ca_bundle = ca_bundle
        self.resolver_target = (parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: aiohttp.ClientSession | None = None
        self._resolver: EndpointResolver | None = None
        self._domains: set[str] = set()

    def map_domain(self, domain: str) -> None:
        """Resolve ``domain`` and every name under it to the endpoint (see the module docstring)."""
        domain = domain.lower().strip().strip(".").rsplit(":", 1)[0] if domain else ""
        if not domain:
            return
        self._domains.add(domain)
        if self._resolver is not None:
            self._resolver.domains.add(domain)

    def map_login_server(self, login_server: str) -> None:
        """Map the login server's domain (everything after its first label)."""
        host = login_server.lower().rsplit(":", 1)[0] if not login_server.endswith("]") else login_server
        if "." in host:
            self.map_domain(host.split(".", 1)[1])

    # -- lifecycle ---------------------------------------------------------------

    def _ensure(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._loop = asyncio.new_event_loop()
            context = ssl_context(self.ca_bundle) if self.scheme == "https" else None

            async def make() -> aiohttp.ClientSession:
                self._resolver = EndpointResolver(*self.resolver_target)
                self._resolver.domains |= self._domains
                connector = aiohttp.TCPConnector(resolver=self._resolver, ssl=context if context else True,
                                                 ttl_dns_cache=None, use_dns_cache=False)
                return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS),
                                             headers={"User-Agent": USER_AGENT}, auto_decompress=True)

            self._session = self._loop.run_until_complete(make())
        return self._session

    def close(self) -> None:
        if self._session is not None and self._loop is not None:
            self._loop.run_until_complete(self._session.close())
            self._loop.close()
        self._session = None
        self._loop = None

    def __enter__(self) -> "Transport":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests ----------------------------------------------------------------

    def request(self, method: str, url: str, *, headers: dict[str, str] | None = None,
                params: dict[str, Any] | list[tuple[str, str]] | None = None, json_body: Any = None,
                form: dict[str, str] | list[tuple[str, str]] | None = None, data: bytes | None = None,
                allow_redirects: bool = True) -> Response:
        session = self._ensure()
        assert self._loop is not None
        return self._loop.run_until_complete(
            self._request(session, method, url, headers or {}, params, json_body, form, data, allow_redirects)
        )

    async def _request(self, session: aiohttp.ClientSession, method: str, url: str, headers: dict[str, str],
                       params: Any, json_body: Any, form: Any, data: bytes | None,
                       allow_redirects: bool) -> Response:
        kwargs: dict[str, Any] = {"headers": headers, "params": params, "allow_redirects": allow_redirects}
        if json_body is not None:
            kwargs["json"] = json_body
        elif form is not None:
            kwargs["data"] = aiohttp.FormData(form) if isinstance(form, list) else form
        elif data is not None:
            kwargs["data"] = data
        console.debug(f"{method} {url} params={params!r}" + (f" body={_redact(json_body)}" if json_body is not None else ""))
        try:
            async with session.request(method, url, **kwargs) as response:
                body = await response.read()
                result = Response(response.status, {k.lower(): v for k, v in response.headers.items()},
                                  body, str(response.url))
        except aiohttp.ClientConnectorCertificateError as exc:
            raise CLIError(
                f"TLS certificate of {_host(url)} not trusted ({exc.certificate_error}). "
                "Pass --ca-bundle to 'dockyard login' or set REQUESTS_CA_BUNDLE to the server's CA (ca.pem)."
            ) from None
        except aiohttp.ClientSSLError as exc:
            raise CLIError(f"TLS error talking to {_host(url)}: {exc}") from None
        except aiohttp.ClientConnectorError as exc:
            raise CLIError(f"Could not connect to {_host(url)}: {exc.os_error or exc}") from None
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise CLIError(f"{method} {url} failed: {exc or type(exc).__name__}") from None
        console.debug(f"-> {result.status} {result.headers.get('content-type', '')} {_redact_text(result.text[:2000])}")
        return result


def _host(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc or url


_SECRET_KEYS = ("password", "secret", "token", "value", "client_secret", "access_token", "refresh_token")


def _redact(value: Any) -> str:
    def scrub(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: ("***" if any(s in k.lower() for s in _SECRET_KEYS) and isinstance(x, str) else scrub(x))
                    for k, x in v.items()}
        if isinstance(v, list):
            return [scrub(x) for x in v]
        return v

    return json.dumps(scrub(value))


def _redact_text(text: str) -> str:
    try:
        return _redact(json.loads(text))
    except ValueError:
        return text
