"""The ``admins`` log operation: a school changes who may sign alerts (e2e-groups.md §2, §7).

Round trips with the reference client (change_admins, add_guardians with the
role admin), the known-answer vectors of ``admins_change`` in
tests/vectors/e2e-alerts.json (scripts/gen-e2e-alert-vectors, also checked by
tests/js/e2e-admins.test.mjs), and what must be refused: an ``admins`` entry
by a non-admin or with a bad body, a dropped key's alert in a later epoch, a
message while the change waits for its rotate, a pin naming other admins.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from node import refclient_groups as rc
from node.e2e import groups as grp
from node.e2e import messages as msg
from node.e2e.encoding import b64url_decode, b64url_encode
from node.e2e.keys import AccountKeys, generate_account_keys

ROOT = Path(__file__).resolve().parents[3]
V: dict[str, Any] = json.loads((ROOT / "tests/vectors/e2e-alerts.json").read_text("utf-8"))
C: dict[str, Any] = V["admins_change"]
d = b64url_decode
ADMIN, ANNA, DEPUTY, STAFF = "1@school.test", "2@school.test", "4@school.test", "5@school.test"
BODY = {"template": "lockdown", "text": "Confinement.", "drill": False}


def b64(data: bytes) -> str:
    return b64url_encode(data)


def candidate(member: str, k: AccountKeys, role: str | None = None) -> dict[str, str]:
    c = {"member": member, "sign_pk": b64(k.sign_pk), "enc_pk": b64(k.enc_pk)}
    return c if role is None else {**c, "role": role}


class School:
    def __init__(self) -> None:
        self.admin, self.anna = generate_account_keys(), generate_account_keys()
        self.deputy, self.staff = generate_account_keys(), generate_account_keys()
        self.log, self.envelopes, key = rc.setup_school_group(self.admin, ADMIN)
        new, envs = rc.add_guardians(self.admin, self.log, [candidate(ANNA, self.anna)], key)
        self.log += new
        self.envelopes += envs
        self.keys = {0: key}

    @property
    def state(self) -> grp.GroupState:
        return grp.verify_log(copy.deepcopy(self.log))

    @property
    def key(self) -> bytes:
        return self.keys[max(self.keys)]

    def change(self, admins: list[AccountKeys], signer: AccountKeys | None = None) -> None:
        new, envs, key = rc.change_admins(
            signer or self.admin, self.log, [a.sign_pk for a in admins], self.key
        )
        assert [e["op"] for e in new] == ["admins", "rotate"]
        assert new[1]["body"]["cut"] is True
        self.log += new
        self.envelopes += envs
        self.keys[len(self.keys)] = key

    def add_admin(self, member: str, k: AccountKeys) -> None:
        new, envs = rc.add_guardians(
            self.admin, self.log, [candidate(member, k, "admin")], self.key
        )
        assert new[0]["body"]["role"] == "admin"
        self.log += new
        self.envelopes += envs

    def alert(self, k: AccountKeys, me: str) -> dict[str, Any]:
        state = self.state
        return rc.encrypt_alert(k, me, state, self.keys, BODY["template"], BODY["text"], False)

    def forged(self, k: AccountKeys, me: str, epoch: int) -> dict[str, Any]:
        mid = msg.new_message_id()
        key = msg.message_key_from_epoch(self.keys[epoch], self.state.group, epoch, mid)
        sealed = msg.encrypt_message(
            sign_sk=k.sign_sk, sign_pk=k.sign_pk, author=me, group=self.state.group,
            kind="alert", body=BODY, message_key=key, epoch=epoch, message_id=mid,
        )  # fmt: skip
        return {"message": sealed.wire()}


# --------------------------------------------------------------------------- round trips


def test_admin_appointed_later_signs_alerts_in_the_new_epoch() -> None:
    s = School()
    with pytest.raises(ValueError, match="must be one of the group's admins"):
        rc.add_guardians(s.admin, s.log, [candidate(STAFF, s.staff, "admin")], s.key)
    s.change([s.admin, s.staff])
    s.add_admin(STAFF, s.staff)
    state = s.state
    assert state.admins == [b64(s.admin.sign_pk), b64(s.staff.sign_pk)]
    assert state.root_admins == [b64(s.admin.sign_pk)]
    assert [e.admins for e in state.epochs] == [[b64(s.admin.sign_pk)], state.admins]
    assert not state.pending_admins and not state.pending
    # Everyone active got the new epoch key; the staff member's envelope came with their add.
    view = {"entries": copy.deepcopy(s.log), "me": STAFF}
    view["envelopes"] = [e for e in s.envelopes if e["member"] == STAFF]
    _, staff_keys = rc.open_epoch_keys(view, s.staff)
    assert staff_keys == {1: s.keys[1]}
    anna_view = {**view, "me": ANNA, "envelopes": [e for e in s.envelopes if e["member"] == ANNA]}
    _, anna_keys = rc.open_epoch_keys(anna_view, s.anna)
    assert anna_keys == {0: s.keys[0], 1: s.keys[1]}
    item = s.alert(s.staff, STAFF)
    assert item["message"]["header"]["epoch"] == 1
    assert rc.decrypt_alert(item, state, anna_keys) == BODY


def test_dropped_admin_old_alerts_stay_valid_new_ones_are_refused() -> None:
    s = School()
    s.change([s.admin, s.deputy])
    s.add_admin(DEPUTY, s.deputy)
    old = s.alert(s.deputy, DEPUTY)  # epoch 1
    s.change([s.admin])  # epoch 2: the deputy is out of the emergency role
    state = s.state
    assert state.members[DEPUTY].role == "admin" and state.members[DEPUTY].active
    assert DEPUTY in state.epochs[2].to  # still a member: they read alerts
    assert rc.decrypt_alert(old, state, s.keys) == BODY
    with pytest.raises(msg.MessageError, match="emergency-role keys of its epoch"):
        rc.decrypt_alert(s.forged(s.deputy, DEPUTY, 2), state, s.keys)
    with pytest.raises(msg.MessageError, match="emergency-role keys of its epoch"):
        s.alert(s.deputy, DEPUTY)  # encrypt_alert refuses before sending
    # The generic path applies the same rule.
    item = s.forged(s.deputy, DEPUTY, 2)
    h = item["message"]["header"]
    key = msg.message_key_from_epoch(s.keys[2], state.group, 2, h["id"])
    with pytest.raises(msg.MessageError, match="emergency-role keys of its epoch"):
        msg.decrypt_message(item["message"], key, state=state)
    # The deputy can no longer sign log entries either, nor be re-added as an admin.
    with pytest.raises(grp.GroupLogError, match="not an admin of this group"):
        s.change([s.admin, s.deputy], signer=s.deputy)
    with pytest.raises(ValueError, match="must be one of the group's admins"):
        s.add_admin(DEPUTY, s.deputy)


def test_pending_admin_change_blocks_encryption_until_the_rotate() -> None:
    s = School()
    prev = grp.entry_hash(s.log[-1])
    entry = grp.make_entry(
        s.admin.sign_sk, s.admin.sign_pk, s.state.group, len(s.log), prev, "admins",
        grp.admins_body([s.admin.sign_pk, s.staff.sign_pk]), 0,
    )  # fmt: skip
    state = grp.verify_log([*copy.deepcopy(s.log), entry])
    assert state.pending_admins and state.pending and state.pending_removals == []
    with pytest.raises(grp.EpochKeyError, match="admin change is waiting"):
        rc.encrypt_alert(s.admin, ADMIN, state, s.keys, "lockdown", "", False)
    with pytest.raises(grp.EpochKeyError, match="admin change is waiting"):
        rc.encrypt(s.admin, ADMIN, state, s.keys, "post", {"text": "x", "attachments": []})
    # Several admins entries may follow each other; the next rotate settles them all.
    second = grp.make_entry(
        s.admin.sign_sk, s.admin.sign_pk, state.group, len(s.log) + 1, grp.entry_hash(entry),
        "admins", grp.admins_body([s.admin.sign_pk]), 0,
    )  # fmt: skip
    state = grp.verify_log([*copy.deepcopy(s.log), entry, second])
    assert state.pending_admins and state.admins == [b64(s.admin.sign_pk)]


def test_pins_follow_the_root_or_the_known_head() -> None:
    s = School()
    pin_admins, pin_head = s.state.admins, (s.state.head_seq, s.state.head_hash)
    s.change([s.admin, s.staff])
    state = s.state
    # The create's admins, or the admins at the remembered head, with that head.
    grp.verify_log(copy.deepcopy(s.log), pinned_admins=pin_admins, known_head=pin_head)
    head = (state.head_seq, state.head_hash)
    grp.verify_log(copy.deepcopy(s.log), pinned_admins=state.admins, known_head=head)
    with pytest.raises(grp.GroupLogError, match="teacher keys changed"):
        grp.verify_log(copy.deepcopy(s.log), pinned_admins=state.admins)
    # A log rooted in another key that hands the role to the pinned keys is refused.
    stranger = generate_account_keys()
    log, _, key = rc.setup_school_group(stranger, "9@school.test")
    new, _, _ = rc.change_admins(stranger, log, [s.admin.sign_pk], key)
    with pytest.raises(grp.GroupLogError, match="teacher keys changed"):
        grp.verify_log(log + new[:1], pinned_admins=[b64(s.admin.sign_pk)])


# --------------------------------------------------------------------------- vectors


PEOPLE = {
    name: AccountKeys.from_private(d(k["sign_sk"]), d(k["enc_sk"]))
    for name, k in {**V["people"], "staff": C["staff"]}.items()
}
KEYS = {i: d(k) for i, k in enumerate(C["epoch_keys"])}


def vector_state() -> grp.GroupState:
    return grp.verify_log(copy.deepcopy(C["log"]))


def test_vector_log_state_and_envelope() -> None:
    state = vector_state()
    assert C["log"][:5] == V["log"]
    assert [grp.entry_hash(e) for e in C["log"]] == C["hashes"]
    assert [e["op"] for e in C["log"][5:]] == ["add", "admins", "add", "rotate"]
    assert C["log"][6]["body"] == grp.admins_body([PEOPLE["admin"].sign_pk, PEOPLE["staff"].sign_pk])  # fmt: skip
    assert state.admins == C["state"]["admins"] == C["new_admins"]
    assert state.root_admins == C["state"]["root_admins"] == V["state"]["admins"]
    assert [e.admins for e in state.epochs] == C["state"]["epoch_admins"]
    assert {m: x.role for m, x in state.members.items()} == C["state"]["roles"]
    assert state.active_members() == C["state"]["active"]
    pending = [
        grp.verify_log(copy.deepcopy(C["log"][: n + 1])).pending_admins
        for n in range(len(C["log"]))
    ]
    assert pending == C["pending_admins"] == [False] * 6 + [True, True, False]
    anna, env = PEOPLE["anna"], C["envelopes"]["anna_epoch_1"]
    commit = state.epochs[1].commit
    assert grp.open_epoch_key(state.group, env, ANNA, anna.enc_sk, anna.enc_pk, commit) == KEYS[1]
    again = grp.seal_epoch_key(
        state.group, 1, KEYS[1], ANNA, anna.enc_pk,
        _ikm_e_for_tests=d(C["envelope_ikm_e"]["anna_epoch_1"]),
    )  # fmt: skip
    assert again == env


@pytest.mark.parametrize("name", ["staff_epoch_1", "deputy_epoch_0", "admin_epoch_1"])
def test_vector_alerts_open(name: str) -> None:
    wire = C["alerts"][name]["wire"]
    assert rc.decrypt_alert({"message": copy.deepcopy(wire)}, vector_state(), KEYS) == {
        "template": "lockdown",
        "text": "Confinement : restez à l'écart de l'école.",
        "drill": False,
    }


@pytest.mark.parametrize("case", C["negative"]["alerts"], ids=lambda c: c["why"])
def test_vector_negative_alerts_are_refused(case: dict[str, Any]) -> None:
    with pytest.raises(msg.MessageError, match=case["error"]):
        rc.decrypt_alert({"message": copy.deepcopy(case["wire"])}, vector_state(), KEYS)


@pytest.mark.parametrize("case", C["negative"]["logs"], ids=lambda c: c["why"])
def test_vector_negative_logs_are_refused(case: dict[str, Any]) -> None:
    with pytest.raises(grp.GroupLogError, match=case["error"]):
        grp.verify_log(copy.deepcopy(case["log"]))


# --------------------------------------------------------------------------- tampering


def test_tampered_admins_entry_is_refused() -> None:
    s = School()
    new, _, _ = rc.change_admins(s.admin, s.log, [s.admin.sign_pk, s.staff.sign_pk], s.key)
    changed = copy.deepcopy(new[0])
    changed["body"]["admins"] = [b64(s.staff.sign_pk)]  # the node rewrites the list
    with pytest.raises(grp.GroupLogError, match="bad signature"):
        grp.verify_log([*copy.deepcopy(s.log), changed])
    # The rotate is chained to the admins entry: it cannot be replayed without it.
    with pytest.raises(grp.GroupLogError, match="fork|sequence"):
        grp.verify_log([*copy.deepcopy(s.log), new[1]])
    with pytest.raises(grp.GroupLogError, match="not an admin of this group"):
        rc.change_admins(s.anna, s.log, [s.anna.sign_pk], s.key)
    with pytest.raises(grp.EpochKeyError):
        rc.change_admins(s.admin, s.log, [s.admin.sign_pk], bytes(32))
    for bad, reason in [
        ([], "1-16 admins"),
        ([generate_account_keys().sign_pk for _ in range(17)], "1-16 admins"),
        ([s.admin.sign_pk, s.admin.sign_pk], "listed twice"),
    ]:
        with pytest.raises(grp.GroupLogError, match=reason):
            rc.change_admins(s.admin, s.log, bad, s.key)
