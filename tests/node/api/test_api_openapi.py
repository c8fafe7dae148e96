"""The OpenAPI document lists exactly the /api/v1 routes the app serves, with strict request schemas."""

from __future__ import annotations

import re
from typing import Any

from quart import Quart
from quart.typing import TestClientProtocol as Client


def served_operations(app: Quart) -> set[tuple[str, str]]:
    """(method, OpenAPI path) for every /api/v1 rule of the URL map."""
    served = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            served.add((method.lower(), path))
    return served


async def fetch(client: Client) -> dict[str, Any]:
    response = await client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    document: dict[str, Any] = await response.get_json()
    return document


async def test_every_served_route_is_documented_and_nothing_else(
    app: Quart, client: Client
) -> None:
    document = await fetch(client)
    assert document["openapi"].startswith("3.1")
    documented = {(method, path) for path, item in document["paths"].items() for method in item}
    served = served_operations(app)
    assert len(served) >= 20
    assert documented == served


SMS_CALLBACKS = ("/api/v1/sms/status", "/api/v1/sms/replies")


async def test_request_bodies_refuse_unknown_properties(client: Client) -> None:
    document = await fetch(client)
    schemas = document["components"]["schemas"]
    with_body = 0
    for path, item in document["paths"].items():
        for method, operation in item.items():
            # the SMS provider's callbacks read their raw body themselves
            if method in ("post", "put", "patch") and path not in SMS_CALLBACKS:
                assert "requestBody" in operation or not _takes_body(path), (method, path)
            if "requestBody" not in operation:
                continue
            content = operation["requestBody"]["content"]
            if "application/json" not in content:  # raw uploads: bytes, not an object
                assert content == {
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                }
                continue
            with_body += 1
            ref = content["application/json"]["schema"]["$ref"]
            schema = schemas[ref.rsplit("/", 1)[1]]
            assert schema["type"] == "object"
            assert schema["additionalProperties"] is False, (method, path)
            assert set(schema["required"]) <= set(schema["properties"])
            for name, prop in schema["properties"].items():
                if prop["type"] == "string":
                    assert prop["maxLength"] > 0, (path, name)
    assert with_body >= 10
    assert schemas["Credentials"]["properties"]["kdf_iterations"]["minimum"] >= 600_000


def _takes_body(path: str) -> bool:
    """Operations that act on an id alone (disable, new setup link, logout…) carry no body."""
    return not re.search(
        r"(/disable|/setup-link|/slips|/logout|/end-others|/read|/remind|/resend|/approve|/cancel"
        r"|/ack|/seen|/conduct|/handled)$",
        path,
    )


async def test_path_parameters_and_security_are_declared(app: Quart, client: Client) -> None:
    document = await fetch(client)
    for path, item in document["paths"].items():
        names = re.findall(r"\{(\w+)\}", path)
        for method, operation in item.items():
            declared = [p["name"] for p in operation.get("parameters", [])]
            assert declared == names, (method, path)
            assert "security" in operation
    assert document["paths"]["/api/v1/classes/{class_id}"]["get"]["parameters"][0]["schema"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 2**53 - 1,
    }
    # Public operations say so; the rest need a session and the CSRF header.
    assert document["paths"]["/api/v1/auth/login"]["post"]["security"] == [{}]
    assert document["paths"]["/api/v1/classes"]["post"]["security"] == [{"session": [], "csrf": []}]
    operation_ids = [
        op["operationId"] for item in document["paths"].values() for op in item.values()
    ]
    assert len(operation_ids) == len(set(operation_ids))
