"""The school's "all guardians" group and its emergency alerts (docs/protocol/e2e-groups.md §7).

Three kinds of tests, as for the rest of the suite: round trips with the
reference client (node/refclient_groups.py), the known-answer vectors of
tests/vectors/e2e-alerts.json (scripts/gen-e2e-alert-vectors, also checked by
tests/js/e2e-alerts.test.mjs), and tampering that must be refused: an alert
signed by anyone but an emergency-role key, an ``add`` with the role admin
and a key that is not an admin's, an alert in recipient mode, a relabelled
header, a bad body, a swapped group id.  A JS-made school group and alerts
(tests/js/make-alerts-roundtrip.mjs) must open here too.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.machinery
import importlib.util
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from node import refclient_groups as rc
from node.e2e import groups as grp
from node.e2e import messages as msg
from node.e2e.encoding import b64url_decode, b64url_encode
from node.e2e.keys import AccountKeys, generate_account_keys, sign_object

ROOT = Path(__file__).resolve().parents[3]
PATH = ROOT / "tests/vectors/e2e-alerts.json"
V: dict[str, Any] = json.loads(PATH.read_text("utf-8"))
d = b64url_decode

ADMIN_ID = "1@school.test"
FIRST = {"template": "lockdown", "text": "Confinement : restez chez vous.", "drill": False}


def b64(data: bytes) -> str:
    return b64url_encode(data)


def fixed(label: str, n: int = 32) -> bytes:
    return hashlib.sha256(b"carnet-e2e-1/vector-input/" + label.encode()).digest()[:n]


def candidate(member: str, k: AccountKeys) -> dict[str, str]:
    return {"member": member, "sign_pk": b64(k.sign_pk), "enc_pk": b64(k.enc_pk)}


class School:
    """A school group made with the reference client: an admin and two guardians."""

    def __init__(self) -> None:
        self.admin = generate_account_keys()
        self.anna, self.ben = generate_account_keys(), generate_account_keys()
        self.log, envelopes, self.key = rc.setup_school_group(self.admin, ADMIN_ID)
        new, more = rc.add_guardians(
            self.admin,
            self.log,
            [candidate("2@school.test", self.anna), candidate("3@school.test", self.ben)],
            self.key,
        )
        self.log += new
        self.envelopes = envelopes + more
        self.state = grp.verify_log(copy.deepcopy(self.log))

    def view(self, me: str) -> dict[str, Any]:
        """What the node serves a member: the log and their own envelopes."""
        mine = [e for e in self.envelopes if e["member"] == me]
        return {"entries": copy.deepcopy(self.log), "envelopes": mine, "me": me}

    def alert(self, **kw: Any) -> dict[str, Any]:
        args = {**FIRST, **kw}
        return rc.encrypt_alert(
            self.admin, ADMIN_ID, self.state, {0: self.key}, args["template"], args["text"],
            args["drill"], args.get("parent"),
        )  # fmt: skip

    def forged(
        self, signer: AccountKeys, author: str, body: Any = None, **kw: Any
    ) -> dict[str, Any]:
        """An alert made without encrypt_alert's checks (a valid signature by ``signer``)."""
        mid = msg.new_message_id()
        key = msg.message_key_from_epoch(self.key, self.state.group, 0, mid)
        args: dict[str, Any] = {"epoch": 0, **kw}
        sealed = msg.encrypt_message(
            sign_sk=signer.sign_sk, sign_pk=signer.sign_pk, author=author,
            group=self.state.group, kind="alert", body=FIRST if body is None else body,
            message_key=key, message_id=mid, **args,
        )  # fmt: skip
        return {"message": sealed.wire()}


@pytest.fixture(scope="module")
def school() -> School:
    return School()


def resign(wire: dict[str, Any], signer: AccountKeys, change: Any) -> dict[str, Any]:
    """``wire`` with its header changed and signed again: only the rules can refuse it."""
    bad = copy.deepcopy(wire)
    change(bad["header"])
    ct = b64url_decode(bad["ct"])
    signed = {"ct_sha256": b64(hashlib.sha256(ct).digest()), "header": bad["header"]}
    bad["sig"] = sign_object(signer.sign_sk, msg.CONTEXT_MESSAGE, signed)
    return bad


