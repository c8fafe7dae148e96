"""Membership logs and epoch keys (docs/protocol/e2e-groups.md §2–§4).

Round trips, known answers recomputed from the spec's formulas with other
libraries, tampering, and the protocol properties: a removed guardian reads
nothing new, a node cannot substitute an epoch key, forged or rolled-back
logs are refused, a mid-year guardian reads back to the last cut only.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given, settings
from hypothesis import strategies as hs

from federation.canonical import canonical_json
from node.e2e import groups as grp
from node.e2e import hpke
from node.e2e import messages as msg
from node.e2e.encoding import b64url_decode, b64url_encode
from node.e2e.keys import generate_account_keys
from tests.node.e2e.group_factories import (
    ClassGroup,
    Person,
    add,
    append,
    direct_post,
    epoch_keys_of,
    new_class,
    next_entry,
    person,
    post,
    read,
    remove,
    rotate,
    state,
)

PROPERTY = settings(max_examples=50, deadline=None, database=None)


def hkdf32(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(hashes.SHA256(), 32, salt, info).derive(ikm)


def refused(log: list[dict[str, Any]], match: str, **kwargs: Any) -> None:
    with pytest.raises(grp.GroupLogError, match=match):
        grp.verify_log(log, **kwargs)


# --------------------------------------------------------------------------- round trips


def test_log_round_trip_establishes_members_and_epochs() -> None:
    c, (anna, ben, cleo) = new_class(3)
    remove(c, ben)
    rotate(c)
    st = state(c)
    assert st.group == c.group
    assert st.admins == [b64url_encode(c.teacher.keys.sign_pk)]
    assert st.history == "school_year"
    assert st.active_members() == sorted([c.teacher.member, anna.member, cleo.member])
    assert st.members[ben.member].active is False
    assert st.members[c.teacher.member].role == "teacher"
    assert st.members[anna.member].role == "guardian"
    assert st.members[anna.member].enc_pk == b64url_encode(anna.keys.enc_pk)
    assert [(e.epoch, e.cut, e.seq) for e in st.epochs] == [(0, True, 5), (1, False, 7)]
    assert st.epochs[0].link is None and st.epochs[1].link is not None
    assert st.epochs[1].to == st.active_members()
    assert (st.head_seq, st.head_hash) == (7, grp.entry_hash(c.log[-1]))
    assert st.current_epoch is st.epochs[1]
    assert st.pending_removals == []


def test_apply_entry_one_at_a_time_matches_verify_log() -> None:
    c, _ = new_class(2)
    s: grp.GroupState | None = None
    for entry in copy.deepcopy(c.log):
        s = grp.apply_entry(s, entry)
    assert s is not None
    assert s == state(c)


def test_removal_is_pending_until_the_next_rotate() -> None:
    c, (anna, ben) = new_class(2)
    remove(c, ben)
    assert state(c).pending_removals == [ben.member]
    rotate(c)
    assert state(c).pending_removals == []
    current = state(c).current_epoch
    assert current is not None and ben.member not in current.to


def test_re_adding_a_member_replaces_keys_and_keeps_old_signing_keys_valid() -> None:
    c, (anna,) = new_class(1)
    old = anna.keys
    anna_new = Person(anna.member, "guardian", generate_account_keys())
    add(c, anna_new)
    st = state(c)
    m = st.members[anna.member]
    assert m.sign_pk == b64url_encode(anna_new.keys.sign_pk)
    assert m.enc_pk == b64url_encode(anna_new.keys.enc_pk)
    assert st.signer_is_member(anna.member, b64url_encode(old.sign_pk))
    assert st.signer_is_member(anna.member, b64url_encode(anna_new.keys.sign_pk))
    assert not st.signer_is_member(anna.member, b64url_encode(c.teacher.keys.sign_pk))
    assert not st.signer_is_member("nobody@school.test", b64url_encode(old.sign_pk))


def test_epoch_key_envelope_round_trip() -> None:
    c, (anna,) = new_class(1)
    st = state(c)
    env = next(e for e in c.envelopes if e["member"] == anna.member)
    key = grp.open_epoch_key(
        c.group, env, anna.member, anna.keys.enc_sk, anna.keys.enc_pk, st.epochs[0].commit
    )
    assert key == c.epoch_keys[0]
    assert set(env) == {"epoch", "member", "enc", "ct"}
    assert len(b64url_decode(env["ct"])) == 48


def test_history_links_walk_back_to_the_last_cut() -> None:
    c, _ = new_class(1)
    rotate(c)
    rotate(c)
    rotate(c, cut=True)
    rotate(c)
    st = state(c)
    keys = grp.epoch_keys_from(st, 4, c.epoch_keys[4])
    assert keys == {4: c.epoch_keys[4], 3: c.epoch_keys[3]}
    keys = grp.epoch_keys_from(st, 2, c.epoch_keys[2])
    assert keys == {2: c.epoch_keys[2], 1: c.epoch_keys[1], 0: c.epoch_keys[0]}


# --------------------------------------------------------------------------- known answers


def test_entry_hash_and_signature_known_answer() -> None:
    c, _ = new_class(1)
    for entry in c.log:
        raw = hashlib.sha256(b"carnet-e2e-1/group-entry-hash\x00" + canonical_json(entry))
        assert grp.entry_hash(entry) == b64url_encode(raw.digest())
        unsigned = {k: v for k, v in entry.items() if k != "sig"}
        Ed25519PublicKey.from_public_bytes(b64url_decode(entry["by"])).verify(
            b64url_decode(entry["sig"]), b"carnet-e2e-1/group-entry\x00" + canonical_json(unsigned)
        )
    for prev, entry in zip(c.log, c.log[1:], strict=False):
        assert entry["prev"] == grp.entry_hash(prev)


def test_commitment_link_and_envelope_known_answer() -> None:
    group, k0, k1 = grp.new_group_id(), grp.new_epoch_key(), grp.new_epoch_key()
    label = canonical_json({"epoch": 1, "group": group})
    expected = hmac.new(k1, b"carnet-e2e-1/epoch-commit\x00" + label, hashlib.sha256).digest()
    assert grp.epoch_commitment(group, 1, k1) == expected

    body = grp.rotate_body(group, 1, k1, ["b@x", "a@x"], k0)
    assert body["commit"] == b64url_encode(expected)
    assert (body["cut"], body["to"]) == (False, ["a@x", "b@x"])
    link_key = hkdf32(k1, b"", b"carnet-e2e-1/history-link")
    aad = canonical_json({"from": 1, "group": group, "to": 0, "type": "history-link"})
    nonce, ct = b64url_decode(body["link"]["nonce"]), b64url_decode(body["link"]["ct"])
    assert AESGCM(link_key).decrypt(nonce, ct, aad) == k0

    anna = generate_account_keys()
    env = grp.seal_epoch_key(group, 1, k1, "a@x", anna.enc_pk)
    env_aad = canonical_json(
        {"enc_pk": b64url_encode(anna.enc_pk), "epoch": 1, "group": group, "member": "a@x"}
    )
    opened = hpke.hpke_open(
        anna.enc_sk,
        b64url_decode(env["enc"]),
        b"carnet-e2e-1/epoch-key",
        env_aad,
        b64url_decode(env["ct"]),
    )
    assert opened == k1


def test_seal_with_fixed_ikm_is_deterministic() -> None:
    anna, ikm = generate_account_keys(), bytes(range(32))
    a = grp.seal_epoch_key("g", 0, bytes(32), "a@x", anna.enc_pk, _ikm_e_for_tests=ikm)
    b = grp.seal_epoch_key("g", 0, bytes(32), "a@x", anna.enc_pk, _ikm_e_for_tests=ikm)
    c = grp.seal_epoch_key("g", 0, bytes(32), "a@x", anna.enc_pk)
    assert a == b and a != c


# --------------------------------------------------------------------------- tampering


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("suite", "carnet-e2e-2"),
        ("type", "message"),
        ("group", "another-group"),
        ("prev", None),
        ("op", "remove"),
        ("at", 12345),
        ("body", {"member": "9@school.test"}),
    ],
)
def test_any_changed_member_of_a_signed_entry_is_refused(field: str, value: Any) -> None:
    c, _ = new_class(2)
    bad = copy.deepcopy(c.log)
    bad[2][field] = value
    with pytest.raises(grp.GroupLogError):
        grp.verify_log(bad)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (["body", "member"], "7@school.test"),
        (["body", "role"], "teacher"),
        (["body", "sign_pk"], b64url_encode(bytes(32))),
        (["body", "enc_pk"], b64url_encode(bytes(32))),
    ],
)
def test_entry_with_a_modified_body_is_refused(path: list[str], value: str) -> None:
    c, _ = new_class(2)
    bad = copy.deepcopy(c.log)
    bad[2][path[0]][path[1]] = value
    refused(bad, "entry 2: bad signature")


def test_tampered_envelope_history_link_and_commitment_are_detected() -> None:
    c, (anna,) = new_class(1)
    rotate(c)
    st = state(c)
    env = [e for e in c.envelopes if e["member"] == anna.member and e["epoch"] == 1][0]
    raw = bytearray(b64url_decode(env["ct"]))
    raw[5] ^= 0x40
    bad = {**env, "ct": b64url_encode(bytes(raw))}
    with pytest.raises(grp.EpochKeyError, match="does not open"):
        grp.open_epoch_key(
            c.group, bad, anna.member, anna.keys.enc_sk, anna.keys.enc_pk, st.epochs[1].commit
        )
    link = st.epochs[1].link
    assert link is not None
    raw = bytearray(b64url_decode(link["ct"]))
    raw[0] ^= 1
    with pytest.raises(grp.EpochKeyError, match="history link"):
        grp.open_history_link(
            c.group, 1, c.epoch_keys[1], {**link, "ct": b64url_encode(bytes(raw))}
        )
    with pytest.raises(grp.EpochKeyError, match="history link"):
        grp.open_history_link(c.group, 1, c.epoch_keys[1], {"nonce": "x"})
    with pytest.raises(grp.EpochKeyError, match="commitment"):
        grp.check_epoch_key(c.group, 1, c.epoch_keys[0], st.epochs[1].commit)
    with pytest.raises(grp.EpochKeyError, match="commitment"):
        grp.check_epoch_key(c.group, 0, c.epoch_keys[1][:31], st.epochs[0].commit)
    with pytest.raises(grp.EpochKeyError):
        grp.epoch_keys_from(st, 1, c.epoch_keys[0])


def test_envelope_for_someone_else_or_relabelled_does_not_open() -> None:
    c, (anna, ben) = new_class(2)
    st = state(c)
    commit = st.epochs[0].commit
    env_ben = next(e for e in c.envelopes if e["member"] == ben.member)
    with pytest.raises(grp.EpochKeyError, match="not addressed"):
        grp.open_epoch_key(
            c.group, env_ben, anna.member, anna.keys.enc_sk, anna.keys.enc_pk, commit
        )
    relabelled = {**env_ben, "member": anna.member}
    with pytest.raises(grp.EpochKeyError, match="does not open"):
        grp.open_epoch_key(
            c.group, relabelled, anna.member, anna.keys.enc_sk, anna.keys.enc_pk, commit
        )
    env_anna = next(e for e in c.envelopes if e["member"] == anna.member)
    for bad in ({**env_anna, "epoch": 1}, {**env_anna, "epoch": "0"}):
        with pytest.raises(grp.EpochKeyError):
            grp.open_epoch_key(
                c.group, bad, anna.member, anna.keys.enc_sk, anna.keys.enc_pk, commit
            )
    with pytest.raises(grp.EpochKeyError, match="does not open"):
        grp.open_epoch_key(
            "another-group", env_anna, anna.member, anna.keys.enc_sk, anna.keys.enc_pk, commit
        )


# --------------------------------------------------------------------------- forged logs


def test_entry_signed_by_a_guardian_is_refused() -> None:
    c, (anna, _) = new_class(2)
    bad = c.log + [
        next_entry(
            c,
            "add",
            grp.add_body("9@evil.test", "guardian", anna.keys.sign_pk, anna.keys.enc_pk),
            anna.keys,
        )
    ]
    refused(bad, "not an admin")
    bad = c.log + [next_entry(c, "remove", grp.remove_body(c.teacher.member), anna.keys)]
    refused(bad, "not an admin")


def test_entry_signed_by_a_non_admin_teacher_or_a_removed_one_or_a_stranger_is_refused() -> None:
    c, (anna,) = new_class(1)
    co_teacher = add(c, person("teacher"))
    assert state(c).members[co_teacher.member].role == "teacher"
    forged = next_entry(c, "remove", grp.remove_body(anna.member), co_teacher.keys)
    refused(c.log + [forged], "not an admin")
    remove(c, co_teacher)
    rotate(c)
    forged = next_entry(
        c,
        "add",
        grp.add_body(co_teacher.member, "teacher", co_teacher.keys.sign_pk, co_teacher.keys.enc_pk),
        co_teacher.keys,
    )
    refused(c.log + [forged], "not an admin")
    stranger = generate_account_keys()
    forged = next_entry(c, "remove", grp.remove_body(anna.member), stranger)
    refused(c.log + [forged], "not an admin")
    # the control: the same entry signed by the admin is accepted
    grp.verify_log(c.log + [next_entry(c, "remove", grp.remove_body(anna.member))])


def test_a_second_admin_named_at_creation_may_sign() -> None:
    teacher, deputy = person("teacher"), person("teacher")
    c = ClassGroup(grp.new_group_id(), teacher)
    append(c, "create", grp.create_body([teacher.keys.sign_pk, deputy.keys.sign_pk]))
    append(
        c,
        "add",
        grp.add_body(deputy.member, "teacher", deputy.keys.sign_pk, deputy.keys.enc_pk),
        deputy.keys,
    )
    assert state(c).active_members() == [deputy.member]


@pytest.mark.parametrize("sig", [None, "", "AAAA", 5, "not base64!"])
def test_unsigned_or_badly_signed_entry_is_refused(sig: Any) -> None:
    c, _ = new_class(1)
    bad = copy.deepcopy(c.log)
    bad[3]["sig"] = sig
    refused(bad, "entry 3: bad signature")


def test_entry_without_sig_or_with_a_signature_of_another_entry_is_refused() -> None:
    c, _ = new_class(1)
    bad = copy.deepcopy(c.log)
    del bad[2]["sig"]
    refused(bad, "entry 2 has unexpected or missing members")
    bad = copy.deepcopy(c.log)
    bad[2]["sig"] = bad[1]["sig"]
    refused(bad, "entry 2: bad signature")
    bad = copy.deepcopy(c.log)
    bad[2]["extra"] = 1
    refused(bad, "unexpected or missing members")


def test_fork_is_refused() -> None:
    c, (anna, ben) = new_class(2)
    honest = copy.deepcopy(c.log)
    forged = grp.make_entry(
        c.teacher.keys.sign_sk,
        c.teacher.keys.sign_pk,
        c.group,
        len(honest),
        grp.entry_hash(honest[2]),
        "remove",
        grp.remove_body(ben.member),
        0,
    )
    refused(honest + [forged], "fork")


def test_rollback_and_rewritten_history_are_refused() -> None:
    c, (anna, ben) = new_class(2)
    remove(c, ben)
    rotate(c)
    full = state(c)
    head = (full.head_seq, full.head_hash)
    assert grp.verify_log(copy.deepcopy(c.log), known_head=head) == full
    # rollback: the node serves the log as it was before the removal
    refused(copy.deepcopy(c.log[:5]), "rolled back", known_head=head)
    refused(copy.deepcopy(c.log[:-1]), "rolled back", known_head=head)
    # rewritten: the same length, another entry at the known head
    other = ClassGroup(c.group, c.teacher, copy.deepcopy(c.log[:6]))
    append(
        other,
        "rotate",
        grp.rotate_body(
            c.group, 1, bytes(32), sorted([c.teacher.member, anna.member]), c.epoch_keys[0]
        ),
    )
    state(other)
    refused(other.log, "rolled back", known_head=head)
    # a log that grew since the last visit contains the known head
    earlier = (4, grp.entry_hash(c.log[4]))
    add(c, person())
    assert grp.verify_log(copy.deepcopy(c.log), known_head=earlier).head_seq == 7
    refused(copy.deepcopy(c.log), "rolled back", known_head=(4, grp.entry_hash(c.log[3])))


def test_pinned_admins_mismatch_is_refused() -> None:
    c, _ = new_class(1)
    pinned = [b64url_encode(c.teacher.keys.sign_pk)]
    grp.verify_log(copy.deepcopy(c.log), pinned_admins=pinned)
    impostor = ClassGroup(c.group, person("teacher"))
    append(impostor, "create", grp.create_body([impostor.teacher.keys.sign_pk]))
    add(impostor, impostor.teacher)
    state(impostor)
    refused(impostor.log, "teacher keys changed", pinned_admins=pinned)
    two = ClassGroup(c.group, c.teacher)
    append(two, "create", grp.create_body([c.teacher.keys.sign_pk, impostor.teacher.keys.sign_pk]))
    refused(two.log, "teacher keys changed", pinned_admins=pinned)


def test_entries_out_of_order_duplicated_or_without_create_are_refused() -> None:
    c, _ = new_class(2)
    refused([c.log[0], c.log[2], c.log[1]], "out of order")
    refused([c.log[0], c.log[1], c.log[1]], "out of order")
    refused(copy.deepcopy(c.log[1:]), "out of order")
    refused([], "empty")
    bad = copy.deepcopy(c.log)
    bad[1]["seq"] = True
    refused(bad, "out of order")
    second = next_entry(c, "create", grp.create_body([c.teacher.keys.sign_pk]))
    refused(c.log + [second], "second create")
    refused(
        [next_entry(c, "add", grp.add_body("a@x", "guardian", bytes(32), bytes(32)))],
        "out of order",
    )


def test_log_must_start_with_a_create_signed_by_an_admin() -> None:
    t, other = person("teacher"), generate_account_keys()

    def first(op: str, body: dict[str, Any], signer: Any = None, prev: str | None = None) -> Any:
        s = signer or t.keys
        return [grp.make_entry(s.sign_sk, s.sign_pk, "g1", 0, prev, op, body, 0)]

    refused(
        first("add", grp.add_body("a@x", "guardian", bytes(32), bytes(32))), "start with a create"
    )
    refused(first("create", grp.create_body([t.keys.sign_pk]), prev="x"), "start with a create")
    refused(
        first("create", grp.create_body([t.keys.sign_pk]), other), "signed by one of its admins"
    )
    refused(
        first(
            "create",
            grp.create_body([]),
        ),
        "1-16 admins",
    )
    refused(first("create", grp.create_body([t.keys.sign_pk] * 17)), "1-16 admins")
    refused(first("create", grp.create_body([t.keys.sign_pk], "forever")), "history policy")
    refused(first("create", {**grp.create_body([t.keys.sign_pk]), "x": 1}), "unexpected")
    refused(first("create", {"admins": ["short"], "history": "from_join"}), "admin key")
    refused(first("grant", grp.create_body([t.keys.sign_pk])), "unknown operation")
    assert (
        grp.verify_log(first("create", grp.create_body([t.keys.sign_pk], "from_join"))).history
        == "from_join"
    )


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ({"member": "bad id!", "role": "guardian"}, "member must be"),
        ({"role": "principal"}, "unknown role"),
        ({"sign_pk": b64url_encode(bytes(31))}, "sign_pk"),
        ({"enc_pk": "not-base64!"}, "enc_pk"),
        ({"extra": 1}, "add: unexpected"),
    ],
)
def test_malformed_add_is_refused(body: dict[str, Any], match: str) -> None:
    c, _ = new_class(1)
    good = grp.add_body("9@school.test", "guardian", bytes(32), bytes(32))
    refused(c.log + [next_entry(c, "add", {**good, **body})], match)


def test_malformed_remove_is_refused() -> None:
    c, (anna,) = new_class(1)
    refused(
        c.log + [next_entry(c, "remove", grp.remove_body("nobody@school.test"))], "not a member"
    )
    refused(c.log + [next_entry(c, "remove", {"member": anna.member, "x": 1})], "unexpected")
    remove(c, anna)
    refused(c.log + [next_entry(c, "remove", grp.remove_body(anna.member))], "not a member")


def _rotate(c: ClassGroup, **changes: Any) -> dict[str, Any]:
    st = state(c)
    body = grp.rotate_body(c.group, len(st.epochs), bytes(32), st.active_members(), bytes(32))
    return next_entry(c, "rotate", {**body, **changes})


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"epoch": 0}, "expected epoch 1"),
        ({"epoch": 2}, "expected epoch 1"),
        ({"epoch": True}, "expected epoch 1"),
        ({"cut": True}, "a cut has no history link"),
        ({"link": None}, "bad history link"),
        ({"link": {"nonce": "AAAA"}}, "bad history link"),
        ({"cut": "no"}, "cut must be"),
        ({"commit": "AAAA"}, "commit"),
        ({"to": "everyone"}, "must be a list"),
        ({"to": []}, "recipients differ"),
        ({"extra": 1}, "rotate: unexpected"),
    ],
)
def test_malformed_rotate_is_refused(changes: dict[str, Any], match: str) -> None:
    c, _ = new_class(2)
    refused(c.log + [_rotate(c, **changes)], match)
    state(c)  # the control: the log without it is fine
    grp.verify_log(c.log + [_rotate(c)])


def test_rotate_with_wrong_recipients_or_a_first_epoch_that_is_not_a_cut_is_refused() -> None:
    c, (anna, ben) = new_class(2)
    members = state(c).active_members()
    refused(c.log + [_rotate(c, to=list(reversed(members)))], "recipients differ")
    refused(c.log + [_rotate(c, to=members[:-1])], "recipients differ")
    remove(c, ben)
    refused(c.log + [_rotate(c, to=members)], "recipients differ")
    young = ClassGroup(c.group, c.teacher, copy.deepcopy(c.log[:4]))
    body = grp.rotate_body(c.group, 0, bytes(32), state(young).active_members(), bytes(32))
    refused(young.log + [next_entry(young, "rotate", body)], "first epoch must be a cut")


def test_entry_of_another_group_or_not_canonical_json_is_refused() -> None:
    c, _ = new_class(1)
    other = ClassGroup(grp.new_group_id(), c.teacher, copy.deepcopy(c.log))
    bad = next_entry(other, "add", grp.add_body("9@school.test", "guardian", bytes(32), bytes(32)))
    refused(c.log + [bad], "another group")
    for value in (2**60, 1.5):
        entry = next_entry(
            c, "add", {**grp.add_body("9@school.test", "guardian", bytes(32), bytes(32))}
        )
        entry["at"] = value
        refused(c.log + [entry], "entry 4")
        entry = copy.deepcopy(c.log[0])
        entry["body"]["history"] = value
        refused([entry], "entry 0")


# --------------------------------------------------------------------------- protocol properties


def _everything_a_removed_member_could_try(
    c: ClassGroup, ex: Person
) -> tuple[dict[int, bytes], list[bytes]]:
    """Every key ``ex`` can get from the node's whole store with their own keys."""
    st = state(c)
    recovered = epoch_keys_of(c, ex)
    candidates = list(recovered.values())
    for env in c.envelopes:
        for e in st.epochs:
            for labelled in (env, {**env, "member": ex.member}):
                try:
                    candidates.append(
                        grp.open_epoch_key(
                            c.group, labelled, ex.member, ex.keys.enc_sk, ex.keys.enc_pk, e.commit
                        )
                    )
                except grp.EpochKeyError:
                    pass
    for e in st.epochs:
        if e.link is None:
            continue
        for key in list(candidates):
            try:
                candidates.append(grp.open_history_link(c.group, e.epoch, key, e.link))
            except grp.EpochKeyError:
                pass
    return recovered, candidates


