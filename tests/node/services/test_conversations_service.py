"""A class's conversations through the services: the room, private groups, family threads,
the teacher's boundaries, and what is refused."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from node import refclient_groups as rc
from node.e2e import messages as m
from node.e2e.encoding import b64url_decode, b64url_encode
from node.e2e.messages import MessageError
from node.errors import Conflict, Invalid, NotFound, PermissionDenied
from node.services import chat_moderation, chat_views, conversations, directory, groups
from node.storage import notifications as notification_store
from node.storage.db import Storage
from tests.chat_factories import (
    accept,
    change,
    make_chat_class,
    open_conversation,
    overview,
    page,
    read,
    say,
    sealed,
    second_guardian,
    set_chat,
)
from tests.factories import invite, make_child, make_class, make_guardian
from tests.feed_factories import ClassFeed, as_json


@pytest.fixture
def cf(storage: Storage, ctx) -> ClassFeed:  # type: ignore[no-untyped-def]
    return make_chat_class(storage, ctx, families=3)


def _messages_to(cf: ClassFeed, account_id: int) -> int:
    return (
        notification_store.Notification.select()
        .where(
            (notification_store.Notification.account == account_id)
            & (notification_store.Notification.kind == "message")
        )
        .count()
    )


def test_parent_chat_is_off_by_default(storage: Storage, ctx) -> None:  # type: ignore[no-untyped-def]
    cf = make_chat_class(storage, ctx, families=2, chat="off")
    g0 = cf.guardians[0]
    with pytest.raises(PermissionDenied, match="not opened parent chat"):
        accept(cf, g0)
    with pytest.raises(PermissionDenied, match="not opened parent chat"):
        open_conversation(cf, g0, "room", [g0.me])
    assert overview(cf, g0)["settings"]["parent_chat"] == "off"


def test_the_code_of_conduct_comes_first(cf: ClassFeed) -> None:
    g0 = cf.guardians[0]
    with pytest.raises(PermissionDenied, match="code of conduct"):
        open_conversation(cf, g0, "room", [g0.me])
    accept(cf, g0)
    assert overview(cf, g0)["conduct_accepted"] is True
    open_conversation(cf, g0, "room", [g0.me])


def test_the_room_holds_those_who_joined_only(cf: ClassFeed) -> None:
    g0, g1, g2 = cf.guardians
    accept(cf, g0, g1, g2)
    room = open_conversation(cf, g0, "room", [g0.me])
    with pytest.raises(Conflict, match="exists already"):
        open_conversation(cf, g1, "room", [g1.me])
    change(cf, g1, room, "join", g1.me)
    say(cf, g0, room, "Qui organise la kermesse ?")
    assert read(cf, g1, room) == ["Qui organise la kermesse ?"]
    # g2 sees the room to join it, but not its messages, and had no key
    summary = next(c for c in overview(cf, g2)["conversations"] if c["id"] == room)
    assert summary["joined"] is False and summary["members"] == sorted([g0.me, g1.me])
    with pytest.raises(NotFound):
        page(cf, g2, room)
    # the teacher is not in the room
    assert [c for c in overview(cf, cf.teacher)["conversations"] if c["kind"] == "room"] == []
    with pytest.raises(NotFound):
        page(cf, cf.teacher, room)
    assert _messages_to(cf, g1.actor.account_id) == 1
    assert _messages_to(cf, cf.teacher.actor.account_id) == 0


def test_a_private_group_is_seen_by_its_members_only(cf: ClassFeed) -> None:
    g0, g1, g2 = cf.guardians
    accept(cf, g0, g1, g2)
    carpool = open_conversation(cf, g0, "group", [g0.me, g1.me], title="Covoiturage piscine")
    say(cf, g1, carpool, "Je conduis mardi")
    assert read(cf, g0, carpool) == ["Je conduis mardi"]
    assert [c["id"] for c in overview(cf, g2)["conversations"]] == []
    with pytest.raises(NotFound):
        page(cf, g2, carpool)
    with pytest.raises(NotFound):
        say(cf, g2, carpool, "intrus")
    # the opening message (the group's name) decrypts for its members
    state, keys = cf.keys_of(g1)
    summary = overview(cf, g1)["conversations"][0]
    assert rc.decrypt(summary, state, keys, g1.keys, g1.me) == {"title": "Covoiturage piscine"}


def test_members_add_and_leave_and_a_leaver_reads_nothing_new(cf: ClassFeed) -> None:
    g0, g1, g2 = cf.guardians
    accept(cf, g0, g1, g2)
    group = open_conversation(cf, g0, "group", [g0.me, g1.me])
    change(cf, g1, group, "add", g2.me)
    say(cf, g2, group, "Merci de m'avoir ajouté")
    assert page(cf, g0, group)["reply_to"] == sorted([g0.me, g1.me, g2.me])
    change(cf, g2, group, "leave", g2.me)
    said = say(cf, g0, group, "Après son départ")
    assert g2.actor.account_id not in said.recipients
    with pytest.raises(NotFound):
        page(cf, g2, group)
    # every membership change is signed and sealed to the members after it
    chain = page(cf, g0, group)["chain"]
    assert [w["header"]["to"] for w in chain] == [
        sorted([g0.me, g1.me]),
        sorted([g0.me, g1.me, g2.me]),
        sorted([g0.me, g1.me, g2.me]),  # the leaver reads their own event
    ]


def test_a_message_must_be_sealed_to_exactly_the_members(cf: ClassFeed) -> None:
    g0, g1, g2 = cf.guardians
    accept(cf, g0, g1, g2)
    group = open_conversation(cf, g0, "group", [g0.me, g1.me])
    extra = sealed(cf, g0, "chat", {"text": "x"}, sorted([g0.me, g1.me, g2.me]), parent=group)
    with pytest.raises(Conflict, match="changed"):
        cf.storage.call(
            conversations.say, cf.ctx, g0.actor, cf.class_id, group, extra["message"],
            keys=extra["keys"],
        )  # fmt: skip
    good = sealed(cf, g0, "chat", {"text": "x"}, sorted([g0.me, g1.me]), parent=group)
    with pytest.raises(Invalid, match="one sealed key per recipient"):
        cf.storage.call(
            conversations.say, cf.ctx, g0.actor, cf.class_id, group, good["message"],
            keys=good["keys"][:1],
        )  # fmt: skip
    elsewhere = m.new_message_id()  # a chat message that answers another conversation
    other = sealed(cf, g0, "chat", {"text": "x"}, sorted([g0.me, g1.me]), parent=elsewhere)
    with pytest.raises(Invalid, match="answer this conversation"):
        cf.storage.call(
            conversations.say, cf.ctx, g0.actor, cf.class_id, group, other["message"],
            keys=other["keys"],
        )  # fmt: skip
    forged = sealed(cf, g1, "chat", {"text": "x"}, sorted([g0.me, g1.me]), parent=group)
    with pytest.raises(Invalid, match="current keys"):
        cf.storage.call(
            conversations.say, cf.ctx, g0.actor, cf.class_id, group, forged["message"],
            keys=forged["keys"],
        )  # fmt: skip


def test_a_closed_chat_is_read_only_for_all(cf: ClassFeed) -> None:
    g0, g1, _ = cf.guardians
    accept(cf, g0, g1)
    group = open_conversation(cf, g0, "group", [g0.me, g1.me])
    say(cf, g0, group, "avant")
    set_chat(cf, parent_chat="closed")
    with pytest.raises(PermissionDenied, match="read-only"):
        say(cf, g1, group, "après")
    assert read(cf, g1, group) == ["avant"]
    assert overview(cf, g1)["conversations"][0]["can_write"] is False
    set_chat(cf, parent_chat="off")
    with pytest.raises(NotFound):
        page(cf, g1, group)


def test_the_teacher_reads_a_parent_group_only_when_invited(cf: ClassFeed) -> None:
    g0, g1, _ = cf.guardians
    accept(cf, g0, g1)
    group = open_conversation(cf, g0, "group", [g0.me, g1.me])
    say(cf, g0, group, "entre parents")
    with pytest.raises(NotFound):
        page(cf, cf.teacher, group)
    change(cf, g1, group, "add", cf.teacher.me)
    say(cf, g1, group, "Bonjour Monsieur")
    # history from join only: the teacher reads what was sent after the invitation
    assert read(cf, cf.teacher, group) == ["Bonjour Monsieur"]


def test_a_blocked_parent_is_not_delivered_and_cannot_add(cf: ClassFeed) -> None:
    g0, g1, g2 = cf.guardians
    accept(cf, g0, g1, g2)
    group = open_conversation(cf, g0, "group", [g0.me, g1.me])
    cf.storage.call(chat_moderation.block, cf.ctx, g1.actor, cf.class_id, g0.me)
    before = _messages_to(cf, g1.actor.account_id)
    said = say(cf, g0, group, "tu m'entends ?")
    assert g1.actor.account_id not in said.recipients
    assert _messages_to(cf, g1.actor.account_id) == before
    assert read(cf, g1, group) == []
    assert overview(cf, g1)["blocked"] == [g0.me]
    cf.storage.call(chat_moderation.block, cf.ctx, g2.actor, cf.class_id, g0.me)
    with pytest.raises(PermissionDenied, match="cannot add"):
        change(cf, g0, group, "add", g2.me)
    with pytest.raises(PermissionDenied, match="cannot add"):
        open_conversation(cf, g0, "group", [g0.me, g2.me])
    with pytest.raises(Invalid, match="another parent"):
        cf.storage.call(chat_moderation.block, cf.ctx, g1.actor, cf.class_id, cf.teacher.me)
    with pytest.raises(Invalid, match="another parent"):
        cf.storage.call(chat_moderation.block, cf.ctx, g1.actor, cf.class_id, g1.me)
    cf.storage.call(chat_moderation.unblock, cf.ctx, g1.actor, cf.class_id, g0.me)
    assert read(cf, g1, group) == ["tu m'entends ?"]


def test_a_reported_message_reaches_the_teacher_readable_and_no_other(cf: ClassFeed) -> None:
    g0, g1, _ = cf.guardians
    accept(cf, g0, g1)
    group = open_conversation(cf, g0, "group", [g0.me, g1.me])
    say(cf, g0, group, "message correct")
    bad = say(cf, g0, group, "message insultant").message
    # g1's browser opens the reported message's key and seals it to the teacher
    state, keys = cf.keys_of(g1)
    item = next(i for i in page(cf, g1, group)["items"] if i["id"] == bad)
    key = m.open_message_key(state.group, bad, item["key"], g1.me, g1.keys.enc_sk, g1.keys.enc_pk)
    to = sorted([cf.teacher.me, g1.me])
    report = rc.encrypt(
        g1.keys, g1.me, state, keys, "report", {"key": b64url_encode(key), "note": "insulte"},
        parent=bad, to=to,
    )  # fmt: skip
    cf.storage.call(
        chat_moderation.report, cf.ctx, g1.actor, cf.class_id, group, bad, report["message"],
        keys=report["keys"],
    )  # fmt: skip
    with pytest.raises(Conflict, match="already"):
        cf.storage.call(
            chat_moderation.report, cf.ctx, g1.actor, cf.class_id, group, bad,
            rc.encrypt(g1.keys, g1.me, state, keys, "report", {"key": "", "note": ""},
                       parent=bad, to=to)["message"],
            keys=report["keys"],
        )  # fmt: skip
    # the teacher: not in the group, reads the report, then that message with its key
    [item] = [
        dataclasses.asdict(r)
        for r in cf.storage.call(chat_moderation.reports, cf.ctx, cf.teacher.actor, cf.class_id)
    ]
    t_state, t_keys = cf.keys_of(cf.teacher)
    body = rc.decrypt(item, t_state, t_keys, cf.teacher.keys, cf.teacher.me)
    reported_key = b64url_decode(body["key"], length=32)
    assert m.decrypt_message(item["reported"], reported_key) == {"text": "message insultant"}
    assert t_state.signer_is_member(g0.me, item["reported"]["header"]["by"])
    other = next(i for i in page(cf, g1, group)["items"] if i["id"] != bad)
    with pytest.raises(MessageError):
        m.decrypt_message(other["message"], reported_key)
    with pytest.raises(NotFound):
        page(cf, cf.teacher, group)
    # the teacher deletes the reported message, and only a reported one
    cf.storage.call(conversations.delete_message, cf.ctx, cf.teacher.actor, cf.class_id, group, bad)
    assert read(cf, g1, group) == ["message correct"]
    with pytest.raises(PermissionDenied):
        cf.storage.call(
            conversations.delete_message, cf.ctx, cf.teacher.actor, cf.class_id, group, other["id"]
        )
    cf.storage.call(
        chat_moderation.handle_report, cf.ctx, cf.teacher.actor, cf.class_id, item["id"]
    )
    assert cf.storage.call(chat_moderation.reports, cf.ctx, cf.teacher.actor, cf.class_id) == []


def test_one_cannot_report_ones_own_message(cf: ClassFeed) -> None:
    g0, g1, _ = cf.guardians
    accept(cf, g0, g1)
    group = open_conversation(cf, g0, "group", [g0.me, g1.me])
    mine = say(cf, g0, group, "moi").message
    report = sealed(
        cf, g0, "report", {"key": "", "note": ""}, sorted([cf.teacher.me, g0.me]), parent=mine
    )
    with pytest.raises(Invalid, match="your own"):
        cf.storage.call(
            chat_moderation.report, cf.ctx, g0.actor, cf.class_id, group, mine,
            report["message"], keys=report["keys"],
        )  # fmt: skip


def test_a_family_thread_is_the_teacher_and_every_guardian_of_the_child(cf: ClassFeed) -> None:
    g0, g1, _ = cf.guardians
    bis = second_guardian(cf, g0.child_id or 0)
    to = sorted([cf.teacher.me, g0.me, bis.me])
    thread = open_conversation(cf, cf.teacher, "family", to, child=g0.child_id)
    say(cf, cf.teacher, thread, "Léa a bien progressé")
    assert read(cf, g0, thread) == read(cf, bis, thread) == ["Léa a bien progressé"]
    with pytest.raises(NotFound):
        page(cf, g1, thread)
    with pytest.raises(Conflict, match="exists already"):
        open_conversation(cf, g0, "family", to, child=g0.child_id)
    # a guardian of another child cannot open a thread for this one
    with pytest.raises(PermissionDenied, match="not yours"):
        open_conversation(cf, g1, "family", to, child=g0.child_id)
    # family threads go on with parent chat off
    set_chat(cf, parent_chat="off")
    say(cf, bis, thread, "Merci !")
    assert read(cf, cf.teacher, thread)[-1] == "Merci !"


def test_a_family_thread_stays_readable_once_the_child_has_no_guardian(cf: ClassFeed) -> None:
    g0 = cf.guardians[0]
    thread = open_conversation(cf, g0, "family", sorted([cf.teacher.me, g0.me]), child=g0.child_id)
    say(cf, cf.teacher, thread, "Rendez-vous jeudi ?")
    roster = cf.storage.call(directory.class_roster, cf.ctx, cf.teacher.actor, cf.class_id)
    [invitation] = [
        g.invitation_id for c in roster if c.child.id == g0.child_id for g in c.guardians
    ]
    cf.storage.call(directory.remove_guardian, cf.ctx, cf.teacher.actor, invitation)
    # the teacher still reads the thread (it was a 400 on every read), alone in it now
    assert read(cf, cf.teacher, thread) == ["Rendez-vous jeudi ?"]
    assert page(cf, cf.teacher, thread)["reply_to"] == [cf.teacher.me]
    with pytest.raises(Invalid, match="no approved guardian any more"):
        say(cf, cf.teacher, thread, "Personne ne lira ceci")
    assert read(cf, cf.teacher, thread) == ["Rendez-vous jeudi ?"]


def test_the_teacher_decides_who_starts_family_threads(cf: ClassFeed) -> None:
    g0 = cf.guardians[0]
    to = sorted([cf.teacher.me, g0.me])
    set_chat(cf, family_threads="reply")
    with pytest.raises(PermissionDenied, match="starts the conversations"):
        open_conversation(cf, g0, "family", to, child=g0.child_id)
    set_chat(cf, family_threads="open")
    open_conversation(cf, g0, "family", to, child=g0.child_id)


def test_a_holiday_pause_answers_automatically(cf: ClassFeed) -> None:
    g0 = cf.guardians[0]
    today = cf.ctx.now().date()
    set_chat(
        cf, away_until=(today + dt.timedelta(days=3)).isoformat(), office_hours="Lun-Ven 8h-17h"
    )
    thread = open_conversation(cf, g0, "family", sorted([cf.teacher.me, g0.me]), child=g0.child_id)
    said = say(cf, g0, thread, "Bonjour")
    assert said.away_until == (today + dt.timedelta(days=3)).isoformat()
    assert page(cf, g0, thread)["settings"]["office_hours"] == "Lun-Ven 8h-17h"
    assert say(cf, cf.teacher, thread, "De retour").away_until is None
    set_chat(cf, away_until="")
    assert say(cf, g0, thread, "Bonjour").away_until is None


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"parent_chat": "maybe"}, "off, open or closed"),
        ({"family_threads": "never"}, "open or reply"),
        ({"office_hours": "x" * 201}, "200 characters"),
        ({"office_hours": "a\nb"}, "200 characters"),
        ({"away_until": "demain"}, "YYYY-MM-DD"),
        ({"away_until": "2001-01-01"}, "between today"),
    ],
)
def test_bad_settings_are_refused(cf: ClassFeed, settings: dict[str, str], match: str) -> None:
    with pytest.raises(Invalid, match=match):
        set_chat(cf, **settings)


def test_only_the_teacher_changes_the_settings(cf: ClassFeed) -> None:
    with pytest.raises(PermissionDenied):
        cf.storage.call(
            chat_moderation.set_settings, cf.ctx, cf.guardians[0].actor, cf.class_id,
            parent_chat="off",
        )  # fmt: skip


def test_a_parent_of_another_class_gets_nothing(cf: ClassFeed, storage: Storage, ctx) -> None:  # type: ignore[no-untyped-def]
    g0, g1, _ = cf.guardians
    accept(cf, g0, g1)
    group = open_conversation(cf, g0, "group", [g0.me, g1.me])
    other = make_class(storage, ctx, cf.teacher.actor, "CE2 B")
    child = make_child(storage, ctx, cf.teacher.actor, other.id, "Zoé")
    slip = invite(storage, ctx, cf.teacher.actor, child.id, phone="+33639987777", name="Autre")
    stranger = make_guardian(storage, ctx, slip.code, "+33639987777")
    stranger_me = groups.member_id(ctx, stranger.account_id)
    with pytest.raises((NotFound, PermissionDenied)):
        cf.storage.call(chat_views.conversation, ctx, stranger, cf.class_id, group)
    with pytest.raises((NotFound, PermissionDenied)):
        cf.storage.call(chat_views.overview, ctx, stranger, cf.class_id)
    request = sealed(cf, g0, "conversation", {"title": ""}, [g0.me])
    with pytest.raises(PermissionDenied, match="not a member of the class"):
        cf.storage.call(
            conversations.open_conversation, ctx, g0.actor, cf.class_id, "group",
            request["message"], keys=request["keys"], members=[stranger_me],
        )  # fmt: skip


def test_a_long_conversation_comes_in_pages_newest_last(cf: ClassFeed) -> None:
    g0, g1, _ = cf.guardians
    accept(cf, g0, g1)
    group = open_conversation(cf, g0, "group", [g0.me, g1.me])
    for n in range(conversations.PAGE + 3):
        say(cf, g0 if n % 2 else g1, group, f"message {n}")
    first = page(cf, g1, group)
    assert len(first["items"]) == conversations.PAGE and first["next_before"] is not None
    older = as_json(
        cf.storage.call(
            chat_views.conversation, cf.ctx, g1.actor, cf.class_id, group, first["next_before"]
        )
    )
    assert older["next_before"] is None
    state, keys = cf.keys_of(g1)
    texts = [
        rc.decrypt(i, state, keys, g1.keys, g1.me)["text"] for i in older["items"] + first["items"]
    ]
    assert texts == [f"message {n}" for n in range(conversations.PAGE + 3)]
    with pytest.raises(Invalid, match="positive whole number"):
        cf.storage.call(chat_views.conversation, cf.ctx, g1.actor, cf.class_id, group, "x")
