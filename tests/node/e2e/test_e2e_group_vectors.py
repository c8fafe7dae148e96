"""Every value of tests/vectors/e2e-groups.json, reproduced by the Python reference client.

The same file is checked by tests/js/e2e-groups.test.mjs with the browser
module, so each value below is agreed by two implementations.  Values are
rebuilt from the file's fixed inputs (keys, epoch keys, HPKE ephemeral
inputs, nonces), not copied, and every negative case must be refused with
the right exception.
"""

from __future__ import annotations

import copy
import importlib.machinery
import importlib.util
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from node.e2e import attachments as att
from node.e2e import groups as grp
from node.e2e import hpke
from node.e2e import messages as msg
from node.e2e.encoding import b64url_decode, b64url_encode
from node.e2e.keys import AccountKeys

ROOT = Path(__file__).resolve().parents[3]
PATH = ROOT / "tests/vectors/e2e-groups.json"
V: dict[str, Any] = json.loads(PATH.read_text("utf-8"))
d = b64url_decode

PEOPLE = {
    name: AccountKeys.from_private(d(k["sign_sk"]), d(k["enc_sk"]))
    for name, k in V["people"].items()
}
MEMBERS: dict[str, str] = V["members"]
G: str = V["group"]
K0, K1 = (d(k) for k in V["epoch_keys"])
BY_SIGN_PK = {b64url_encode(k.sign_pk): k for k in PEOPLE.values()}
STEP = att.CHUNK_SIZE + att.TAG


