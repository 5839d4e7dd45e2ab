"""Helpers shared by the identity and access tests (tests/auth)."""

from __future__ import annotations

import base64
import hashlib
import json
import re

import jwt

OWNER_PASSWORD = "correct horse battery staple"  # what tests/conftest.py gives the owner
SERVICE = "dockyard.localhost"
OTHER = "otherregistry"
OTHER_HOST = f"{OTHER}.localhost"
NULL_GUID = "00000000-0000-0000-0000-000000000000"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def basic(username: str = "owner", password: str = OWNER_PASSWORD) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def decode(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.partition(" ")
    return scheme, dict(re.findall(r'(\w+)="([^"]*)"', rest))


async def describe(response) -> str:
    text = await response.text()
    return f"{response.method} {response.url.path_qs} -> {response.status} {dict(response.headers)} {text[:600]}"


async def oci_error(response, status: int, code: str) -> dict:
    """Check an OCI error answer; return its first error entry."""
    text = await response.text()
    assert response.status == status, f"expected {status} {code}: {await describe(response)}"
    assert response.headers.get("Docker-Distribution-API-Version") == "registry/2.0"
    document = json.loads(text)
    codes = [entry["code"] for entry in document["errors"]]
    assert code in codes, f"expected {code}, got {codes}: {text[:500]}"
    return document["errors"][0]


async def ok(response, status: int = 200) -> None:
    assert response.status == status, await describe(response)


class Seeder:
    """Puts content in a registry through the HTTP API (owner's Basic credentials by default)."""

    def __init__(self, http, host: str | None = None, headers: dict[str, str] | None = None) -> None:
        self.http = http
        self.headers = dict(headers if headers is not None else basic())
        if host:
            self.headers["Host"] = host

    async def blob(self, repository: str, data: bytes) -> dict:
        digest = sha256(data)
        response = await self.http.post(
            f"/v2/{repository}/blobs/uploads/?digest={digest}", data=data, headers=self.headers
        )
        assert response.status == 201, await describe(response)
        return {"mediaType": "application/octet-stream", "digest": digest, "size": len(data)}

    async def image(self, repository: str, tag: str = "v1", marker: str = "") -> dict:
        """Push a one-layer image; return {"digest", "body", "config", "layer"}."""
        config = await self.blob(
            repository, json.dumps({"architecture": "amd64", "os": "linux", "n": f"{repository}:{tag}{marker}"}).encode()
        )
        config["mediaType"] = "application/vnd.oci.image.config.v1+json"
        layer = await self.blob(repository, f"layer of {repository}:{tag}{marker}".encode())
        layer["mediaType"] = "application/vnd.oci.image.layer.v1.tar"
        body = json.dumps(
            {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": [layer]}
        ).encode()
        response = await self.http.put(
            f"/v2/{repository}/manifests/{tag}", data=body, headers={**self.headers, "Content-Type": OCI_MANIFEST}
        )
        assert response.status == 201, await describe(response)
        return {"digest": response.headers["Docker-Content-Digest"], "body": body,
                "config": config["digest"], "layer": layer["digest"]}


async def get_token(http, *scopes: str, headers: dict[str, str] | None = None, service: str = SERVICE):
    """GET /oauth2/token the way docker does; returns the response."""
    params = [("service", service)] + [("scope", scope) for scope in scopes]
    return await http.get("/oauth2/token", params=params, headers=headers or {})


async def access_of(http, *scopes: str, headers: dict[str, str], service: str = SERVICE) -> list[dict]:
    """The access claim of a token fetched with these headers, checking the fetch succeeded."""
    response = await get_token(http, *scopes, headers=headers, service=service)
    assert response.status == 200, await describe(response)
    document = await response.json()
    return decode(document["access_token"])["access"]


def claim(name: str, *actions: str, kind: str = "repository") -> dict:
    return {"type": kind, "name": name, "actions": list(actions)}
