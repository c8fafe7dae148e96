"""Planned key rotation and emergency revocation (federation.keystatements)."""

from __future__ import annotations

from typing import Any

import pytest

from federation.canonical import canonical_json
from federation.errors import KeyStatementError
from federation.keys import fingerprint
from federation.keystatements import (
    build_revocation,
    build_rotation,
    verify_revocation,
    verify_rotation,
)
from federation.nodedoc import NodeKey
from federation.proof import create_proof
from tests.federation.factories import NOW, A, B, kid, signing_key

OLD = signing_key(A + "#k1")
NEW = signing_key(A + "#k2")
PINNED = {kid(A, "k1"): OLD.verify_key}


def rotation(**overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "origin": A,
        "old_name": "k1",
        "old_key": OLD,
        "new_name": "k2",
        "new_key": NEW,
        "expired_at": NOW + 3600,
        "published": NOW,
    }
    args.update(overrides)
    return build_rotation(**args)


def test_rotation_round_trip() -> None:
    result = verify_rotation(canonical_json(rotation()), origin=A, pinned=PINNED, now=NOW)
    assert result.old_key.id == kid(A, "k1")
    assert result.new_key.id == kid(A, "k2") and bytes(result.new_key.public_key) == bytes(
        NEW.verify_key
    )
    assert result.expired_at == NOW + 3600 and result.published == NOW


def test_rotation_signed_by_only_one_key_is_refused() -> None:
    statement = rotation()
    for proofs in (statement["proof"][:1], statement["proof"][1:], []):
        with pytest.raises(KeyStatementError):
            verify_rotation({**statement, "proof": proofs}, origin=A, pinned=PINNED, now=NOW)


def test_rotation_by_a_thief_of_nothing_is_refused() -> None:
    # Mallory makes a new key and signs the hand-over with it and a key she made up.
    forged = rotation(old_key=signing_key("mallory-old"), new_key=signing_key("mallory-new"))
    with pytest.raises(KeyStatementError, match="not a key pinned"):
        verify_rotation(forged, origin=A, pinned=PINNED, now=NOW)


def test_rotation_with_the_new_key_proof_replaced_is_refused() -> None:
    statement = rotation()
    unsigned = {k: v for k, v in statement.items() if k != "proof"}
    other = create_proof(
        unsigned, signing_key=signing_key("x"), verification_method=kid(A, "k2"), created=NOW
    )
    with pytest.raises(KeyStatementError, match="does not verify"):
        verify_rotation(
            {**statement, "proof": [statement["proof"][0], other]}, origin=A, pinned=PINNED, now=NOW
        )


def test_rotation_checks() -> None:
    with pytest.raises(KeyStatementError, match="differ"):
        verify_rotation(rotation(new_name="k1", new_key=OLD), origin=A, pinned=PINNED, now=NOW)
    with pytest.raises(KeyStatementError, match="received from"):
        verify_rotation(rotation(), origin=B, pinned=PINNED, now=NOW)
    with pytest.raises(KeyStatementError, match="future"):
        verify_rotation(rotation(published=NOW + 301), origin=A, pinned=PINNED, now=NOW)
    announced = NodeKey(kid(A, "k3"), signing_key("k3").verify_key)
    with pytest.raises(KeyStatementError, match="announced"):
        verify_rotation(rotation(), origin=A, pinned=PINNED, now=NOW, announced_next=announced)
    good = NodeKey(kid(A, "k2"), NEW.verify_key)
    assert (
        verify_rotation(
            rotation(), origin=A, pinned=PINNED, now=NOW, announced_next=good
        ).new_key.id
        == good.id
    )
    with pytest.raises(KeyStatementError, match="RotateKey"):
        verify_rotation({**rotation(), "type": "RevokeKey"}, origin=A, pinned=PINNED, now=NOW)


def test_tampered_rotation_is_refused() -> None:
    with pytest.raises(KeyStatementError, match="does not verify"):
        verify_rotation(
            {**rotation(), "expired_at": "2030-01-01T00:00:00Z"}, origin=A, pinned=PINNED, now=NOW
        )


def revocation(**overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "origin": A,
        "revoked_name": "k1",
        "revoked_key": OLD,
        "revoked_at": NOW - 600,
        "published": NOW,
        "replacement": NodeKey(kid(A, "k2"), NEW.verify_key),
    }
    args.update(overrides)
    return build_revocation(**args)


def test_revocation_round_trip_and_replacement_is_only_shown() -> None:
    result = verify_revocation(canonical_json(revocation()), origin=A, known=PINNED, now=NOW)
    assert result.revoked_key.id == kid(A, "k1") and result.revoked_at == NOW - 600
    assert result.replacement is not None
    assert result.replacement.fingerprint == fingerprint(NEW.verify_key)
    assert (
        verify_revocation(revocation(replacement=None), origin=A, known=PINNED, now=NOW).replacement
        is None
    )


def test_revocation_needs_the_revoked_key_signature() -> None:
    statement = revocation()
    unsigned = {k: v for k, v in statement.items() if k != "proof"}
    by_new = create_proof(unsigned, signing_key=NEW, verification_method=kid(A, "k2"), created=NOW)
    with pytest.raises(KeyStatementError, match="exactly one proof"):
        verify_revocation({**statement, "proof": [by_new]}, origin=A, known=PINNED, now=NOW)
    with pytest.raises(KeyStatementError, match="does not verify"):
        verify_revocation(
            {**statement, "revoked_at": "2020-01-01T00:00:00Z"}, origin=A, known=PINNED, now=NOW
        )


def test_revocation_of_an_unknown_key_or_by_itself_as_replacement_is_refused() -> None:
    with pytest.raises(KeyStatementError, match="not a key known"):
        verify_revocation(revocation(), origin=A, known={}, now=NOW)
    with pytest.raises(KeyStatementError, match="replacement key is the revoked key"):
        verify_revocation(
            revocation(replacement=NodeKey(kid(A, "k9"), OLD.verify_key)),
            origin=A,
            known=PINNED,
            now=NOW,
        )
