"""RFC 8941 structured fields (federation.sfv), with http_sf as an oracle."""

from __future__ import annotations

from decimal import Decimal

import http_sf
import pytest

from federation import sfv
from federation.errors import StructuredFieldError

VALID_DICTIONARIES = [
    'sig1=("@method" "@target-uri");created=1618884473;keyid="k";alg="ed25519"',
    "a=1, b=?0, c, d=tok/en:x, e=:AQID:, f=-12.5",
    'a=(1 2);x, b=("s" tok);y=?1',
    "a=()",
    "a=1;p=2;q, b=2",
    'a="quote \\" and \\\\ backslash"',
    "a=1 ,\tb=2",
]


@pytest.mark.parametrize("text", VALID_DICTIONARIES)
def test_dictionaries_parse_like_http_sf_and_round_trip(text: str) -> None:
    ours = sfv.parse_dictionary(text)
    theirs = http_sf.parse(text.encode(), tltype="dictionary")
    assert list(ours) == list(theirs)
    for name, member in ours.items():
        value, params = theirs[name]
        assert dict(member.params) == dict(params)
        if isinstance(member, sfv.InnerList):
            assert [(i.value, dict(i.params)) for i in member.items] == [
                (v, dict(p)) for v, p in value
            ]
        else:
            assert member.value == value
    # Serialization is canonical: the same as http_sf's, and it parses back.
    assert sfv.serialize_dictionary(ours) == http_sf.ser(theirs)
    assert sfv.parse_dictionary(sfv.serialize_dictionary(ours)) == ours


def test_types_are_kept_apart() -> None:
    parsed = sfv.parse_dictionary('t=tok, s="tok", b=?1, i=1, d=1.5, y=:AA==:')
    assert isinstance(parsed["t"].value, sfv.Token)  # type: ignore[union-attr]
    assert type(parsed["s"].value) is str  # type: ignore[union-attr]
    assert parsed["b"].value is True  # type: ignore[union-attr]
    assert parsed["i"].value == 1 and type(parsed["i"].value) is int  # type: ignore[union-attr]
    assert parsed["d"].value == Decimal("1.5")  # type: ignore[union-attr]
    assert parsed["y"].value == b"\0"  # type: ignore[union-attr]
    assert sfv.parse_item("?0").value is False


@pytest.mark.parametrize(
    "text",
    [
        "a=1, a=2",  # duplicate key: RFC 8941 keeps the last, we refuse
        "a=1;p=1;p=2",  # duplicate parameter
        "a=1,",
        "a=1,,b=2",
        "A=1",
        "a=(1 2",
        "a=(1  2)x",
        'a="unterminated',
        'a="bad \\n escape"',
        "a=:not base64!:",
        "a=:AQI:",  # unpadded base64 is lenient-only in RFC 8941; we refuse it
        "a=:AQJ=:",  # non-canonical trailing bits
        "a=1234567890123456",  # 16 digits
        "a=1.2345",
        "a=1.",
        "a=?2",
        "a=@1659578233",  # RFC 9651 date
        'a=%"display"',  # RFC 9651 display string
        "a=1 b=2",
        "a=é",
        "a=1\n",
        "a=" + "1" * 20000,
    ],
)
def test_malformed_or_ambiguous_fields_are_refused(text: str) -> None:
    with pytest.raises(StructuredFieldError):
        sfv.parse_dictionary(text)


def test_item_parse_refuses_trailing_garbage() -> None:
    assert sfv.parse_item(' "x";a=1 ').params == {"a": 1}
    with pytest.raises(StructuredFieldError):
        sfv.parse_item('"x" y')


def test_serializer_refuses_what_it_cannot_write() -> None:
    for bad in (10**15, "é", sfv.Token("1bad"), 1.5):
        with pytest.raises(StructuredFieldError):
            sfv.serialize_bare_item(bad)  # type: ignore[arg-type]
    with pytest.raises(StructuredFieldError):
        sfv.serialize_dictionary({"Bad": sfv.Item(1)})
