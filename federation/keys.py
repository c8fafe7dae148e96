"""Ed25519 node keys: Multikey text form, key ids and fingerprints. Sans-IO.

A node key is published as a W3C Multikey: ``publicKeyMultibase`` is
``z`` + base58btc(0xed 0x01 ‖ 32-byte public key), so every Ed25519 key text
starts with ``z6Mk``. The matching secret-key form (used only by test vectors
and tools) is ``z`` + base58btc(0x80 0x26 ‖ 32-byte seed).

A key id names a key inside its node document:
``{origin}/.well-known/carnet-node#{name}``, where ``name`` is 1–64 characters
of ``[A-Za-z0-9_-]``. The origin of a key id is therefore the node it speaks
for, which is what the same-origin rule and the peer allow-list compare.

The fingerprint shown to an admin when pinning a peer has the same text form
as the e2e suite's (``docs/protocol/e2e-suite.md`` §3) with its own domain
label: SHA-256("carnet-np1/node-key" ‖ 0x00 ‖ public key), first 16 bytes,
upper-case hex in 8 groups of 4. Admins compare it out of band.
"""

from __future__ import annotations

import hashlib
import re

import nacl.signing

from federation.encoding import check_origin, multibase_decode, multibase_encode, origin_of
from federation.errors import EncodingError

NODE_DOCUMENT_PATH = "/.well-known/carnet-node"
"""Where every node serves its node document (DESIGN §3)."""

_ED25519_PUB_PREFIX = b"\xed\x01"
_ED25519_PRIV_PREFIX = b"\x80\x26"
_KEY_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")


def encode_public_key(key: nacl.signing.VerifyKey) -> str:
    """The ``publicKeyMultibase`` text of an Ed25519 public key."""
    return multibase_encode(_ED25519_PUB_PREFIX + bytes(key))


def decode_public_key(text: object, *, what: str = "publicKeyMultibase") -> nacl.signing.VerifyKey:
    """Parse a ``z6Mk…`` Multikey into an Ed25519 public key.

    Raises:
        EncodingError: If the text is not base58btc multibase, has another
            multicodec prefix, or has the wrong length.
    """
    if not isinstance(text, str) or len(text) > 64:
        raise EncodingError(f"{what} must be a short multibase string")
    raw = multibase_decode(text, what=what)
    if not raw.startswith(_ED25519_PUB_PREFIX) or len(raw) != 34:
        raise EncodingError(f"{what} is not an Ed25519 Multikey (expected z6Mk…, 34 bytes)")
    if encode_public_key(nacl.signing.VerifyKey(raw[2:])) != text:
        raise EncodingError(f"{what} is not in canonical base58btc form")
    return nacl.signing.VerifyKey(raw[2:])


def encode_secret_key(key: nacl.signing.SigningKey) -> str:
    """The ``secretKeyMultibase`` text of an Ed25519 seed (tests and tools only)."""
    return multibase_encode(_ED25519_PRIV_PREFIX + bytes(key))


def decode_secret_key(text: str) -> nacl.signing.SigningKey:
    """Parse a ``z3u2…`` secret Multikey into an Ed25519 signing key."""
    raw = multibase_decode(text, what="secretKeyMultibase")
    if not raw.startswith(_ED25519_PRIV_PREFIX) or len(raw) != 34:
        raise EncodingError("secretKeyMultibase is not an Ed25519 seed Multikey")
    return nacl.signing.SigningKey(raw[2:])


def key_id(origin: str, name: str) -> str:
    """Build the key id ``{origin}/.well-known/carnet-node#{name}``."""
    check_origin(origin)
    if _KEY_NAME_RE.fullmatch(name) is None:
        raise EncodingError(f"key name {name!r} must be 1-64 characters of A-Z a-z 0-9 _ -")
    return f"{origin}{NODE_DOCUMENT_PATH}#{name}"


def key_id_origin(keyid: object) -> str:
    """Return the origin a key id speaks for, checking its exact shape.

    Raises:
        EncodingError: If ``keyid`` is not ``{origin}/.well-known/carnet-node#{name}``.
    """
    origin = origin_of(keyid, what="key id")
    assert isinstance(keyid, str)
    prefix = origin + NODE_DOCUMENT_PATH + "#"
    if not keyid.startswith(prefix) or _KEY_NAME_RE.fullmatch(keyid[len(prefix) :]) is None:
        raise EncodingError(
            f"key id {keyid[:100]!r} must look like {origin}{NODE_DOCUMENT_PATH}#name"
        )
    return origin


FINGERPRINT_LABEL = b"carnet-np1/node-key"


def fingerprint(key: nacl.signing.VerifyKey) -> str:
    """The admin-facing fingerprint, e.g. ``D792 8701 7D10 F9D9 C6C8 9382 BF2B C58E``."""
    digest = hashlib.sha256(FINGERPRINT_LABEL + b"\0" + bytes(key)).digest()[:16].hex().upper()
    return " ".join(digest[i : i + 4] for i in range(0, 32, 4))
