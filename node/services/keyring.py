"""The node's view of people's public keys: fingerprints and proof checks.

Public keys travel and are stored as base64url text; the reference suite
(``node.e2e``) works on bytes.  This adapter is the one place converting,
so a malformed stored key yields "no fingerprint" rather than an exception
on a page.  The node only ever verifies here; it never decrypts.
"""

from __future__ import annotations

from typing import Any

from node.e2e.encoding import b64url_decode
from node.e2e.keys import fingerprint as _fingerprint
from node.e2e.keys import verify_account_keys_proof
from node.e2e.vaultdoc import validate_vault_document


def fingerprint_of(sign_pk: str | None) -> str | None:
    """The 8×4 hex fingerprint of a base64url Ed25519 key, or None."""
    if not sign_pk:
        return None
    try:
        return _fingerprint(b64url_decode(sign_pk, length=32))
    except ValueError:
        return None


def proof_is_valid(sign_pk: str, enc_pk: str, login: str, proof: str) -> bool:
    try:
        return verify_account_keys_proof(
            b64url_decode(sign_pk, length=32), b64url_decode(enc_pk, length=32), login, proof
        )
    except ValueError:
        return False


def check_vault_document(doc: Any) -> None:
    """Raise ValueError when a vault is structurally wrong (the node cannot open it)."""
    validate_vault_document(doc)
