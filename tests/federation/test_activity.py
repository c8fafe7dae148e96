"""Activities (federation.activity): proof, same-origin rule, strict checks."""

from __future__ import annotations

import json
from typing import Any

import nacl.signing
import pytest

from federation.activity import (
    MAX_ACTIVITY_BYTES,
    parse_activity,
    verify_activity_proof,
    with_recipients,
)
from federation.canonical import canonical_json
from federation.errors import ActivityError, OriginMismatch, PublicAddressing, TooLarge
from tests.federation.factories import NOW, A, B, C, activity, kid, note, signing_key

KEY = signing_key(A + "#k1")


def keys_of_a(keyid: str, created: int) -> nacl.signing.VerifyKey | None:
    return KEY.verify_key if keyid == kid(A) else None


def check(data: Any, *, sender: str = A, destination: str = B) -> Any:
    checked = parse_activity(data, sender=sender, destination=destination)
    verify_activity_proof(checked, keys_of_a)
    return checked


def test_round_trip() -> None:
    raw = activity(seq=7)
    checked = check(canonical_json(raw))
    assert checked.type == "Create" and checked.seq == 7 and checked.version == 1
    assert checked.to == (f"{B}/users/p-durand",) and checked.published == NOW
    assert checked.object["id"] == f"{A}/posts/01J8Z6R3"


def test_per_destination_recipients_keep_the_proof_valid() -> None:
    raw = activity(destination=B)
    for_c = with_recipients(raw, [f"{C}/users/p-nguyen", f"{C}/users/p-li"])
    assert check(for_c, destination=C).to == (f"{C}/users/p-nguyen", f"{C}/users/p-li")


@pytest.mark.parametrize(
    "change",
    [
        {"seq": 8},
        {"type": "Update"},
        {"published": "2025-09-02T08:00:00Z"},
        {"object": note(content="forged")},
        {"audience": f"{A}/classes/other#members"},
    ],
)
def test_forged_or_altered_activity_fails_its_proof(change: dict[str, Any]) -> None:
    raw = {**activity(), **change}
    if raw["type"] == "Update":
        raw["object"] = note(version=2)
    with pytest.raises(ActivityError, match="does not verify"):
        check(raw)


def test_proof_by_a_key_of_another_node_is_refused() -> None:
    raw = activity(key=signing_key(B + "#k1"), keyid=kid(B))
    with pytest.raises(OriginMismatch, match="proof key"):
        parse_activity(raw, sender=A, destination=B)


def test_unknown_revoked_or_retired_key_is_refused() -> None:
    raw = activity(keyid=kid(A, "k9"))
    with pytest.raises(ActivityError, match="unknown, revoked or retired"):
        check(raw)


# -- Same-origin rule ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: activity(obj=note(B)), "object.id"),
        (lambda: activity(obj=note(attributedTo=f"{B}/users/x")), "attributedTo"),
        (lambda: {**activity(), "actor": f"{B}/users/t-martin"}, "actor"),
        (lambda: {**activity(), "id": f"{B}/act/1"}, "id"),
        (lambda: {**activity(), "stream": f"{B}/classes/c"}, "stream"),
        (lambda: {**activity(), "audience": f"{B}/classes/c#members"}, "audience"),
        (
            lambda: activity(obj=note(attachment=[{"type": "Document", "url": f"{B}/media/1"}])),
            "attachment",
        ),
        (lambda: activity(to=[f"{A}/users/p-durand"]), "to"),
        (lambda: activity(type="Follow", obj=f"{A}/classes/cm2-b"), "object"),
        (lambda: activity(type="Undo", obj=f"{B}/act/1"), "object"),
    ],
)
def test_same_origin_rule(build: Any, match: str) -> None:
    with pytest.raises(OriginMismatch, match=match):
        parse_activity(build(), sender=A, destination=B)


def test_activity_from_the_right_node_with_typed_references() -> None:
    # B's parent follows A's class; A accepts B's Follow; A removes B's parent.
    follow = activity(
        origin=B, destination=A, type="Follow", obj=f"{A}/classes/cm2-b", to=[f"{A}/classes/cm2-b"]
    )
    assert parse_activity(follow, sender=B, destination=A).object == f"{A}/classes/cm2-b"
    accept = activity(type="Accept", obj=f"{B}/act/00000000000000000000000001")
    assert (
        parse_activity(accept, sender=A, destination=B).object
        == f"{B}/act/00000000000000000000000001"
    )
    remove = activity(type="Remove", obj=f"{B}/users/p-durand", target=f"{A}/classes/cm2-b#members")
    assert parse_activity(remove, sender=A, destination=B).type == "Remove"
    undo = activity(type="Undo", obj=f"{A}/act/1")
    assert parse_activity(undo, sender=A, destination=B).object == f"{A}/act/1"
    with pytest.raises(ActivityError, match="target"):
        parse_activity(activity(type="Remove", obj=f"{B}/users/p-durand"), sender=A, destination=B)


def test_embedded_actor_objects_are_refused() -> None:
    raw = {**activity(), "actor": {"id": f"{A}/users/t", "publicKey": "z6Mk…"}}
    with pytest.raises(ActivityError):
        parse_activity(raw, sender=A, destination=B)


