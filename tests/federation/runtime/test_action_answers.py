"""Answers to actionable posts across schools (NP/1): a guardian of another node answers.

Class side: B's guardian's answer, forwarded on B's peer stream as ``Create``
of an ``Answer``, is applied here by their shadow account with every rule
(their child, the slip's signature, capacity), and a sign-up's Note goes
back to B with the places taken.  Home side: our guardian answers a post of
B's class; the answer is kept here and forwarded to B, a slip signed with
B's id of the child; B's counts of places are enforced here too.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from quart.typing import TestClientProtocol as Client

from federation.runtime import delivery
from node.e2e.keys import sign_object
from node.errors import Conflict
from node.services import action_status, actions, groups
from node.services.context import ServiceContext
from node.storage import peers as peer_store
from node.storage.db import Storage
from tests.action_factories import post_action, structure
from tests.conftest import PUBLIC_URL
from tests.federation.runtime import test_class_mirror as home
from tests.federation.runtime import test_class_stream as side
from tests.federation.runtime.peer_factories import (
    B,
    FakePeer,
    activity,
    put_transaction,
    transaction,
    txn_id,
)
from tests.feed_factories import ClassFeed, Person

# the fixtures of the two sides (B is the other school each time)
cf, peer, school_b = side.cf, side.peer, home.school_b


async def send_answer(
    cf: ClassFeed, client: Client, peer: FakePeer, post: str, child: int, obj: dict[str, Any],
    seq: int = 1,
) -> dict[str, Any]:  # fmt: skip
    """B forwards its guardian's answer (``obj`` adds to or overrides the Answer)."""
    answer = {
        "id": f"{B}/np/answers/a{seq}", "type": "Answer", "version": 1,
        "attributedTo": side.ACTOR,
        "inReplyTo": f"{PUBLIC_URL}/classes/{cf.class_id}/messages/{post}",
        "child": f"{PUBLIC_URL}/classes/{cf.class_id}/children/{child}", "choice": ["yes"],
    } | obj  # fmt: skip
    create = activity(
        peer, seq, stream=side.B_STREAM, actor=side.ACTOR, object=answer,
        to=[PUBLIC_URL + f"/classes/{cf.class_id}"],
    )  # fmt: skip
    txn = txn_id()
    body = transaction(peer, txn, [create], streams={side.B_STREAM: (seq - 1, seq)})
    result: dict[str, Any] = (await (await put_transaction(client, peer, txn, body)).get_json())[
        "results"
    ][create["id"]]
    return result


def families(cf: ClassFeed, post: str) -> dict[int, dict[str, Any]]:
    status = cf.storage.call(action_status.status, cf.ctx, cf.teacher.actor, cf.class_id, post)
    return {f.child_id: {"choice": f.choice, "by": f.by} for f in status.families}


def b_guardian(cf: ClassFeed) -> Person:
    child = cf.guardians[1].child_id
    assert child is not None
    them = side.remote_guardian(cf, child)
    cf.approve_all()
    return them


# ---------------------------------------------------------------- class side


async def test_a_guardian_of_another_school_answers_through_their_node(
    cf: ClassFeed, client: Client, peer: FakePeer
) -> None:
    them = b_guardian(cf)
    post = post_action(cf, "event")
    assert (
        await send_answer(cf, client, peer, post, them.child_id or 0, {"choice": ["maybe"]}) == {}
    )
    assert families(cf, post)[them.child_id or 0] == {"choice": ["maybe"], "by": "Parent à B"}


async def test_their_answer_for_a_child_not_theirs_is_refused(
    cf: ClassFeed, client: Client, peer: FakePeer
) -> None:
    b_guardian(cf)
    post = post_action(cf, "event")
    other = cf.guardians[0].child_id or 0
    result = await send_answer(cf, client, peer, post, other, {})
    assert "only answer for your own children" in result["message"]
    assert families(cf, post)[other]["choice"] is None