def test_a_removed_guardian_reads_nothing_new_even_with_the_whole_store() -> None:
    c, (anna, ben, cleo) = new_class(3)
    teacher = c.teacher
    old_post = post(c, teacher, "Sortie jeudi")
    old = [
        old_post,
        post(c, anna, "Merci", kind="comment", parent=old_post["header"]["id"]),
        direct_post(c, teacher, [cleo, teacher], "Cleo a perdu une dent"),
    ]
    remove(c, cleo)
    rotate(c)
    new_post = post(c, teacher, "Réunion lundi")
    new = [
        new_post,
        post(c, anna, "Présente", kind="comment", parent=new_post["header"]["id"]),
        post(c, ben, "👍", kind="reaction", parent=new_post["header"]["id"]),
        direct_post(c, teacher, [anna, teacher], "Anna a perdu une dent"),
    ]
    st = state(c)
    assert not any(e["member"] == cleo.member and e["epoch"] == 1 for e in c.envelopes)

    recovered, candidates = _everything_a_removed_member_could_try(c, cleo)
    assert recovered == {0: c.epoch_keys[0]}
    assert c.epoch_keys[1] not in candidates
    # documented: what was readable before the removal stays readable
    assert [read(st, cleo, w, recovered)["text"] for w in old] == [
        "Sortie jeudi",
        "Merci",
        "Cleo a perdu une dent",
    ]
    for wire in new:
        h = wire["header"]
        tries = list(candidates)
        tries += [
            msg.message_key_from_epoch(k, c.group, e, h["id"]) for k in candidates for e in (0, 1)
        ]
        for sealed in wire.get("keys", []):
            for labelled in (sealed, {**sealed, "member": cleo.member}):
                with pytest.raises(msg.MessageError):
                    msg.open_message_key(
                        c.group, h["id"], labelled, cleo.member, cleo.keys.enc_sk, cleo.keys.enc_pk
                    )
        for key in tries:
            with pytest.raises(msg.MessageError):
                msg.decrypt_message(wire, key)
        with pytest.raises(msg.MessageError):
            read(st, cleo, wire, {0: c.epoch_keys[0], 1: c.epoch_keys[0]})
    # the control: a remaining guardian reads all of it
    anna_keys = epoch_keys_of(c, anna)
    assert [read(st, anna, w, anna_keys).get("text") for w in new] == [
        "Réunion lundi",
        "Présente",
        None,
        "Anna a perdu une dent",
    ]
    assert read(st, ben, new[2], epoch_keys_of(c, ben)) == {"emoji": "👍"}


