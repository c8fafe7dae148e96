"""Actionable posts through the services: every answer rule, every refusal, and what each reader sees."""

from __future__ import annotations

import datetime as dt
import secrets
import threading
from typing import Any

import pytest

from node.errors import Conflict, Invalid, NotFound, PermissionDenied, RateLimited
from node.services import action_status, actions, feed, groups, posts
from node.storage import notifications as notification_store
from node.storage.db import Storage, database_proxy
from tests.action_factories import (
    answer,
    at_time,
    item_of,
    post_action,
    sign_slip,
    slip_signature,
    structure,
)
from tests.factories import client_account, invite, make_child, make_class, make_guardian
from tests.feed_factories import ClassFeed, Person, as_json, make_class_feed
from tests.node.services.test_feed_service import _queries
from tests.node.test_node_cannot_read import every_row

PHONE_2ND = "+33639981111"


@pytest.fixture
def cf(storage: Storage, ctx) -> ClassFeed:  # type: ignore[no-untyped-def]
    return make_class_feed(storage, ctx, families=3)


def second_guardian(cf: ClassFeed, child_id: int, phone: str = PHONE_2ND) -> Person:
    """Another guardian of a child (separated parents), approved by the teacher."""
    slip = invite(cf.storage, cf.ctx, cf.school.teacher, child_id, phone=phone, name="Autre Parent")
    actor = make_guardian(cf.storage, cf.ctx, slip.code, phone)
    cf.approve_all()
    return Person(
        actor, client_account(phone).keys, groups.member_id(cf.ctx, actor.account_id), child_id
    )


def status(cf: ClassFeed, post: str) -> dict[str, Any]:
    found: dict[str, Any] = as_json(
        cf.storage.call(action_status.status, cf.ctx, cf.teacher.actor, cf.class_id, post)
    )
    return found


# ---------------------------------------------------------------- structure


@pytest.mark.parametrize(
    "raw",
    [
        "event",
        {"type": "party"},
        {"type": "event"},  # no start
        {"type": "event", "starts_at": "2026-12-12 14:00"},  # no time zone
        {"type": "event", "starts_at": "demain"},
        {"type": "event", "starts_at": "2026-12-12T14:00:00Z", "ends_at": "2026-12-12T13:00:00Z"},
        {"type": "event", "starts_at": "2026-12-12T14:00:00Z", "choices": [{"id": "a"}]},
        {"type": "signup", "choices": []},
        {"type": "signup", "choices": [{"id": "A", "capacity": 1}]},
        {"type": "signup", "choices": [{"id": "a"}, {"id": "a"}]},
        {"type": "signup", "choices": [{"id": "a", "capacity": 0}]},
        {"type": "signup", "choices": [{"id": "a", "capacity": "3"}]},
        {"type": "signup", "choices": [{"id": "a", "label": "secret"}]},
        {"type": "signup", "choices": [{"id": "a"}], "multiple": True},
        {"type": "poll", "choices": [{"id": "a"}]},
        {"type": "poll", "choices": [{"id": "a", "capacity": 2}, {"id": "b"}]},
        {"type": "slip", "deadline": "2026-13-01T00:00:00Z"},
        {"type": "slip", "starts_at": "2026-12-12T14:00:00Z"},
        {"type": "slip", "title": "Sortie"},  # labels never go in plaintext
    ],
)
def test_a_bad_action_structure_is_refused_and_nothing_is_posted(cf: ClassFeed, raw: Any) -> None:
    with pytest.raises(Invalid):
        cf.post({"text": "x", "attachments": []}, action=raw)
    assert cf.feed_of(cf.teacher)["items"] == []


def test_each_kind_of_action_reaches_the_feed_with_its_structure(cf: ClassFeed) -> None:
    post = post_action(cf, "signup", deadline="2026-12-10T18:00:00+01:00")
    item = item_of(cf, cf.guardians[0], post)
    assert item["action"]["type"] == "signup"
    assert item["action"]["deadline"] == "2026-12-10T17:00:00Z"  # stored as UTC
    assert [c["id"] for c in item["action"]["choices"]] == ["a", "b"]
    assert item["action"]["answers"] == [
        {
            "child_id": cf.guardians[0].child_id,
            "child": "Léa",
            "sign_child": cf.guardians[0].child_id,
            "choice": None,
            "by": None,
            "at": None,
        }
    ]
    teacher = item_of(cf, cf.teacher, post)["action"]
    assert teacher["answered"] == 0 and teacher["total"] == 3 and "answers" not in teacher
    # the labels are in the ciphertext only
    body = next(p for p in cf.read(cf.guardians[0]) if p["id"] == post)["body"]
    assert body["action"]["title"] == "Goûter"


