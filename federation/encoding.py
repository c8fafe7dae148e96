"""Text forms used on the NP/1 wire: base58btc, timestamps and origins. Sans-IO.

Each value has exactly one accepted spelling, so that comparing two ids or
two timestamps as strings is the same as comparing what they mean, and so
that a signed document cannot be re-spelled without breaking its signature:

* base58btc (the Bitcoin alphabet), used by multibase ``z…`` keys and proof
  values; leading zero bytes are written as ``1``;
* timestamps are RFC 3339 UTC with whole seconds, ``2025-09-01T08:15:00Z``,
  and are handled as integer Unix seconds in Python;
* a JSON object from the wire is read with the strict reader of
  :mod:`federation.canonical` after a size check (:func:`load_json_object`);
* an origin is ``scheme://host[:port]`` with a lower-case ``http``/``https``
  scheme, a lower-case ASCII host and no default port; an id is an origin
  followed by a path, an optional query and an optional fragment, without
  user info or whitespace.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from federation.canonical import CanonicalJSONError, canonical_json, parse_json_strict
from federation.errors import EncodingError, FederationError

_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {ch: i for i, ch in enumerate(_B58_ALPHABET)}

MAX_URL_LENGTH = 2048
"""Longest id or URL accepted anywhere in NP/1."""

_TIMESTAMP_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
# Lower-case scheme and host, optional non-default port, then path, query and
# fragment made of visible ASCII only (no space, no backslash, no quotes).
_URL_RE = re.compile(
    r"(?P<scheme>https?)://"
    r"(?P<host>[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?|\[[0-9a-f:.]+\])"
    r"(?::(?P<port>[1-9][0-9]{0,4}))?"
    r"(?P<rest>(?:/[A-Za-z0-9\-._~!$&'()*+,;=:@%/]*)?"
    r"(?:\?[A-Za-z0-9\-._~!$&'()*+,;=:@%/?]*)?"
    r"(?:#[A-Za-z0-9\-._~!$&'()*+,;=:@%/?]*)?)"
)
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def b58encode(data: bytes) -> str:
    """Encode bytes as base58btc (no multibase prefix)."""
    zeros = len(data) - len(data.lstrip(b"\0"))
    number = int.from_bytes(data, "big")
    out = []
    while number:
        number, digit = divmod(number, 58)
        out.append(_B58_ALPHABET[digit])
    return "1" * zeros + "".join(reversed(out))


def b58decode(text: str, *, what: str = "value") -> bytes:
    """Decode base58btc text; raise :class:`EncodingError` on a foreign character."""
    if not isinstance(text, str) or not text:
        raise EncodingError(f"{what}: expected a non-empty base58btc string")
    number = 0
    for ch in text:
        digit = _B58_INDEX.get(ch)
        if digit is None:
            raise EncodingError(f"{what}: {ch!r} is not in the base58btc alphabet")
        number = number * 58 + digit
    zeros = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\0" * zeros + body


def multibase_encode(data: bytes) -> str:
    """Multibase base58btc: ``z`` followed by the base58btc text."""
    return "z" + b58encode(data)


def multibase_decode(text: str, *, what: str = "value") -> bytes:
    """Decode a multibase base58btc (``z…``) string; other bases are refused."""
    if not isinstance(text, str) or not text.startswith("z"):
        raise EncodingError(f"{what}: expected a multibase base58btc string starting with 'z'")
    return b58decode(text[1:], what=what)


def format_timestamp(seconds: int) -> str:
    """Format Unix seconds as ``YYYY-MM-DDTHH:MM:SSZ``."""
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise EncodingError(f"timestamp must be integer seconds, got {type(seconds).__name__}")
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text: object, *, what: str = "timestamp") -> int:
    """Parse ``YYYY-MM-DDTHH:MM:SSZ`` into Unix seconds; any other spelling is refused."""
    if not isinstance(text, str) or _TIMESTAMP_RE.fullmatch(text) is None:
        raise EncodingError(f"{what} must look like 2025-09-01T08:15:00Z (UTC, whole seconds)")
    try:
        moment = datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise EncodingError(f"{what} {text!r} is not a valid date and time") from None
    return int(moment.timestamp())


def _match_url(url: object, what: str) -> re.Match[str]:
    if not isinstance(url, str):
        raise EncodingError(f"{what} must be a string URL, got {type(url).__name__}")
    if len(url) > MAX_URL_LENGTH:
        raise EncodingError(f"{what} is longer than {MAX_URL_LENGTH} characters")
    match = _URL_RE.fullmatch(url)
    if match is None:
        raise EncodingError(
            f"{what} {url[:100]!r} is not an http(s) URL in canonical form "
            "(lower-case scheme and host, no user info, no spaces)"
        )
    if match["port"] is not None and (
        match["port"] == _DEFAULT_PORTS[match["scheme"]] or int(match["port"]) > 65535
    ):
        raise EncodingError(f"{what} {url!r} spells a default or impossible port")
    return match


def origin_of(url: object, *, what: str = "URL") -> str:
    """Return the origin (``scheme://host[:port]``) of a canonical http(s) URL.

    Raises:
        EncodingError: If ``url`` is not in the canonical form described above.
    """
    match = _match_url(url, what)
    port = match["port"]
    return f"{match['scheme']}://{match['host']}" + (f":{port}" if port else "")


def check_origin(origin: object, *, what: str = "origin") -> str:
    """Return ``origin`` if it is a canonical origin without path, else raise."""
    if origin_of(origin, what=what) != origin:
        raise EncodingError(f"{what} {origin!r} must be scheme://host[:port] without a path")
    return origin


def check_url(value: object, *, what: str = "id") -> str:
    """Return ``value`` if it is a canonical http(s) URL with a path, else raise.

    Raises:
        EncodingError: If the URL is malformed or is a bare origin.
    """
    match = _match_url(value, what)
    path = re.split(r"[?#]", match["rest"], maxsplit=1)[0]
    if len(path) < 2:
        raise EncodingError(f"{what} {value!r} must have a path after the origin")
    return match.string


def is_on_origin(url: str, origin: str) -> bool:
    """Whether the canonical ``url`` belongs to ``origin`` (never raises)."""
    try:
        return origin_of(url) == origin
    except EncodingError:
        return False


def load_json_object(
    data: bytes | Mapping[str, Any],
    *,
    max_bytes: int,
    what: str,
    error: type[FederationError],
    too_large: type[FederationError] | None = None,
) -> Mapping[str, Any]:
    """Read an untrusted JSON object: size first, then strict JSON (or check a parsed one).

    Args:
        data: Raw bytes (preferred: the size is checked before parsing) or an
            object already parsed, e.g. taken out of a larger body.
        max_bytes: Largest accepted size (of the bytes, or of the object's canonical JSON).
        what: Name used in messages ("activity", "body", ...).
        error: Exception raised for invalid JSON or a non-object.
        too_large: Exception raised when over ``max_bytes`` (default ``error``).
    """
    oversize = f"{what} is larger than {max_bytes} bytes"
    try:
        if isinstance(data, bytes | bytearray):
            if len(data) > max_bytes:
                raise (too_large or error)(oversize)
            data = parse_json_strict(bytes(data))
        elif len(canonical_json(data)) > max_bytes:
            raise (too_large or error)(oversize)
    except CanonicalJSONError as exc:
        raise error(f"{what} is not strict JSON: {exc}") from None
    if not isinstance(data, Mapping):
        raise error(f"{what} must be a JSON object")
    return data


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid(milliseconds: int, entropy: bytes) -> str:
    """A ULID (26 Crockford base32 characters): 48-bit time in ms, then 80 random bits.

    Transaction ids and activity ids; sortable by creation time.  The caller
    passes the clock and the randomness (sans-IO).
    """
    if not 0 <= milliseconds < 2**48 or len(entropy) != 10:
        raise EncodingError("a ULID needs a 48-bit millisecond time and 10 random bytes")
    value = (milliseconds << 80) | int.from_bytes(entropy, "big")
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))