def test_a_node_substituted_epoch_key_is_detected_by_the_commitment() -> None:
    c, (anna, ben) = new_class(2)
    remove(c, ben)
    rotate(c)
    st = state(c)
    commit = st.epochs[1].commit
    # the node (with the removed ben's help) seals a key it knows to anna as epoch 1
    for key in (grp.new_epoch_key(), c.epoch_keys[0]):
        forged = grp.seal_epoch_key(c.group, 1, key, anna.member, anna.keys.enc_pk)
        aad = canonical_json(
            {
                "enc_pk": b64url_encode(anna.keys.enc_pk),
                "epoch": 1,
                "group": c.group,
                "member": anna.member,
            }
        )
        opened = hpke.hpke_open(
            anna.keys.enc_sk,
            b64url_decode(forged["enc"]),
            grp.EPOCH_KEY_INFO,
            aad,
            b64url_decode(forged["ct"]),
        )
        assert opened == key  # the envelope itself opens: only the commitment tells
        with pytest.raises(grp.EpochKeyError, match="commitment"):
            grp.open_epoch_key(
                c.group, forged, anna.member, anna.keys.enc_sk, anna.keys.enc_pk, commit
            )
        with pytest.raises(grp.EpochKeyError, match="commitment"):
            grp.epoch_keys_from(st, 1, key)
    honest = [e for e in c.envelopes if e["member"] == anna.member and e["epoch"] == 1][0]
    assert (
        grp.open_epoch_key(c.group, honest, anna.member, anna.keys.enc_sk, anna.keys.enc_pk, commit)
        == c.epoch_keys[1]
    )


