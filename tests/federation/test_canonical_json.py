"""RFC 8785 canonical JSON (federation.canonical): serializer and strict parser."""

from __future__ import annotations

import json

import pytest

from federation.canonical import (
    MAX_SAFE_INTEGER,
    CanonicalJSONError,
    canonical_json,
    parse_json_strict,
)


def test_sorting_escaping_and_literals() -> None:
    value = {"b": [True, False, None], "a": "x\u00e9\n\u0001\u2028\U0001f600", "": -0}
    assert canonical_json(value) == (
        '{"":0,"a":"x\u00e9\\n\\u0001\u2028\U0001f600","b":[true,false,null]}'.encode()
    )


def test_keys_sort_by_utf16_code_units_not_code_points() -> None:
    # U+E000 < U+1F600 as code points, but 0xD83D (high surrogate) < 0xE000 in UTF-16.
    out = canonical_json({"\ue000": 1, "\U0001f600": 2}).decode()
    assert out == '{"\U0001f600":2,"\ue000":1}'


def test_tuples_and_integer_bounds() -> None:
    assert (
        canonical_json((MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER))
        == b"[9007199254740991,-9007199254740991]"
    )


@pytest.mark.parametrize(
    "bad",
    [
        1.0,
        float("nan"),
        float("inf"),
        MAX_SAFE_INTEGER + 1,
        -MAX_SAFE_INTEGER - 1,
        {1: "x"},
        {"\ud800": 1},
        "\udfff",
        b"bytes",
        {1, 2},
        object(),
    ],
)
def test_rejected_values(bad: object) -> None:
    with pytest.raises(CanonicalJSONError):
        canonical_json({"k": bad} if not isinstance(bad, dict) else bad)


def test_depth_limit() -> None:
    ok: list[object] = []
    for _ in range(63):
        ok = [ok]
    assert canonical_json(ok) == b"[" * 64 + b"]" * 64
    with pytest.raises(CanonicalJSONError, match="nesting"):
        canonical_json([ok])


def test_error_is_a_value_error() -> None:
    assert issubclass(CanonicalJSONError, ValueError)


def test_parse_strict_accepts_and_round_trips() -> None:
    text = b'{ "b" : [1, -2, true, null], "a" : "\\u00e9\\ud83d\\ude00" }'
    value = parse_json_strict(text)
    assert value == {"a": "\u00e9\U0001f600", "b": [1, -2, True, None]}
    assert parse_json_strict(canonical_json(value)) == value


@pytest.mark.parametrize(
    "data",
    [
        b'{"a": 1, "a": 2}',
        b'{"a": {"b": 1, "b": 1}}',
        b"NaN",
        b"[Infinity]",
        b"[-Infinity]",
        b"1.0",
        b"1e3",
        b"[0.5]",
        b"9007199254740992",
        b"-9007199254740992",
        b"1" * 5000,
        b'"\\ud800"',
        b'{"\\udc00": 1}',
        b'"\xff"',
        b'"\xed\xa0\x80"',  # a surrogate encoded in UTF-8 is invalid UTF-8
        b"\xef\xbb\xbf{}",  # BOM
        b"[" * 65 + b"]" * 65,
        b"[" * 100000 + b"]" * 100000,
        b"{",
        b"",
        b"[1,]",
    ],
)
def test_parse_strict_rejects(data: bytes) -> None:
    with pytest.raises(CanonicalJSONError):
        parse_json_strict(data)


def test_parse_strict_depth_boundary() -> None:
    assert parse_json_strict(b"[" * 64 + b"]" * 64) is not None


def test_parse_strict_rejects_str_input() -> None:
    with pytest.raises(CanonicalJSONError):
        parse_json_strict("{}")  # type: ignore[arg-type]


def test_rfc8785_sorting_example() -> None:
    # RFC 8785 §3.2.3.
    text = json.dumps(
        {
            "\u20ac": "Euro Sign",
            "\r": "Carriage Return",
            "\ufb33": "Hebrew Letter Dalet With Dagesh",
            "1": "One",
            "\U0001f600": "Emoji: Grinning Face",
            "\u0080": "Control",
            "\u00f6": "Latin Small Letter O With Diaeresis",
        }
    )
    keys = list(json.loads(canonical_json(parse_json_strict(text.encode()))))
    assert keys == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]
