"""eddsa-jcs-2022 Data Integrity proofs (federation.proof).

Known answer: the W3C vc-di-eddsa eddsa-jcs-2022 example (alumni credential).
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from federation.canonical import canonical_json
from federation.encoding import parse_timestamp
from federation.errors import ProofError
from federation.keys import decode_secret_key
from federation.proof import create_proof, parse_proof, proof_set, verify_proof
from tests.federation.factories import NOW, kid, signing_key

W3C_KEY = decode_secret_key("z3u2en7t5LR2WtQH5PfFqMqwVHBeXouLzo6haApm8XHqvjxq")
W3C_VM = "did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2#z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"
W3C_DOCUMENT: dict[str, Any] = {
    "@context": [
        "https://www.w3.org/ns/credentials/v2",
        "https://www.w3.org/ns/credentials/examples/v2",
    ],
    "id": "urn:uuid:58172aac-d8ba-11ed-83dd-0b3aef56cc33",
    "type": ["VerifiableCredential", "AlumniCredential"],
    "name": "Alumni Credential",
    "description": "A minimum viable example of an Alumni Credential.",
    "issuer": "https://vc.example/issuers/5678",
    "validFrom": "2023-01-01T00:00:00Z",
    "credentialSubject": {"id": "did:example:abcdefgh", "alumniOf": "The School of Examples"},
}
W3C_DOCUMENT_HASH = "59b7cb6251b8991add1ce0bc83107e3db9dbbab5bd2c28f687db1a03abc92f19"
W3C_PROOF_VALUE = (
    "z2HnFSSPPBzR36zdDgK8PbEHeXbR56YF24jwMpt3R1eHXQzJDMWS93FCzpvJpwTWd3GAVFuUfjoJdcnTMuVor51aX"
)
KEY = signing_key("proof-key")


def test_w3c_eddsa_jcs_2022_known_answer() -> None:
    assert hashlib.sha256(canonical_json(W3C_DOCUMENT)).hexdigest() == W3C_DOCUMENT_HASH
    proof = create_proof(
        W3C_DOCUMENT,
        signing_key=W3C_KEY,
        verification_method=W3C_VM,
        created=parse_timestamp("2023-02-24T23:36:38Z"),
    )
    assert proof["proofValue"] == W3C_PROOF_VALUE
    assert proof["@context"] == W3C_DOCUMENT["@context"]
    verify_proof(W3C_DOCUMENT, parse_proof(proof), W3C_KEY.verify_key)


def test_round_trip_with_unsigned_fields() -> None:
    document = {"id": "x", "to": ["a"], "n": 1}
    proof = create_proof(
        document, signing_key=KEY, verification_method=kid(), created=NOW, unsigned=("to",)
    )
    signed = {**document, "proof": proof, "to": ["b", "c"]}  # per-destination field changed
    (parsed,) = proof_set(signed)
    assert parsed.verification_method == kid() and parsed.created == NOW
    verify_proof(signed, parsed, KEY.verify_key, unsigned=("to",))


@pytest.mark.parametrize(
    "change",
    [
        {"n": 2},
        {"extra": True},
        {"to": ["b"]},  # signed when not declared unsigned
    ],
)
def test_tampered_document_fails(change: dict[str, Any]) -> None:
    document = {"id": "x", "n": 1}
    proof = create_proof(document, signing_key=KEY, verification_method=kid(), created=NOW)
    with pytest.raises(ProofError, match="does not verify"):
        verify_proof({**document, **change}, parse_proof(proof), KEY.verify_key)


def test_tampered_proof_options_and_wrong_key_fail() -> None:
    document = {"id": "x"}
    proof = create_proof(document, signing_key=KEY, verification_method=kid(), created=NOW)
    moved = {**proof, "created": "2030-01-01T00:00:00Z"}
    with pytest.raises(ProofError):
        verify_proof(document, parse_proof(moved), KEY.verify_key)
    with pytest.raises(ProofError):
        verify_proof(document, parse_proof(proof), signing_key("other").verify_key)
    with pytest.raises(ProofError, match="proofPurpose"):
        verify_proof(
            document, parse_proof({**proof, "proofPurpose": "authentication"}), KEY.verify_key
        )


@pytest.mark.parametrize(
    "change",
    [
        {"type": "Ed25519Signature2020"},
        {"cryptosuite": "eddsa-rdfc-2022"},
        {"created": "2025-09-01T08:00:00.000Z"},
        {"proofValue": "u" + "A" * 86},
        {"proofValue": "z1111"},
        {"verificationMethod": 7},
        {"challenge": "x"},
    ],
)
def test_malformed_proofs(change: dict[str, Any]) -> None:
    proof = create_proof({"id": "x"}, signing_key=KEY, verification_method=kid(), created=NOW)
    with pytest.raises(ProofError):
        parse_proof({**proof, **change})


def test_proof_set_needs_a_proof() -> None:
    with pytest.raises(ProofError, match="no proof"):
        proof_set({"id": "x"})
    with pytest.raises(ProofError):
        proof_set({"id": "x", "proof": "z123"})
    with pytest.raises(ProofError):
        parse_proof([])
