"""Login secrets, public keys and vaults sent by the browser, checked before storage.

The browser derives a *login secret* from the passphrase (PBKDF2-SHA256 then
HKDF, DESIGN §4); the node stores only an Argon2id hash of it.  What unlocks
the vault is derived separately, so the node never holds it.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from dataclasses import dataclass
from typing import Any

import nacl.exceptions
import nacl.pwhash

from node.errors import N_, Invalid
from node.services.keyring import check_vault_document, proof_is_valid

#: OWASP's minimum Argon2id profile (m = 19 MiB, t = 2): ~25 ms here, run off the loop.
ARGON2_OPSLIMIT = 2
ARGON2_MEMLIMIT = 19 * 1024 * 1024
MAX_VAULT_BYTES = 16_384

#: A valid hash of a random secret, verified against when the login is unknown,
#: so a wrong login and a wrong passphrase take the same time.
_DUMMY_SECRET = b"\x00" * 32


def b64url_bytes(value: Any, length: int, field: str) -> bytes:
    """Decode a base64url (no padding) field of exactly ``length`` bytes, or raise Invalid."""
    if not isinstance(value, str) or len(value) > 4 * length:
        raise Invalid(N_("This field must be base64url text."), field=field)
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise Invalid(N_("This field must be base64url text."), field=field) from None
    if (
        "=" in value
        or len(raw) != length
        or base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != value
    ):
        raise Invalid(N_("This field has the wrong length or encoding."), field=field)
    return raw


@dataclass(frozen=True)
class Credentials:
    """What a browser sends when it creates an account's secrets."""

    kdf_salt: str
    kdf_iterations: int
    login_secret: str
    sign_pk: str
    enc_pk: str
    vault: dict[str, Any]
    proof: str


def check_credentials(creds: Credentials, login: str, min_iterations: int) -> bytes:
    """Validate every field; return the raw login secret.

    Raises:
        Invalid: a field is malformed, the vault does not match the keys, or
            the proof of possession of the signing key fails.
    """
    b64url_bytes(creds.kdf_salt, 16, "kdf_salt")
    if not isinstance(creds.kdf_iterations, int) or not (
        min_iterations <= creds.kdf_iterations <= 10_000_000
    ):
        raise Invalid(N_("The key derivation settings are not acceptable."), field="kdf_iterations")
    secret = b64url_bytes(creds.login_secret, 32, "login_secret")
    b64url_bytes(creds.sign_pk, 32, "sign_pk")
    b64url_bytes(creds.enc_pk, 32, "enc_pk")
    b64url_bytes(creds.proof, 64, "proof")
    if not isinstance(creds.vault, dict) or len(json.dumps(creds.vault)) > MAX_VAULT_BYTES:
        raise Invalid(N_("The key vault is malformed."), field="vault")
    try:
        check_vault_document(creds.vault)
    except ValueError:
        raise Invalid(N_("The key vault is malformed."), field="vault") from None
    if creds.vault.get("sign_pk") != creds.sign_pk or creds.vault.get("enc_pk") != creds.enc_pk:
        raise Invalid(N_("The key vault does not belong to these keys."), field="vault")
    wraps = [w for w in creds.vault.get("wraps", []) if w.get("kind") == "passphrase"]
    if not wraps or wraps[0]["kdf"]["salt"] != creds.kdf_salt:
        raise Invalid(N_("The key vault does not match the passphrase settings."), field="vault")
    if wraps[0]["kdf"]["iterations"] != creds.kdf_iterations:
        raise Invalid(N_("The key vault does not match the passphrase settings."), field="vault")
    if not proof_is_valid(creds.sign_pk, creds.enc_pk, login, creds.proof):
        raise Invalid(N_("The proof of key possession is invalid."), field="proof")
    return secret


def hash_login_secret(secret: bytes) -> str:
    digest: bytes = nacl.pwhash.argon2id.str(
        secret, opslimit=ARGON2_OPSLIMIT, memlimit=ARGON2_MEMLIMIT
    )
    return digest.decode()


def verify_login_secret(verifier: str | None, secret: bytes) -> bool:
    """Constant-work check: an unknown account still pays for one Argon2id run."""
    target = verifier.encode() if verifier else _dummy_verifier()
    try:
        ok = bool(nacl.pwhash.verify(target, secret))
    except nacl.exceptions.InvalidkeyError:
        ok = False
    return ok and verifier is not None


@functools.cache
def _dummy_verifier() -> bytes:
    return hash_login_secret(_DUMMY_SECRET).encode()
