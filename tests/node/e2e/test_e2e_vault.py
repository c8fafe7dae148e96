"""Vault: round trips, tampering, wrong secrets, swapped keys, validation, rewrap."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest

from federation.canonical import canonical_json
from node.e2e import kdf, primitives, vault
from node.e2e.encoding import b64url_decode, b64url_encode
from node.e2e.keys import AccountKeys, generate_account_keys
from node.e2e.vaultdoc import (
    VaultError,
    VaultFormatError,
    validate_vault_document,
    vault_aad,
)

ROOT = Path(__file__).resolve().parents[3]
V: dict[str, Any] = json.loads((ROOT / "tests/vectors/e2e-suite.json").read_text("utf-8"))["vault"]
DOC: dict[str, Any] = V["document"]
PASS: str = V["inputs"]["passphrase"]
RK: str = V["recovery_key"]
LOW = {"_unsafe_low_iterations_for_tests": True}


def _flip(text: str, i: int = 0) -> str:
    raw = bytearray(b64url_decode(text))
    raw[i] ^= 1
    return b64url_encode(bytes(raw))


def _account() -> AccountKeys:
    i = V["inputs"]
    return AccountKeys.from_private(b64url_decode(i["sign_sk"]), b64url_decode(i["enc_sk"]))


def test_random_round_trip() -> None:
    account = generate_account_keys()
    doc, rk = vault.create_vault(
        account, "une phrase de passe assez longue", os.urandom(16), 2000, **LOW
    )
    validate_vault_document(doc, **LOW)
    assert json.loads(json.dumps(doc)) == doc
    assert (
        vault.open_vault_with_passphrase(doc, "une phrase de passe assez longue", **LOW) == account
    )
    assert vault.open_vault_with_recovery_key(doc, rk.lower(), **LOW) == account


def test_public_api_refuses_low_iterations() -> None:
    account = generate_account_keys()
    with pytest.raises(kdf.IterationsError):
        vault.create_vault(account, "une phrase de passe assez longue", os.urandom(16), 1000)
    with pytest.raises(VaultFormatError, match="iterations"):
        validate_vault_document(DOC)
    with pytest.raises(VaultFormatError):
        vault.open_vault_with_passphrase(DOC, PASS)
    with pytest.raises(kdf.IterationsError):
        kdf.derive_from_passphrase(PASS, bytes(16), 599_999)


MUTATIONS: list[tuple[str, set[str], Any]] = [
    ("vault ct", {"passphrase", "recovery"}, lambda d: d.update(ct=_flip(d["ct"], 3))),
    ("vault tag", {"passphrase", "recovery"}, lambda d: d.update(ct=_flip(d["ct"], 133))),
    ("vault nonce", {"passphrase", "recovery"}, lambda d: d.update(nonce=_flip(d["nonce"]))),
    ("enc_pk", {"passphrase", "recovery"}, lambda d: d.update(enc_pk=_flip(d["enc_pk"]))),
    ("sign_pk", {"passphrase", "recovery"}, lambda d: d.update(sign_pk=_flip(d["sign_pk"]))),
    ("pw wrap ct", {"passphrase"}, lambda d: d["wraps"][0].update(ct=_flip(d["wraps"][0]["ct"]))),
    (
        "pw nonce",
        {"passphrase"},
        lambda d: d["wraps"][0].update(nonce=_flip(d["wraps"][0]["nonce"])),
    ),
    (
        "pw salt",
        {"passphrase"},
        lambda d: d["wraps"][0]["kdf"].update(salt=_flip(d["wraps"][0]["kdf"]["salt"])),
    ),
    ("pw iterations", {"passphrase"}, lambda d: d["wraps"][0]["kdf"].update(iterations=1001)),
    (
        "rec wrap ct",
        {"recovery"},
        lambda d: d["wraps"][1].update(ct=_flip(d["wraps"][1]["ct"], 47)),
    ),
    (
        "rec nonce",
        {"recovery"},
        lambda d: d["wraps"][1].update(nonce=_flip(d["wraps"][1]["nonce"])),
    ),
]


@pytest.mark.parametrize(("name", "affected", "mutate"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_tampering(name: str, affected: set[str], mutate: Any) -> None:
    doc = copy.deepcopy(DOC)
    mutate(doc)
    validate_vault_document(doc, **LOW)  # structure stays valid: only crypto can tell
    openers = {
        "passphrase": lambda: vault.open_vault_with_passphrase(doc, PASS, **LOW),
        "recovery": lambda: vault.open_vault_with_recovery_key(doc, RK, **LOW),
    }
    for kind, open_ in openers.items():
        if kind in affected:
            with pytest.raises(VaultError):
                open_()
        else:
            assert open_() == _account(), f"{name} must not affect {kind}"


def test_wrong_secrets() -> None:
    with pytest.raises(VaultError, match="Wrong passphrase"):
        vault.open_vault_with_passphrase(DOC, PASS + "!", **LOW)
    with pytest.raises(VaultError, match="Wrong recovery key"):
        vault.open_vault_with_recovery_key(DOC, kdf.format_recovery_key(bytes(20)), **LOW)
    with pytest.raises(kdf.RecoveryKeyError):
        vault.open_vault_with_recovery_key(DOC, "ABCD-EFGH", **LOW)
    with pytest.raises(kdf.PassphraseError):
        vault.open_vault_with_passphrase(DOC, "short", **LOW)


def test_swapped_vault_is_refused() -> None:
    """Another account's private keys under this account's public keys, all MACs valid."""
    a, b = _account(), generate_account_keys()
    frankenstein = AccountKeys(
        sign_sk=b.sign_sk, sign_pk=a.sign_pk, enc_sk=b.enc_sk, enc_pk=a.enc_pk
    )
    recovery = os.urandom(20)
    doc = vault._seal_vault(
        frankenstein,
        vk=os.urandom(32),
        nonce=os.urandom(12),
        passphrase_wrap=None,
        recovery_wrap_key=kdf.recovery_wrap_key(recovery),
        recovery_nonce=os.urandom(12),
    )
    with pytest.raises(VaultError, match="swapped"):
        vault.open_vault_with_recovery_key(doc, kdf.format_recovery_key(recovery))


def test_whole_vault_swapped_between_accounts_fails() -> None:
    mine, theirs = generate_account_keys(), generate_account_keys()
    doc_a, _ = vault.create_vault(mine, "une phrase de passe assez longue", bytes(16), 1000, **LOW)
    doc_b, rk_b = vault.create_vault(
        theirs, "une phrase de passe assez longue", bytes(16), 1000, **LOW
    )
    spliced = {**doc_b, "sign_pk": doc_a["sign_pk"], "enc_pk": doc_a["enc_pk"]}
    with pytest.raises(VaultError):
        vault.open_vault_with_recovery_key(spliced, rk_b, **LOW)


def test_non_canonical_plaintext_is_refused() -> None:
    account, vk, nonce, recovery = _account(), os.urandom(32), os.urandom(12), os.urandom(20)
    doc = vault._seal_vault(
        account,
        vk=vk,
        nonce=nonce,
        passphrase_wrap=None,
        recovery_wrap_key=kdf.recovery_wrap_key(recovery),
        recovery_nonce=os.urandom(12),
    )
    body = {
        "v": 1,
        "sign_sk": b64url_encode(account.sign_sk),
        "enc_sk": b64url_encode(account.enc_sk),
    }
    plaintext = json.dumps(body, separators=(",", ":")).encode()  # right length, wrong key order
    assert len(plaintext) == len(canonical_json(body))
    aad = vault_aad(account.sign_pk, account.enc_pk)
    doc["ct"] = b64url_encode(primitives.aes256gcm_encrypt(vk, nonce, plaintext, aad))
    with pytest.raises(VaultError, match="canonical"):
        vault.open_vault_with_recovery_key(doc, kdf.format_recovery_key(recovery))


def _variants() -> list[tuple[str, Any]]:
    def wraps(w: list[Any]) -> dict[str, Any]:
        return {**DOC, "wraps": w}

    pw, rec = DOC["wraps"]
    return [
        ("not a dict", []),
        ("v=2", {**DOC, "v": 2}),
        ("v=True", {**DOC, "v": True}),
        ("suite", {**DOC, "suite": "carnet-e2e-2"}),
        ("extra field", {**DOC, "x": 1}),
        ("missing field", {k: v for k, v in DOC.items() if k != "nonce"}),
        ("padded nonce", {**DOC, "nonce": DOC["nonce"] + "="}),
        ("short ct", {**DOC, "ct": DOC["ct"][:-4]}),
        ("bad sign_pk", {**DOC, "sign_pk": DOC["sign_pk"][:-1] + "+"}),
        ("no wraps", wraps([])),
        ("no recovery", wraps([pw])),
        ("duplicate", wraps([rec, rec])),
        ("three", wraps([pw, rec, rec])),
        ("unknown kind", wraps([rec, {**pw, "kind": "password"}])),
        ("kdf name", wraps([{**pw, "kdf": {**pw["kdf"], "name": "argon2id"}}, rec])),
        ("float iterations", wraps([{**pw, "kdf": {**pw["kdf"], "iterations": 1000.0}}, rec])),
        ("huge iterations", wraps([{**pw, "kdf": {**pw["kdf"], "iterations": 10**9}}, rec])),
        ("short salt", wraps([{**pw, "kdf": {**pw["kdf"], "salt": "AAAA"}}, rec])),
        ("wrap extra", wraps([pw, {**rec, "kdf": pw["kdf"]}])),
        ("wrap ct length", wraps([pw, {**rec, "ct": rec["ct"][:-3]}])),
    ]


@pytest.mark.parametrize(("name", "doc"), _variants(), ids=[v[0] for v in _variants()])
def test_validation_rejects(name: str, doc: Any) -> None:
    with pytest.raises(VaultFormatError):
        validate_vault_document(doc, **LOW)
    assert issubclass(VaultFormatError, ValueError)


def test_recovery_only_vault_is_valid() -> None:
    validate_vault_document({**DOC, "wraps": [DOC["wraps"][1]]}, **LOW)


def test_rewrap_passphrase() -> None:
    account = _account()
    vk = vault.unwrap_vault_key_with_recovery_key(DOC, RK, **LOW)
    new = vault.rewrap_passphrase(DOC, vk, "a brand new passphrase", os.urandom(16), 1500, **LOW)
    assert new["wraps"][1] == DOC["wraps"][1] and new["ct"] == DOC["ct"]
    assert vault.open_vault_with_passphrase(new, "a brand new passphrase", **LOW) == account
    assert vault.open_vault_with_recovery_key(new, RK, **LOW) == account
    with pytest.raises(VaultError):
        vault.open_vault_with_passphrase(new, PASS, **LOW)
    with pytest.raises(VaultError):
        vault.rewrap_passphrase(
            DOC, os.urandom(32), "a brand new passphrase", bytes(16), 1500, **LOW
        )
