"""Key rotation and revocation statements. Sans-IO.

**Planned rotation** (``RotateKey``): the node hands over from a key its
peers have pinned to a new one. The statement is signed by *both* keys: the
old key says "this is my successor", the new key proves it is held. A peer
accepts it only if the old key is one it has pinned for that origin, then
pins the new key; with one signature missing it is refused.

**Emergency revocation** (``RevokeKey``): the key leaked. The statement is
signed by the revoked key itself (possession of it is all an attacker could
have, and a revocation only removes trust, so accepting it is always safe).
A peer that accepts it refuses, from the moment it is accepted, every
transport signature and object proof by that key, whatever their
``created`` says (a thief can backdate). It does **not** trust the
``replacement`` key it names: that key arrives over the channel that was
just compromised. Federation with that node stays stopped until an admin
re-pins a key whose fingerprint they confirmed out of band (phone, letter).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import nacl.signing

from federation.encoding import format_timestamp
from federation.errors import KeyStatementError
from federation.keys import key_id
from federation.nodedoc import (
    MAX_SKEW,
    NodeKey,
    check_proofs,
    key_entry,
    load_document,
    parse_key_entry,
    read_timestamp,
)
from federation.proof import create_proof

ROTATE = "RotateKey"
REVOKE = "RevokeKey"


@dataclass(frozen=True)
class KeyRotation:
    """A verified planned rotation: pin ``new_key``; ``old_key`` retires at ``expired_at``."""

    origin: str
    old_key: NodeKey
    new_key: NodeKey
    expired_at: int
    published: int


@dataclass(frozen=True)
class KeyRevocation:
    """A verified revocation: stop trusting ``revoked_key`` now and ask an admin to re-pin.

    ``replacement`` is shown to the admin (with its fingerprint) but never trusted by itself.
    """

    origin: str
    revoked_key: NodeKey
    revoked_at: int
    replacement: NodeKey | None
    published: int


def build_rotation(
    *,
    origin: str,
    old_name: str,
    old_key: nacl.signing.SigningKey,
    new_name: str,
    new_key: nacl.signing.SigningKey,
    expired_at: int,
    published: int,
) -> dict[str, Any]:
    """Build a ``RotateKey`` statement signed by the old and the new key."""
    old = NodeKey(key_id(origin, old_name), old_key.verify_key)
    new = NodeKey(key_id(origin, new_name), new_key.verify_key)
    statement: dict[str, Any] = {
        "np": 1,
        "type": ROTATE,
        "origin": origin,
        "old_key": key_entry(old, None),
        "new_key": key_entry(new, None),
        "expired_at": format_timestamp(expired_at),
        "published": format_timestamp(published),
    }
    statement["proof"] = [
        create_proof(statement, signing_key=sk, verification_method=key.id, created=published)
        for key, sk in ((old, old_key), (new, new_key))
    ]
    return statement


def build_revocation(
    *,
    origin: str,
    revoked_name: str,
    revoked_key: nacl.signing.SigningKey,
    revoked_at: int,
    published: int,
    replacement: NodeKey | None = None,
) -> dict[str, Any]:
    """Build a ``RevokeKey`` statement signed by the key being revoked."""
    revoked = NodeKey(key_id(origin, revoked_name), revoked_key.verify_key)
    statement: dict[str, Any] = {
        "np": 1,
        "type": REVOKE,
        "origin": origin,
        "revoked_key": key_entry(revoked, None),
        "revoked_at": format_timestamp(revoked_at),
        "published": format_timestamp(published),
    }
    if replacement is not None:
        statement["replacement"] = key_entry(replacement, None)
    statement["proof"] = [
        create_proof(
            statement, signing_key=revoked_key, verification_method=revoked.id, created=published
        )
    ]
    return statement


def _header(
    data: bytes | Mapping[str, Any], kind: str, origin: str, now: int
) -> tuple[Mapping[str, Any], int]:
    statement = load_document(data, KeyStatementError)
    if statement.get("np") != 1 or statement.get("np") is True or statement.get("type") != kind:
        raise KeyStatementError(f'not an NP/1 {kind} statement (need "np": 1, "type": "{kind}")')
    if statement.get("origin") != origin:
        raise KeyStatementError(
            f"statement is for {statement.get('origin')!r}, received from {origin}"
        )
    published = read_timestamp(statement, "published", KeyStatementError)
    if published > now + MAX_SKEW:
        raise KeyStatementError("statement is published in the future; check clocks")
    return statement, published


def _pinned(key: NodeKey, pinned: Mapping[str, nacl.signing.VerifyKey]) -> bool:
    return key.id in pinned and bytes(pinned[key.id]) == bytes(key.public_key)


def verify_rotation(
    data: bytes | Mapping[str, Any],
    *,
    origin: str,
    pinned: Mapping[str, nacl.signing.VerifyKey],
    now: int,
    announced_next: NodeKey | None = None,
) -> KeyRotation:
    """Accept a ``RotateKey`` statement from ``origin``.

    Args:
        data: The statement (bytes or parsed object).
        origin: The peer it came from (transport-verified).
        pinned: The keys currently pinned for that peer, by key id.
        now: The verifier's clock.
        announced_next: The ``next_key`` of the peer's last node document, if
            any; a rotation to a different key is refused.

    Raises:
        KeyStatementError: If the old key is not pinned, the keys are the same,
            it differs from the announced next key, or either proof is missing
            or wrong.
    """
    statement, published = _header(data, ROTATE, origin, now)
    old = parse_key_entry(statement.get("old_key"), origin, None, "old_key", KeyStatementError)
    new = parse_key_entry(statement.get("new_key"), origin, None, "new_key", KeyStatementError)
    expired_at = read_timestamp(statement, "expired_at", KeyStatementError)
    if old.id == new.id or bytes(old.public_key) == bytes(new.public_key):
        raise KeyStatementError("old_key and new_key must differ")
    if not _pinned(old, pinned):
        raise KeyStatementError(f"old_key {old.id} is not a key pinned for {origin}")
    if announced_next is not None and (
        announced_next.id != new.id or bytes(announced_next.public_key) != bytes(new.public_key)
    ):
        raise KeyStatementError(
            f"new_key {new.id} is not the announced next key {announced_next.id}"
        )
    check_proofs(statement, (old, new), published, KeyStatementError)
    return KeyRotation(
        origin, old, NodeKey(new.id, new.public_key, published), expired_at, published
    )


def verify_revocation(
    data: bytes | Mapping[str, Any],
    *,
    origin: str,
    known: Mapping[str, nacl.signing.VerifyKey],
    now: int,
) -> KeyRevocation:
    """Accept a ``RevokeKey`` statement from ``origin``.

    Args:
        data: The statement (bytes or parsed object).
        origin: The peer it concerns.
        known: Keys this node has pinned or knows as retired for that peer, by id.
        now: The verifier's clock.

    Raises:
        KeyStatementError: If the revoked key is unknown, the replacement is the
            revoked key, or the proof by the revoked key is missing or wrong.
    """
    statement, published = _header(data, REVOKE, origin, now)
    revoked = parse_key_entry(
        statement.get("revoked_key"), origin, None, "revoked_key", KeyStatementError
    )
    revoked_at = read_timestamp(statement, "revoked_at", KeyStatementError)
    replacement = None
    if statement.get("replacement") is not None:
        replacement = parse_key_entry(
            statement["replacement"], origin, None, "replacement", KeyStatementError
        )
        if bytes(replacement.public_key) == bytes(revoked.public_key):
            raise KeyStatementError("the replacement key is the revoked key")
    if not _pinned(revoked, known):
        raise KeyStatementError(f"revoked_key {revoked.id} is not a key known for {origin}")
    check_proofs(statement, (revoked,), published, KeyStatementError)
    return KeyRevocation(
        origin,
        NodeKey(revoked.id, revoked.public_key, revoked_at),
        revoked_at,
        replacement,
        published,
    )
