"""HPKE base mode (RFC 9180) for DHKEM(X25519, HKDF-SHA256) and HKDF-SHA256.

The carnet-e2e-1 AEAD is AES-256-GCM (``aead_id`` 0x0002). AES-128-GCM
(0x0001) can be plugged in with :func:`make_aead` so that RFC 9180 Appendix
A.1 can be checked; PyNaCl has no AES-128-GCM, so the tests inject
``cryptography``'s implementation for that vector only.

Only the single-shot base-mode API and the exporter are used by the suite;
:class:`Context` exists for the RFC vectors (several sequence numbers).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from node.e2e import primitives as p

KEM_ID = 0x0020
KDF_ID = 0x0001
MODE_BASE = 0x00
N_SECRET = 32
N_ENC = 32
N_PK = 32
N_SK = 32
N_H = 32
_VERSION = b"HPKE-v1"
_KEM_SUITE_ID = b"KEM" + KEM_ID.to_bytes(2, "big")


class HpkeError(ValueError):
    """Raised when opening fails or inputs are malformed."""


SealFn = Callable[[bytes, bytes, bytes, bytes], bytes]
"""``seal(key, nonce, plaintext, aad) -> ciphertext || tag``."""
OpenFn = Callable[[bytes, bytes, bytes, bytes], bytes]
"""``open(key, nonce, ciphertext, aad) -> plaintext``; raises on failure."""


@dataclass(frozen=True)
class Aead:
    """An HPKE AEAD: identifier, key/nonce/tag sizes and the two operations."""

    aead_id: int
    nk: int
    nn: int
    nt: int
    seal: SealFn = field(repr=False)
    open: OpenFn = field(repr=False)


def make_aead(aead_id: int, nk: int, seal: SealFn, open_: OpenFn) -> Aead:
    """Build an :class:`Aead` from an external GCM implementation (12-byte nonce, 16-byte tag)."""
    return Aead(aead_id, nk, 12, 16, seal, open_)


AES_256_GCM = Aead(0x0002, 32, 12, 16, p.aes256gcm_encrypt, p.aes256gcm_decrypt)
"""The carnet-e2e-1 AEAD."""


def _hpke_suite_id(aead: Aead) -> bytes:
    return (
        b"HPKE"
        + KEM_ID.to_bytes(2, "big")
        + KDF_ID.to_bytes(2, "big")
        + aead.aead_id.to_bytes(2, "big")
    )


def labeled_extract(suite_id: bytes, salt: bytes, label: bytes, ikm: bytes) -> bytes:
    """``LabeledExtract`` of RFC 9180 §4."""
    return p.hkdf_extract(salt, _VERSION + suite_id + label + ikm)


def labeled_expand(suite_id: bytes, prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
    """``LabeledExpand`` of RFC 9180 §4."""
    labeled_info = length.to_bytes(2, "big") + _VERSION + suite_id + label + info
    return p.hkdf_expand(prk, labeled_info, length)


def derive_key_pair(ikm: bytes) -> tuple[bytes, bytes]:
    """``DeriveKeyPair`` for X25519 (RFC 9180 §7.1.3).

    Args:
        ikm: Input keying material, at least 32 bytes of entropy.

    Returns:
        ``(sk, pk)``, both 32 bytes.
    """
    if len(ikm) < N_SK:
        raise HpkeError("DeriveKeyPair needs at least 32 bytes of input keying material")
    dkp_prk = labeled_extract(_KEM_SUITE_ID, b"", b"dkp_prk", ikm)
    sk = labeled_expand(_KEM_SUITE_ID, dkp_prk, b"sk", b"", N_SK)
    return sk, p.x25519_public(sk)


def _extract_and_expand(dh: bytes, kem_context: bytes) -> bytes:
    eae_prk = labeled_extract(_KEM_SUITE_ID, b"", b"eae_prk", dh)
    return labeled_expand(_KEM_SUITE_ID, eae_prk, b"shared_secret", kem_context, N_SECRET)


def _dh(sk: bytes, pk: bytes) -> bytes:
    try:
        return p.x25519(sk, pk)
    except ValueError as exc:
        raise HpkeError(f"DH failed: {exc}") from None


def encap(pk_r: bytes, *, ikm_e: bytes | None = None) -> tuple[bytes, bytes]:
    """``Encap(pkR)``; ``ikm_e`` makes it deterministic (test vectors only).

    Returns:
        ``(shared_secret, enc)``.
    """
    if len(pk_r) != N_PK:
        raise HpkeError("recipient public key must be 32 bytes")
    sk_e, pk_e = derive_key_pair(ikm_e if ikm_e is not None else os.urandom(N_SK))
    dh = _dh(sk_e, pk_r)
    return _extract_and_expand(dh, pk_e + pk_r), pk_e


def decap(enc: bytes, sk_r: bytes) -> bytes:
    """``Decap(enc, skR)``; returns the KEM shared secret."""
    if len(enc) != N_ENC:
        raise HpkeError("enc must be 32 bytes")
    if len(sk_r) != N_SK:
        raise HpkeError("recipient private key must be 32 bytes")
    dh = _dh(sk_r, enc)
    return _extract_and_expand(dh, enc + p.x25519_public(sk_r))


@dataclass
class Context:
    """An HPKE encryption context (RFC 9180 §5.2) with its sequence number."""

    aead: Aead
    key: bytes
    base_nonce: bytes
    exporter_secret: bytes
    key_schedule_context: bytes = field(repr=False)
    secret: bytes = field(repr=False)
    seq: int = 0

    def compute_nonce(self, seq: int) -> bytes:
        """``base_nonce XOR I2OSP(seq, Nn)``."""
        seq_bytes = seq.to_bytes(self.aead.nn, "big")
        return bytes(a ^ b for a, b in zip(self.base_nonce, seq_bytes, strict=True))

    def _next_nonce(self) -> bytes:
        if self.seq >= (1 << (8 * self.aead.nn)) - 1:
            raise HpkeError("message limit reached")
        nonce = self.compute_nonce(self.seq)
        self.seq += 1
        return nonce

    def seal(self, aad: bytes, pt: bytes) -> bytes:
        """``ContextS.Seal``: encrypt with the current sequence number."""
        return self.aead.seal(self.key, self._next_nonce(), pt, aad)

    def open(self, aad: bytes, ct: bytes) -> bytes:
        """``ContextR.Open``: decrypt with the current sequence number."""
        nonce = self.compute_nonce(self.seq)
        try:
            pt = self.aead.open(self.key, nonce, ct, aad)
        except Exception:  # any AEAD failure (injected implementations differ) is an open failure
            raise HpkeError(
                "HPKE open failed (wrong key, enc, info, aad or tampered ciphertext)"
            ) from None
        self.seq += 1
        return pt

    def export(self, exporter_context: bytes, length: int) -> bytes:
        """``Context.Export`` (RFC 9180 §5.3)."""
        return labeled_expand(
            _hpke_suite_id(self.aead), self.exporter_secret, b"sec", exporter_context, length
        )


def key_schedule(shared_secret: bytes, info: bytes, aead: Aead) -> Context:
    """``KeySchedule`` for mode_base (no PSK)."""
    suite_id = _hpke_suite_id(aead)
    psk_id_hash = labeled_extract(suite_id, b"", b"psk_id_hash", b"")
    info_hash = labeled_extract(suite_id, b"", b"info_hash", info)
    ksc = bytes([MODE_BASE]) + psk_id_hash + info_hash
    secret = labeled_extract(suite_id, shared_secret, b"secret", b"")
    key = labeled_expand(suite_id, secret, b"key", ksc, aead.nk)
    base_nonce = labeled_expand(suite_id, secret, b"base_nonce", ksc, aead.nn)
    exporter_secret = labeled_expand(suite_id, secret, b"exp", ksc, N_H)
    return Context(aead, key, base_nonce, exporter_secret, ksc, secret)


def setup_base_s(
    pk_r: bytes, info: bytes, *, aead: Aead = AES_256_GCM, ikm_e: bytes | None = None
) -> tuple[bytes, Context]:
    """``SetupBaseS``: returns ``(enc, context)``."""
    shared_secret, enc = encap(pk_r, ikm_e=ikm_e)
    return enc, key_schedule(shared_secret, info, aead)


def setup_base_r(enc: bytes, sk_r: bytes, info: bytes, *, aead: Aead = AES_256_GCM) -> Context:
    """``SetupBaseR``: returns the receiver context."""
    return key_schedule(decap(enc, sk_r), info, aead)


def hpke_seal(
    pk_r: bytes,
    info: bytes,
    aad: bytes,
    pt: bytes,
    *,
    aead: Aead = AES_256_GCM,
    _ikm_e_for_tests: bytes | None = None,
) -> tuple[bytes, bytes]:
    """Single-shot base-mode ``Seal`` (RFC 9180 §6.1).

    Args:
        pk_r: Recipient X25519 public key (32 bytes).
        info: Application context bound into the key schedule.
        aad: Associated data authenticated with the ciphertext.
        pt: Plaintext.
        aead: The AEAD; carnet-e2e-1 uses :data:`AES_256_GCM`.
        _ikm_e_for_tests: Fixed ephemeral input keying material. Test vectors
            only: reusing it destroys confidentiality.

    Returns:
        ``(enc, ct)``: the 32-byte encapsulated key and ``ciphertext || tag``.
    """
    enc, ctx = setup_base_s(pk_r, info, aead=aead, ikm_e=_ikm_e_for_tests)
    return enc, ctx.seal(aad, pt)


def hpke_open(
    sk_r: bytes, enc: bytes, info: bytes, aad: bytes, ct: bytes, *, aead: Aead = AES_256_GCM
) -> bytes:
    """Single-shot base-mode ``Open``.

    Raises:
        HpkeError: On malformed inputs or if authentication fails.
    """
    return setup_base_r(enc, sk_r, info, aead=aead).open(aad, ct)
