"""Writing ``carnet.toml`` for test nodes: nested tables, quoted keys.

``node.config.dump_toml`` (used by ``carnet init``) writes one level of
tables with bare keys. The harness must also write ``federation_connect``,
whose keys are origins (``"http://127.0.0.1:5001"``), and nested settings
passed by tests, so it has this small writer. Rule: whatever it writes,
``tomllib`` reads back as the same values (checked in the harness tests).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

_BARE_KEY_RE = re.compile(r"[A-Za-z0-9_-]+")


def deep_merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated with ``extra``; tables present in both are merged key by key."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _toml_key(key: str) -> str:
    # Origins such as "http://127.0.0.1:5000" are table keys here: they must be quoted.
    return key if _BARE_KEY_RE.fullmatch(key) else _toml_string(key)


def _toml_string(text: str) -> str:
    out = []
    for char in text:
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return "nan"
        if value in (float("inf"), float("-inf")):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str | Path):
        return _toml_string(str(value))
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} {value!r} to TOML")


def render_toml(values: Mapping[str, Any]) -> str:
    """Render nested mappings as TOML: scalars first, then ``[a."b c"]`` tables at any depth.

    ``node.config.dump_toml`` writes one level with bare keys, which cannot
    express ``federation_connect`` (its keys are origins); this writer quotes
    keys as needed and is checked against ``tomllib`` in the harness tests.
    """
    lines: list[str] = []

    def table(path: list[str], mapping: Mapping[str, Any]) -> None:
        scalars = [(k, v) for k, v in mapping.items() if not isinstance(v, Mapping)]
        tables = [(k, v) for k, v in mapping.items() if isinstance(v, Mapping)]
        if path and (scalars or not tables):
            lines.append("")
            lines.append("[" + ".".join(_toml_key(p) for p in path) + "]")
        lines.extend(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in scalars)
        for key, sub in tables:
            table([*path, key], sub)

    table([], values)
    return "\n".join(lines).lstrip("\n") + "\n"
