"""Cryptographic primitives of carnet-e2e-1, in one place.

* Ed25519 and X25519: PyNaCl (libsodium).
* AES-256-GCM: libsodium's ``crypto_aead_aes256gcm`` through PyNaCl. libsodium
  only offers it on CPUs with AES-NI/ARMv8 crypto extensions; elsewhere the
  ``cryptography`` package's ``AESGCM`` is used if installed, otherwise
  :class:`AeadUnavailableError` is raised. Both produce ``ciphertext || tag``
  (16-byte tag), as WebCrypto does.
* HKDF-SHA256 (RFC 5869) and PBKDF2-HMAC-SHA256: the standard library.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING

import nacl.bindings
import nacl.exceptions
import nacl.signing

HASH_LEN = 32
AES_GCM_NONCE_LEN = 12
AES_GCM_TAG_LEN = 16

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class AeadError(ValueError):
    """Raised when AEAD decryption fails (wrong key, nonce, AAD or tampering)."""


class AeadUnavailableError(RuntimeError):
    """Raised when no AES-256-GCM implementation is available."""


def hkdf_extract(salt: bytes, ikm: bytes) -> bytes:
    """HKDF-Extract with SHA-256 (RFC 5869 §2.2); empty salt means 32 zero bytes."""
    return hmac.new(salt or bytes(HASH_LEN), ikm, hashlib.sha256).digest()


def hkdf_expand(prk: bytes, info: bytes, length: int) -> bytes:
    """HKDF-Expand with SHA-256 (RFC 5869 §2.3).

    Args:
        prk: Pseudo-random key, at least 32 bytes.
        info: Context information.
        length: Output length, at most 255 * 32.

    Returns:
        ``length`` bytes of output keying material.
    """
    if not 0 < length <= 255 * HASH_LEN:
        raise ValueError(f"HKDF-Expand length must be 1..{255 * HASH_LEN}, got {length}")
    out = b""
    block = b""
    counter = 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def hkdf(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """HKDF-SHA256 (extract then expand), RFC 5869."""
    return hkdf_expand(hkdf_extract(salt, ikm), info, length)


def pbkdf2_sha256(password: bytes, salt: bytes, iterations: int, length: int = 32) -> bytes:
    """PBKDF2-HMAC-SHA256 (RFC 8018). Iteration policy is enforced by callers."""
    if iterations < 1:
        raise ValueError("PBKDF2 iterations must be positive")
    return hashlib.pbkdf2_hmac("sha256", password, salt, iterations, length)


def _check_gcm_args(key: bytes, nonce: bytes) -> None:
    if not isinstance(key, bytes) or len(key) != 32:
        raise ValueError("AES-256-GCM key must be 32 bytes")
    if not isinstance(nonce, bytes) or len(nonce) != AES_GCM_NONCE_LEN:
        raise ValueError("AES-GCM nonce must be 12 bytes")


def _libsodium_has_aes_gcm() -> bool:
    try:
        nacl.bindings.crypto_aead_aes256gcm_encrypt(b"", b"", bytes(12), bytes(32))
    except nacl.exceptions.UnavailableError:
        return False
    return True


_USE_LIBSODIUM = _libsodium_has_aes_gcm()


def aes256gcm_encrypt(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """AES-256-GCM encryption; returns ``ciphertext || 16-byte tag``."""
    _check_gcm_args(key, nonce)
    if _USE_LIBSODIUM:
        result: bytes = nacl.bindings.crypto_aead_aes256gcm_encrypt(plaintext, aad, nonce, key)
        return result
    return _fallback_aesgcm(key).encrypt(nonce, plaintext, aad)


def aes256gcm_decrypt(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    """AES-256-GCM decryption of ``ciphertext || tag``.

    Raises:
        AeadError: If authentication fails.
    """
    _check_gcm_args(key, nonce)
    if len(ciphertext) < AES_GCM_TAG_LEN:
        raise AeadError("ciphertext shorter than the GCM tag")
    if _USE_LIBSODIUM:
        try:
            result: bytes = nacl.bindings.crypto_aead_aes256gcm_decrypt(ciphertext, aad, nonce, key)
        except nacl.exceptions.CryptoError:
            raise AeadError("AES-GCM authentication failed") from None
        return result
    from cryptography.exceptions import InvalidTag

    try:
        return _fallback_aesgcm(key).decrypt(nonce, ciphertext, aad)
    except InvalidTag:
        raise AeadError("AES-GCM authentication failed") from None


def _fallback_aesgcm(key: bytes) -> AESGCM:
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError:  # pragma: no cover - depends on the CPU and installed packages
        raise AeadUnavailableError(
            "libsodium has no AES-256-GCM on this CPU and 'cryptography' is not installed"
        ) from None
    return AESGCM(key)


def x25519_public(private: bytes) -> bytes:
    """X25519 public key of a 32-byte private scalar (clamped by libsodium)."""
    if len(private) != 32:
        raise ValueError("X25519 private key must be 32 bytes")
    result: bytes = nacl.bindings.crypto_scalarmult_base(private)
    return result


def x25519(private: bytes, public: bytes) -> bytes:
    """X25519 Diffie-Hellman; rejects low-order public keys (all-zero output).

    Raises:
        ValueError: On wrong lengths or an all-zero shared secret.
    """
    if len(private) != 32 or len(public) != 32:
        raise ValueError("X25519 keys must be 32 bytes")
    try:
        shared: bytes = nacl.bindings.crypto_scalarmult(private, public)
    except nacl.exceptions.RuntimeError:
        raise ValueError("X25519 produced an all-zero shared secret") from None
    if not any(shared):  # libsodium already refuses this; keep the check explicit
        raise ValueError("X25519 produced an all-zero shared secret")
    return shared


def ed25519_public(seed: bytes) -> bytes:
    """Ed25519 public key of a 32-byte seed."""
    if len(seed) != 32:
        raise ValueError("Ed25519 seed must be 32 bytes")
    return bytes(nacl.signing.SigningKey(seed).verify_key)


def ed25519_sign(seed: bytes, message: bytes) -> bytes:
    """Deterministic Ed25519 signature (64 bytes) of ``message``."""
    if len(seed) != 32:
        raise ValueError("Ed25519 seed must be 32 bytes")
    return bytes(nacl.signing.SigningKey(seed).sign(message).signature)


def ed25519_verify(public: bytes, message: bytes, signature: bytes) -> bool:
    """Strict Ed25519 verification; wrong lengths and bad keys give ``False``."""
    if len(public) != 32 or len(signature) != 64:
        return False
    try:
        nacl.signing.VerifyKey(public).verify(message, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError):
        return False
    return True
