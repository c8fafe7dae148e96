"""Request schemas that both validate bodies and describe them in the OpenAPI document.

One declaration per operation; no second copy to drift.  Validation refuses
unknown fields (no mass assignment), wrong types and oversized strings with
a 400 naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from node.errors import N_, Invalid
from node.urlids import MAX_ID


@dataclass(frozen=True)
class Field:
    type: str  # "string" | "integer" | "object" | "array" | "boolean"
    required: bool = True
    max_length: int | None = None
    minimum: int | None = None
    maximum: int | None = None
    nullable: bool = False
    description: str = ""

    def openapi(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if self.type == "array":
            out["items"] = {}
        if self.max_length is not None:
            out["maxLength"] = self.max_length
        if self.minimum is not None:
            out["minimum"] = self.minimum
        if self.maximum is not None:
            out["maxItems" if self.type == "array" else "maximum"] = self.maximum
        if self.nullable:
            out["nullable"] = True
        if self.description:
            out["description"] = self.description
        return out


def string(
    max_length: int, required: bool = True, description: str = "", nullable: bool = False
) -> Field:
    return Field(
        "string", required, max_length=max_length, description=description, nullable=nullable
    )


def integer(minimum: int, maximum: int, required: bool = True, description: str = "") -> Field:
    return Field("integer", required, minimum=minimum, maximum=maximum, description=description)


def obj(description: str = "", required: bool = True) -> Field:
    return Field("object", required, description=description)


def array(description: str = "", required: bool = True, max_items: int = 5000) -> Field:
    """A JSON list; the service checks its items (they are protocol objects)."""
    return Field("array", required, maximum=max_items, description=description)


def boolean(description: str = "", required: bool = True) -> Field:
    return Field("boolean", required, description=description)


@dataclass(frozen=True)
class Body:
    name: str
    fields: dict[str, Field] = field(default_factory=dict)

    def openapi(self) -> dict[str, Any]:
        return {
            "type": "object",
            "additionalProperties": False,
            "required": [k for k, f in self.fields.items() if f.required],
            "properties": {k: f.openapi() for k, f in self.fields.items()},
        }

    def validate(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise Invalid(N_("The request body must be a JSON object."))
        for key in data:
            if key not in self.fields:
                raise Invalid(N_("Unknown field: {name}."), field=str(key)[:40], name=str(key)[:40])
        out: dict[str, Any] = {}
        for key, spec in self.fields.items():
            if key not in data or (data[key] is None and not spec.required):
                if spec.required:
                    raise Invalid(N_("This field is required."), field=key)
                out[key] = None
                continue
            out[key] = _check(spec, key, data[key])
        return out


def _check(spec: Field, key: str, value: Any) -> Any:
    if value is None and spec.nullable:
        return None
    if spec.type == "string":
        if not isinstance(value, str):
            raise Invalid(N_("This field must be text."), field=key)
        if spec.max_length is not None and len(value) > spec.max_length:
            raise Invalid(N_("This field is too long."), field=key)
        if any(0xD800 <= ord(ch) <= 0xDFFF or ch == "\x00" for ch in value):
            raise Invalid(N_("This field contains characters that are not allowed."), field=key)
        return value
    if spec.type == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            raise Invalid(N_("This field must be a whole number."), field=key)
        if (spec.minimum is not None and value < spec.minimum) or (
            spec.maximum is not None and value > spec.maximum
        ):
            raise Invalid(N_("This number is out of range."), field=key)
        return value
    if spec.type == "object":
        if not isinstance(value, dict):
            raise Invalid(N_("This field must be a JSON object."), field=key)
        return value
    if spec.type == "array":
        if not isinstance(value, list):
            raise Invalid(N_("This field must be a list."), field=key)
        if spec.maximum is not None and len(value) > spec.maximum:
            raise Invalid(N_("This list is too long."), field=key)
        return value
    if spec.type == "boolean":
        if not isinstance(value, bool):
            raise Invalid(N_("This field must be true or false."), field=key)
        return value
    raise AssertionError(spec.type)


@dataclass(frozen=True)
class Param:
    """A query parameter: its OpenAPI schema, and the check the operation runs on it.

    Operations declare theirs (``Api.operation(query={name: Param})``) and read
    them from the parsed ``query`` argument, never from ``request.args``: what
    the document says is what the code accepts (tests/node/api/test_api_openapi.py
    refuses any other read).
    """

    type: str  # "integer" | "string"
    description: str
    required: bool = False
    minimum: int | None = None
    maximum: int | None = None
    max_length: int | None = None
    #: a regular expression the whole value matches
    pattern: str | None = None
    enum: tuple[str, ...] | None = None
    format: str | None = None
    #: the refusal, naming the value as %(name)s (the English msgid)
    message: str = N_("%(name)s is not a valid value here.")

    def openapi(self, name: str) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": self.type}
        if self.minimum is not None:
            schema["minimum"] = self.minimum
        if self.maximum is not None:
            schema["maximum"] = self.maximum
        if self.max_length is not None:
            schema["maxLength"] = self.max_length
        if self.pattern is not None:
            schema["pattern"] = f"^{self.pattern}$"
        if self.enum is not None:
            schema["enum"] = list(self.enum)
        if self.format is not None:
            schema["format"] = self.format
        return {
            "name": name,
            "in": "query",
            "required": self.required,
            "description": self.description,
            "schema": schema,
        }

    def parse(self, name: str, raw: str | None) -> Any:
        """The value (an int for integers), None when absent, or Invalid naming it."""
        if raw is None:
            if self.required:
                raise Invalid(N_("This field is required."), field=name)
            return None
        if self.type == "integer":
            # ASCII digits only: int() takes "²" and "1_0", and refuses 4,300 digits
            if raw.isascii() and raw.isdigit() and len(raw) <= len(str(MAX_ID)):
                value = int(raw)
                if (self.minimum is None or value >= self.minimum) and (
                    self.maximum is None or value <= self.maximum
                ):
                    return value
            raise Invalid(self.message, field=name, name=name)
        if (
            (self.max_length is not None and len(raw) > self.max_length)
            or (self.pattern is not None and not re.fullmatch(self.pattern, raw))
            or (self.enum is not None and raw not in self.enum)
        ):
            raise Invalid(self.message, field=name, name=name)
        return raw


def parse_query(params: Mapping[str, Param], args: Mapping[str, str]) -> dict[str, Any]:
    """Every declared parameter (None when absent), checked; undeclared ones are ignored."""
    return {name: spec.parse(name, args.get(name)) for name, spec in params.items()}


def id_param(description: str) -> Param:
    """An id in the query string (positive, JSON-safe), like the ``<id:…>`` path parts."""
    return Param(
        "integer",
        description,
        minimum=1,
        maximum=MAX_ID,
        message=N_("%(name)s must be a positive whole number."),
    )


#: the cursor of a paged list
BEFORE = id_param("The previous page's next_before: the items older than this one (a paged list)")


CREDENTIALS = Body(
    "Credentials",
    {
        "kdf_salt": string(32, description="16 random bytes, base64url"),
        "kdf_iterations": integer(600_000, 10_000_000),
        "login_secret": string(64, description="HKDF output from the passphrase, base64url"),
        "sign_pk": string(64),
        "enc_pk": string(64),
        "vault": obj("carnet-e2e-1 vault document (opaque to the node)"),
        "proof": string(100, description="signature proving possession of sign_pk"),
    },
)
