"""Errors raised by the NP/1 sans-IO cores.

Every error is a :class:`ValueError` (the input was bad) and carries a short
machine-readable ``reason`` that the inbox puts in its JSON error body and in
its structured log line, next to the human-readable message::

    FederationError(ValueError)                 reason
    ├── EncodingError                           "encoding"
    ├── StructuredFieldError                    "malformed"
    ├── DigestError                             "digest_malformed" | "digest_unsupported" | "digest_mismatch"
    ├── SignatureError                          (abstract: one of below)
    │   ├── SignatureMissing                    "missing_signature"     → 401
    │   ├── SignatureMalformed                  "malformed_signature"   → 401
    │   ├── SignatureStale                      "stale_signature"       → 401 (+ server_time)
    │   ├── NotAPeer                            "not_peer"              → 403, raised by the caller's key lookup
    │   ├── UnknownKey                          "unknown_key"           → 401
    │   ├── DigestMismatch                      "digest_mismatch"       → 401
    │   └── BadSignature                        "bad_signature"         → 401
    ├── NotAMember                              "not_member"            → 403 (pull of a stream not routed to the peer)
    ├── NoSuchObject                            "not_found"             → 404 (a file we do not serve)
    ├── ProofError                              "bad_proof"
    ├── NodeDocumentError                       "bad_node_document"
    │   └── KeyStatementError                   "bad_key_statement"
    └── ActivityError                           "bad_activity"          → per-activity error result
        ├── OriginMismatch                      "origin_mismatch"       → 403 when it concerns the whole request
        ├── PublicAddressing                    "public_addressing"
        └── TransactionError                    "bad_transaction"       → 400 for the whole transaction
            └── TooLarge                        "too_large"             → 413

The HTTP status on the right is what the inbox is expected to answer; these
modules never produce responses themselves.
"""

from __future__ import annotations


class FederationError(ValueError):
    """Base class: an NP/1 input was rejected."""

    reason = "invalid"


class EncodingError(FederationError):
    """A base64, base58, multikey or timestamp text is not in its one accepted form."""

    reason = "encoding"


class StructuredFieldError(FederationError):
    """An HTTP structured field (RFC 8941) does not parse strictly."""

    reason = "malformed"


class DigestError(FederationError):
    """A Content-Digest field is malformed, unsupported or does not match the body."""

    def __init__(self, message: str, reason: str = "digest_malformed") -> None:
        super().__init__(message)
        self.reason = reason


class SignatureError(FederationError):
    """An HTTP message signature was not accepted."""

    reason = "bad_signature"


class SignatureMissing(SignatureError):
    """No ``Signature-Input``/``Signature`` (or no NP/1 member in them)."""

    reason = "missing_signature"


class SignatureMalformed(SignatureError):
    """The signature headers parse badly or do not follow the NP/1 profile."""

    reason = "malformed_signature"


class SignatureStale(SignatureError):
    """``created`` is outside the allowed window or ``expires`` has passed.

    ``server_time`` is the verifier's clock, for the response body: the
    sender logs the difference as its clock-skew estimate.
    """

    reason = "stale_signature"

    def __init__(self, message: str, server_time: int) -> None:
        super().__init__(message)
        self.server_time = server_time


class NotAPeer(SignatureError):
    """The key's origin is not an allow-listed peer (raised by the caller's lookup)."""

    reason = "not_peer"


class NotAMember(FederationError):
    """A verified peer asked for a stream none of its users may read (pull, media)."""

    reason = "not_member"


class NoSuchObject(FederationError):
    """A verified peer asked for something this node does not serve (a deleted file)."""

    reason = "not_found"


class UnknownKey(SignatureError):
    """The key id belongs to a peer but names no key that may sign now."""

    reason = "unknown_key"


class DigestMismatch(SignatureError):
    """The signed Content-Digest is missing, malformed or does not match the body."""

    reason = "digest_mismatch"


class BadSignature(SignatureError):
    """The Ed25519 signature does not verify with the resolved key."""

    reason = "bad_signature"


class ProofError(FederationError):
    """A Data Integrity proof (``eddsa-jcs-2022``) is malformed or does not verify."""

    reason = "bad_proof"


class NodeDocumentError(FederationError):
    """A node document fails its checks (fields, sizes, validity window, self-signature)."""

    reason = "bad_node_document"


class KeyStatementError(NodeDocumentError):
    """A key rotation or revocation statement fails its checks."""

    reason = "bad_key_statement"


class ActivityError(FederationError):
    """An activity is malformed, forged or not acceptable from this sender."""

    reason = "bad_activity"


class OriginMismatch(ActivityError):
    """An id, actor or object is not on the origin it must be on (same-origin rule)."""

    reason = "origin_mismatch"


class PublicAddressing(ActivityError):
    """The activity is addressed to the public; NP/1 carries nothing public."""

    reason = "public_addressing"


class TransactionError(ActivityError):
    """The transaction envelope as a whole is rejected."""

    reason = "bad_transaction"


class TooLarge(TransactionError):
    """A body, activity or list exceeds its size limit."""

    reason = "too_large"