# --------------------------------------------------------------------------- round trips


def test_school_group_setup(school: School) -> None:
    state = school.state
    assert state.admins == [b64(school.admin.sign_pk)]
    assert state.history == "from_join"
    assert {m: x.role for m, x in state.members.items()} == {
        ADMIN_ID: "admin",
        "2@school.test": "guardian",
        "3@school.test": "guardian",
    }
    assert [e.cut for e in state.epochs] == [True] and state.epochs[0].to == [ADMIN_ID]
    assert [e["op"] for e in school.log] == ["create", "add", "rotate", "add", "add"]
    # Each guardian opens their envelope; the admin too.
    for me, k in [("2@school.test", school.anna), (ADMIN_ID, school.admin)]:
        _, keys = rc.open_epoch_keys(school.view(me), k)
        assert keys == {0: school.key}


def test_alert_thread_round_trip(school: School) -> None:
    _, keys = rc.open_epoch_keys(school.view("2@school.test"), school.anna)
    first = school.alert()
    header = first["message"]["header"]
    assert header["kind"] == "alert" and header["parent"] is None
    assert header["epoch"] == 0 and header["to"] is None and header["author"] == ADMIN_ID
    assert set(first) == {"message"}
    assert rc.decrypt_alert(first, school.state, keys) == FIRST
    follow = school.alert(template="free", text="Tous les élèves sont à l'abri 🙏", parent=header["id"])  # fmt: skip
    assert follow["message"]["header"]["parent"] == header["id"]
    assert (
        rc.decrypt_alert(follow, school.state, keys)["text"] == "Tous les élèves sont à l'abri 🙏"
    )
    clear = school.alert(template="all_clear", text="", drill=True, parent=header["id"])
    assert rc.decrypt_alert(clear, school.state, keys) == {
        "template": "all_clear",
        "text": "",
        "drill": True,
    }
    # The generic feed path opens an alert the same way (and checks its signer).
    assert rc.decrypt(clear, school.state, keys, school.anna, "2@school.test")["drill"] is True
    # Every template, and a text of exactly 2000 characters (astral ones count once).
    for template in msg.ALERT_TEMPLATES:
        item = school.alert(template=template, text="🚨" * 2000)
        assert rc.decrypt_alert(item, school.state, keys)["template"] == template


def test_alert_body_rules_accept_what_the_spec_allows() -> None:
    for template in msg.ALERT_TEMPLATES:
        body = {"template": template, "text": "x", "drill": False}
        assert msg.check_alert_body(body) is body
    assert msg.check_alert_body({"template": "shelter", "text": "", "drill": True})
    assert msg.check_alert_body({"template": "free", "text": "é" * 2000, "drill": False})


def test_guardian_added_later_reads_new_alerts(school: School) -> None:
    late = generate_account_keys()
    log = copy.deepcopy(school.log)
    new, envelopes = rc.add_guardians(
        school.admin, log, [candidate("9@school.test", late)], school.key
    )
    assert [e["body"]["role"] for e in new] == ["guardian"]
    state = grp.verify_log(log + new)
    view = {"entries": log + new, "envelopes": envelopes, "me": "9@school.test"}
    _, keys = rc.open_epoch_keys(view, late)
    item = rc.encrypt_alert(
        school.admin, ADMIN_ID, state, {0: school.key}, "do_not_come", "École fermée demain.", False
    )
    assert rc.decrypt_alert(item, state, keys)["template"] == "do_not_come"
    # Without the epoch's key (not given one), nothing opens.
    with pytest.raises(grp.EpochKeyError):
        rc.decrypt_alert(item, state, {})


