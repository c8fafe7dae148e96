"""The key vault: account private keys encrypted for storage on the node.

``VK`` (32 random bytes) encrypts ``{"enc_sk", "sign_sk", "v": 1}`` with
AES-256-GCM; the associated data binds both public keys. ``VK`` itself is
wrapped (AES-256-GCM again) once per unlock method, under the recovery wrap
key and, optionally, the passphrase wrap key; each wrap's associated data
binds its ``kind`` and ``sign_pk``. The node stores the document, cannot read
it, and cannot forge one that opens: opening checks that the decrypted
private keys derive exactly the document's public keys.

Structure checks (what the node may call before storing) are in
:mod:`node.e2e.vaultdoc`.
"""

from __future__ import annotations

import os
from typing import Any

from federation.canonical import CanonicalJSONError, canonical_json, parse_json_strict
from node.e2e import SUITE
from node.e2e import kdf as k
from node.e2e import primitives as p
from node.e2e.encoding import EncodingError, b64url_decode, b64url_encode
from node.e2e.keys import AccountKeys
from node.e2e.vaultdoc import (
    KDF_NAME,
    VaultError,
    validate_vault_document,
    vault_aad,
    wrap_aad,
)

VK_LEN = 32


def _seal_vault(
    keys: AccountKeys,
    *,
    vk: bytes,
    nonce: bytes,
    passphrase_wrap: tuple[bytes, bytes, int, bytes] | None,
    recovery_wrap_key: bytes,
    recovery_nonce: bytes,
) -> dict[str, Any]:
    if len(vk) != VK_LEN:
        raise ValueError("VK must be 32 bytes")
    plaintext = canonical_json(
        {"enc_sk": b64url_encode(keys.enc_sk), "sign_sk": b64url_encode(keys.sign_sk), "v": 1}
    )
    ct = p.aes256gcm_encrypt(vk, nonce, plaintext, vault_aad(keys.sign_pk, keys.enc_pk))
    wraps: list[dict[str, Any]] = []
    if passphrase_wrap is not None:
        wrap_key, salt, iterations, wrap_nonce = passphrase_wrap
        wrap_ct = p.aes256gcm_encrypt(
            wrap_key, wrap_nonce, vk, wrap_aad("passphrase", keys.sign_pk)
        )
        wraps.append(
            {
                "kind": "passphrase",
                "kdf": {"name": KDF_NAME, "iterations": iterations, "salt": b64url_encode(salt)},
                "nonce": b64url_encode(wrap_nonce),
                "ct": b64url_encode(wrap_ct),
            }
        )
    rec_ct = p.aes256gcm_encrypt(
        recovery_wrap_key, recovery_nonce, vk, wrap_aad("recovery", keys.sign_pk)
    )
    wraps.append(
        {"kind": "recovery", "nonce": b64url_encode(recovery_nonce), "ct": b64url_encode(rec_ct)}
    )
    return {
        "suite": SUITE,
        "v": 1,
        "sign_pk": b64url_encode(keys.sign_pk),
        "enc_pk": b64url_encode(keys.enc_pk),
        "nonce": b64url_encode(nonce),
        "ct": b64url_encode(ct),
        "wraps": wraps,
    }


def _create_vault_deterministic(
    keys: AccountKeys,
    passphrase: str,
    salt: bytes,
    iterations: int,
    *,
    vk: bytes,
    nonce: bytes,
    passphrase_nonce: bytes,
    recovery_nonce: bytes,
    recovery: bytes,
    _unsafe_low_iterations_for_tests: bool = False,
) -> tuple[dict[str, Any], str]:
    """:func:`create_vault` with every random input fixed. Test vectors only."""
    secrets = k.derive_from_passphrase(
        passphrase,
        salt,
        iterations,
        _unsafe_low_iterations_for_tests=_unsafe_low_iterations_for_tests,
    )
    doc = _seal_vault(
        keys,
        vk=vk,
        nonce=nonce,
        passphrase_wrap=(secrets.passphrase_wrap_key, salt, iterations, passphrase_nonce),
        recovery_wrap_key=k.recovery_wrap_key(recovery),
        recovery_nonce=recovery_nonce,
    )
    return doc, k.format_recovery_key(recovery)


