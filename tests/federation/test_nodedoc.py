"""The node document (federation.nodedoc): build, verify, key rules, pinning."""

from __future__ import annotations

import json
from typing import Any

import pytest

from federation.canonical import canonical_json
from federation.errors import NodeDocumentError
from federation.nodedoc import (
    MAX_VALIDITY,
    NodeKey,
    build_node_document,
    pin_check,
    verify_node_document,
)
from federation.proof import create_proof
from tests.federation.factories import DAY, NOW, A, B, kid, node_document, old_key, signing_key

K1 = signing_key(A + "#k1")
K2 = signing_key(A + "#k2")


def test_round_trip() -> None:
    document = node_document(old_keys=[old_key()], next_key=NodeKey(kid(A, "k2"), K2.verify_key))
    doc = verify_node_document(canonical_json(document), origin=A, now=NOW)
    assert doc.origin == A and doc.name == "École A"
    assert doc.inbox == f"{A}/np/inbox" and doc.streams == f"{A}/np/streams"
    assert [k.id for k in doc.keys] == [kid(A, "k1")] and doc.keys[0].since == NOW - DAY
    assert doc.old_keys == (old_key(),)
    assert doc.next_key is not None and doc.next_key.id == kid(A, "k2")
    assert doc.valid_until - doc.issued_at == MAX_VALIDITY
    assert document["proof"][0]["verificationMethod"] == kid(A, "k1")


def test_parsed_object_is_accepted_too() -> None:
    assert verify_node_document(node_document(), origin=A, now=NOW).origin == A


def test_every_current_key_signs() -> None:
    document = node_document(keys={"k1": K1, "k2": K2})
    assert {p["verificationMethod"] for p in document["proof"]} == {kid(A, "k1"), kid(A, "k2")}
    assert len(verify_node_document(document, origin=A, now=NOW).keys) == 2


# -- Validity window ----------------------------------------------------------------


def test_expired_document_is_refused() -> None:
    document = node_document(issued_at=NOW - 7 * DAY, valid_for=7 * DAY)
    with pytest.raises(NodeDocumentError, match="expired"):
        verify_node_document(document, origin=A, now=NOW)
    verify_node_document(document, origin=A, now=NOW - 1)


def test_validity_over_seven_days_is_refused() -> None:
    with pytest.raises(NodeDocumentError, match="7 days"):
        verify_node_document(node_document(valid_for=7 * DAY + 1), origin=A, now=NOW)
    with pytest.raises(NodeDocumentError, match="7 days"):
        verify_node_document(node_document(valid_for=0), origin=A, now=NOW)


def test_document_from_the_future_is_refused() -> None:
    with pytest.raises(NodeDocumentError, match="future"):
        verify_node_document(node_document(issued_at=NOW + 301), origin=A, now=NOW)
    verify_node_document(node_document(issued_at=NOW + 300), origin=A, now=NOW)


def test_cache_until_follows_the_matrix_rule() -> None:
    doc = verify_node_document(node_document(valid_for=2 * DAY), origin=A, now=NOW)
    assert doc.cache_until(NOW) == NOW + 2 * DAY
    assert doc.cache_until(NOW - 6 * DAY) == NOW + DAY


# -- Self-signature ------------------------------------------------------------------------


def test_wrong_self_signature_is_refused() -> None:
    document = node_document()
    with pytest.raises(NodeDocumentError, match="does not verify"):
        verify_node_document({**document, "name": "École B"}, origin=A, now=NOW)
    # A key swapped in after signing: the proof names k1 but k1 is now another key.
    swapped = node_document(keys={"k1": signing_key("mallory")})
    swapped["proof"] = document["proof"]
    with pytest.raises(NodeDocumentError, match="does not verify"):
        verify_node_document(swapped, origin=A, now=NOW)


def test_a_current_key_that_did_not_sign_is_refused() -> None:
    document = node_document(keys={"k1": K1, "k2": K2})
    with pytest.raises(NodeDocumentError, match="exactly one proof by each"):
        verify_node_document({**document, "proof": document["proof"][:1]}, origin=A, now=NOW)


def test_a_proof_by_a_key_not_listed_is_refused() -> None:
    document = node_document()
    stranger = create_proof(document, signing_key=K2, verification_method=kid(A, "k2"), created=NOW)
    with pytest.raises(NodeDocumentError, match="exactly one proof"):
        verify_node_document(
            {**document, "proof": [*document["proof"], stranger]}, origin=A, now=NOW
        )
    with pytest.raises(NodeDocumentError, match="exactly one proof"):
        verify_node_document({**document, "proof": document["proof"] * 2}, origin=A, now=NOW)


def test_proof_created_must_match_issued_at() -> None:
    document = node_document()
    unsigned = {k: v for k, v in document.items() if k != "proof"}
    late = create_proof(unsigned, signing_key=K1, verification_method=kid(A, "k1"), created=NOW + 5)
    with pytest.raises(NodeDocumentError, match="created at"):
        verify_node_document({**unsigned, "proof": [late]}, origin=A, now=NOW)


# -- Fields and sizes ----------------------------------------------------------------------


def test_document_of_another_origin_is_refused() -> None:
    with pytest.raises(NodeDocumentError, match="fetched from"):
        verify_node_document(node_document(), origin=B, now=NOW)


