"""RFC 9530 ``Content-Digest``: make, parse and check body digests. Sans-IO.

NP/1 senders always write ``sha-256``; receivers accept ``sha-256`` and
``sha-512`` (the two algorithms RFC 9530 §5 registers as active). The field
is an RFC 8941 Dictionary, parsed strictly (:mod:`federation.sfv`).

Verification rules, chosen so that a digest can never be satisfied by
something the receiver did not check:

* every member with a supported algorithm must have the right length and
  must match the body;
* members with unknown algorithms are ignored, as RFC 9530 §3 requires, but
  at least one supported member must be present;
* every member value must be a Byte Sequence, whatever its algorithm.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

from federation import sfv
from federation.errors import DigestError, StructuredFieldError

HASHERS: dict[str, Callable[[bytes], hashlib._Hash]] = {
    "sha-256": hashlib.sha256,
    "sha-512": hashlib.sha512,
}
"""Algorithms accepted by :func:`verify_content_digest`, by RFC 9530 name."""

_SIZES = {"sha-256": 32, "sha-512": 64}


def content_digest(body: bytes, algorithm: str = "sha-256") -> str:
    """Return the ``Content-Digest`` value for ``body``, e.g. ``sha-256=:…:``.

    Args:
        body: The exact content bytes sent (after any content coding).
        algorithm: ``sha-256`` (the NP/1 default) or ``sha-512``.

    Raises:
        DigestError: For an unsupported algorithm.
    """
    hasher = HASHERS.get(algorithm)
    if hasher is None:
        raise DigestError(f"unsupported digest algorithm {algorithm!r}", "digest_unsupported")
    return sfv.serialize_dictionary({algorithm: sfv.Item(hasher(bytes(body)).digest())})


def parse_content_digest(value: str) -> dict[str, bytes]:
    """Parse a ``Content-Digest`` value into ``{algorithm: digest bytes}``.

    All members are returned, including unknown algorithms; supported ones
    are checked for length.

    Raises:
        DigestError: If the field is not a Dictionary of Byte Sequences, is
            empty, or a supported digest has the wrong length.
    """
    try:
        members = sfv.parse_dictionary(value)
    except StructuredFieldError as exc:
        raise DigestError(f"Content-Digest is malformed: {exc}") from None
    if not members:
        raise DigestError("Content-Digest is empty")
    digests: dict[str, bytes] = {}
    for algorithm, member in members.items():
        if not isinstance(member, sfv.Item) or not isinstance(member.value, bytes):
            raise DigestError(f"Content-Digest member {algorithm!r} is not a byte sequence")
        size = _SIZES.get(algorithm)
        if size is not None and len(member.value) != size:
            raise DigestError(f"{algorithm} digest must be {size} bytes, got {len(member.value)}")
        digests[algorithm] = member.value
    return digests


def verify_content_digest(value: str, body: bytes) -> tuple[str, ...]:
    """Check a ``Content-Digest`` value against ``body``.

    Returns:
        The supported algorithms that were checked, in field order.

    Raises:
        DigestError: ``digest_malformed`` if it does not parse,
            ``digest_unsupported`` if no member uses sha-256 or sha-512,
            ``digest_mismatch`` if any supported member differs from the body.
    """
    digests = parse_content_digest(value)
    checked = tuple(name for name in digests if name in HASHERS)
    if not checked:
        names = ", ".join(sorted(digests))
        raise DigestError(
            f"Content-Digest uses no supported algorithm ({names}); use sha-256 or sha-512",
            "digest_unsupported",
        )
    for name in checked:
        # Constant time is not needed for a public hash, but costs nothing.
        if not hmac.compare_digest(HASHERS[name](bytes(body)).digest(), digests[name]):
            raise DigestError(f"Content-Digest {name} does not match the body", "digest_mismatch")
    return checked