def create_vault(
    keys: AccountKeys,
    passphrase: str,
    salt: bytes,
    iterations: int = k.MIN_ITERATIONS,
    *,
    _unsafe_low_iterations_for_tests: bool = False,
) -> tuple[dict[str, Any], str]:
    """Create a vault openable with ``passphrase`` and with a new recovery key.

    Args:
        keys: The account keys to protect.
        passphrase: Checked against the policy (:func:`node.e2e.kdf.check_passphrase`).
        salt: 16 random bytes (the same salt the login secret is derived with).
        iterations: PBKDF2 iterations, at least 600000.
        _unsafe_low_iterations_for_tests: Allow fewer iterations. Tests only.

    Returns:
        ``(vault_document, recovery_key)``; show the recovery key to the user once.
    """
    return _create_vault_deterministic(
        keys,
        passphrase,
        salt,
        iterations,
        vk=os.urandom(VK_LEN),
        nonce=os.urandom(12),
        passphrase_nonce=os.urandom(12),
        recovery_nonce=os.urandom(12),
        recovery=k.generate_recovery_bytes(),
        _unsafe_low_iterations_for_tests=_unsafe_low_iterations_for_tests,
    )


def _find_wrap(doc: dict[str, Any], kind: str) -> dict[str, Any]:
    for wrap in doc["wraps"]:
        if wrap["kind"] == kind:
            found: dict[str, Any] = wrap
            return found
    raise VaultError(f"This vault cannot be opened with a {kind}: it has no {kind} wrap.")


def _unwrap(doc: dict[str, Any], kind: str, wrap_key: bytes, failure: str) -> bytes:
    wrap = _find_wrap(doc, kind)
    sign_pk = b64url_decode(doc["sign_pk"])
    try:
        return p.aes256gcm_decrypt(
            wrap_key,
            b64url_decode(wrap["nonce"]),
            b64url_decode(wrap["ct"]),
            wrap_aad(kind, sign_pk),
        )
    except p.AeadError:
        raise VaultError(failure) from None


def _open_with_vk(doc: dict[str, Any], vk: bytes) -> AccountKeys:
    sign_pk = b64url_decode(doc["sign_pk"])
    enc_pk = b64url_decode(doc["enc_pk"])
    try:
        plaintext = p.aes256gcm_decrypt(
            vk, b64url_decode(doc["nonce"]), b64url_decode(doc["ct"]), vault_aad(sign_pk, enc_pk)
        )
    except p.AeadError:
        raise VaultError("The vault was altered: its contents do not authenticate.") from None
    try:
        body = parse_json_strict(plaintext)
        if not isinstance(body, dict) or set(body) != {"enc_sk", "sign_sk", "v"} or body["v"] != 1:
            raise VaultError("The vault contents have an unknown format.")
        if canonical_json(body) != plaintext:
            raise VaultError("The vault contents are not canonical JSON.")
        keys = AccountKeys.from_private(
            b64url_decode(body["sign_sk"], length=32, what="sign_sk"),
            b64url_decode(body["enc_sk"], length=32, what="enc_sk"),
        )
    except (CanonicalJSONError, EncodingError) as exc:
        raise VaultError(f"The vault contents are malformed: {exc}") from None
    if keys.sign_pk != sign_pk or keys.enc_pk != enc_pk:
        raise VaultError("The vault's private keys do not match its public keys (swapped vault).")
    return keys


def unwrap_vault_key_with_passphrase(
    doc: Any, passphrase: str, *, _unsafe_low_iterations_for_tests: bool = False
) -> bytes:
    """Validate ``doc`` and return its ``VK`` using the passphrase wrap.

    Raises:
        VaultError: Wrong passphrase, no passphrase wrap, or a malformed/altered vault.
    """
    validate_vault_document(doc, _unsafe_low_iterations_for_tests=_unsafe_low_iterations_for_tests)
    kdf = _find_wrap(doc, "passphrase")["kdf"]
    secrets = k.derive_from_passphrase(
        passphrase,
        b64url_decode(kdf["salt"]),
        kdf["iterations"],
        _unsafe_low_iterations_for_tests=_unsafe_low_iterations_for_tests,
    )
    return _unwrap(
        doc,
        "passphrase",
        secrets.passphrase_wrap_key,
        "Wrong passphrase, or the vault was altered.",
    )