def test_an_all_day_event_takes_plain_dates(cf: ClassFeed) -> None:
    post = post_action(cf, "event", starts_at="2026-12-12", ends_at="2026-12-13", all_day=True)
    action = item_of(cf, cf.guardians[0], post)["action"]
    assert action["all_day"] and action["starts_at"] == "2026-12-12T00:00:00Z"


# ---------------------------------------------------------------- answering


def test_rsvp_then_change_until_the_deadline(cf: ClassFeed) -> None:
    post = post_action(cf, "event", deadline="2026-12-10T18:00:00Z")
    parent = cf.guardians[0]
    seen = answer(cf, parent, post, ["yes"])
    assert seen["answers"][0]["choice"] == ["yes"] and seen["answers"][0]["by"] == "Parent 0"
    answer(cf, parent, post, "maybe")  # a single id as text is accepted too
    assert status(cf, post)["counts"] == {"maybe": 1}
    late = at_time(cf.ctx, dt.datetime(2026, 12, 10, 18, 0))
    with pytest.raises(Conflict, match="deadline"):
        cf.storage.call(actions.answer, late, parent.actor, cf.class_id, post, parent.child_id, ["no"])  # fmt: skip
    assert status(cf, post)["counts"] == {"maybe": 1}  # nothing changed


def test_the_teacher_cannot_answer(cf: ClassFeed) -> None:
    post = post_action(cf, "poll")
    with pytest.raises(PermissionDenied):
        answer(cf, cf.teacher, post, ["a"], child=cf.guardians[0].child_id)


def test_a_guardian_cannot_answer_for_a_child_not_theirs(cf: ClassFeed) -> None:
    post = post_action(cf, "event")
    with pytest.raises(PermissionDenied):
        answer(cf, cf.guardians[0], post, ["yes"], child=cf.guardians[1].child_id)
    assert status(cf, post)["answered"] == 0


def test_a_post_for_chosen_children_takes_answers_for_them_only(cf: ClassFeed) -> None:
    target, other = cf.guardians[1], cf.guardians[0]
    post = post_action(cf, "slip", children=[target.child_id])
    with pytest.raises(NotFound):  # the post is not even visible to them
        sign_slip(cf, other, post, "agree")
    sign_slip(cf, target, post, "agree")
    assert status(cf, post)["total"] == 1


def test_a_guardian_with_a_child_in_the_class_but_not_among_the_chosen_is_refused(
    cf: ClassFeed,
) -> None:
    parent = cf.guardians[0]
    sibling = make_child(cf.storage, cf.ctx, cf.school.teacher, cf.class_id, "Hugo")
    slip = invite(cf.storage, cf.ctx, cf.school.teacher, sibling.id, phone="+33639980000")
    assert slip is not None
    post = post_action(cf, "event", children=[parent.child_id])
    with pytest.raises(PermissionDenied):
        answer(cf, parent, post, ["yes"], child=sibling.id)


def test_a_guardian_the_teacher_has_not_approved_cannot_answer(cf: ClassFeed) -> None:
    post = post_action(cf, "event")
    phone = "+33639982222"
    slip = invite(cf.storage, cf.ctx, cf.school.teacher, cf.guardians[1].child_id, phone=phone)
    pending = make_guardian(cf.storage, cf.ctx, slip.code, phone)  # not approved (not a member)
    with pytest.raises(PermissionDenied):
        cf.storage.call(actions.answer, cf.ctx, pending, cf.class_id, post, cf.guardians[1].child_id, ["yes"])  # fmt: skip
    assert status(cf, post)["answered"] == 0