def test_a_history_link_to_a_wrong_key_is_detected_by_the_commitment() -> None:
    c, (anna,) = new_class(1)
    k1 = grp.new_epoch_key()
    members = state(c).active_members()
    append(c, "rotate", grp.rotate_body(c.group, 1, k1, members, grp.new_epoch_key()))
    st = state(c)  # the log itself is fine: the link is only checked when walked
    with pytest.raises(grp.EpochKeyError, match="epoch 0 key does not match"):
        grp.epoch_keys_from(st, 1, k1)


def test_a_mid_year_guardian_reads_back_to_the_last_cut_and_not_before() -> None:
    c, (anna,) = new_class(1)
    teacher = c.teacher
    by_epoch: dict[int, dict[str, Any]] = {0: post(c, teacher, "septembre")}
    rotate(c)
    by_epoch[1] = post(c, teacher, "janvier")
    rotate(c, cut=True)  # a new school year
    by_epoch[2] = post(c, teacher, "septembre, an 2")
    rotate(c)
    by_epoch[3] = post(c, anna, "octobre, an 2")
    late = add(c, person())  # approved in epoch 3: sealed the current key
    rotate(c)
    by_epoch[4] = post(c, teacher, "novembre, an 2")
    st = state(c)
    assert [e.cut for e in st.epochs] == [True, False, True, False, False]

    keys = epoch_keys_of(c, late)
    assert keys == {e: c.epoch_keys[e] for e in (2, 3, 4)}
    assert [read(st, late, by_epoch[e], keys)["text"] for e in (2, 3, 4)] == [
        "septembre, an 2",
        "octobre, an 2",
        "novembre, an 2",
    ]
    for e in (0, 1):
        for key in keys.values():
            with pytest.raises(msg.MessageError):
                msg.decrypt_message(
                    by_epoch[e],
                    msg.message_key_from_epoch(key, c.group, e, by_epoch[e]["header"]["id"]),
                )
        with pytest.raises(msg.MessageError):
            read(st, late, by_epoch[e], keys)
    # the cut really has no way back, whatever the key
    assert st.epochs[2].link is None
    assert grp.epoch_keys_from(st, 2, c.epoch_keys[2]) == {2: c.epoch_keys[2]}
    # and an earlier member still holds (from their old envelopes) the earlier years
    assert epoch_keys_of(c, anna) == {e: c.epoch_keys[e] for e in (2, 3, 4)}
    env1 = next(e for e in c.envelopes if e["member"] == anna.member and e["epoch"] == 1)
    k1 = grp.open_epoch_key(
        c.group, env1, anna.member, anna.keys.enc_sk, anna.keys.enc_pk, st.epochs[1].commit
    )
    assert grp.epoch_keys_from(st, 1, k1) == {1: c.epoch_keys[1], 0: c.epoch_keys[0]}


