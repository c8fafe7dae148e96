"""The OpenAPI document lists exactly the /api/v1 routes the app serves, with strict request schemas."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

from quart import Quart
from quart.typing import TestClientProtocol as Client

import node.api
from tests.factories import api_login, csrf
from tests.feed_factories import make_class_feed


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
            declared = [p["name"] for p in operation.get("parameters", []) if p["in"] == "path"]
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


#: every query parameter the JSON API reads, by operation: (name, type, required)
QUERY = {
    ("get", "/api/v1/feed"): [
        ("before", "integer", False),
        ("limit", "integer", False),
        ("child", "integer", False),
    ],
    ("get", "/api/v1/classes/{class_id}/posts"): [
        ("before", "integer", False),
        ("limit", "integer", False),
    ],
    ("put", "/api/v1/blobs/{blob_id}"): [("offset", "integer", True)],
    ("get", "/api/v1/classes/{class_id}/absences"): [("day", "string", False)],
    ("get", "/api/v1/classes/{class_id}/conversations/{conversation_id}"): [
        ("before", "integer", False)
    ],
    ("get", "/api/v1/classes/{class_id}/chat/reports"): [("handled", "string", False)],
    ("get", "/api/v1/me/export/posts"): [("before", "integer", False)],
    ("get", "/api/v1/me/export/conversations/{class_id}/{conversation_id}"): [
        ("before", "integer", False)
    ],
    ("get", "/api/v1/admin/audit"): [
        ("action", "string", False),
        ("pseudonym", "string", False),
        ("page", "integer", False),
    ],
    ("get", "/api/v1/school-group"): [("group", "string", False)],
}


async def test_query_parameters_are_documented_typed_and_bounded(client: Client) -> None:
    document = await fetch(client)
    found = {}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            query = [p for p in operation.get("parameters", []) if p["in"] == "query"]
            if query:
                found[(method, path)] = [
                    (p["name"], p["schema"]["type"], p["required"]) for p in query
                ]
            for p in query:
                assert p["description"], (path, p["name"])
                schema = p["schema"]
                if schema["type"] == "integer":
                    assert 0 <= schema["minimum"] <= schema["maximum"] <= 2**53 - 1, (path, p)
                else:  # text: a closed list, or a pattern bounded by its anchors
                    assert "enum" in schema or re.fullmatch(r"\^.*\$", schema["pattern"]), p
    assert found == QUERY
    feed = document["paths"]["/api/v1/feed"]["get"]["parameters"]
    assert feed[1]["schema"] == {"type": "integer", "minimum": 1, "maximum": 50}


#: what a handler may not touch: the query string is read only through ``query=``
_RAW_QUERY = {"args", "values", "query_string", "url", "full_path", "scope"}


def raw_query_reads(source: str) -> list[int]:
    """Lines reading the query string from ``request`` instead of a declared ``query``."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Attribute)
        and node.attr in _RAW_QUERY
        and isinstance(node.value, ast.Name)
        and node.value.id == "request"
    ]


def test_handlers_read_query_parameters_only_through_their_declaration() -> None:
    """A parameter read by hand would be missing from the document, and never fuzzed.

    ``Api.operation(query=…)`` is the one reader (``parse_query(query, request.args)``);
    a route reading ``request.args`` (or the raw URL) anywhere else fails here.
    """
    assert raw_query_reads('from quart import request\nx = request.args.get("day")\n') == [2]
    modules = sorted(Path(node.api.__file__).parent.glob("*.py"))
    assert len(modules) >= 15
    reads = {m.name: raw_query_reads(m.read_text()) for m in modules}
    assert reads.pop("__init__.py") == [_line_of("parse_query(query, request.args)")]
    assert {name: lines for name, lines in reads.items() if lines} == {}


def _line_of(text: str) -> int:
    lines = Path(node.api.__file__).read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


async def test_query_parameters_are_refused_as_the_document_says(
    app: Quart, storage: Any, ctx: Any
) -> None:
    cf = make_class_feed(storage, ctx, families=1)
    parent, teacher = app.test_client(), app.test_client()
    await api_login(parent, "+33639980000")
    await api_login(teacher, "dubois@school.test")
    for query, name in [
        ("limit=51", "limit"),
        ("limit=0", "limit"),
        ("limit=%C2%B2", "limit"),  # "²": a digit to str.isdigit, not to int()
        ("limit=1_0", "limit"),
        ("before=", "before"),
        ("before=9007199254740992", "before"),
        ("child=-1", "child"),
    ]:
        answer = await parent.get(f"/api/v1/feed?{query}")
        assert answer.status_code == 400, query
        assert (await answer.get_json())["error"]["field"] == name, query
    assert (await parent.get("/api/v1/feed?limit=50&unknown=x")).status_code == 200
    reports = f"/api/v1/classes/{cf.class_id}/chat/reports"
    assert (await teacher.get(f"{reports}?handled=yes")).status_code == 400
    assert (await teacher.get(f"{reports}?handled=1")).status_code == 200
    absences = f"/api/v1/classes/{cf.class_id}/absences"
    assert (await teacher.get(f"{absences}?day=2026-3-14")).status_code == 400
    assert (await teacher.get(f"{absences}?day=2026-03-14")).status_code == 200
    started = await teacher.post(
        f"/api/v1/classes/{cf.class_id}/blobs",
        json={"size": 100},
        headers={"X-CSRF-Token": await csrf(teacher)},
    )
    blob = (await started.get_json())["id"]
    no_offset = await teacher.put(
        f"/api/v1/blobs/{blob}",
        data=b"x" * 10,
        headers={"Content-Type": "application/octet-stream", "X-CSRF-Token": await csrf(teacher)},
    )
    assert no_offset.status_code == 400
    assert (await no_offset.get_json())["error"]["field"] == "offset"