# -- Addressing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "public", ["as:Public", "https://www.w3.org/ns/activitystreams#Public", "Public"]
)
def test_public_addressing_is_refused(public: str) -> None:
    with pytest.raises(PublicAddressing):
        parse_activity(activity(to=[f"{B}/users/p", public]), sender=A, destination=B)
    with pytest.raises(PublicAddressing):
        parse_activity({**activity(), "audience": public}, sender=A, destination=B)


def test_missing_audience_or_recipients_are_refused() -> None:
    raw = activity()
    with pytest.raises(ActivityError, match="audience"):
        parse_activity({k: v for k, v in raw.items() if k != "audience"}, sender=A, destination=B)
    with pytest.raises(ActivityError, match="to must"):
        parse_activity(with_recipients(raw, []), sender=A, destination=B)
    with pytest.raises(ActivityError, match="twice"):
        parse_activity(with_recipients(raw, [f"{B}/users/p"] * 2), sender=A, destination=B)


# -- Versions, types, values -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "obj", "match"),
    [
        ("Create", note(version=2), "version 1"),
        ("Update", note(version=1), "≥ 2"),
        ("Create", note(version=0), "positive"),
        ("Create", note(version=True), "positive"),
        ("Delete", note(version=2), "Tombstone"),
        ("Create", {**note(), "type": "Tombstone"}, "Tombstone"),
        (
            "Delete",
            {"id": f"{A}/posts/1", "type": "Tombstone", "formerType": "Note", "version": 3},
            "deleted",
        ),
        ("Create", f"{A}/posts/1", "embedded"),
        ("Announce", note(), "unknown activity type"),
    ],
)
def test_object_rules(kind: str, obj: Any, match: str) -> None:
    with pytest.raises(ActivityError, match=match):
        parse_activity(activity(type=kind, obj=obj), sender=A, destination=B)


def test_delete_leaves_a_tombstone() -> None:
    tombstone = {
        "id": f"{A}/posts/01J8Z6R3",
        "type": "Tombstone",
        "formerType": "Note",
        "version": 3,
        "deleted": "2025-09-01T09:00:00Z",
    }
    assert check(activity(type="Delete", obj=tombstone)).version == 3


@pytest.mark.parametrize(
    "change",
    [
        {"np": 2},
        {"np": True},
        {"np": "1"},
        {"seq": 0},
        {"seq": "1"},
        {"published": "yesterday"},
        {"proof": None},
    ],
)
def test_bad_values(change: dict[str, Any]) -> None:
    with pytest.raises(ActivityError):
        parse_activity({**activity(), **change}, sender=A, destination=B)


def test_unknown_extra_fields_are_ignored_but_signed() -> None:
    raw = activity(context={"child_display_name": "Léa"})
    assert check(raw).raw["context"] == {"child_display_name": "Léa"}
    with pytest.raises(ActivityError, match="does not verify"):
        check({**raw, "context": {"child_display_name": "Tom"}})


# -- Untrusted JSON ------------------------------------------------------------------------------


def test_floats_and_duplicate_keys_are_refused() -> None:
    text = canonical_json(activity())
    with pytest.raises(ActivityError, match="strict JSON"):
        parse_activity(text.replace(b'"seq":1', b'"seq":1.0'), sender=A, destination=B)
    with pytest.raises(ActivityError, match="duplicate"):
        parse_activity(b'{"seq":2,' + text[1:], sender=A, destination=B)
    with pytest.raises(ActivityError, match="strict JSON"):
        parse_activity({**activity(), "score": 0.5}, sender=A, destination=B)


def test_oversize_activity_is_refused() -> None:
    padded = activity(obj=note(content="x" * MAX_ACTIVITY_BYTES))
    with pytest.raises(TooLarge):
        parse_activity(padded, sender=A, destination=B)
    with pytest.raises(TooLarge):
        parse_activity(json.dumps(padded).encode(), sender=A, destination=B)


def test_deep_nesting_is_refused() -> None:
    deep: Any = "x"
    for _ in range(31):
        deep = [deep]
    with pytest.raises(ActivityError, match="deeper"):
        parse_activity(activity(obj=note(extra=deep)), sender=A, destination=B)


def test_a_json_array_is_not_an_activity() -> None:
    with pytest.raises(ActivityError, match="object"):
        parse_activity(b"[]", sender=A, destination=B)


def test_sms_code_travels_as_an_update_of_the_follow() -> None:
    # np1.md §9.2 step 2: the home node updates its own pending follow request.
    follow_id = f"{B}/act/00000000000000000000000001"
    update = activity(
        origin=B,
        destination=A,
        type="Update",
        obj={
            "id": follow_id,
            "type": "Follow",
            "version": 2,
            "attributedTo": f"{B}/users/p-durand",
            "object": f"{A}/classes/cm2-b",
            "context": {"sms_code": "123456"},
        },
        to=[f"{A}/classes/cm2-b"],
    )
    assert parse_activity(update, sender=B, destination=A).object["id"] == follow_id  # type: ignore[index]
