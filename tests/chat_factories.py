"""Plain functions that drive a class's conversations through the real services,
encrypting and decrypting with the Python reference client as a browser would."""

from __future__ import annotations

from typing import Any

from node import refclient_groups as rc
from node.services import chat_membership, chat_moderation, chat_views, conversations, groups
from tests.factories import client_account, invite, make_guardian
from tests.feed_factories import ClassFeed, Person, as_json, make_class_feed


def make_chat_class(storage: Any, ctx: Any, families: int = 3, chat: str = "open") -> ClassFeed:
    """A class with approved families whose teacher opened parent chat (``chat``)."""
    cf = make_class_feed(storage, ctx, families=families)
    if chat != "off":
        set_chat(cf, parent_chat=chat)
    return cf


def set_chat(cf: ClassFeed, **settings: Any) -> None:
    cf.storage.call(chat_moderation.set_settings, cf.ctx, cf.teacher.actor, cf.class_id, **settings)


def second_guardian(cf: ClassFeed, child_id: int, phone: str = "+33639989999") -> Person:
    """Another approved guardian of an existing child (a separated parent)."""
    slip = invite(cf.storage, cf.ctx, cf.teacher.actor, child_id, phone=phone, name="Parent Bis")
    actor = make_guardian(cf.storage, cf.ctx, slip.code, phone)
    person = Person(
        actor, client_account(phone).keys, groups.member_id(cf.ctx, actor.account_id), child_id
    )
    cf.guardians.append(person)
    cf.approve_all()
    return person


def accept(cf: ClassFeed, *people: Person) -> None:
    for person in people:
        cf.storage.call(chat_moderation.accept_conduct, cf.ctx, person.actor, cf.class_id)


def sealed(
    cf: ClassFeed, person: Person, kind: str, body: dict[str, Any], to: list[str],
    parent: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    state, keys = cf.keys_of(person)
    return rc.encrypt(person.keys, person.me, state, keys, kind, body, parent=parent, to=to)


def open_conversation(
    cf: ClassFeed, person: Person, kind: str, to: list[str], *, title: str = "",
    child: int | None = None,
) -> str:  # fmt: skip
    request = sealed(cf, person, "conversation", {"title": title}, sorted(to))
    others = [m for m in to if m != person.me]
    said = cf.storage.call(
        conversations.open_conversation, cf.ctx, person.actor, cf.class_id, kind,
        request["message"], keys=request["keys"], child=child,
        members=others if kind == "group" else None,
    )  # fmt: skip
    return str(said.conversation)


def page(cf: ClassFeed, person: Person, conversation: str) -> dict[str, Any]:
    return as_json(
        cf.storage.call(chat_views.conversation, cf.ctx, person.actor, cf.class_id, conversation)
    )


def overview(cf: ClassFeed, person: Person) -> dict[str, Any]:
    return as_json(cf.storage.call(chat_views.overview, cf.ctx, person.actor, cf.class_id))


def say(cf: ClassFeed, person: Person, conversation: str, text: str) -> conversations.Said:
    to = page(cf, person, conversation)["reply_to"]
    request = sealed(cf, person, "chat", {"text": text}, to, parent=conversation)
    return cf.storage.call(
        conversations.say, cf.ctx, person.actor, cf.class_id, conversation,
        request["message"], keys=request["keys"],
    )  # fmt: skip


def change(cf: ClassFeed, person: Person, conversation: str, op: str, member: str) -> None:
    before = page(cf, person, conversation)["reply_to"] if op != "join" else None
    if before is None:  # a joiner is not in yet: the room's members come from the overview
        room = next(c for c in overview(cf, person)["conversations"] if c["id"] == conversation)
        before = room["members"]
    after = sorted({*before, member}) if op != "leave" else sorted(set(before) - {member})
    to = sorted({*after, person.me})
    request = sealed(cf, person, "member", {"op": op, "member": member}, to, parent=conversation)
    cf.storage.call(
        chat_membership.change_members, cf.ctx, person.actor, cf.class_id, conversation, op,
        member, request["message"], keys=request["keys"],
    )  # fmt: skip


def read(cf: ClassFeed, person: Person, conversation: str) -> list[str]:
    """The texts of the conversation's chat messages this person decrypts, oldest first."""
    state, keys = cf.keys_of(person)
    out = []
    for item in page(cf, person, conversation)["items"]:
        if item["kind"] == "chat":
            out.append(rc.decrypt(item, state, keys, person.keys, person.me)["text"])
    return out
