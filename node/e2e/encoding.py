"""Strict binary encodings of the carnet-e2e-1 suite.

Every binary field on the wire is base64url (RFC 4648 §5) **without** padding.
Decoding is strict: padding, characters outside the alphabet, an impossible
length or non-zero trailing bits (a non-canonical encoding) are all errors, so
each byte string has exactly one accepted text form.
"""

from __future__ import annotations

import base64
import binascii
import re

from federation.canonical import canonical_json

_B64URL_RE = re.compile(r"[A-Za-z0-9_-]*")


class EncodingError(ValueError):
    """Raised when a text field is not a valid, canonical encoding."""


def b64url_encode(data: bytes) -> str:
    """Encode bytes as unpadded base64url.

    Args:
        data: Bytes to encode.

    Returns:
        The base64url text without ``=`` padding.
    """
    if not isinstance(data, bytes | bytearray):
        raise TypeError("b64url_encode expects bytes")
    return base64.urlsafe_b64encode(bytes(data)).rstrip(b"=").decode("ascii")


def b64url_decode(text: str, *, length: int | None = None, what: str = "value") -> bytes:
    """Decode unpadded, canonical base64url.

    Args:
        text: The base64url text.
        length: If given, the exact number of bytes the field must decode to.
        what: Field name used in error messages.

    Returns:
        The decoded bytes.

    Raises:
        EncodingError: On padding, foreign characters, impossible length,
            non-zero trailing bits or a wrong decoded length.
    """
    if not isinstance(text, str):
        raise EncodingError(f"{what}: expected a base64url string, got {type(text).__name__}")
    if "=" in text:
        raise EncodingError(f"{what}: base64url must not be padded")
    if _B64URL_RE.fullmatch(text) is None:
        raise EncodingError(f"{what}: character outside the base64url alphabet")
    if len(text) % 4 == 1:
        raise EncodingError(f"{what}: impossible base64url length {len(text)}")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):  # pragma: no cover - excluded by the checks above
        raise EncodingError(f"{what}: invalid base64url") from None
    if b64url_encode(data) != text:
        raise EncodingError(f"{what}: non-canonical base64url (trailing bits are not zero)")
    if length is not None and len(data) != length:
        raise EncodingError(f"{what}: expected {length} bytes, got {len(data)}")
    return data


def group(text: str, size: int, sep: str) -> str:
    """Split ``text`` into chunks of ``size`` characters joined by ``sep``.

    Args:
        text: The text to group.
        size: Characters per group.
        sep: Separator between groups.

    Returns:
        The grouped text, e.g. ``"ABCD EFGH"``.
    """
    return sep.join(text[i : i + size] for i in range(0, len(text), size))


def b32_encode(data: bytes) -> str:
    """Encode bytes as RFC 4648 base32, upper case, without padding.

    Args:
        data: Bytes to encode (a multiple of 5 bytes encodes without padding).

    Returns:
        The base32 text.
    """
    return base64.b32encode(bytes(data)).decode("ascii").rstrip("=")


def b32_decode(text: str, *, what: str = "value") -> bytes:
    """Decode upper- or lower-case RFC 4648 base32 without padding.

    Args:
        text: The base32 text; its length must be a multiple of 8.
        what: Field name used in error messages.

    Returns:
        The decoded bytes.

    Raises:
        EncodingError: On characters outside ``A-Z2-7`` or a bad length.
    """
    if not isinstance(text, str) or not text.isascii():
        raise EncodingError(f"{what}: base32 text must be ASCII")
    upper = text.upper()
    if re.fullmatch(r"[A-Z2-7]*", upper) is None:
        bad = sorted({c for c in upper if not ("A" <= c <= "Z" or "2" <= c <= "7")})
        raise EncodingError(f"{what}: invalid base32 character(s) {''.join(bad)!r}")
    if len(upper) % 8:
        raise EncodingError(f"{what}: base32 length must be a multiple of 8, got {len(upper)}")
    try:
        return base64.b32decode(upper)
    except (binascii.Error, ValueError):  # pragma: no cover - excluded by the checks above
        raise EncodingError(f"{what}: invalid base32") from None


def canonical_text(obj: object) -> str:
    """RFC 8785 canonical JSON as text: how the node stores signed documents byte-exact.

    The suite's one canonicalizer lives in ``federation.canonical`` (shared by
    both protocols); services reach it through here, keeping the rule that
    they import nothing from ``federation``.
    """
    return canonical_json(obj).decode("utf-8")