def test_a_guardian_of_another_class_gets_not_found(cf: ClassFeed) -> None:
    post = post_action(cf, "event")
    other = make_class(cf.storage, cf.ctx, cf.school.teacher, "CM2 B")
    child = make_child(cf.storage, cf.ctx, cf.school.teacher, other.id, "Nina")
    phone = "+33639983333"
    slip = invite(cf.storage, cf.ctx, cf.school.teacher, child.id, phone=phone)
    outsider = make_guardian(cf.storage, cf.ctx, slip.code, phone)
    with pytest.raises(NotFound):
        cf.storage.call(actions.answer, cf.ctx, outsider, cf.class_id, post, child.id, ["yes"])


def test_unknown_posts_and_posts_without_an_action_are_not_found(cf: ClassFeed) -> None:
    parent = cf.guardians[0]
    with pytest.raises(NotFound):
        answer(cf, parent, "A" * 22, ["yes"])
    plain = cf.post({"text": "pas d'action", "attachments": []})
    with pytest.raises(NotFound, match="no answer"):
        answer(cf, parent, plain, ["yes"])


@pytest.mark.parametrize(
    ("kind", "choice"),
    [
        ("event", ["perhaps"]),
        ("event", ["yes", "no"]),
        ("event", []),
        ("event", None),
        ("event", [1]),
        ("poll", ["z"]),
        ("poll", ["a", "b"]),  # not a multiple-answer poll
        ("poll", ["a", "a"]),
        ("signup", ["a", "b"]),
        ("signup", ["c"]),
    ],
)
def test_an_unknown_choice_is_refused(cf: ClassFeed, kind: str, choice: Any) -> None:
    post = post_action(cf, kind)
    with pytest.raises(Invalid):
        answer(cf, cf.guardians[0], post, choice)


def test_a_child_id_that_is_not_a_number_is_refused(cf: ClassFeed) -> None:
    post = post_action(cf, "event")
    with pytest.raises(Invalid):
        answer(cf, cf.guardians[0], post, ["yes"], child="1")  # type: ignore[arg-type]


def test_a_multiple_answer_poll_takes_several_options(cf: ClassFeed) -> None:
    post = post_action(cf, "poll", multiple=True, choices=[{"id": "a"}, {"id": "b"}, {"id": "c"}])
    answer(cf, cf.guardians[0], post, ["c", "a"])
    answer(cf, cf.guardians[1], post, ["a"])
    assert status(cf, post)["counts"] == {"a": 2, "c": 1}


def test_separated_parents_either_answers_and_the_latest_counts(cf: ClassFeed) -> None:
    first = cf.guardians[0]
    other = second_guardian(cf, first.child_id)
    post = post_action(cf, "event")
    answer(cf, first, post, ["yes"])
    answer(cf, other, post, ["no"])
    family = next(f for f in status(cf, post)["families"] if f["child_id"] == first.child_id)
    assert family["choice"] == ["no"] and family["by"] == "Autre Parent"
    assert sorted(family["guardians"]) == ["Autre Parent", "Parent 0"]
    # the first parent sees the family's answer and who gave it
    mine = item_of(cf, first, post)["action"]["answers"][0]
    assert mine["choice"] == ["no"] and mine["by"] == "Autre Parent"


# ---------------------------------------------------------------- sign-ups


def test_a_full_slot_refuses_the_next_family_and_a_withdrawal_frees_it(cf: ClassFeed) -> None:
    post = post_action(cf, "signup")  # slot a: 1 place, slot b: unlimited
    answer(cf, cf.guardians[0], post, ["a"])
    with pytest.raises(Conflict, match="full"):
        answer(cf, cf.guardians[1], post, ["a"])
    answer(cf, cf.guardians[0], post, ["a"])  # the same family again: still theirs
    seen = item_of(cf, cf.guardians[1], post)["action"]
    assert [(c["id"], c["capacity"], c["taken"]) for c in seen["choices"]] == [
        ("a", 1, 1), ("b", None, 0),
    ]  # fmt: skip
    answer(cf, cf.guardians[0], post, None)  # withdraw
    answer(cf, cf.guardians[1], post, ["a"])
    assert status(cf, post)["counts"] == {"a": 1}