def test_add_guardians_whole_school_in_one_call() -> None:
    admin = generate_account_keys()
    log, _, key = rc.setup_school_group(admin, ADMIN_ID)
    people = [generate_account_keys() for _ in range(2000)]
    cands = [candidate(f"g{i}@school.test", k) for i, k in enumerate(people)]
    new, envelopes = rc.add_guardians(admin, log, cands, key)
    assert len(new) == len(envelopes) == 2000
    assert [e["seq"] for e in new] == list(range(3, 2003))
    state = grp.verify_log(log + new)
    assert len(state.active_members()) == 2001
    assert all(m.role == "guardian" for m in state.members.values() if m.member != ADMIN_ID)
    for i in (0, 999, 1999):  # a sample of envelopes opens to the epoch key
        env = envelopes[i]
        assert env["member"] == f"g{i}@school.test"
        opened = grp.open_epoch_key(
            state.group, env, env["member"], people[i].enc_sk, people[i].enc_pk,
            state.epochs[0].commit,
        )  # fmt: skip
        assert opened == key


def test_add_guardians_refuses_a_wrong_epoch_key_or_bad_candidate() -> None:
    admin = generate_account_keys()
    log, _, key = rc.setup_school_group(admin, ADMIN_ID)
    anna = generate_account_keys()
    with pytest.raises(grp.EpochKeyError):
        rc.add_guardians(admin, log, [candidate("2@school.test", anna)], grp.new_epoch_key())
    with pytest.raises(grp.GroupLogError, match="member must be"):
        rc.add_guardians(admin, log, [candidate("bad id!", anna)], key)


# --------------------------------------------------------------------------- vectors