@PROPERTY
@given(data=hs.data())
def test_any_character_changed_in_any_entry_is_refused(data: hs.DataObject) -> None:
    c, _ = _small_class()
    log = copy.deepcopy(c.log)
    i = data.draw(hs.integers(0, len(log) - 1))
    strings = _string_paths(log[i])
    path = data.draw(hs.sampled_from(strings))
    target: Any = log[i]
    for part in path[:-1]:
        target = target[part]
    old = target[path[-1]]
    pos = data.draw(hs.integers(0, max(0, len(old) - 1)))
    char = data.draw(hs.sampled_from("Aa0_-.@Zz9").filter(lambda ch: old[pos : pos + 1] != ch))
    target[path[-1]] = old[:pos] + char + old[pos + 1 :]
    with pytest.raises(grp.GroupLogError):
        grp.verify_log(log)


_CLASS: list[tuple[ClassGroup, list[Person]]] = []


def _small_class() -> tuple[ClassGroup, list[Person]]:
    if not _CLASS:
        c, people = new_class(2)
        remove(c, people[1])
        rotate(c)
        _CLASS.append((c, people))
    return _CLASS[0]


def _string_paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(obj, str):
        return [prefix]
    if isinstance(obj, dict):
        return [p for k, v in obj.items() for p in _string_paths(v, (*prefix, k))]
    if isinstance(obj, list):
        return [p for i, v in enumerate(obj) for p in _string_paths(v, (*prefix, i))]
    return []
