"""``GET /metadata/endpoints``: the cloud description ``az cloud register`` reads.

az reads ``name``, ``authentication.loginEndpoint``, ``authentication.audiences[0]`` and
``suffixes.acrLoginServer`` (which it uses verbatim, so it carries the port clients use);
the other fields are the ones Azure's document has, for tools that read more of it.
"""

from __future__ import annotations

from aiohttp import web

from dockyard.http.arm.context import Call, respond


async def endpoints(call: Call) -> web.Response:
    base = call.base
    port = call.port
    suffix = "." + call.services.registries.domain + (f":{port}" if port else "")
    return respond(
        {
            "name": "Dockyard",
            "portal": base,
            "authentication": {
                "loginEndpoint": base,
                "audiences": [base + "/"],
                "tenant": "common",
                "identityProvider": "AAD",
            },
            "resourceManager": base + "/",
            "graph": "",
            "graphAudience": "",
            "microsoftGraphResourceId": "",
            "suffixes": {"acrLoginServer": suffix},
        }
    )
