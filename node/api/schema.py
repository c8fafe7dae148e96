"""Request schemas that both validate bodies and describe them in the OpenAPI document.

One declaration per operation; no second copy to drift.  Validation refuses
unknown fields (no mass assignment), wrong types and oversized strings with
a 400 naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from node.errors import N_, Invalid


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
