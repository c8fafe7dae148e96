"""Encoding, account keys, signatures, registration proof, passphrase and recovery key."""

from __future__ import annotations

import os
import re

import pytest

from federation.canonical import CanonicalJSONError
from node.e2e import kdf, keys, primitives
from node.e2e.encoding import EncodingError, b32_decode, b64url_decode, b64url_encode


@pytest.mark.parametrize("n", [0, 1, 2, 3, 31, 32, 33, 64, 100])
def test_b64url_round_trip(n: int) -> None:
    data = os.urandom(n)
    text = b64url_encode(data)
    assert "=" not in text and re.fullmatch(r"[A-Za-z0-9_-]*", text)
    assert b64url_decode(text, length=n) == data


def test_b64url_errors_are_value_errors_with_field_name() -> None:
    with pytest.raises(EncodingError, match="sign_pk: expected 32 bytes"):
        b64url_decode("AAAA", length=32, what="sign_pk")
    with pytest.raises(EncodingError, match="padded"):
        b64url_decode("AA==")
    with pytest.raises(EncodingError):
        b64url_decode(b"AAAA")  # type: ignore[arg-type]
    with pytest.raises(EncodingError):
        b64url_decode("AA\u0661A")  # Arabic-Indic digit one: not ASCII
    assert issubclass(EncodingError, ValueError)
    with pytest.raises(EncodingError):
        b32_decode("\u0131" * 8)  # dotless i upper-cases to ASCII "I"


def test_account_keys() -> None:
    a = keys.generate_account_keys()
    assert len(a.sign_pk) == len(a.enc_pk) == 32
    assert keys.AccountKeys.from_private(a.sign_sk, a.enc_sk) == a
    assert "sign_sk" not in repr(a) or a.sign_sk.hex() not in repr(a)
    with pytest.raises(ValueError):
        keys.AccountKeys.from_private(a.sign_sk[:31], a.enc_sk)


def test_fingerprint_format() -> None:
    fp = keys.fingerprint(keys.generate_account_keys().sign_pk)
    assert re.fullmatch(r"([0-9A-F]{4} ){7}[0-9A-F]{4}", fp)
    with pytest.raises(ValueError):
        keys.fingerprint(bytes(31))


def test_sign_verify_round_trip_and_tampering() -> None:
    a = keys.generate_account_keys()
    obj = {"post": "R\u00e9union parents-profs", "class": "6B", "n": 3}
    ctx = "carnet-e2e-1/test"
    sig = keys.sign_object(a.sign_sk, ctx, obj)
    assert keys.verify_object(a.sign_pk, ctx, obj, sig)
    assert keys.verify_object(a.sign_pk, ctx, dict(reversed(list(obj.items()))), sig)  # key order
    assert not keys.verify_object(a.sign_pk, ctx, {**obj, "n": 4}, sig)
    assert not keys.verify_object(a.sign_pk, ctx + "x", obj, sig)
    assert not keys.verify_object(keys.generate_account_keys().sign_pk, ctx, obj, sig)
    raw = bytearray(b64url_decode(sig))
    raw[0] ^= 1
    assert not keys.verify_object(a.sign_pk, ctx, obj, b64url_encode(bytes(raw)))
    assert not keys.verify_object(a.sign_pk, ctx, obj, sig + "A")
    assert not keys.verify_object(a.sign_pk, ctx, obj, sig[:-2])
    assert not keys.verify_object(a.sign_pk, ctx, obj, "!!")
    assert not keys.verify_object(a.sign_pk[:31], ctx, obj, sig)
    assert not keys.verify_object(bytes(32), ctx, obj, sig)


def test_contexts_are_domain_separated() -> None:
    a = keys.generate_account_keys()
    sig = keys.sign_object(a.sign_sk, "carnet-e2e-1/a", {"x": 1})
    assert not keys.verify_object(a.sign_pk, "carnet-e2e-1/b", {"x": 1}, sig)
    for bad in ["", "has space", "nul\x00", "\u00e9", "x" * 129]:
        with pytest.raises(ValueError):
            keys.sign_object(a.sign_sk, bad, {})
    with pytest.raises(CanonicalJSONError):
        keys.sign_object(a.sign_sk, "carnet-e2e-1/a", {"x": 1.5})


