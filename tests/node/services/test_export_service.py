"""A guardian's export: exactly their data (their child, their classes' posts, their chats), nothing of others."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from node import refclient_groups as rc
from node.errors import Invalid, NotFound, PermissionDenied
from node.services import audit, export, groups
from node.storage.db import Storage
from tests.absence_factories import report
from tests.chat_factories import accept, make_chat_class, open_conversation, say
from tests.factories import School, make_child, make_class
from tests.feed_factories import ClassFeed, as_json, make_class_feed


def other_class(cf: ClassFeed) -> ClassFeed:
    """A second class of the same teacher, with its own keys and none of the first class's families."""
    school_class = make_class(cf.storage, cf.ctx, cf.teacher.actor, name="CM2 B")
    child = make_child(cf.storage, cf.ctx, cf.teacher.actor, school_class.id, "Zoé")
    school = School(cf.school.admin, cf.teacher.actor, school_class.id, child.id)
    other = ClassFeed(cf.storage, cf.ctx, school, cf.teacher, [], b"")
    log, envelopes, other.epoch_key = rc.setup_group(cf.teacher.keys, cf.teacher.me)
    cf.storage.call(groups.create_group, cf.ctx, cf.teacher.actor, school_class.id, log, envelopes)
    return other


@dataclass
class World:
    cf: ClassFeed
    mine: dict[str, str]
    others: dict[str, str]


@pytest.fixture
def world(storage: Storage, ctx: Any) -> World:
    """Family 0 exports; families 1 and 2 share the class; another class shares nothing."""
    cf = make_chat_class(storage, ctx, families=3)
    me, one, two = cf.guardians
    accept(cf, me, one, two)
    class_post = cf.post({"text": "Sortie jeudi", "attachments": []})
    comment = cf.reply(me, class_post, "comment", {"text": "Merci !"})
    their_comment = cf.reply(one, class_post, "comment", {"text": "Super"})
    targeted = cf.post({"text": "Une dent perdue", "attachments": []}, children=[one.child_id])
    ours = open_conversation(cf, me, "group", [me.me, one.me], title="Covoiturage")
    say(cf, me, ours, "Je conduis lundi")
    theirs = open_conversation(cf, one, "group", [one.me, two.me], title="Anniversaire")
    say(cf, one, theirs, "Surprise samedi")
    my_note = report(cf, me, "absent", cf.ctx.now().date().isoformat(), text="Fièvre")
    their_note = report(cf, one, "late", cf.ctx.now().date().isoformat(), text="Dentiste")
    other = other_class(cf)
    elsewhere = other.post({"text": "Pas pour vous", "attachments": []})
    return World(
        cf,
        {"post": class_post, "comment": comment, "their_comment": their_comment,
         "conversation": ours, "note": my_note},
        {"targeted": targeted, "conversation": theirs, "note": their_note,
         "elsewhere": elsewhere, "other_class": str(other.class_id)},
    )  # fmt: skip


def check_summary(world: World) -> None:
    """The account, child, class, notes, conversations and notifications: theirs only."""
    cf, me = world.cf, world.cf.guardians[0]
    data = as_json(cf.storage.call(export.summary, cf.ctx, me.actor, "fr"))
    assert data["format"] == "carnet-export-1"
    profile = data["profile"]
    assert profile["id"] == me.actor.account_id and profile["role"] == "guardian"
    assert profile["phone"] == "+33639980000" and profile["locale"] == "fr"
    assert [(c["first_name"], c["class_id"]) for c in data["children"]] == [("Léa", cf.class_id)]
    assert [(c["id"], c["member"], c["approved"]) for c in data["classes"]] == [
        (cf.class_id, me.me, True)
    ]
    # their absence note only, with what decrypts it; not another family's
    [notes] = data["absences"]
    assert [n["id"] for n in notes["notes"]] == [world.mine["note"]]
    assert notes["notes"][0]["key"] is not None
    assert rc.decrypt(notes["notes"][0], *cf.keys_of(me), me.keys, me.me)["text"] == "Fièvre"
    # their conversation, not the private group of two other families
    [chat] = data["conversations"]
    assert [c["id"] for c in chat["conversations"]] == [world.mine["conversation"]]
    # their notifications (posts of the class), never another account's
    assert data["notifications"] and all(
        n["message"] != world.others["targeted"] for n in data["notifications"]
    )
    assert len(data["sessions"]) == 1  # the session their first login opened
    assert data["devices"] == [] and data["alerts"] == []
    text = repr(data)
    for phone in ("+33639980001", "+33639980002"):
        assert phone not in text  # another family's phone never appears
    assert world.others["elsewhere"] not in text and "Zoé" not in text
    # the export is audited: who (a pseudonym) and counts, nothing of what it holds
    [event] = cf.storage.call(audit.list_events, cf.ctx, cf.school.admin, "export").events
    assert event.actor == audit.pseudonym(cf.ctx, me.actor.account_id) and event.outcome == "ok"
    assert event.details == {"children": 1, "classes": 1}


