"""The OpenAPI 3.1 document, generated from the operations the API registered."""

from __future__ import annotations

import re
from typing import Any

from quart import current_app, jsonify

from node.api import Api, openapi_path
from node.urlids import MAX_ID

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "field": {"type": ["string", "null"]},
            },
        }
    },
}

#: the one byte range a download serves (RFC 9110 §14.2); no list of ranges
RANGE = {
    "name": "Range",
    "in": "header",
    "required": False,
    "description": "One range of bytes, from a first byte to a last one or to the end "
    "(bytes=first-last, bytes=first-): the answer is a 206 with Content-Range",
    "schema": {"type": "string", "pattern": "^bytes=[0-9]{1,15}-[0-9]{0,15}$"},
}

#: RFC 9110 §15.5.17: the range is not in the file, or not one this node serves
UNSATISFIABLE = {
    "description": "Range Not Satisfiable: the range starts past the end of the file, ends "
    "before it starts, or is not of the form bytes=first-last; Content-Range gives the size",
    "headers": {
        "Content-Range": {
            "description": "bytes */size: the whole file's size in bytes",
            "required": True,
            "schema": {"type": "string", "pattern": "^bytes \\*/[0-9]+$"},
        }
    },
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}


def document(api: Api, server_url: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for op in api.operations:
        path = "/api/v1" + openapi_path(op.path)
        entry: dict[str, Any] = {
            "summary": op.summary,
            "tags": [op.tag],
            "operationId": f"{op.method.lower()}_{re.sub(r'[^a-z0-9]+', '_', op.path.lower()).strip('_')}",
            "responses": {
                "2XX": {"description": "Success", "content": {op.produces: {}}},
                "4XX": {
                    "description": "A clear error",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                },
                "502": {
                    "description": "Another school's Carnet did not answer, or answered badly "
                    "(code unreachable; only operations that reach another school)",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                },
            },
        }
        parameters = [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID}
                if conv == "id"
                else {"type": "string", "maxLength": 64},
            }
            for conv, name in re.findall(r"<(?:(\w+):)?(\w+)>", op.path)
        ]
        parameters += [param.openapi(name) for name, param in op.query.items()]
        if op.ranges:
            parameters.append(RANGE)
            entry["responses"]["416"] = UNSATISFIABLE
        if parameters:
            entry["parameters"] = parameters
        if op.body is not None:
            entry["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{op.body.name}"}}
                },
            }
        if op.raw_body is not None:
            entry["requestBody"] = {
                "required": True,
                "content": {op.raw_body: {"schema": {"type": "string", "format": "binary"}}},
            }
        if op.auth == "session":
            entry["security"] = [{"session": [], "csrf": []}]
        elif op.auth == "provider":
            entry["security"] = [{"smsProvider": []}]
        else:
            entry["security"] = [{}]
        paths.setdefault(path, {})[op.method.lower()] = entry
    schemas: dict[str, Any] = {"Error": ERROR}
    for op in api.operations:
        if op.body is not None:
            schemas[op.body.name] = op.body.openapi()
    return {
        "openapi": "3.1.0",
        "info": {"title": "Carnet node API", "version": "1"},
        "servers": [{"url": server_url}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": "carnet_session"},
                "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token"},
                "smsProvider": {"type": "apiKey", "in": "header", "name": "X-Carnet-Sms-Secret"},
            },
        },
    }


def register(api: Api) -> None:
    @api.operation("GET", "/openapi.json", summary="This document", auth="none", tag="meta")
    async def openapi_document() -> Any:
        return jsonify(document(api, current_app.config["CARNET"].public_url))