async def test_a_slip_signed_on_their_device_is_checked_here(
    cf: ClassFeed, client: Client, peer: FakePeer
) -> None:
    them = b_guardian(cf)
    post = post_action(cf, "slip")
    group = cf.view(cf.teacher)["group"]
    at = int(time.time()) - 3600  # forwarded late: the relay is not refused
    statement = actions.slip_statement(group, post, 1, them.child_id or 0, "agree", at)
    signature = sign_object(them.keys.sign_sk, actions.SLIP_CONTEXT, statement)
    forged = await send_answer(
        cf, client, peer, post, them.child_id or 0,
        {"choice": ["decline"], "signature": signature, "at": at},
    )  # fmt: skip
    assert "signature does not verify" in forged["message"]
    signed = await send_answer(
        cf, client, peer, post, them.child_id or 0,
        {"choice": ["agree"], "signature": signature, "at": at}, seq=2,
    )  # fmt: skip
    assert signed == {}
    assert families(cf, post)[them.child_id or 0]["choice"] == ["agree"]


async def test_a_sign_up_tells_the_other_school_the_places_taken_and_refuses_a_full_slot(
    cf: ClassFeed, client: Client, peer: FakePeer
) -> None:
    them = b_guardian(cf)
    post = post_action(cf, "signup")  # slot a: one place
    result = await send_answer(cf, client, peer, post, them.child_id or 0, {"choice": ["a"]})
    assert result == {}
    notes = [
        a["object"] for a in side.sent_to_b(cf)
        if isinstance(a["object"], dict) and a["object"].get("type") == "Note"
    ]  # fmt: skip
    assert notes[-1]["action"]["choices"][0] == {"id": "a", "capacity": 1, "taken": 1}
    with pytest.raises(Conflict, match="full"):
        cf.storage.call(
            actions.answer, cf.ctx, cf.guardians[0].actor, cf.class_id, post,
            cf.guardians[0].child_id, ["a"],
        )  # fmt: skip


async def test_an_answer_from_someone_not_in_the_class_is_refused(
    cf: ClassFeed, client: Client, peer: FakePeer
) -> None:
    post = post_action(cf, "event")
    result = await send_answer(
        cf, client, peer, post, cf.guardians[1].child_id or 0, {"attributedTo": side.ACTOR}
    )
    assert "is not a guardian in a class of this node" in result["message"]


# ---------------------------------------------------------------- home side


def with_action(b: home.ClassAtB, item: dict[str, Any], action: dict[str, Any]) -> dict[str, Any]:
    return b.resigned(item, action=action)


async def test_our_guardian_answers_a_post_of_another_school(
    client: Client, storage: Storage, ctx: ServiceContext, school_b: home.ClassAtB
) -> None:
    b = school_b
    await home.accept_and_open(b, client)
    note = b.note("Sortie")
    note = with_action(b, note, structure("slip"))
    assert await b.send(client, note) == {note["id"]: {}}
    post = note["object"]["message"]["header"]["id"]
    page = storage.call(home.feed.my_feed, ctx, b.guardian)
    [item] = page.items
    assert item.action is not None and item.action["type"] == "slip"
    [mine] = item.action["answers"]
    assert mine["sign_child"] == 3  # the child's id at B (CLASS/children/3)
    view = storage.call(groups.group_view, ctx, b.guardian, item.class_id)
    at = int(time.time())
    statement = actions.slip_statement(view.group, post, 1, 3, "agree", at)
    signature = sign_object(b.keys.sign_sk, actions.SLIP_CONTEXT, statement)
    storage.call(
        actions.answer, ctx, b.guardian, item.class_id, post, mine["child_id"], ["agree"],
        signature=signature, at=at,
    )  # fmt: skip
    [sent] = [a for a in home.sent_to_b(storage) if a["object"].get("type") == "Answer"]
    assert sent["type"] == "Create" and sent["actor"] == b.actor
    assert sent["object"]["inReplyTo"] == f"{home.CLASS}/messages/{post}"
    assert sent["object"]["child"] == home.CLASS + "/children/3"
    assert (sent["object"]["choice"], sent["object"]["signature"]) == (["agree"], signature)