def test_vector_file_is_up_to_date() -> None:
    """The equivalent of ``scripts/gen-e2e-alert-vectors --check``."""
    path = ROOT / "scripts" / "gen-e2e-alert-vectors"
    loader = importlib.machinery.SourceFileLoader("gen_e2e_alert_vectors", str(path))
    spec = importlib.util.spec_from_loader("gen_e2e_alert_vectors", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    assert module.build() == PATH.read_text("utf-8")
    assert module.main(["--check"]) == 0


PEOPLE = {
    name: AccountKeys.from_private(d(k["sign_sk"]), d(k["enc_sk"]))
    for name, k in V["people"].items()
}
VG: str = V["group"]
VK0 = d(V["epoch_keys"][0])


def vector_state() -> grp.GroupState:
    return grp.verify_log(copy.deepcopy(V["log"]))


def test_vector_log_and_envelope() -> None:
    state = vector_state()
    assert [grp.entry_hash(e) for e in V["log"]] == V["hashes"]
    assert (
        state.admins
        == V["state"]["admins"]
        == [
            b64(PEOPLE["admin"].sign_pk),
            b64(PEOPLE["deputy"].sign_pk),
        ]
    )
    assert state.history == V["state"]["history"] == "from_join"
    assert {m: x.role for m, x in state.members.items()} == V["state"]["roles"]
    assert state.active_members() == V["state"]["active"]
    anna, env = PEOPLE["anna"], V["envelopes"]["anna_epoch_0"]
    key = grp.open_epoch_key(
        VG, env, V["members"]["anna"], anna.enc_sk, anna.enc_pk, state.epochs[0].commit
    )
    assert key == VK0
    again = grp.seal_epoch_key(
        VG, 0, VK0, V["members"]["anna"], anna.enc_pk,
        _ikm_e_for_tests=d(V["envelope_ikm_e"]["anna_epoch_0"]),
    )  # fmt: skip
    assert again == env


@pytest.mark.parametrize("name", ["first", "follow_up", "all_clear", "long_text"])
def test_vector_alert_opens_and_is_reproduced(name: str) -> None:
    state = vector_state()
    case, inputs = V["alerts"][name], V["inputs"][name]
    wire, header = case["wire"], case["wire"]["header"]
    assert rc.decrypt_alert({"message": wire}, state, {0: VK0}) == case["body"]
    km = msg.message_key_from_epoch(VK0, VG, 0, header["id"])
    assert b64(km) == case["message_key"]
    assert header["id"] == b64(fixed(inputs["id_label"], 16))
    admin = PEOPLE["admin"]
    again = msg.encrypt_message(
        sign_sk=admin.sign_sk, sign_pk=admin.sign_pk, author=header["author"], group=VG,
        kind="alert", body=case["body"], message_key=km, epoch=0, parent=header["parent"],
        message_id=header["id"], at=header["at"],
        _nonce_for_tests=fixed(inputs["nonce_label"], 12),
    )  # fmt: skip
    assert again.wire() == wire
    if name in ("follow_up", "all_clear"):
        assert header["parent"] == V["alerts"]["first"]["wire"]["header"]["id"]
    else:
        assert header["parent"] is None


@pytest.mark.parametrize("case", V["negative"]["alerts"], ids=lambda c: c["why"])
def test_vector_negative_alerts_are_refused(case: dict[str, Any]) -> None:
    with pytest.raises(msg.MessageError, match=case["error"].replace("(", r"\(")):
        rc.decrypt_alert({"message": copy.deepcopy(case["wire"])}, vector_state(), {0: VK0})


@pytest.mark.parametrize("case", V["negative"]["logs"], ids=lambda c: c["why"])
def test_vector_negative_logs_are_refused(case: dict[str, Any]) -> None:
    with pytest.raises(grp.GroupLogError, match=case["error"]):
        grp.verify_log(copy.deepcopy(case["log"]))


# --------------------------------------------------------------------------- tampering


def test_alert_signed_by_a_guardian_member_is_refused(school: School) -> None:
    item = school.forged(school.anna, "2@school.test")
    assert msg.verify_signature(item["message"])  # the signature itself is valid
    with pytest.raises(msg.MessageError, match="emergency-role keys"):
        rc.decrypt_alert(item, school.state, {0: school.key})
    with pytest.raises(msg.MessageError, match="emergency-role keys"):
        rc.decrypt(item, school.state, {0: school.key}, school.anna, "2@school.test")
    with pytest.raises(msg.MessageError, match="emergency-role keys"):
        msg.check_alert_signer(school.state, item["message"]["header"])
    # A guardian naming the admin as author does not get through either.
    item = school.forged(school.anna, ADMIN_ID)
    with pytest.raises(msg.MessageError, match="emergency-role keys"):
        rc.decrypt_alert(item, school.state, {0: school.key})
    # The key of a guardian is no emergency-role key for encrypt_alert either.
    with pytest.raises(msg.MessageError, match="emergency-role keys"):
        rc.encrypt_alert(school.anna, "2@school.test", school.state, {0: school.key}, "lockdown", "", False)  # fmt: skip


def test_alert_by_a_key_not_in_admins_is_refused(school: School) -> None:
    outsider = generate_account_keys()
    with pytest.raises(msg.MessageError, match="emergency-role keys"):
        rc.decrypt_alert(school.forged(outsider, ADMIN_ID), school.state, {0: school.key})
    # An admin key whose holder is not a member with the role admin.
    deputy = generate_account_keys()
    log = copy.deepcopy(school.log)
    log[0] = grp.make_entry(
        school.admin.sign_sk, school.admin.sign_pk, log[0]["group"], 0, None, "create",
        grp.create_body([school.admin.sign_pk, deputy.sign_pk], "from_join"), 0,
    )  # fmt: skip
    for i in range(1, len(log)):
        e = log[i]
        log[i] = grp.make_entry(
            school.admin.sign_sk, school.admin.sign_pk, e["group"], i, grp.entry_hash(log[i - 1]),
            e["op"], e["body"], 0,
        )  # fmt: skip
    state = grp.verify_log(log)
    deputy_alert = school.forged(deputy, "4@school.test")
    with pytest.raises(msg.MessageError, match="not a school admin of this group"):
        msg.check_alert_signer(state, deputy_alert["message"]["header"])
    with pytest.raises(msg.MessageError, match="does not give this key to its author"):
        msg.check_alert_signer(state, school.forged(deputy, ADMIN_ID)["message"]["header"])
    # A guardian holding an admin key still may not send alerts (role guardian).
    log.append(
        grp.make_entry(
            school.admin.sign_sk, school.admin.sign_pk, state.group, len(log),
            grp.entry_hash(log[-1]), "add",
            grp.add_body("4@school.test", "guardian", deputy.sign_pk, deputy.enc_pk), 0,
        )
    )  # fmt: skip
    with pytest.raises(msg.MessageError, match="not a school admin of this group"):
        msg.check_alert_signer(grp.verify_log(log), deputy_alert["message"]["header"])


def test_add_with_role_admin_needs_an_admin_key(school: School) -> None:
    outsider = generate_account_keys()
    log = copy.deepcopy(school.log)

    def add(member: str, k: AccountKeys) -> list[dict[str, Any]]:
        body = grp.add_body(member, "admin", k.sign_pk, k.enc_pk)
        entry = grp.make_entry(
            school.admin.sign_sk, school.admin.sign_pk, school.state.group, len(log),
            grp.entry_hash(log[-1]), "add", body, 0,
        )  # fmt: skip
        return [*log, entry]

    with pytest.raises(grp.GroupLogError, match="role admin must hold one of the group's admin"):
        grp.verify_log(add("7@school.test", outsider))
    with pytest.raises(grp.GroupLogError, match="role admin must hold one of the group's admin"):
        grp.verify_log(add("2@school.test", school.anna))  # promoting a guardian
    assert (
        grp.verify_log(add("8@school.test", school.admin)).members["8@school.test"].role == "admin"
    )


def test_alert_in_recipient_mode_is_refused(school: School) -> None:
    with pytest.raises(msg.MessageError, match="never to chosen recipients"):
        school.forged(school.admin, ADMIN_ID, epoch=None, to=[ADMIN_ID, "2@school.test"])
    wire = resign(
        school.alert()["message"],
        school.admin,
        lambda h: h.update(epoch=None, to=["2@school.test"]),
    )
    with pytest.raises(msg.MessageError, match="never to chosen recipients"):
        msg.check_header(wire["header"])
    with pytest.raises(msg.MessageError, match="never to chosen recipients"):
        rc.decrypt_alert({"message": wire}, school.state, {0: school.key})
    assert not msg.verify_signature(wire)


def test_changed_kind_or_template_is_refused(school: School) -> None:
    keys = {0: school.key}
    item = school.alert()
    as_post = copy.deepcopy(item)
    as_post["message"]["header"]["kind"] = "post"
    with pytest.raises(msg.MessageError, match="not an alert"):
        rc.decrypt_alert(as_post, school.state, keys)
    with pytest.raises(msg.MessageError, match="signature"):
        rc.decrypt(as_post, school.state, keys, school.anna, "2@school.test")
    # A post relabelled as an alert breaks the signature.
    post = rc.encrypt(school.admin, ADMIN_ID, school.state, keys, "post", {"text": "Fête", "attachments": []})  # fmt: skip
    post["message"]["header"]["kind"] = "alert"
    with pytest.raises(msg.MessageError, match="signature"):
        rc.decrypt_alert(post, school.state, keys)
    # The template lives in the ciphertext: any change breaks the signature.
    flipped = copy.deepcopy(item)
    ct = bytearray(d(flipped["message"]["ct"]))
    ct[3] ^= 0x01
    flipped["message"]["ct"] = b64(bytes(ct))
    with pytest.raises(msg.MessageError, match="signature"):
        rc.decrypt_alert(flipped, school.state, keys)
    # A follow-up moved to another thread.
    follow = school.alert(template="all_clear", text="", parent=item["message"]["header"]["id"])
    follow["message"]["header"]["parent"] = msg.new_message_id()
    with pytest.raises(msg.MessageError, match="signature"):
        rc.decrypt_alert(follow, school.state, keys)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"template": "fire", "text": "", "drill": False}, "unknown template"),
        ({"template": "lockdown", "text": "x" * 2001, "drill": False}, "at most 2000"),
        ({"template": "lockdown", "text": "🚨" * 2001, "drill": False}, "at most 2000"),
        ({"template": "lockdown", "text": "", "drill": False, "extra": 1}, "exactly template"),
        ({"template": "lockdown", "text": ""}, "exactly template"),
        ({"template": "free", "text": "", "drill": False}, "a free alert needs a text"),
        ({"template": "lockdown", "text": "", "drill": "no"}, "drill must be true or false"),
        ({"template": "lockdown", "text": "", "drill": 1}, "drill must be true or false"),
        ({"template": "lockdown", "text": 5, "drill": False}, "at most 2000"),
        ({"template": ["lockdown"], "text": "", "drill": False}, "unknown template"),
        (["lockdown", "", False], "exactly template"),
    ],
)
def test_bad_alert_bodies_are_refused(school: School, body: Any, reason: str) -> None:
    with pytest.raises(msg.MessageError, match=reason):
        msg.check_alert_body(body)
    item = school.forged(school.admin, ADMIN_ID, body=body)
    with pytest.raises(
        msg.MessageError, match=reason if isinstance(body, dict) else "not an object"
    ):
        rc.decrypt_alert(item, school.state, {0: school.key})
    if isinstance(body, dict) and set(body) == {"template", "text", "drill"}:
        with pytest.raises(msg.MessageError, match=reason):  # refused before sending
            rc.encrypt_alert(school.admin, ADMIN_ID, school.state, {0: school.key}, **body)


