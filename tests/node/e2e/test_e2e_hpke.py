"""HPKE (RFC 9180) base mode: the RFC's A.1 vector, round trips and tampering."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from node.e2e import hpke
from node.e2e.keys import generate_account_keys

ROOT = Path(__file__).resolve().parents[3]
RFC: dict[str, Any] = json.loads((ROOT / "tests/vectors/hpke-rfc9180.json").read_text("utf-8"))
b = bytes.fromhex

# PyNaCl has no AES-128-GCM: `cryptography` stands in for the AEAD step only.
# DeriveKeyPair, Encap/Decap, the key schedule, nonces and the exporter are ours.
AES_128_GCM = hpke.make_aead(
    0x0001,
    16,
    lambda key, nonce, pt, aad: AESGCM(key).encrypt(nonce, pt, aad),
    lambda key, nonce, ct, aad: AESGCM(key).decrypt(nonce, ct, aad),
)


@pytest.mark.parametrize("v", RFC["vectors"], ids=lambda v: v["source"][:25])
def test_rfc9180_key_derivation_and_schedule(v: dict[str, Any]) -> None:
    assert v["aead_id"] == 1
    assert hpke.derive_key_pair(b(v["ikmE"])) == (b(v["skEm"]), b(v["pkEm"]))
    assert hpke.derive_key_pair(b(v["ikmR"])) == (b(v["skRm"]), b(v["pkRm"]))
    shared, enc = hpke.encap(b(v["pkRm"]), ikm_e=b(v["ikmE"]))
    assert (shared.hex(), enc.hex()) == (v["shared_secret"], v["enc"])
    assert hpke.decap(b(v["enc"]), b(v["skRm"])).hex() == v["shared_secret"]
    ctx = hpke.setup_base_r(b(v["enc"]), b(v["skRm"]), b(v["info"]), aead=AES_128_GCM)
    assert ctx.key_schedule_context.hex() == v["key_schedule_context"]
    assert ctx.secret.hex() == v["secret"]
    assert ctx.key.hex() == v["key"]
    assert ctx.base_nonce.hex() == v["base_nonce"]
    assert ctx.exporter_secret.hex() == v["exporter_secret"]


@pytest.mark.parametrize("v", RFC["vectors"], ids=lambda v: v["source"][:25])
def test_rfc9180_encryptions_and_exports(v: dict[str, Any]) -> None:
    enc, sender = hpke.setup_base_s(
        b(v["pkRm"]), b(v["info"]), aead=AES_128_GCM, ikm_e=b(v["ikmE"])
    )
    receiver = hpke.setup_base_r(enc, b(v["skRm"]), b(v["info"]), aead=AES_128_GCM)
    for e in v["encryptions"]:
        sender.seq = receiver.seq = e["seq"]
        assert sender.compute_nonce(e["seq"]).hex() == e["nonce"]
        assert sender.seal(b(e["aad"]), b(e["pt"])).hex() == e["ct"]
        assert receiver.open(b(e["aad"]), b(e["ct"])).hex() == e["pt"]
    for x in v["exports"]:
        assert receiver.export(b(x["exporter_context"]), x["L"]).hex() == x["exported_value"]
    first = v["encryptions"][0]
    assert first["seq"] == 0
    pt = hpke.hpke_open(
        b(v["skRm"]), enc, b(v["info"]), b(first["aad"]), b(first["ct"]), aead=AES_128_GCM
    )
    assert pt.hex() == first["pt"]


def test_round_trip_to_account_key() -> None:
    account = generate_account_keys()
    info, aad, pt = b"carnet-e2e-1/seal/epoch-key", b'{"epoch":1}', os.urandom(32)
    enc, ct = hpke.hpke_seal(account.enc_pk, info, aad, pt)
    assert len(enc) == 32 and len(ct) == len(pt) + 16
    assert hpke.hpke_open(account.enc_sk, enc, info, aad, ct) == pt
    enc2, ct2 = hpke.hpke_seal(account.enc_pk, info, aad, pt)
    assert enc2 != enc and ct2 != ct  # fresh ephemeral key every time


def _flip(data: bytes, i: int = 0) -> bytes:
    return data[:i] + bytes([data[i] ^ 1]) + data[i + 1 :]


def test_tampering_fails() -> None:
    account = generate_account_keys()
    other = generate_account_keys()
    info, aad, pt = b"info", b"aad", b"plaintext"
    enc, ct = hpke.hpke_seal(account.enc_pk, info, aad, pt)
    sk = account.enc_sk
    cases = {
        "info": (sk, enc, _flip(info), aad, ct),
        "aad": (sk, enc, info, _flip(aad), ct),
        "enc": (sk, _flip(enc), info, aad, ct),
        "ct": (sk, enc, info, aad, _flip(ct)),
        "tag": (sk, enc, info, aad, _flip(ct, len(ct) - 1)),
        "truncated": (sk, enc, info, aad, ct[:-1]),
        "other recipient": (other.enc_sk, enc, info, aad, ct),
        "low-order enc": (sk, bytes(32), info, aad, ct),
        "short enc": (sk, enc[:31], info, aad, ct),
    }
    for name, args in cases.items():
        with pytest.raises(hpke.HpkeError):
            hpke.hpke_open(*args)
        assert name


def test_wrong_aead_fails() -> None:
    account = generate_account_keys()
    enc, ct = hpke.hpke_seal(account.enc_pk, b"i", b"a", b"p")
    with pytest.raises(hpke.HpkeError):
        hpke.hpke_open(account.enc_sk, enc, b"i", b"a", ct, aead=AES_128_GCM)


def test_invalid_inputs() -> None:
    with pytest.raises(hpke.HpkeError):
        hpke.hpke_seal(bytes(31), b"", b"", b"")
    with pytest.raises(hpke.HpkeError):
        hpke.hpke_seal(bytes(32), b"", b"", b"")  # low-order point: all-zero DH
    with pytest.raises(hpke.HpkeError):
        hpke.derive_key_pair(bytes(31))