async def test_the_class_schools_places_taken_are_enforced_here(
    client: Client, storage: Storage, ctx: ServiceContext, school_b: home.ClassAtB
) -> None:
    b = school_b
    await home.accept_and_open(b, client)
    shape = structure("signup")
    shape["choices"] = [{"id": "a", "capacity": 1, "taken": 1}, {"id": "b", "capacity": None, "taken": 0}]  # fmt: skip
    note = with_action(b, b.note("Goûter"), shape)
    assert await b.send(client, note) == {note["id"]: {}}
    post = note["object"]["message"]["header"]["id"]
    [item] = storage.call(home.feed.my_feed, ctx, b.guardian).items
    assert item.action["choices"][0] == {"id": "a", "capacity": 1, "taken": 1}
    child = item.action["answers"][0]["child_id"]
    with pytest.raises(Conflict, match="full"):
        storage.call(actions.answer, ctx, b.guardian, item.class_id, post, child, ["a"])
    storage.call(actions.answer, ctx, b.guardian, item.class_id, post, child, ["b"])
    sent = [a for a in home.sent_to_b(storage) if a["object"].get("type") == "Answer"]
    assert [s["object"]["choice"] for s in sent] == [["b"]]
    assert json.dumps(sent[0]["object"]).count("Goûter") == 0  # labels never travel in clear


async def test_a_reminder_to_answer_reaches_the_families_of_another_school(
    cf: ClassFeed, client: Client, peer: FakePeer
) -> None:
    them = b_guardian(cf)
    post = post_action(cf, "event")
    reminded = cf.storage.call(action_status.remind, cf.ctx, cf.teacher.actor, cf.class_id, post)
    assert them.actor.account_id in reminded
    sent = side.sent_to_b(cf)[-1]
    assert (sent["type"], sent["about"]) == ("Remind", "answers")
    assert sent["object"] == f"{PUBLIC_URL}/classes/{cf.class_id}/messages/{post}"
    assert sent["to"] == [side.ACTOR]  # B's guardian only


async def test_our_guardian_is_reminded_to_answer_even_after_reading(
    client: Client, storage: Storage, ctx: ServiceContext, school_b: home.ClassAtB
) -> None:
    b = school_b
    await home.accept_and_open(b, client)
    note = with_action(b, b.note("Kermesse"), structure("event"))
    assert await b.send(client, note) == {note["id"]: {}}
    post = note["object"]["message"]["header"]["id"]
    [item] = storage.call(home.feed.my_feed, ctx, b.guardian).items
    storage.call(home.feed.mark_read, ctx, b.guardian, item.class_id, post)
    before = home.notified(storage, b.guardian.account_id).count("reminder")
    remind = b.activity(home.CLASS, "Remind", f"{home.CLASS}/messages/{post}", about="answers")
    assert await b.send(client, remind) == {remind["id"]: {}}
    assert home.notified(storage, b.guardian.account_id).count("reminder") == before + 1
    # once the family has answered, a reminder notifies nobody
    child = item.action["answers"][0]["child_id"]
    storage.call(actions.answer, ctx, b.guardian, item.class_id, post, child, ["yes"])
    again = b.activity(home.CLASS, "Remind", f"{home.CLASS}/messages/{post}", about="answers")
    assert await b.send(client, again) == {again["id"]: {}}
    assert home.notified(storage, b.guardian.account_id).count("reminder") == before + 1


async def test_a_familys_answer_given_here_reaches_their_other_guardians_node_only(
    cf: ClassFeed, client: Client, peer: FakePeer
) -> None:
    b_guardian(cf)  # the other guardian of guardians[1]'s child lives at B
    post = post_action(cf, "poll")
    before = len(side.sent_to_b(cf))
    cf.storage.call(
        actions.answer, cf.ctx, cf.guardians[0].actor, cf.class_id, post,
        cf.guardians[0].child_id, ["b"],
    )  # fmt: skip
    assert len(side.sent_to_b(cf)) == before  # not a family with a guardian at B
    cf.storage.call(
        actions.answer, cf.ctx, cf.guardians[1].actor, cf.class_id, post,
        cf.guardians[1].child_id, ["a"],
    )  # fmt: skip
    sent = side.sent_to_b(cf)[-1]
    assert (sent["type"], sent["object"]["type"], sent["to"]) == ("Create", "Answer", [side.ACTOR])
    obj = sent["object"]
    assert obj["choice"] == ["a"] and obj["byName"] == "Parent 1"
    assert obj["child"] == f"{PUBLIC_URL}/classes/{cf.class_id}/children/{cf.guardians[1].child_id}"