def test_swapped_group_id_is_refused(school: School) -> None:
    keys = {0: school.key}
    item = school.alert()
    other = School()
    # The same alert shown in another school's group.
    with pytest.raises(msg.MessageError, match="another group"):
        rc.decrypt_alert(item, other.state, {0: other.key})
    # Another group of the same admin (as if the node had swapped the group id).
    log2, _, key2 = rc.setup_school_group(school.admin, ADMIN_ID)
    state2 = grp.verify_log(log2)
    swapped = copy.deepcopy(item)
    swapped["message"]["header"]["group"] = state2.group
    with pytest.raises(msg.MessageError, match="signature"):
        rc.decrypt_alert(swapped, state2, {0: key2})
    with pytest.raises(msg.MessageError, match="another group"):
        rc.decrypt_alert(swapped, school.state, keys)
    # Signed again by the admin: the key commitment binds the group id too.
    resigned = resign(item["message"], school.admin, lambda h: h.update(group=state2.group))
    with pytest.raises(msg.MessageError, match="key commitment"):
        rc.decrypt_alert({"message": resigned}, state2, {0: key2})
    with pytest.raises(msg.MessageError, match="another group"):
        rc.decrypt_alert({"message": resigned}, school.state, keys)


def test_other_kinds_keep_their_parent_rules(school: School) -> None:
    item = school.alert()
    header = item["message"]["header"]
    for kind, parent, ok in [
        ("post", None, True),
        ("post", header["id"], False),
        ("comment", None, False),
        ("comment", header["id"], True),
        ("reaction", None, False),
        ("alert", None, True),
        ("alert", header["id"], True),
    ]:
        h = {**header, "kind": kind, "parent": parent}
        if ok:
            assert msg.check_header(h) == h
        else:
            with pytest.raises(msg.MessageError, match="replies have one"):
                msg.check_header(h)


