"""Vault document format: constants, associated data and structure validation.

:func:`validate_vault_document` checks only structure (types, field sets,
base64url, lengths, known kinds, KDF parameters). The node calls it before
storing a vault it cannot decrypt; clients call it before opening one.
"""

from __future__ import annotations

from typing import Any

from federation.canonical import canonical_json
from node.e2e import SUITE
from node.e2e import kdf as k
from node.e2e.encoding import EncodingError, b64url_decode, b64url_encode

KDF_NAME = "PBKDF2-SHA256"
NONCE_LEN = 12
TAG_LEN = 16
WRAP_KINDS = ("passphrase", "recovery")

VAULT_PLAINTEXT_LEN = len(
    canonical_json(
        {"enc_sk": b64url_encode(bytes(32)), "sign_sk": b64url_encode(bytes(32)), "v": 1}
    )
)
"""The vault plaintext has a fixed length (118 bytes), so ``ct`` is 134 bytes."""


class VaultError(ValueError):
    """The vault cannot be opened: wrong secret, or a malformed, altered or swapped vault."""


class VaultFormatError(VaultError):
    """The vault document is structurally invalid."""


def vault_aad(sign_pk: bytes, enc_pk: bytes) -> bytes:
    """Associated data of the vault ciphertext."""
    return canonical_json(
        {
            "enc_pk": b64url_encode(enc_pk),
            "sign_pk": b64url_encode(sign_pk),
            "suite": SUITE,
            "type": "vault",
        }
    )


def wrap_aad(kind: str, sign_pk: bytes) -> bytes:
    """Associated data of one wrap of the vault key."""
    return canonical_json(
        {"kind": kind, "sign_pk": b64url_encode(sign_pk), "suite": SUITE, "type": "vault-key"}
    )


def _fields(obj: Any, expected: set[str], where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise VaultFormatError(f"{where} must be a JSON object")
    keys = set(obj)
    if keys != expected:
        missing = sorted(expected - keys)
        extra = sorted(str(x) for x in keys - expected)
        raise VaultFormatError(f"{where}: missing fields {missing}, unexpected fields {extra}")
    return obj


def _b64(obj: dict[str, Any], name: str, length: int, where: str) -> None:
    try:
        b64url_decode(obj[name], length=length, what=f"{where}.{name}")
    except EncodingError as exc:
        raise VaultFormatError(str(exc)) from None


def _check_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise VaultFormatError(f"{where} must be an integer")
    return value


def validate_vault_document(doc: Any, *, _unsafe_low_iterations_for_tests: bool = False) -> None:
    """Check the structure of a vault document without decrypting it.

    Args:
        doc: The parsed JSON document.
        _unsafe_low_iterations_for_tests: Accept PBKDF2 iteration counts below
            600000. Test vectors only.

    Raises:
        VaultFormatError: (a ``ValueError``) naming the first problem found.
    """
    doc = _fields(doc, {"suite", "v", "sign_pk", "enc_pk", "nonce", "ct", "wraps"}, "vault")
    if doc["suite"] != SUITE:
        raise VaultFormatError(f"vault.suite must be {SUITE!r}")
    if _check_int(doc["v"], "vault.v") != 1:
        raise VaultFormatError("vault.v must be 1 (unknown vault version)")
    _b64(doc, "sign_pk", 32, "vault")
    _b64(doc, "enc_pk", 32, "vault")
    _b64(doc, "nonce", NONCE_LEN, "vault")
    _b64(doc, "ct", VAULT_PLAINTEXT_LEN + TAG_LEN, "vault")
    wraps = doc["wraps"]
    if not isinstance(wraps, list) or not 1 <= len(wraps) <= len(WRAP_KINDS):
        raise VaultFormatError("vault.wraps must be a list of 1 or 2 wraps")
    seen: set[str] = set()
    for i, wrap in enumerate(wraps):
        where = f"vault.wraps[{i}]"
        if not isinstance(wrap, dict) or wrap.get("kind") not in WRAP_KINDS:
            raise VaultFormatError(f"{where}.kind must be one of {list(WRAP_KINDS)}")
        kind = wrap["kind"]
        if kind in seen:
            raise VaultFormatError(f"{where}: duplicate {kind} wrap")
        seen.add(kind)
        if kind == "passphrase":
            _fields(wrap, {"kind", "kdf", "nonce", "ct"}, where)
            kdf = _fields(wrap["kdf"], {"name", "iterations", "salt"}, f"{where}.kdf")
            if kdf["name"] != KDF_NAME:
                raise VaultFormatError(f"{where}.kdf.name must be {KDF_NAME!r}")
            iterations = _check_int(kdf["iterations"], f"{where}.kdf.iterations")
            try:
                k.check_iterations(
                    iterations, _unsafe_low_iterations_for_tests=_unsafe_low_iterations_for_tests
                )
            except k.IterationsError as exc:
                raise VaultFormatError(f"{where}.kdf: {exc}") from None
            _b64(kdf, "salt", k.SALT_LEN, f"{where}.kdf")
        else:
            _fields(wrap, {"kind", "nonce", "ct"}, where)
        _b64(wrap, "nonce", NONCE_LEN, where)
        _b64(wrap, "ct", 32 + TAG_LEN, where)
    if "recovery" not in seen:
        raise VaultFormatError("vault.wraps must contain a recovery wrap")