def test_concurrent_sign_ups_never_exceed_the_capacity(cf: ClassFeed) -> None:
    post = post_action(cf, "signup")
    outcomes: list[str] = []

    def attempt(person: Person) -> None:
        try:
            answer(cf, person, post, ["a"])
            outcomes.append("ok")
        except Conflict:
            outcomes.append("full")

    threads = [threading.Thread(target=attempt, args=(p,)) for p in cf.guardians]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["full", "full", "ok"]
    assert status(cf, post)["counts"] == {"a": 1}


# ---------------------------------------------------------------- permission slips


def test_a_signed_slip_is_stored_with_its_signature(cf: ClassFeed) -> None:
    post = post_action(cf, "slip", deadline="2026-12-10T18:00:00Z")
    parent = cf.guardians[0]
    sign_slip(cf, parent, post, "agree")
    family = next(f for f in status(cf, post)["families"] if f["child_id"] == parent.child_id)
    assert family["choice"] == ["agree"] and family["by_member"] == parent.me
    assert family["signature"] and family["post_version"] == 1 and family["signed_at"]


@pytest.mark.parametrize("tamper", ["decision", "child", "version", "other_key", "missing"])
def test_a_slip_answer_without_a_valid_signature_is_refused(cf: ClassFeed, tamper: str) -> None:
    post = post_action(cf, "slip")
    parent = cf.guardians[0]
    signer = cf.guardians[1] if tamper == "other_key" else parent
    signature, at = slip_signature(
        cf, signer, post, "decline" if tamper == "decision" else "agree",
        child=cf.guardians[1].child_id if tamper == "child" else parent.child_id,
        version=2 if tamper == "version" else 1,
    )  # fmt: skip
    with pytest.raises(Invalid):
        cf.storage.call(
            actions.answer, cf.ctx, parent.actor, cf.class_id, post, parent.child_id, ["agree"],
            signature=None if tamper == "missing" else signature, at=at,
        )  # fmt: skip
    assert status(cf, post)["answered"] == 0


def test_a_slip_signed_with_a_stale_clock_is_refused(cf: ClassFeed) -> None:
    post = post_action(cf, "slip")
    hour_ago = int(cf.ctx.now().replace(tzinfo=dt.UTC).timestamp()) - 3600
    with pytest.raises(Invalid, match="clock"):
        sign_slip(cf, cf.guardians[0], post, "agree", at=hour_ago)


def test_signing_after_the_deadline_is_refused(cf: ClassFeed) -> None:
    post = post_action(cf, "slip", deadline="2026-01-01T00:00:00Z")  # already past
    with pytest.raises(Conflict, match="deadline"):
        sign_slip(cf, cf.guardians[0], post, "agree")
    assert item_of(cf, cf.guardians[0], post)["action"]["open"] is False


# ---------------------------------------------------------------- editing the structure


def edit(cf: ClassFeed, post: str, shape: dict[str, Any], version: int = 2) -> None:
    from node import refclient_groups as rc

    state, keys = cf.keys_of(cf.teacher)
    request = rc.encrypt(
        cf.teacher.keys, cf.teacher.me, state, keys, "post", {"text": "v2", "attachments": []},
        message_id=post, version=version,
    )  # fmt: skip
    cf.storage.call(
        posts.edit_post,
        cf.ctx,
        cf.teacher.actor,
        cf.class_id,
        post,
        request["message"],
        action=shape,
    )


def test_an_edit_may_raise_a_capacity_but_not_below_the_places_taken(cf: ClassFeed) -> None:
    post = post_action(cf, "signup", choices=[{"id": "a", "capacity": 2}])
    answer(cf, cf.guardians[0], post, ["a"])
    answer(cf, cf.guardians[1], post, ["a"])
    with pytest.raises(Conflict, match="below"):
        edit(cf, post, structure("signup", choices=[{"id": "a", "capacity": 1}]))
    with pytest.raises(Conflict, match="removed"):
        edit(cf, post, structure("signup", choices=[{"id": "b", "capacity": 5}]))
    with pytest.raises(Conflict, match="kind"):
        edit(cf, post, structure("poll"))
    edit(cf, post, structure("signup", choices=[{"id": "a", "capacity": 3}, {"id": "b"}]))
    answer(cf, cf.guardians[2], post, ["a"])
    assert status(cf, post)["counts"] == {"a": 3}