# --------------------------------------------------------------------------- JS → Python


@pytest.fixture(scope="module")
def js() -> dict[str, Any]:
    node = shutil.which("node")
    assert node is not None, "node (>= 20) is required for the JS round trip"
    done = subprocess.run(
        [node, str(ROOT / "tests/js/make-alerts-roundtrip.mjs")],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_js_made_alerts_open_in_python(js: dict[str, Any]) -> None:
    admin = js["people"]["admin"]
    state = grp.verify_log(
        copy.deepcopy(js["log"]),
        pinned_admins=[admin["sign_pk"]],
        known_head=(js["head"]["seq"], js["head"]["hash"]),
    )
    assert state.history == "from_join"
    assert state.members[js["members"]["admin"]].role == "admin"
    anna = js["people"]["anna"]
    key = grp.open_epoch_key(
        js["group"], js["envelope"], js["members"]["anna"], d(anna["enc_sk"]), d(anna["enc_pk"]),
        state.epochs[0].commit,
    )  # fmt: skip
    assert key == d(js["epoch_key"])
    first_id = js["alerts"]["first"]["item"]["message"]["header"]["id"]
    for name, case in js["alerts"].items():
        assert rc.decrypt_alert(case["item"], state, {0: key}) == case["body"]
        parent = case["item"]["message"]["header"]["parent"]
        assert parent == (None if name == "first" else first_id)
    forged = js["forged"]
    assert msg.verify_signature(forged["message"])
    with pytest.raises(msg.MessageError, match="emergency-role keys"):
        rc.decrypt_alert(forged, state, {0: key})
