"""RFC 8785 JSON Canonicalization Scheme (JCS), restricted to integers. Sans-IO.

Everything Carnet signs, hashes or uses as associated data is serialized with
:func:`canonical_json`. The accepted value space is deliberately small so that
Python and JavaScript produce the same bytes:

* ``dict`` with ``str`` keys, sorted by UTF-16 code units (RFC 8785 §3.2.3);
* ``list`` and ``tuple``;
* ``str`` without lone surrogates, escaped exactly as ECMAScript
  ``JSON.stringify`` does (RFC 8785 §3.2.2.2);
* ``int`` within ±(2**53 - 1), ``bool`` and ``None``.

Floats are rejected, even integral ones: RFC 8785 number serialization is
never needed and is the usual source of cross-language mismatches.
Containers may nest at most :data:`MAX_DEPTH` levels.

:func:`parse_json_strict` is the matching strict reader for untrusted bytes.
"""

from __future__ import annotations

import json
import re
from json.encoder import encode_basestring as _encode_string
from typing import Any

MAX_SAFE_INTEGER = 2**53 - 1
"""Largest integer that ECMAScript numbers represent exactly."""

MAX_DEPTH = 64
"""Maximum container nesting accepted by both serializer and parser."""


class CanonicalJSONError(ValueError):
    """Raised for values or documents outside the canonical JSON subset."""


_SURROGATE = re.compile("[\ud800-\udfff]")


def _check_str(value: str, what: str) -> None:
    found = _SURROGATE.search(value)  # a regular expression: one C loop, not one per character
    if found is not None:
        raise CanonicalJSONError(f"{what} contains a lone surrogate U+{ord(found[0]):04X}")


def _escape(value: str) -> str:
    # The standard library's encoder (in C) writes exactly RFC 8785's string form:
    # two-character escapes for the quote, the backslash and b t n f r, a lower-case
    # \u00xx for the other control characters, every other character as itself.
    # Lone surrogates never get here (``_check_str``).
    return _encode_string(value)


def _utf16_key(key: str) -> bytes:
    # Big-endian UTF-16 bytes compare exactly like sequences of code units.
    return key.encode("utf-16-be")


def _serialize(value: Any, depth: int, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise CanonicalJSONError(f"integer {value} is outside ±(2**53 - 1)")
        out.append(str(int(value)))
    elif isinstance(value, float):
        raise CanonicalJSONError(f"floats are not allowed in canonical JSON (got {value!r})")
    elif isinstance(value, str):
        _check_str(value, "string")
        out.append(_escape(value))
    elif isinstance(value, list | tuple):
        if depth >= MAX_DEPTH:
            raise CanonicalJSONError(f"nesting deeper than {MAX_DEPTH} levels")
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _serialize(item, depth + 1, out)
        out.append("]")
    elif isinstance(value, dict):
        if depth >= MAX_DEPTH:
            raise CanonicalJSONError(f"nesting deeper than {MAX_DEPTH} levels")
        for key in value:
            if not isinstance(key, str):
                raise CanonicalJSONError(f"object keys must be strings (got {type(key).__name__})")
            _check_str(key, "object key")
        out.append("{")
        for i, key in enumerate(sorted(value, key=_utf16_key)):
            if i:
                out.append(",")
            out.append(_escape(key))
            out.append(":")
            _serialize(value[key], depth + 1, out)
        out.append("}")
    else:
        raise CanonicalJSONError(f"type {type(value).__name__} is not allowed in canonical JSON")


def canonical_json(obj: Any) -> bytes:
    """Serialize ``obj`` as RFC 8785 canonical JSON.

    Args:
        obj: A value built from dict (str keys), list, tuple, str, int, bool, None.

    Returns:
        The canonical UTF-8 bytes, without a trailing newline.

    Raises:
        CanonicalJSONError: On floats, unsafe integers, non-string keys, lone
            surrogates, other types, or nesting deeper than :data:`MAX_DEPTH`.
    """
    out: list[str] = []
    _serialize(obj, 0, out)
    return "".join(out).encode("utf-8")


def _reject_constant(name: str) -> Any:
    raise CanonicalJSONError(f"{name} is not valid JSON")


def _reject_float(text: str) -> Any:
    raise CanonicalJSONError(f"non-integer number {text} is not allowed")


def _parse_int(text: str) -> int:
    if len(text) > 17:
        raise CanonicalJSONError(f"integer {text[:20]}… is outside ±(2**53 - 1)")
    value = int(text)
    if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        raise CanonicalJSONError(f"integer {text} is outside ±(2**53 - 1)")
    return value


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise CanonicalJSONError(f"duplicate object key {key!r}")
        result[key] = value
    return result


def _check_tree(value: Any, depth: int) -> None:
    if isinstance(value, str):
        _check_str(value, "string")
    elif isinstance(value, list | dict):
        if depth >= MAX_DEPTH:
            raise CanonicalJSONError(f"nesting deeper than {MAX_DEPTH} levels")
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(key, str):
                _check_str(key, "object key")
            _check_tree(item, depth + 1)


def parse_json_strict(data: bytes) -> Any:
    """Parse untrusted JSON bytes, accepting only the canonical value space.

    The input need not be canonical (whitespace and key order are free), but
    it must be valid UTF-8 JSON without duplicate keys, NaN/Infinity, floats
    or exponents, integers beyond ±(2**53 - 1), lone surrogates (also as
    ``\\ud800`` escapes) or nesting deeper than :data:`MAX_DEPTH`.

    Args:
        data: The raw bytes, e.g. an HTTP body.

    Returns:
        The parsed value (dict, list, str, int, bool or None).

    Raises:
        CanonicalJSONError: On any of the conditions above or a syntax error.
    """
    if not isinstance(data, bytes | bytearray):
        raise CanonicalJSONError("parse_json_strict expects bytes")
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CanonicalJSONError(f"invalid UTF-8 at byte {exc.start}") from None
    try:
        value = json.loads(
            text,
            object_pairs_hook=_pairs,
            parse_constant=_reject_constant,
            parse_float=_reject_float,
            parse_int=_parse_int,
        )
    except CanonicalJSONError:
        raise
    except RecursionError:
        raise CanonicalJSONError(f"nesting deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # json.JSONDecodeError and int() limits
        raise CanonicalJSONError(f"invalid JSON: {exc}") from None
    _check_tree(value, 0)
    return value
