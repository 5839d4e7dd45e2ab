"""Shared helpers for the in-process OCI Distribution API tests."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
from typing import Any

from yarl import URL

OWNER_PASSWORD = "correct horse battery staple"  # the password tests/conftest.py gives the owner

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"

API_VERSION = ("Docker-Distribution-API-Version", "registry/2.0")

# The 14 codes of the spec's error-code table (code-1 .. code-14).
SPEC_ERROR_CODES = {
    "BLOB_UNKNOWN",
    "BLOB_UPLOAD_INVALID",
    "BLOB_UPLOAD_UNKNOWN",
    "DIGEST_INVALID",
    "MANIFEST_BLOB_UNKNOWN",
    "MANIFEST_INVALID",
    "MANIFEST_UNKNOWN",
    "NAME_INVALID",
    "NAME_UNKNOWN",
    "SIZE_INVALID",
    "UNAUTHORIZED",
    "DENIED",
    "UNSUPPORTED",
    "TOOMANYREQUESTS",
}


def basic(username: str = "owner", password: str = OWNER_PASSWORD) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def sha512(data: bytes) -> str:
    return "sha512:" + hashlib.sha512(data).hexdigest()


def path_of(location: str) -> str:
    """A Location header (absolute or relative) as the path and query the test client takes."""
    url = URL(location)
    return url.path_qs if url.absolute else location


def with_query(location: str, **params: str) -> str:
    url = URL(path_of(location))
    return str(url.update_query(params))


async def error_codes(response) -> list[str]:
    """The error codes of an OCI error body, checking the body has the spec's shape."""
    assert response.content_type == "application/json", (response.status, response.content_type)
    document = json.loads(await response.read())
    assert isinstance(document, dict) and isinstance(document.get("errors"), list) and document["errors"], document
    for entry in document["errors"]:
        assert isinstance(entry["code"], str) and entry["code"].replace("_", "").isalpha() and entry["code"].isupper()
        assert "message" not in entry or isinstance(entry["message"], str)
    return [entry["code"] for entry in document["errors"]]


async def assert_error(response, status: int, code: str | set[str]) -> list[str]:
    text = await response.text()
    assert response.status == status, f"expected {status} {code}, got {response.status}: {text[:500]}"
    assert response.headers.get(API_VERSION[0]) == API_VERSION[1]
    codes = await error_codes(response)
    wanted = {code} if isinstance(code, str) else code
    assert set(codes) & wanted, f"expected one of {sorted(wanted)}, got {codes}"
    return codes


def assert_api_version(response) -> None:
    assert response.headers.get(API_VERSION[0]) == API_VERSION[1], dict(response.headers)


def manifest_bytes(config: dict, layers: list[dict], **extra: Any) -> bytes:
    document = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": layers, **extra}
    return json.dumps(document).encode()


async def put_manifest(client, repository: str, reference: str, body: bytes, media_type: str = OCI_MANIFEST, **kw):
    return await client.put(
        f"/v2/{repository}/manifests/{reference}", data=body, headers={"Content-Type": media_type}, **kw
    )


async def image_parts(push, repository: str, name: str = "x", layers: int = 1) -> tuple[dict, list[dict]]:
    """Upload a config and layers into ``repository``; return their descriptors."""
    config = await push.blob(repository, json.dumps({"architecture": "amd64", "os": "linux", "name": name}).encode())
    config["mediaType"] = OCI_CONFIG
    descriptors = []
    for i in range(layers):
        layer = await push.blob(repository, f"{name} layer {i}".encode())
        layer["mediaType"] = OCI_LAYER
        descriptors.append(layer)
    return config, descriptors


async def push_manifest(client, push, repository: str, reference: str | None, name: str = "x", **extra) -> tuple[str, bytes]:
    """Push an image manifest (by tag, or by digest when ``reference`` is None); return (digest, body)."""
    config, layers = await image_parts(push, repository, name)
    body = manifest_bytes(config, layers, **extra)
    digest = sha256(body)
    response = await put_manifest(client, repository, reference or digest, body)
    assert response.status == 201, await response.text()
    assert response.headers["Docker-Content-Digest"] == digest
    return digest, body


async def start_upload(client, repository: str, query: str = "") -> str:
    response = await client.post(f"/v2/{repository}/blobs/uploads/{query}", headers={"Content-Length": "0"})
    assert response.status == 202, await response.text()
    assert response.headers.get("Location")
    return path_of(response.headers["Location"])


async def raw_exchange(client, data: bytes, *, read_timeout: float = 2.0, close_after_send: bool = False) -> bytes:
    """Send raw bytes to the test server on a fresh connection and return whatever it answers."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    try:
        writer.write(data)
        await writer.drain()
        if close_after_send:
            return b""
        received = b""
        while True:
            try:
                chunk = await asyncio.wait_for(reader.read(65536), read_timeout)
            except asyncio.TimeoutError:
                break
            if not chunk:
                break
            received += chunk
        return received
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionError, OSError):
            pass


def raw_statuses(received: bytes) -> list[int]:
    """Status codes of every HTTP response in a raw byte stream."""
    statuses = []
    for line in received.split(b"\r\n"):
        if line.startswith(b"HTTP/1."):
            statuses.append(int(line.split()[1]))
    return statuses


def raw_request(method: str, target: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def settle(seconds: float = 0.3) -> None:
    """Let the in-process server finish handling a connection the test cut."""
    await asyncio.sleep(seconds)


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.partition(" ")
    params: dict[str, str] = {}
    for match in re.finditer(r'(\w+)="([^"]*)"', rest):
        params[match.group(1)] = match.group(2)
    return scheme, params


async def fetch_token(http, *scopes: str, username: str = "owner", password: str = OWNER_PASSWORD) -> str:
    """An access token from the token endpoint (GET with Basic credentials) for these scopes."""
    params = [("service", "dockyard.localhost")] + [("scope", scope) for scope in scopes]
    response = await http.get("/oauth2/token", params=params, headers=basic(username, password))
    assert response.status == 200, await response.text()
    return (await response.json())["access_token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