async def test_our_familys_answer_given_at_the_class_school_is_shown_here(
    client: Client, storage: Storage, ctx: ServiceContext, school_b: home.ClassAtB
) -> None:
    b = school_b
    await home.accept_and_open(b, client)
    note = with_action(b, b.note("Kermesse"), structure("event"))
    assert await b.send(client, note) == {note["id"]: {}}
    post = note["object"]["message"]["header"]["id"]

    def answered(choice: list[str] | None, n: int) -> dict[str, Any]:
        obj = {
            "id": f"{home.CLASS}/answers/{n}", "type": "Answer", "version": 1,
            "attributedTo": home.CLASS, "inReplyTo": f"{home.CLASS}/messages/{post}",
            "child": home.CLASS + "/children/3", "choice": choice,
            "by": "8@ecole-b.example", "byName": "Autre parent", "answered": "2026-11-29T10:00:00Z",
        }  # fmt: skip
        return b.activity(home.CLASS, "Create", obj)

    yes = answered(["yes"], 1)
    assert await b.send(client, yes) == {yes["id"]: {}}
    [item] = storage.call(home.feed.my_feed, ctx, b.guardian).items
    [mine] = item.action["answers"]
    assert (mine["choice"], mine["at"]) == (["yes"], "2026-11-29T10:00:00Z")
    withdrawn = answered(None, 2)
    assert await b.send(client, withdrawn) == {withdrawn["id"]: {}}
    [item] = storage.call(home.feed.my_feed, ctx, b.guardian).items
    assert item.action["answers"][0]["choice"] is None


async def test_a_full_slot_sends_the_family_its_real_answer_instead_of_an_error(
    cf: ClassFeed, client: Client, peer: FakePeer
) -> None:
    them = b_guardian(cf)
    post = post_action(cf, "signup")  # slot a: one place
    cf.storage.call(
        actions.answer, cf.ctx, cf.guardians[0].actor, cf.class_id, post,
        cf.guardians[0].child_id, ["a"],
    )  # fmt: skip
    result = await send_answer(cf, client, peer, post, them.child_id or 0, {"choice": ["a"]})
    assert result == {}  # B's node did nothing wrong: the slot filled up meanwhile
    sent = side.sent_to_b(cf)[-1]
    assert (sent["object"]["type"], sent["object"]["choice"]) == ("Answer", None)
    assert families(cf, post)[them.child_id or 0]["choice"] is None


async def test_an_answer_the_class_school_refuses_is_withdrawn_here_too(
    client: Client, storage: Storage, ctx: ServiceContext, school_b: home.ClassAtB
) -> None:
    """Our guardian was removed there before their answer arrived: it exists only here."""
    b = school_b
    await home.accept_and_open(b, client)
    note = with_action(b, b.note("Sondage"), structure("poll"))
    assert await b.send(client, note) == {note["id"]: {}}
    post = note["object"]["message"]["header"]["id"]
    [item] = storage.call(home.feed.my_feed, ctx, b.guardian).items
    [mine] = item.action["answers"]
    choice = item.action["choices"][0]["id"]
    storage.call(actions.answer, ctx, b.guardian, item.class_id, post, mine["child_id"], [choice])
    [again] = storage.call(home.feed.my_feed, ctx, b.guardian).items
    assert again.action["answers"][0]["choice"] == [choice]
    peer_id = storage.call(delivery_peer_id)
    batch = storage.call(delivery.next_batch, ctx, peer_id)
    assert batch is not None
    [create] = [
        a for a in json.loads(batch.body)["activities"] if a["object"].get("type") == "Answer"
    ]
    refusal = {"error": "bad_activity", "message": "You are not a member of this class."}
    refused = storage.call(
        delivery.record_success, ctx, peer_id, batch.txn_id, {create["id"]: refusal}
    )
    assert refused == [create["id"]]
    [after] = storage.call(home.feed.my_feed, ctx, b.guardian).items
    assert not after.action["answers"][0].get("choice")


def delivery_peer_id() -> int:
    peer = peer_store.select_peer_by_origin(home.B)
    assert peer is not None
    return int(peer.id)