def test_vector_file_is_up_to_date() -> None:
    """The equivalent of ``scripts/gen-e2e-group-vectors --check``."""
    path = ROOT / "scripts" / "gen-e2e-group-vectors"
    loader = importlib.machinery.SourceFileLoader("gen_e2e_group_vectors", str(path))
    spec = importlib.util.spec_from_loader("gen_e2e_group_vectors", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    assert module.build() == PATH.read_text("utf-8")
    assert module.main(["--check"]) == 0


def test_people_keys() -> None:
    assert set(PEOPLE) == {"teacher", "anna", "ben"}
    for name, k in V["people"].items():
        assert b64url_encode(PEOPLE[name].sign_pk) == k["sign_pk"]
        assert b64url_encode(PEOPLE[name].enc_pk) == k["enc_pk"]
    assert V["suite"] == grp.SUITE
    assert len(d(G)) == 16 and len(K0) == len(K1) == 32


def _rebuilt_log() -> list[dict[str, Any]]:
    teacher, anna, ben = PEOPLE["teacher"], PEOPLE["anna"], PEOPLE["ben"]
    T, A, B = MEMBERS["teacher"], MEMBERS["anna"], MEMBERS["ben"]
    link_nonce = d(V["log"][6]["body"]["link"]["nonce"])
    bodies = [
        ("create", grp.create_body([teacher.sign_pk])),
        ("add", grp.add_body(T, "teacher", teacher.sign_pk, teacher.enc_pk)),
        ("add", grp.add_body(A, "guardian", anna.sign_pk, anna.enc_pk)),
        ("add", grp.add_body(B, "guardian", ben.sign_pk, ben.enc_pk)),
        ("rotate", grp.rotate_body(G, 0, K0, [B, A, T], None)),
        ("remove", grp.remove_body(B)),
        ("rotate", grp.rotate_body(G, 1, K1, [A, T], K0, _link_nonce_for_tests=link_nonce)),
    ]
    log: list[dict[str, Any]] = []
    for seq, (op, body) in enumerate(bodies):
        prev = grp.entry_hash(log[-1]) if log else None
        log.append(
            grp.make_entry(
                teacher.sign_sk, teacher.sign_pk, G, seq, prev, op, body, 1788000000 + seq
            )
        )
    return log


def test_log_entries_are_reproduced_from_the_fixed_keys() -> None:
    log = _rebuilt_log()
    assert len(log) == len(V["log"])
    for seq, (mine, theirs) in enumerate(zip(log, V["log"], strict=True)):
        assert mine == theirs, f"entry {seq}"
    assert [grp.entry_hash(e) for e in V["log"]] == V["hashes"]


def test_log_verifies_to_the_expected_state() -> None:
    st = grp.verify_log(
        copy.deepcopy(V["log"]),
        pinned_admins=[V["people"]["teacher"]["sign_pk"]],
        known_head=(6, V["hashes"][6]),
    )
    assert (st.group, st.head_seq, st.head_hash) == (G, 6, V["hashes"][6])
    assert st.active_members() == sorted([MEMBERS["teacher"], MEMBERS["anna"]])
    assert st.members[MEMBERS["ben"]].active is False
    assert [e.commit for e in st.epochs] == V["commitments"]
    assert [(e.cut, e.to) for e in st.epochs] == [
        (True, sorted(MEMBERS.values())),
        (False, sorted([MEMBERS["teacher"], MEMBERS["anna"]])),
    ]
    assert grp.epoch_keys_from(st, 1, K1) == {1: K1, 0: K0}
    assert grp.open_history_link(G, 1, K1, V["log"][6]["body"]["link"]) == K0
    for seq in range(7):
        grp.verify_log(copy.deepcopy(V["log"][: seq + 1]), known_head=(seq, V["hashes"][seq]))


def test_commitments() -> None:
    assert V["commitments"] == [
        b64url_encode(grp.epoch_commitment(G, 0, K0)),
        b64url_encode(grp.epoch_commitment(G, 1, K1)),
    ]


@pytest.mark.parametrize(
    ("name", "person", "epoch", "key"),
    [("anna_epoch_1", "anna", 1, K1), ("ben_epoch_0", "ben", 0, K0)],
)
def test_envelopes_with_the_fixed_ikm(name: str, person: str, epoch: int, key: bytes) -> None:
    k, member = PEOPLE[person], MEMBERS[person]
    env = grp.seal_epoch_key(
        G, epoch, key, member, k.enc_pk, _ikm_e_for_tests=d(V["envelope_ikm_e"][name])
    )
    assert env == V["envelopes"][name]
    opened = grp.open_epoch_key(G, env, member, k.enc_sk, k.enc_pk, V["commitments"][epoch])
    assert opened == key


def _reencrypt(wire: dict[str, Any], key: bytes) -> dict[str, Any]:
    h = wire["header"]
    author = BY_SIGN_PK[h["by"]]
    return msg.encrypt_message(
        sign_sk=author.sign_sk,
        sign_pk=author.sign_pk,
        author=h["author"],
        group=h["group"],
        kind=h["kind"],
        body=msg.decrypt_message(wire, key),
        message_key=key,
        epoch=h["epoch"],
        to=h["to"],
        parent=h["parent"],
        message_id=h["id"],
        version=h["version"],
        at=h["at"],
        _nonce_for_tests=d(h["nonce"]),
    ).wire()


@pytest.mark.parametrize("name", ["post", "comment"])
def test_epoch_messages_with_fixed_nonces(name: str) -> None:
    m = V["messages"][name]
    h = m["wire"]["header"]
    key = msg.message_key_from_epoch(K1, G, 1, h["id"])
    assert b64url_encode(key) == m["message_key"]
    assert h["epoch"] == 1 and h["to"] is None
    assert _reencrypt(m["wire"], key) == m["wire"]
    assert msg.decrypt_message(m["wire"], key) == m["body"]
    st = grp.verify_log(copy.deepcopy(V["log"]))
    assert st.signer_is_member(h["author"], h["by"])


def test_recipient_mode_message_with_fixed_nonce_and_ikm() -> None:
    m = V["messages"]["direct"]
    wire, key = m["wire"], d(m["message_key"])
    h = wire["header"]
    assert h["epoch"] is None and h["to"] == sorted([MEMBERS["anna"], MEMBERS["teacher"]])
    assert _reencrypt(wire, key) == {k: v for k, v in wire.items() if k != "keys"}
    assert msg.decrypt_message(wire, key) == m["body"]
    assert [s["member"] for s in wire["keys"]] == [MEMBERS["anna"], MEMBERS["teacher"]]
    for sealed in wire["keys"]:
        name = next(n for n, mid in MEMBERS.items() if mid == sealed["member"])
        k = PEOPLE[name]
        again = msg.seal_message_key(
            G, h["id"], key, sealed["member"], k.enc_pk, _ikm_e_for_tests=d(m["ikm_e"][name])
        )
        assert again == sealed
        assert msg.open_message_key(G, h["id"], sealed, sealed["member"], k.enc_sk, k.enc_pk) == key
    ben = PEOPLE["ben"]
    for sealed in wire["keys"]:
        with pytest.raises(msg.MessageError):
            msg.open_message_key(
                G,
                h["id"],
                {**sealed, "member": MEMBERS["ben"]},
                MEMBERS["ben"],
                ben.enc_sk,
                ben.enc_pk,
            )


@pytest.mark.parametrize("case", V["padding"], ids=lambda c: str(c["len"]))
def test_padding(case: dict[str, int]) -> None:
    padded = msg.pad(b"x" * case["len"])
    assert len(padded) == case["padded_len"]
    assert msg.unpad(padded) == b"x" * case["len"]


@pytest.mark.parametrize("case", V["attachments"]["files"], ids=lambda c: str(c["size"]))
def test_attachments(case: dict[str, Any]) -> None:
    assert V["attachments"]["chunk_size"] == att.CHUNK_SIZE
    size, key, prefix = case["size"], d(case["key"]), d(case["prefix"])
    data = bytes(i % 251 for i in range(size))
    blob = att.encrypt_file(key, prefix, data)
    assert len(blob) == case["ct_size"] == att.ciphertext_size(size)
    assert att.sha256_b64(blob) == case["ct_sha256"]
    assert case["ct_hex"] == (blob.hex() if size <= 1 else None)
    assert att.decrypt_file(key, prefix, size, blob) == data


# --------------------------------------------------------------------------- negative cases

LOG_REFUSALS = {
    "add signed by a guardian, not the teacher": "not an admin",
    "entry text changed after signing": "bad signature",
    "fork: prev is not the previous entry": "fork",
    "entries out of order": "out of order",
    "rotate still sealed to the removed member": "recipients differ",
    "log without its create entry": "out of order",
}


@pytest.mark.parametrize("case", V["negative"]["logs"], ids=lambda c: c["why"])
def test_negative_logs(case: dict[str, Any]) -> None:
    with pytest.raises(grp.GroupLogError, match=LOG_REFUSALS[case["why"]]):
        grp.verify_log(copy.deepcopy(case["log"]))


def test_negative_substituted_envelope() -> None:
    env = V["negative"]["substituted_envelope"]["envelope"]
    anna, member = PEOPLE["anna"], MEMBERS["anna"]
    aad = grp._envelope_aad(G, 1, member, anna.enc_pk)
    substituted = hpke.hpke_open(anna.enc_sk, d(env["enc"]), grp.EPOCH_KEY_INFO, aad, d(env["ct"]))
    assert substituted != K1  # it opens: only the commitment catches it
    with pytest.raises(grp.EpochKeyError, match="commitment"):
        grp.open_epoch_key(G, env, member, anna.enc_sk, anna.enc_pk, V["commitments"][1])


MESSAGE_REFUSALS = {
    "header moved to another group": "signature",
    "ciphertext altered": "signature",
    "header claims another epoch": "signature",
    "comment relabelled as a reaction": "signature",
    "another message's key": "commitment",
}


@pytest.mark.parametrize("case", V["negative"]["messages"], ids=lambda c: c["why"])
def test_negative_messages(case: dict[str, Any]) -> None:
    with pytest.raises(msg.MessageError, match=MESSAGE_REFUSALS[case["why"]]):
        msg.decrypt_message(copy.deepcopy(case["wire"]), d(case["message_key"]))


def _attachment_attack(why: str, blob: bytes, size: int) -> tuple[bytes, int]:
    first, last = blob[:STEP], blob[STEP:]
    attacks: dict[str, Callable[[], tuple[bytes, int]]] = {
        "last chunk dropped": lambda: (first, size),
        "chunks swapped": lambda: (last + first, size),
        "claimed size changed": lambda: (blob, size + 1),
    }
    return attacks[why]()


@pytest.mark.parametrize("why", V["negative"]["attachments"]["why"])
def test_negative_attachments(why: str) -> None:
    size = V["negative"]["attachments"]["size"]
    case = next(f for f in V["attachments"]["files"] if f["size"] == size)
    key, prefix = d(case["key"]), d(case["prefix"])
    blob = att.encrypt_file(key, prefix, bytes(i % 251 for i in range(size)))
    assert att.chunk_count(size) == 2
    bad, claimed = _attachment_attack(why, blob, size)
    with pytest.raises(att.AttachmentError):
        att.decrypt_file(key, prefix, claimed, bad)
    if why == "last chunk dropped":  # nor with the size of what is left
        with pytest.raises(att.AttachmentError, match="altered"):
            att.decrypt_file(key, prefix, att.CHUNK_SIZE, bad)
    if why == "claimed size changed":  # nor with a blob grown to fit the claim
        assert att.ciphertext_size(size + 1) == len(blob) + 1
        with pytest.raises(att.AttachmentError, match="altered"):
            att.decrypt_file(key, prefix, size + 1, blob + b"\x00")
