"""Account keys, fingerprints and domain-separated signatures.

An account has an identity signing key (Ed25519, 32-byte seed) and an
encryption key (X25519, 32-byte private scalar) shared by the person's devices.

Signatures are always over ``context || 0x00 || canonical_json(obj)`` where
``context`` is a printable-ASCII label such as ``carnet-e2e-1/account-keys``;
a signature made for one context never verifies under another.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from typing import Any

from federation.canonical import canonical_json
from node.e2e import primitives as p
from node.e2e.encoding import EncodingError, b64url_decode, b64url_encode, group

CONTEXT_ACCOUNT_KEYS = "carnet-e2e-1/account-keys"
"""Signature context of the proof of possession sent at registration."""

_FINGERPRINT_LABEL = b"carnet-e2e-1/fingerprint\x00"
_CONTEXT_RE = re.compile(r"[\x21-\x7e]{1,128}")


@dataclass(frozen=True)
class AccountKeys:
    """An account's two key pairs as raw bytes (all 32 bytes)."""

    sign_sk: bytes = field(repr=False)
    sign_pk: bytes
    enc_sk: bytes = field(repr=False)
    enc_pk: bytes

    @classmethod
    def from_private(cls, sign_sk: bytes, enc_sk: bytes) -> AccountKeys:
        """Rebuild the key pairs from the two private keys.

        Args:
            sign_sk: Ed25519 seed (32 bytes).
            enc_sk: X25519 private key (32 bytes).

        Returns:
            The account keys with their public halves derived.
        """
        if len(sign_sk) != 32 or len(enc_sk) != 32:
            raise ValueError("account private keys must be 32 bytes each")
        return cls(sign_sk, p.ed25519_public(sign_sk), enc_sk, p.x25519_public(enc_sk))


def generate_account_keys() -> AccountKeys:
    """Generate fresh account keys from the OS random generator."""
    return AccountKeys.from_private(os.urandom(32), os.urandom(32))


def fingerprint(sign_pk: bytes) -> str:
    """Human-comparable fingerprint of an identity key.

    ``SHA-256("carnet-e2e-1/fingerprint" || 0x00 || sign_pk)[:16]`` as 32
    upper-case hex digits in 8 groups of 4 separated by spaces.

    Args:
        sign_pk: Ed25519 public key (32 bytes).

    Returns:
        For example ``"3F2A 91C0 …"`` (39 characters).
    """
    if len(sign_pk) != 32:
        raise ValueError("identity public key must be 32 bytes")
    digest = hashlib.sha256(_FINGERPRINT_LABEL + sign_pk).digest()[:16]
    return group(digest.hex().upper(), 4, " ")


def _signed_message(context: str, obj: Any) -> bytes:
    if not isinstance(context, str) or _CONTEXT_RE.fullmatch(context) is None:
        raise ValueError("signature context must be 1-128 printable ASCII characters, no spaces")
    return context.encode("ascii") + b"\x00" + canonical_json(obj)


def sign_object(sign_sk: bytes, context: str, obj: Any) -> str:
    """Sign ``obj`` under a domain-separation context.

    Args:
        sign_sk: Ed25519 seed (32 bytes).
        context: Label such as ``"carnet-e2e-1/account-keys"``.
        obj: Any value accepted by :func:`federation.canonical.canonical_json`.

    Returns:
        The 64-byte signature, base64url.
    """
    return b64url_encode(p.ed25519_sign(sign_sk, _signed_message(context, obj)))


def verify_object(sign_pk: bytes, context: str, obj: Any, signature: str) -> bool:
    """Verify a signature made by :func:`sign_object`.

    Malformed signatures or keys (bad base64url, wrong lengths, invalid
    points) give ``False``; a malformed context or object raises, as those
    come from the caller's code, not from the peer.

    Returns:
        ``True`` only for a valid signature over exactly this context and object.
    """
    message = _signed_message(context, obj)
    try:
        sig = b64url_decode(signature, length=64, what="signature")
    except EncodingError:
        return False
    if not isinstance(sign_pk, bytes):
        return False
    return p.ed25519_verify(sign_pk, message, sig)


def account_keys_statement(sign_pk: bytes, enc_pk: bytes, login: str) -> dict[str, str]:
    """The object signed by the registration proof of possession."""
    for key in (sign_pk, enc_pk):
        if not isinstance(key, bytes) or len(key) != 32:
            raise ValueError("public keys must be 32 bytes each")
    if not isinstance(login, str) or not login:
        raise ValueError("login must be a non-empty string")
    return {"enc_pk": b64url_encode(enc_pk), "login": login, "sign_pk": b64url_encode(sign_pk)}


def account_keys_proof(sign_sk: bytes, sign_pk: bytes, enc_pk: bytes, login: str) -> str:
    """Proof that the registering client holds ``sign_sk`` and binds ``enc_pk`` to ``login``.

    Signs ``{"enc_pk", "login", "sign_pk"}`` under :data:`CONTEXT_ACCOUNT_KEYS`.

    Returns:
        The signature, base64url.
    """
    if p.ed25519_public(sign_sk) != sign_pk:
        raise ValueError("sign_sk does not match sign_pk")
    return sign_object(
        sign_sk, CONTEXT_ACCOUNT_KEYS, account_keys_statement(sign_pk, enc_pk, login)
    )


def verify_account_keys_proof(sign_pk: bytes, enc_pk: bytes, login: str, signature: str) -> bool:
    """Check a registration proof (called by the node). Never raises on bad input.

    Returns:
        ``True`` if ``signature`` is a valid proof for these keys and login.
    """
    try:
        statement = account_keys_statement(sign_pk, enc_pk, login)
        return verify_object(sign_pk, CONTEXT_ACCOUNT_KEYS, statement, signature)
    except (TypeError, ValueError):  # includes CanonicalJSONError (e.g. lone surrogates)
        return False