def test_an_action_cannot_be_added_to_a_plain_post_by_editing(cf: ClassFeed) -> None:
    post = cf.post({"text": "x", "attachments": []})
    with pytest.raises(Conflict):
        edit(cf, post, structure("event"))


# ---------------------------------------------------------------- status and reminders


def test_only_the_teacher_sees_the_status_and_reminds(cf: ClassFeed) -> None:
    post = post_action(cf, "event")
    for call in (action_status.status, action_status.remind):
        with pytest.raises(PermissionDenied):
            cf.storage.call(call, cf.ctx, cf.guardians[0].actor, cf.class_id, post)


def test_remind_notifies_the_guardians_of_children_without_an_answer(cf: ClassFeed) -> None:
    post = post_action(cf, "event")
    answer(cf, cf.guardians[0], post, ["yes"])
    reminded = cf.storage.call(action_status.remind, cf.ctx, cf.teacher.actor, cf.class_id, post)
    assert reminded == sorted(p.actor.account_id for p in cf.guardians[1:])
    with pytest.raises(RateLimited):
        cf.storage.call(action_status.remind, cf.ctx, cf.teacher.actor, cf.class_id, post)
    queued = cf.storage.call(
        lambda: list(notification_store.Notification.select().where(
            notification_store.Notification.kind == "reminder"
        ))
    )  # fmt: skip
    assert sorted(n.account_id for n in queued) == reminded


def test_nobody_to_remind_when_every_family_answered(cf: ClassFeed) -> None:
    post = post_action(cf, "poll")
    for person in cf.guardians:
        answer(cf, person, post, ["b"])
    assert cf.storage.call(action_status.remind, cf.ctx, cf.teacher.actor, cf.class_id, post) == []
    assert status(cf, post)["answered"] == 3


def test_a_feed_page_of_actions_costs_a_fixed_number_of_queries(cf: ClassFeed) -> None:
    def pages() -> tuple[int, int]:
        return (
            _queries(cf.storage, feed.my_feed, cf.ctx, cf.guardians[0].actor),
            _queries(cf.storage, feed.class_feed, cf.ctx, cf.teacher.actor, cf.class_id),
        )

    answer(cf, cf.guardians[0], post_action(cf, "event"), ["yes"])
    few = pages()
    answer(cf, cf.guardians[1], post_action(cf, "signup"), ["b"])
    answer(cf, cf.guardians[1], post_action(cf, "poll", children=[cf.guardians[1].child_id]), ["a"])
    sign_slip(cf, cf.guardians[0], post_action(cf, "slip"), "decline")
    post_action(cf, "event", all_day=True, starts_at="2026-12-24", ends_at=None)
    assert pages() == few


def test_the_node_never_stores_an_actions_labels(cf: ClassFeed) -> None:
    """Titles, places, slot and option labels and a slip's text are in the ciphertext only."""
    canaries = {f"CANARY-{k}-{secrets.token_hex(6)}" for k in ("title", "place", "slot", "text")}
    title, place, slot, text = sorted(canaries)
    shape = structure("signup")
    body = {"text": "", "attachments": [], "action": {
        "type": "signup", "title": title, "place": place, "text": text,
        "labels": {"a": slot, "b": "x"}, "structure": shape,
    }}  # fmt: skip
    post = cf.post(body, action=shape)
    answer(cf, cf.guardians[0], post, ["a"])
    status(cf, post)
    dump = cf.storage.call(lambda: every_row(database_proxy.obj))
    for canary in canaries:
        assert canary.encode() not in dump
    decrypted = next(p for p in cf.read(cf.guardians[1]) if p["id"] == post)["body"]
    assert decrypted["action"]["labels"]["a"] == slot  # it was there, encrypted


def test_a_new_answer_shows_at_once_to_the_teacher_and_the_childs_other_guardians(
    cf: ClassFeed,
) -> None:
    first = cf.guardians[0]
    other = second_guardian(cf, first.child_id or 0)
    watchers = cf.storage.call(
        action_status.answer_watchers, cf.ctx, first.actor, cf.class_id, first.child_id
    )
    assert watchers == sorted([cf.teacher.actor.account_id, other.actor.account_id])