def check_posts(world: World) -> None:
    """The posts are their timeline, with the replies they can decrypt."""
    cf, me = world.cf, world.cf.guardians[0]
    page = as_json(cf.storage.call(export.posts, cf.ctx, me.actor))
    assert [i["id"] for i in page["items"]] == [world.mine["post"]]
    assert page["next_before"] is None
    item = page["items"][0]
    state, keys = cf.keys_of(me)
    assert rc.decrypt(item, state, keys, me.keys, me.me)["text"] == "Sortie jeudi"
    replies = {r["id"]: rc.decrypt(r, state, keys, me.keys, me.me) for r in item["replies"]}
    assert replies[world.mine["comment"]]["text"] == "Merci !"
    # the class's comments are the class's: other families' comments on a class post are readable
    assert replies[world.mine["their_comment"]]["text"] == "Super"
    assert world.others["targeted"] not in repr(page) and world.others["elsewhere"] not in repr(
        page
    )


def check_conversations(world: World) -> None:
    """Conversation pages hold their messages; others' conversations are refused."""
    cf, me = world.cf, world.cf.guardians[0]
    page = as_json(
        cf.storage.call(
            export.conversation, cf.ctx, me.actor, cf.class_id, world.mine["conversation"]
        )
    )
    state, keys = cf.keys_of(me)
    texts = [
        rc.decrypt(i, state, keys, me.keys, me.me)["text"]
        for i in page["items"]
        if i["kind"] == "chat"
    ]
    assert texts == ["Je conduis lundi"]
    with pytest.raises(NotFound):  # the private group of two other families
        cf.storage.call(
            export.conversation, cf.ctx, me.actor, cf.class_id, world.others["conversation"]
        )
    with pytest.raises(NotFound):  # a class they are not in
        cf.storage.call(
            export.conversation, cf.ctx, me.actor, int(world.others["other_class"]),
            world.others["conversation"],
        )  # fmt: skip
    with pytest.raises(Invalid):
        cf.storage.call(
            export.conversation, cf.ctx, me.actor, cf.class_id, world.mine["conversation"], 0
        )


def test_a_guardians_export_holds_exactly_their_data(world: World) -> None:
    # one world for the three parts: building it is most of the time
    check_summary(world)
    check_posts(world)
    check_conversations(world)


def test_staff_cannot_export_here(storage: Storage, ctx: Any) -> None:
    cf = make_class_feed(storage, ctx, families=1)
    for who in (cf.teacher.actor, cf.school.admin):
        for fn in (export.summary, export.posts, export.check_exporter):
            with pytest.raises(PermissionDenied):
                cf.storage.call(fn, cf.ctx, who)
        with pytest.raises(PermissionDenied):
            cf.storage.call(export.conversation, cf.ctx, who, cf.class_id, "AAAAAAAAAAAAAAAAAAAAAA")
    events = cf.storage.call(audit.list_events, cf.ctx, cf.school.admin, "export").events
    assert sorted((e.outcome, e.details["role"]) for e in events) == [
        ("refused", "admin"),
        ("refused", "teacher"),
    ]