def unwrap_vault_key_with_recovery_key(
    doc: Any, recovery_key: str, *, _unsafe_low_iterations_for_tests: bool = False
) -> bytes:
    """Validate ``doc`` and return its ``VK`` using the recovery wrap.

    Raises:
        RecoveryKeyError: If ``recovery_key`` is not a well-formed recovery key.
        VaultError: Wrong recovery key, or a malformed/altered vault.
    """
    validate_vault_document(doc, _unsafe_low_iterations_for_tests=_unsafe_low_iterations_for_tests)
    wrap_key = k.recovery_wrap_key(k.parse_recovery_key(recovery_key))
    return _unwrap(doc, "recovery", wrap_key, "Wrong recovery key, or the vault was altered.")


def open_vault_with_passphrase(
    doc: Any, passphrase: str, *, _unsafe_low_iterations_for_tests: bool = False
) -> AccountKeys:
    """Open a vault with the passphrase.

    Raises:
        VaultError: Wrong passphrase, or the vault is malformed, altered or swapped.
        PassphraseError: If ``passphrase`` breaks the policy (it cannot be right).
    """
    vk = unwrap_vault_key_with_passphrase(
        doc, passphrase, _unsafe_low_iterations_for_tests=_unsafe_low_iterations_for_tests
    )
    return _open_with_vk(doc, vk)


def open_vault_with_recovery_key(
    doc: Any, recovery_key: str, *, _unsafe_low_iterations_for_tests: bool = False
) -> AccountKeys:
    """Open a vault with the recovery key (``XXXX-XXXX-…``, case and dashes free).

    Raises:
        VaultError: Wrong recovery key, or the vault is malformed, altered or swapped.
        RecoveryKeyError: If the recovery key is not well-formed.
    """
    vk = unwrap_vault_key_with_recovery_key(
        doc, recovery_key, _unsafe_low_iterations_for_tests=_unsafe_low_iterations_for_tests
    )
    return _open_with_vk(doc, vk)


def rewrap_passphrase(
    doc: Any,
    vk: bytes,
    new_passphrase: str,
    new_salt: bytes,
    iterations: int = k.MIN_ITERATIONS,
    *,
    _unsafe_low_iterations_for_tests: bool = False,
) -> dict[str, Any]:
    """Return a copy of ``doc`` whose passphrase wrap uses a new passphrase.

    ``vk`` comes from :func:`unwrap_vault_key_with_passphrase` or
    :func:`unwrap_vault_key_with_recovery_key`; it is checked by opening the
    vault before anything is rewrapped. The recovery wrap is kept as is.
    """
    validate_vault_document(doc, _unsafe_low_iterations_for_tests=_unsafe_low_iterations_for_tests)
    keys = _open_with_vk(doc, vk)
    secrets = k.derive_from_passphrase(
        new_passphrase,
        new_salt,
        iterations,
        _unsafe_low_iterations_for_tests=_unsafe_low_iterations_for_tests,
    )
    wrap_nonce = os.urandom(12)
    wrap_ct = p.aes256gcm_encrypt(
        secrets.passphrase_wrap_key, wrap_nonce, vk, wrap_aad("passphrase", keys.sign_pk)
    )
    new_wrap = {
        "kind": "passphrase",
        "kdf": {"name": KDF_NAME, "iterations": iterations, "salt": b64url_encode(new_salt)},
        "nonce": b64url_encode(wrap_nonce),
        "ct": b64url_encode(wrap_ct),
    }
    others = [dict(w) for w in doc["wraps"] if w["kind"] != "passphrase"]
    return {**doc, "wraps": [new_wrap, *others]}
