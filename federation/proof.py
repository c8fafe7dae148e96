"""Data Integrity proofs with the ``eddsa-jcs-2022`` cryptosuite. Sans-IO.

NP/1 signs JSON documents (node documents, key statements, activities) the
way W3C *Data Integrity EdDSA Cryptosuites v1.0* §3.3 does for
``eddsa-jcs-2022``, so a stored or pulled copy stays verifiable without the
HTTP request that carried it:

1. ``proofConfig`` = the proof object without ``proofValue`` (plus the
   document's ``@context`` if it has one; NP/1 documents have none);
2. ``unsecured`` = the document without ``proof`` and without any field the
   caller names as unsigned (an activity's per-destination ``to``);
3. ``hashData`` = SHA-256(JCS(proofConfig)) ‖ SHA-256(JCS(unsecured));
4. ``proofValue`` = ``z`` + base58btc(Ed25519(hashData)).

JCS is :func:`federation.canonical.canonical_json` (RFC 8785, no floats).
A document may carry one proof (an object) or a proof set (a list of
independent proofs, each over the same unsecured document).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import nacl.exceptions
import nacl.signing

from federation.canonical import CanonicalJSONError, canonical_json
from federation.encoding import (
    format_timestamp,
    multibase_decode,
    multibase_encode,
    parse_timestamp,
)
from federation.errors import EncodingError, ProofError

PROOF_TYPE = "DataIntegrityProof"
CRYPTOSUITE = "eddsa-jcs-2022"
PURPOSE = "assertionMethod"
_FIELDS = frozenset(
    {
        "type",
        "cryptosuite",
        "created",
        "verificationMethod",
        "proofPurpose",
        "proofValue",
        "@context",
    }
)


@dataclass(frozen=True)
class Proof:
    """A parsed proof object."""

    verification_method: str
    created: int
    purpose: str
    value: bytes
    raw: Mapping[str, Any]


def _hash_data(proof_config: Mapping[str, Any], unsecured: Mapping[str, Any]) -> bytes:
    try:
        return (
            hashlib.sha256(canonical_json(proof_config)).digest()
            + hashlib.sha256(canonical_json(unsecured)).digest()
        )
    except CanonicalJSONError as exc:
        raise ProofError(f"document cannot be canonicalized: {exc}") from None


def unsecured_document(document: Mapping[str, Any], unsigned: Iterable[str] = ()) -> dict[str, Any]:
    """The document as signed: without ``proof`` and without the ``unsigned`` fields."""
    drop = {"proof", *unsigned}
    return {name: value for name, value in document.items() if name not in drop}


def create_proof(
    document: Mapping[str, Any],
    *,
    signing_key: nacl.signing.SigningKey,
    verification_method: str,
    created: int,
    unsigned: Iterable[str] = (),
    purpose: str = PURPOSE,
) -> dict[str, Any]:
    """Create an ``eddsa-jcs-2022`` proof over ``document``; the document is not changed.

    Args:
        document: The JSON object to sign (any existing ``proof`` is ignored).
        signing_key: The Ed25519 key.
        verification_method: The key id peers resolve the public key from.
        created: Unix seconds, written as the proof's ``created``.
        unsigned: Top-level fields left out of the signature.
        purpose: ``proofPurpose``; NP/1 always uses ``assertionMethod``.

    Returns:
        The proof object, ready to be put in the document's ``proof`` field.
    """
    config: dict[str, Any] = {
        "type": PROOF_TYPE,
        "cryptosuite": CRYPTOSUITE,
        "created": format_timestamp(created),
        "verificationMethod": verification_method,
        "proofPurpose": purpose,
    }
    if "@context" in document:
        config["@context"] = document["@context"]
    signature = signing_key.sign(_hash_data(config, unsecured_document(document, unsigned)))
    return {**config, "proofValue": multibase_encode(signature.signature)}


def parse_proof(proof: object) -> Proof:
    """Check a proof object's shape and decode it (no signature check).

    Raises:
        ProofError: On a missing or unknown field, another type or cryptosuite,
            a malformed timestamp or proof value.
    """
    if not isinstance(proof, Mapping):
        raise ProofError("proof must be a JSON object")
    unknown = set(proof) - _FIELDS
    if unknown:
        raise ProofError(f"proof has unexpected fields: {', '.join(sorted(unknown))}")
    if proof.get("type") != PROOF_TYPE or proof.get("cryptosuite") != CRYPTOSUITE:
        raise ProofError(f"proof must be a {PROOF_TYPE} with cryptosuite {CRYPTOSUITE}")
    method, purpose, value = (
        proof.get("verificationMethod"),
        proof.get("proofPurpose"),
        proof.get("proofValue"),
    )
    if not isinstance(method, str) or not isinstance(purpose, str) or not isinstance(value, str):
        raise ProofError("proof needs verificationMethod, proofPurpose and proofValue strings")
    try:
        created = parse_timestamp(proof.get("created"), what="proof created")
        signature = multibase_decode(value, what="proofValue")
    except EncodingError as exc:
        raise ProofError(str(exc)) from None
    if len(signature) != 64 or multibase_encode(signature) != value:
        raise ProofError("proofValue must be a canonical base58btc Ed25519 signature")
    return Proof(method, created, purpose, signature, proof)


def verify_proof(
    document: Mapping[str, Any],
    proof: Proof,
    key: nacl.signing.VerifyKey,
    *,
    unsigned: Iterable[str] = (),
    purpose: str = PURPOSE,
) -> None:
    """Verify one parsed proof over ``document`` with ``key``.

    The caller chooses ``key`` from ``proof.verification_method`` and its own
    rules (which keys of which node may sign, and until when).

    Raises:
        ProofError: If the purpose or context differs or the signature fails.
    """
    if proof.purpose != purpose:
        raise ProofError(f"proofPurpose must be {purpose}")
    config = {name: value for name, value in proof.raw.items() if name != "proofValue"}
    if "@context" in config and config["@context"] != document.get("@context"):
        raise ProofError("proof @context differs from the document's")
    try:
        key.verify(_hash_data(config, unsecured_document(document, unsigned)), proof.value)
    except nacl.exceptions.BadSignatureError:
        raise ProofError(
            f"proof by {proof.verification_method} does not verify (the document was changed "
            "or signed by another key)"
        ) from None


def proof_set(document: Mapping[str, Any]) -> list[Proof]:
    """Parse the document's ``proof`` field, one object or a list of them.

    Raises:
        ProofError: If there is no proof or one of them is malformed.
    """
    raw = document.get("proof")
    items = raw if isinstance(raw, list) else [raw] if raw is not None else []
    if not items:
        raise ProofError("document has no proof")
    return [parse_proof(item) for item in items]
