"""Every case of tests/vectors/e2e-suite.json, checked by the Python reference client.

The same file is checked by tests/js/e2e-suite.test.mjs with WebCrypto, so
each value below is agreed by two independent implementations.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from federation.canonical import CanonicalJSONError, canonical_json
from node.e2e import hpke, kdf, keys, primitives, vault
from node.e2e.encoding import EncodingError, b64url_decode, b64url_encode
from node.e2e.vaultdoc import vault_aad, wrap_aad

ROOT = Path(__file__).resolve().parents[3]
V: dict[str, Any] = json.loads((ROOT / "tests/vectors/e2e-suite.json").read_text("utf-8"))


def test_vector_file_is_up_to_date() -> None:
    path = ROOT / "scripts" / "gen-e2e-vectors"
    loader = importlib.machinery.SourceFileLoader("gen_e2e_vectors", str(path))
    spec = importlib.util.spec_from_loader("gen_e2e_vectors", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    assert module.build() == (ROOT / "tests/vectors/e2e-suite.json").read_text("utf-8")


@pytest.mark.parametrize("case", V["base64url"]["valid"], ids=lambda c: c["b64"] or "empty")
def test_base64url_valid(case: dict[str, str]) -> None:
    assert b64url_encode(bytes.fromhex(case["hex"])) == case["b64"]
    assert b64url_decode(case["b64"]).hex() == case["hex"]


@pytest.mark.parametrize("case", V["base64url"]["invalid"], ids=lambda c: c["why"])
def test_base64url_invalid(case: dict[str, str]) -> None:
    with pytest.raises(EncodingError):
        b64url_decode(case["b64"])


@pytest.mark.parametrize("case", V["canonical_json"]["valid"], ids=lambda c: c["output"][:30])
def test_canonical_valid(case: dict[str, str]) -> None:
    assert canonical_json(json.loads(case["input"])) == case["output"].encode("utf-8")


@pytest.mark.parametrize("case", V["canonical_json"]["invalid"], ids=lambda c: c["why"])
def test_canonical_invalid(case: dict[str, str]) -> None:
    with pytest.raises(CanonicalJSONError):
        canonical_json(json.loads(case["input"]))


def test_primitives_external_known_answers() -> None:
    p = V["primitives"]
    for v in p["ed25519"]:
        seed = bytes.fromhex(v["seed"])
        assert primitives.ed25519_public(seed).hex() == v["public"]
        assert primitives.ed25519_sign(seed, bytes.fromhex(v["message"])).hex() == v["signature"]
        assert primitives.ed25519_verify(
            bytes.fromhex(v["public"]), bytes.fromhex(v["message"]), bytes.fromhex(v["signature"])
        )
    x = p["x25519"]
    shared = primitives.x25519(bytes.fromhex(x["alice_private"]), bytes.fromhex(x["bob_public"]))
    assert shared.hex() == x["shared"]
    assert (
        primitives.x25519(bytes.fromhex(x["bob_private"]), bytes.fromhex(x["alice_public"]))
        == shared
    )
    for c in p["hkdf_sha256"]:
        ikm, salt = bytes.fromhex(c["ikm"]), bytes.fromhex(c["salt"])
        assert primitives.hkdf_extract(salt, ikm).hex() == c["prk"]
        assert primitives.hkdf(ikm, salt, bytes.fromhex(c["info"]), c["length"]).hex() == c["okm"]
    d = p["pbkdf2_sha256"]
    dk = primitives.pbkdf2_sha256(d["password"].encode(), d["salt"].encode(), d["iterations"], 64)
    assert dk.hex() == d["dk"]
    for c in p["aes256gcm"]:
        key, nonce = bytes.fromhex(c["key"]), bytes.fromhex(c["nonce"])
        ct = primitives.aes256gcm_encrypt(key, nonce, bytes.fromhex(c["pt"]), b"")
        assert ct.hex() == c["ct"]
        assert primitives.aes256gcm_decrypt(key, nonce, ct, b"").hex() == c["pt"]


@pytest.mark.parametrize("case", V["fingerprint"], ids=lambda c: c["fingerprint"][:4])
def test_fingerprint(case: dict[str, str]) -> None:
    assert keys.fingerprint(b64url_decode(case["sign_pk"])) == case["fingerprint"]


def test_signature_vector() -> None:
    s = V["signature"]
    seed, pk = b64url_decode(s["sign_sk"]), b64url_decode(s["sign_pk"])
    assert primitives.ed25519_public(seed) == pk
    message = s["context"].encode() + b"\x00" + canonical_json(s["object"])
    assert b64url_encode(message) == s["message"]
    assert keys.sign_object(seed, s["context"], s["object"]) == s["signature"]
    assert keys.verify_object(pk, s["context"], s["object"], s["signature"])


def test_account_keys_proof_vector() -> None:
    s = V["account_keys_proof"]
    sign_pk, enc_pk = b64url_decode(s["sign_pk"]), b64url_decode(s["enc_pk"])
    statement = keys.account_keys_statement(sign_pk, enc_pk, s["login"])
    assert canonical_json(statement).decode() == s["statement"]
    assert (
        keys.account_keys_proof(b64url_decode(s["sign_sk"]), sign_pk, enc_pk, s["login"])
        == (s["signature"])
    )
    assert keys.verify_account_keys_proof(sign_pk, enc_pk, s["login"], s["signature"])
    assert keys.AccountKeys.from_private(
        b64url_decode(s["sign_sk"]), b64url_decode(s["enc_sk"])
    ).enc_pk == (enc_pk)


@pytest.mark.parametrize("case", V["passphrase"]["derivations"], ids=lambda c: str(c["iterations"]))
def test_passphrase_derivation(case: dict[str, Any]) -> None:
    s = kdf.derive_from_passphrase(
        case["passphrase"],
        b64url_decode(case["salt"]),
        case["iterations"],
        _unsafe_low_iterations_for_tests=case["unsafe_low_iterations_for_tests"],
    )
    assert b64url_encode(s.login_secret) == case["login_secret"]
    assert b64url_encode(s.passphrase_wrap_key) == case["passphrase_wrap_key"]


@pytest.mark.parametrize("case", V["passphrase"]["policy"], ids=lambda c: c.get("code", "ok"))
def test_passphrase_policy(case: dict[str, Any]) -> None:
    if case["ok"]:
        assert kdf.check_passphrase(case["passphrase"])
    else:
        with pytest.raises(kdf.PassphraseError) as info:
            kdf.check_passphrase(case["passphrase"])
        assert info.value.code == case["code"]


def test_recovery_key_vectors() -> None:
    r = V["recovery_key"]
    for case in r["format"]:
        assert kdf.format_recovery_key(bytes.fromhex(case["hex"])) == case["formatted"]
    for case in r["parse"]:
        assert kdf.parse_recovery_key(case["input"]).hex() == case["hex"]
    for text in r["invalid"]:
        with pytest.raises(kdf.RecoveryKeyError):
            kdf.parse_recovery_key(text)
    w = r["wrap_key"]
    assert (
        b64url_encode(kdf.recovery_wrap_key(bytes.fromhex(w["recovery"]))) == w["recovery_wrap_key"]
    )


def test_vault_vector_is_reproduced_and_opens() -> None:
    v = V["vault"]
    i = {
        k: b64url_decode(x) for k, x in v["inputs"].items() if k not in ("passphrase", "iterations")
    }
    account = keys.AccountKeys.from_private(i["sign_sk"], i["enc_sk"])
    assert (account.sign_pk, account.enc_pk) == (i["sign_pk"], i["enc_pk"])
    assert vault_aad(account.sign_pk, account.enc_pk).decode() == v["vault_aad"]
    assert wrap_aad("passphrase", account.sign_pk).decode() == v["wrap_aad_passphrase"]
    assert wrap_aad("recovery", account.sign_pk).decode() == v["wrap_aad_recovery"]
    doc, recovery_key = vault._create_vault_deterministic(
        account,
        v["inputs"]["passphrase"],
        i["salt"],
        v["inputs"]["iterations"],
        vk=i["vk"],
        nonce=i["nonce"],
        passphrase_nonce=i["passphrase_nonce"],
        recovery_nonce=i["recovery_nonce"],
        recovery=i["recovery"],
        _unsafe_low_iterations_for_tests=True,
    )
    assert canonical_json(doc).decode() == v["canonical"]
    assert doc == v["document"]
    assert recovery_key == v["recovery_key"]
    opened = vault.open_vault_with_passphrase(
        v["document"], v["inputs"]["passphrase"], _unsafe_low_iterations_for_tests=True
    )
    assert opened == account
    opened = vault.open_vault_with_recovery_key(
        v["document"], v["recovery_key"], _unsafe_low_iterations_for_tests=True
    )
    assert opened == account


def test_hpke_suite_vector() -> None:
    h = V["hpke"]
    b = bytes.fromhex
    assert (h["kem_id"], h["kdf_id"], h["aead_id"]) == (0x20, 1, hpke.AES_256_GCM.aead_id)
    assert hpke.derive_key_pair(b(h["ikmR"])) == (b(h["skRm"]), b(h["pkRm"]))
    assert hpke.derive_key_pair(b(h["ikmE"])) == (b(h["skEm"]), b(h["pkEm"]))
    enc, ctx = hpke.setup_base_s(b(h["pkRm"]), b(h["info"]), ikm_e=b(h["ikmE"]))
    assert enc.hex() == h["enc"]
    assert hpke.decap(enc, b(h["skRm"])).hex() == h["shared_secret"]
    assert ctx.key_schedule_context.hex() == h["key_schedule_context"]
    assert ctx.secret.hex() == h["secret"]
    assert (ctx.key.hex(), ctx.base_nonce.hex()) == (h["key"], h["base_nonce"])
    assert ctx.exporter_secret.hex() == h["exporter_secret"]
    assert ctx.seal(b(h["aad"]), b(h["pt"])).hex() == h["ct"]
    for x in h["exports"]:
        assert ctx.export(b(x["exporter_context"]), x["L"]).hex() == x["exported_value"]
    pt = hpke.hpke_open(b(h["skRm"]), b(h["enc"]), b(h["info"]), b(h["aad"]), b(h["ct"]))
    assert pt.hex() == h["pt"]
