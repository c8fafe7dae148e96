"""HTTP Structured Field Values (RFC 8941), the subset NP/1 needs. Sans-IO.

Parses and serializes Dictionaries, Inner Lists, Items and Parameters with
the bare item types Integer, Decimal, String, Token, Byte Sequence and
Boolean, following the algorithms of RFC 8941 §4 exactly, with three
deliberate restrictions for headers that carry signatures:

* a repeated dictionary key or parameter key is an error (RFC 8941 keeps the
  last one; for ``Signature-Input`` that would let a proxy or an attacker
  make two readers see two different signatures);
* the field is at most :data:`MAX_FIELD_LENGTH` characters;
* RFC 9651 additions (Dates ``@…`` and Display Strings ``%"…"``) are refused.

Lists as top-level fields are not needed by NP/1 and are not implemented.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from decimal import Decimal

from federation.errors import StructuredFieldError

MAX_FIELD_LENGTH = 16384
"""Longest field value accepted (after combining repeated field lines)."""


class Token(str):
    """An RFC 8941 Token (serialized without quotes), as opposed to a String."""

    __slots__ = ()


BareItem = int | Decimal | str | Token | bytes | bool
Params = dict[str, BareItem]


@dataclass(frozen=True)
class Item:
    """A bare item with its parameters."""

    value: BareItem
    params: Params = field(default_factory=dict)


@dataclass(frozen=True)
class InnerList:
    """A parenthesized list of items with its own parameters."""

    items: tuple[Item, ...]
    params: Params = field(default_factory=dict)


Member = Item | InnerList
Dictionary = dict[str, Member]

_KEY_RE = re.compile(r"[a-z*][a-z0-9_\-.*]*")
_TOKEN_RE = re.compile(r"[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*")
_NUMBER_RE = re.compile(r"-?[0-9]+(\.[0-9]*)?")
_B64_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")


class _Parser:
    def __init__(self, text: str) -> None:
        if not isinstance(text, str):
            raise StructuredFieldError("structured field must be text")
        if len(text) > MAX_FIELD_LENGTH:
            raise StructuredFieldError(
                f"structured field longer than {MAX_FIELD_LENGTH} characters"
            )
        if any(not (" " <= ch <= "~" or ch == "\t") for ch in text):
            raise StructuredFieldError("structured field contains a non-ASCII or control character")
        self.text = text.strip(" ")
        self.pos = 0

    def fail(self, message: str) -> StructuredFieldError:
        return StructuredFieldError(f"{message} at character {self.pos}")

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_sp(self) -> None:
        while self.peek() == " ":
            self.pos += 1

    def skip_ows(self) -> None:
        while self.peek() in (" ", "\t"):
            self.pos += 1

    def key(self) -> str:
        match = _KEY_RE.match(self.text, self.pos)
        if match is None:
            raise self.fail("expected a key")
        self.pos = match.end()
        return match.group()

    def bare_item(self) -> BareItem:
        ch = self.peek()
        if ch == "-" or ch.isdigit():
            return self.number()
        if ch == '"':
            return self.string()
        if ch == ":":
            return self.byte_sequence()
        if ch == "?":
            return self.boolean()
        if ch == "*" or ch.isalpha():
            match = _TOKEN_RE.match(self.text, self.pos)
            assert match is not None
            self.pos = match.end()
            return Token(match.group())
        raise self.fail("expected an item")

    def number(self) -> int | Decimal:
        match = _NUMBER_RE.match(self.text, self.pos)
        if match is None:
            raise self.fail("expected a number")
        text = match.group()
        digits = text.lstrip("-")
        if match.group(1) is None:
            if len(digits) > 15:
                raise self.fail("integer has more than 15 digits")
            self.pos = match.end()
            return int(text)
        whole, frac = digits.split(".")
        if len(whole) > 12 or not 1 <= len(frac) <= 3:
            raise self.fail("decimal must have ≤ 12 integer and 1-3 fractional digits")
        self.pos = match.end()
        return Decimal(text)

    def string(self) -> str:
        self.pos += 1
        out: list[str] = []
        while True:
            ch = self.peek()
            if not ch:
                raise self.fail("unterminated string")
            self.pos += 1
            if ch == '"':
                return "".join(out)
            if ch == "\\":
                nxt = self.peek()
                if nxt not in ('"', "\\"):
                    raise self.fail("bad escape in string")
                self.pos += 1
                out.append(nxt)
            else:
                out.append(ch)

    def byte_sequence(self) -> bytes:
        end = self.text.find(":", self.pos + 1)
        if end < 0:
            raise self.fail("unterminated byte sequence")
        body = self.text[self.pos + 1 : end]
        if not set(body) <= _B64_CHARS:
            raise self.fail("byte sequence is not base64")
        self.pos = end + 1
        try:
            # RFC 8941 §4.2.7 lets parsers be lenient on padding; we are not:
            # one byte string, one spelling (the signature covers the text).
            value = base64.b64decode(body, validate=True)
        except binascii.Error:
            raise self.fail("byte sequence is not canonical padded base64") from None
        if base64.b64encode(value).decode() != body:
            raise self.fail("byte sequence is not canonical padded base64")
        return value

    def boolean(self) -> bool:
        value = self.text[self.pos + 1 : self.pos + 2]
        if value not in ("0", "1"):
            raise self.fail("boolean must be ?0 or ?1")
        self.pos += 2
        return value == "1"

    def params(self) -> Params:
        params: Params = {}
        while self.peek() == ";":
            self.pos += 1
            self.skip_sp()
            name = self.key()
            if name in params:
                raise self.fail(f"parameter {name!r} appears twice")
            value: BareItem = True
            if self.peek() == "=":
                self.pos += 1
                value = self.bare_item()
            params[name] = value
        return params

    def item(self) -> Item:
        value = self.bare_item()
        return Item(value, self.params())

    def inner_list(self) -> InnerList:
        self.pos += 1
        items: list[Item] = []
        while True:
            self.skip_sp()
            if self.peek() == ")":
                self.pos += 1
                return InnerList(tuple(items), self.params())
            items.append(self.item())
            if self.peek() not in (" ", ")"):
                raise self.fail("inner list items must be separated by spaces")

    def member(self) -> Member:
        return self.inner_list() if self.peek() == "(" else self.item()

    def dictionary(self) -> Dictionary:
        result: Dictionary = {}
        while self.pos < len(self.text):
            name = self.key()
            if name in result:
                raise self.fail(f"dictionary key {name!r} appears twice")
            if self.peek() == "=":
                self.pos += 1
                result[name] = self.member()
            else:
                result[name] = Item(True, self.params())
            self.skip_ows()
            if self.pos >= len(self.text):
                return result
            if self.peek() != ",":
                raise self.fail("expected ',' between dictionary members")
            self.pos += 1
            self.skip_ows()
            if self.pos >= len(self.text):
                raise self.fail("trailing ',' in dictionary")
        return result

    def done(self) -> None:
        if self.pos != len(self.text):
            raise self.fail("unexpected characters after the value")


def parse_dictionary(text: str) -> Dictionary:
    """Parse a Dictionary field (RFC 8941 §4.2.2), strictly.

    Raises:
        StructuredFieldError: On any syntax error or a repeated key.
    """
    parser = _Parser(text)
    result = parser.dictionary()
    parser.done()
    return result


def parse_item(text: str) -> Item:
    """Parse an Item field (RFC 8941 §4.2.3), strictly."""
    parser = _Parser(text)
    result = parser.item()
    parser.done()
    return result


def serialize_bare_item(value: BareItem) -> str:
    """Serialize a bare item (RFC 8941 §4.1.3)."""
    if isinstance(value, bool):
        return "?1" if value else "?0"
    if isinstance(value, int):
        if abs(value) > 999_999_999_999_999:
            raise StructuredFieldError("integer out of range")
        return str(value)
    if isinstance(value, Decimal):
        rounded = value.quantize(Decimal("0.001")).normalize()
        text = format(rounded, "f")
        return text if "." in text else text + ".0"
    if isinstance(value, bytes):
        return ":" + base64.b64encode(value).decode() + ":"
    if isinstance(value, Token):
        if _TOKEN_RE.fullmatch(value) is None:
            raise StructuredFieldError(f"invalid token {value!r}")
        return str(value)
    if isinstance(value, str):
        if any(not (" " <= ch <= "~") for ch in value):
            raise StructuredFieldError("strings must be printable ASCII")
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    raise StructuredFieldError(f"cannot serialize {type(value).__name__}")


def _serialize_key(name: str) -> str:
    if _KEY_RE.fullmatch(name) is None:
        raise StructuredFieldError(f"invalid key {name!r}")
    return name


def serialize_params(params: Params) -> str:
    """Serialize parameters (RFC 8941 §4.1.1.2): ``;name=value`` or ``;name`` for true."""
    return "".join(
        ";" + _serialize_key(name) + ("" if value is True else "=" + serialize_bare_item(value))
        for name, value in params.items()
    )


def serialize_member(member: Member) -> str:
    """Serialize an Item or an Inner List with their parameters."""
    if isinstance(member, InnerList):
        inner = " ".join(serialize_member(item) for item in member.items)
        return f"({inner})" + serialize_params(member.params)
    return serialize_bare_item(member.value) + serialize_params(member.params)


def serialize_dictionary(members: Dictionary) -> str:
    """Serialize a Dictionary (RFC 8941 §4.1.2)."""
    parts = []
    for name, member in members.items():
        if isinstance(member, Item) and member.value is True:
            parts.append(_serialize_key(name) + serialize_params(member.params))
        else:
            parts.append(_serialize_key(name) + "=" + serialize_member(member))
    return ", ".join(parts)