def test_account_keys_proof() -> None:
    a = keys.generate_account_keys()
    proof = keys.account_keys_proof(a.sign_sk, a.sign_pk, a.enc_pk, "alice")
    assert keys.verify_account_keys_proof(a.sign_pk, a.enc_pk, "alice", proof)
    other = keys.generate_account_keys()
    assert not keys.verify_account_keys_proof(a.sign_pk, a.enc_pk, "bob", proof)
    assert not keys.verify_account_keys_proof(a.sign_pk, other.enc_pk, "alice", proof)
    assert not keys.verify_account_keys_proof(other.sign_pk, a.enc_pk, "alice", proof)
    for args in [
        (a.sign_pk[:31], a.enc_pk, "alice", proof),
        (a.sign_pk, a.enc_pk, "", proof),
        (a.sign_pk, a.enc_pk, "\ud800", proof),
        ("not bytes", a.enc_pk, "alice", proof),
        (a.sign_pk, a.enc_pk, "alice", None),
    ]:
        assert keys.verify_account_keys_proof(*args) is False  # type: ignore[arg-type]
    # A proof over another context does not count.
    statement = keys.account_keys_statement(a.sign_pk, a.enc_pk, "alice")
    wrong = keys.sign_object(a.sign_sk, "carnet-e2e-1/other", statement)
    assert not keys.verify_account_keys_proof(a.sign_pk, a.enc_pk, "alice", wrong)
    with pytest.raises(ValueError, match="does not match"):
        keys.account_keys_proof(other.sign_sk, a.sign_pk, a.enc_pk, "alice")


def test_passphrase_errors() -> None:
    with pytest.raises(kdf.PassphraseError) as info:
        kdf.check_passphrase("\ud800 and twelve more")
    assert info.value.code == "invalid_text"
    with pytest.raises(kdf.PassphraseError) as info:
        kdf.check_passphrase(b"bytes passphrase")  # type: ignore[arg-type]
    assert info.value.code == "not_string"
    with pytest.raises(kdf.PassphraseError, match="at least 12"):
        kdf.check_passphrase("short")
    assert issubclass(kdf.PassphraseError, ValueError)


def test_iteration_bounds() -> None:
    salt = bytes(16)
    for bad in [599_999, 0, -1, 10_000_001, True, 600_000.0]:
        with pytest.raises(kdf.IterationsError):
            kdf.derive_from_passphrase("a long passphrase", salt, bad)  # type: ignore[arg-type]
    with pytest.raises(kdf.IterationsError):
        kdf.derive_from_passphrase(
            "a long passphrase", salt, 0, _unsafe_low_iterations_for_tests=True
        )
    with pytest.raises(ValueError, match="salt"):
        kdf.derive_from_passphrase(
            "a long passphrase", bytes(8), 10, _unsafe_low_iterations_for_tests=True
        )


def test_login_secret_and_wrap_key_are_independent() -> None:
    s = kdf.derive_from_passphrase(
        "a long passphrase", bytes(16), 10, _unsafe_low_iterations_for_tests=True
    )
    assert s.login_secret != s.passphrase_wrap_key
    assert s.login_secret.hex() not in repr(s)


def test_recovery_key_round_trip() -> None:
    raw = kdf.generate_recovery_bytes()
    text = kdf.format_recovery_key(raw)
    assert re.fullmatch(r"([A-Z2-7]{4}-){7}[A-Z2-7]{4}", text)
    assert kdf.parse_recovery_key(text) == raw
    assert kdf.parse_recovery_key(text.lower().replace("-", "  ")) == raw
    with pytest.raises(kdf.RecoveryKeyError, match="32 letters"):
        kdf.parse_recovery_key(text[:-2])
    with pytest.raises(kdf.RecoveryKeyError, match="A-Z and digits 2-7"):
        kdf.parse_recovery_key("0" + text[1:])
    assert issubclass(kdf.RecoveryKeyError, ValueError)


def test_primitive_edges() -> None:
    with pytest.raises(ValueError):
        primitives.x25519(os.urandom(32), bytes(32))
    assert not primitives.ed25519_verify(bytes(31), b"m", bytes(64))
    assert not primitives.ed25519_verify(bytes(32), b"m", bytes(63))
    with pytest.raises(primitives.AeadError):
        primitives.aes256gcm_decrypt(bytes(32), bytes(12), bytes(15), b"")
    with pytest.raises(ValueError):
        primitives.aes256gcm_encrypt(bytes(16), bytes(12), b"", b"")
    with pytest.raises(ValueError):
        primitives.hkdf_expand(bytes(32), b"", 255 * 32 + 1)