def resigned(document: dict[str, Any]) -> dict[str, Any]:
    unsigned = {k: v for k, v in document.items() if k != "proof"}
    proof = create_proof(unsigned, signing_key=K1, verification_method=kid(A, "k1"), created=NOW)
    return {**unsigned, "proof": [proof]}


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"np": 2}, "NP/1"),
        ({"np": True}, "NP/1"),
        ({"type": "Service"}, "NP/1"),
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"inbox": f"{B}/np/inbox"}, "not on"),
        ({"streams": "https://ecole-a.example"}, "path"),
        ({"keys": []}, "at least one"),
        ({"old_keys": "none"}, "list"),
        ({"valid_until": "2025-09-08T08:00:00+00:00"}, "valid_until"),
    ],
)
def test_bad_fields_are_refused_even_when_signed(change: dict[str, Any], match: str) -> None:
    with pytest.raises(NodeDocumentError, match=match):
        verify_node_document(resigned({**node_document(), **change}), origin=A, now=NOW)


def test_bad_key_entries_are_refused() -> None:
    document = node_document()
    entry = document["keys"][0]
    cases = [
        {**entry, "id": kid(B, "k1")},
        {**entry, "type": "JsonWebKey"},
        {**entry, "publicKeyMultibase": "z6Mk"},
        {**entry, "extra": 1},
        {k: v for k, v in entry.items() if k != "valid_from"},
    ]
    for bad in cases:
        with pytest.raises(NodeDocumentError):
            verify_node_document(resigned({**document, "keys": [bad]}), origin=A, now=NOW)


def test_a_key_cannot_be_both_current_and_revoked() -> None:
    document = node_document(revoked=[NodeKey(kid(A, "k9"), K1.verify_key, NOW)])
    with pytest.raises(NodeDocumentError, match="listed twice"):
        verify_node_document(document, origin=A, now=NOW)


def test_oversize_and_non_strict_json_are_refused() -> None:
    document = node_document()
    big = resigned({**document, "padding": "x" * 70000})
    with pytest.raises(NodeDocumentError, match="larger"):
        verify_node_document(big, origin=A, now=NOW)
    with pytest.raises(NodeDocumentError, match="larger"):
        verify_node_document(json.dumps(big).encode(), origin=A, now=NOW)
    text = canonical_json(document)
    with pytest.raises(NodeDocumentError, match="duplicate"):
        verify_node_document(b'{"np":1,' + text[1:], origin=A, now=NOW)
    with pytest.raises(NodeDocumentError, match="strict JSON"):
        verify_node_document(text.replace(b'"np":1', b'"np":1.0'), origin=A, now=NOW)
    with pytest.raises(NodeDocumentError, match="JSON object"):
        verify_node_document(b"[]", origin=A, now=NOW)


def test_build_refuses_dates_missing_from_listed_keys() -> None:
    with pytest.raises(ValueError, match="expired_at"):
        node_document(old_keys=[NodeKey(kid(A, "k0"), K2.verify_key)])


# -- Which key may sign what, when ------------------------------------------------------------


def rotated_document() -> Any:
    document = build_node_document(
        origin=A,
        name="École A",
        signing_keys={"k2": K2},
        valid_from={"k2": NOW},
        issued_at=NOW,
        valid_until=NOW + DAY,
        old_keys=[NodeKey(kid(A, "k1"), K1.verify_key, NOW)],
        revoked=[NodeKey(kid(A, "k0"), signing_key("leaked").verify_key, NOW - DAY)],
    )
    return verify_node_document(document, origin=A, now=NOW)


def test_transport_keys_current_and_old_within_24_hours() -> None:
    doc = rotated_document()
    assert doc.transport_key(kid(A, "k2"), NOW + 30 * DAY) is not None
    assert doc.transport_key(kid(A, "k1"), NOW + DAY) is not None
    assert doc.transport_key(kid(A, "k1"), NOW + DAY + 1) is None
    assert doc.transport_key(kid(A, "k0"), NOW) is None  # revoked: never
    assert doc.transport_key(kid(A, "k7"), NOW) is None


def test_proof_keys_old_only_for_proofs_made_before_expiry() -> None:
    doc = rotated_document()
    assert doc.proof_key(kid(A, "k1"), NOW - 100 * DAY) is not None
    assert doc.proof_key(kid(A, "k1"), NOW) is None
    assert doc.proof_key(kid(A, "k2"), NOW) is not None
    assert doc.proof_key(kid(A, "k0"), NOW - 100 * DAY) is None


def test_pin_check() -> None:
    doc = verify_node_document(
        node_document(
            keys={"k1": K1, "k2": K2},
            revoked=[NodeKey(kid(A, "k0"), signing_key("leaked").verify_key, NOW)],
        ),
        origin=A,
        now=NOW,
    )
    pinned = {kid(A, "k1"): K1.verify_key, kid(A, "k0"): signing_key("leaked").verify_key}
    check = pin_check(doc, pinned)
    assert check.authenticated
    assert [k.id for k in check.new_keys] == [kid(A, "k2")]
    assert check.revoked_pinned == (kid(A, "k0"),)
    # Same key id, different key: not pinned, so nothing vouches for the document.
    assert not pin_check(
        doc, {kid(A, "k1"): K2.verify_key, kid(A, "k2"): K1.verify_key}
    ).authenticated
    assert not pin_check(doc, {}).authenticated
