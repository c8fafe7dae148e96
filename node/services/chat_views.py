"""Reading a class's conversations: the overview of a class's chat, and one conversation.

Who may see what (``chat_rules``): a guardian sees the room and the groups
they are in while parent chat is not ``off``, and the family threads of
their own children; the teacher sees the family threads of the class and
the parent conversations a member added them to.  Messages of someone the
reader blocked are left out.  Items carry ciphertext, the reader's own
sealed key and names; the browser decrypts.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from node.errors import N_, Invalid, NotFound
from node.services import chat_rules, groups
from node.services.chat_rules import Place
from node.services.context import Actor, ServiceContext
from node.services.conversations import PAGE, current_members
from node.storage import conversations as store
from node.storage import feed as feed_store


@dataclass(frozen=True)
class Person:
    member: str
    name: str
    role: str
    #: first names of their children in the class (guardians)
    children: list[str]


@dataclass
class Summary:
    id: str
    kind: str
    child_id: int | None
    child_name: str | None
    members: list[str]
    last_message_at: dt.datetime
    #: the opening message (its encrypted title) and the reader's sealed key
    message: dict[str, Any]
    key: dict[str, Any] | None
    can_write: bool
    #: the reader is in it (a guardian sees the class's room before joining it)
    joined: bool = True


@dataclass(frozen=True)
class ChatSettings:
    parent_chat: str
    family_threads: str
    office_hours: str
    away_until: str | None


@dataclass
class Overview:
    class_id: int
    class_name: str
    is_teacher: bool
    me: str
    settings: ChatSettings
    conduct_accepted: bool
    conversations: list[Summary]
    people: list[Person]
    #: member ids the reader blocked
    blocked: list[str]
    #: children a family thread may be opened for by the reader (id, first name)
    children: list[tuple[int, str]]
    #: teacher: reports not handled yet
    open_reports: int = 0
    #: child id → who a family thread about them is sealed to (the teacher and the
    #: child's approved guardians), for the children of ``children``
    family_members: dict[int, list[str]] = field(default_factory=dict)


@dataclass
class ChatItem:
    id: str
    kind: str
    author: str
    author_name: str
    created_at: dt.datetime
    message: dict[str, Any]
    key: dict[str, Any] | None
    can_delete: bool


@dataclass
class ConversationPage:
    conversation: Summary
    items: list[ChatItem]
    next_before: int | None
    #: the signed membership chain: the opening message, then every ``member`` event
    chain: list[dict[str, Any]] = field(default_factory=list)
    #: who a new message is sealed to now
    reply_to: list[str] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)
    settings: ChatSettings | None = None


def _wire(row: Any) -> dict[str, Any]:
    return {"header": json.loads(row.header), "ct": row.ct, "sig": row.sig}


def settings_of(place: Place) -> ChatSettings:
    c = place.school_class
    return ChatSettings(c.parent_chat, c.family_threads, c.office_hours, place.away_until())


def _summaries(ctx: ServiceContext, place: Place, rows: list[Any]) -> list[Summary]:
    members = store.members_of(r.id for r in rows)
    joinable = place.school_class.parent_chat != "off" and not place.access.is_teacher
    readable = [r for r in rows if place.can_read(r, members) or (r.kind == "room" and joinable)]
    keys = feed_store.sealed_keys_for([r.message_id for r in readable], place.access.me)
    out = []
    for row in readable:
        opener = row.message
        who = (
            current_members(ctx, place, row)
            if row.kind == "family"
            else [m.member for m in members.get(row.id, [])]
        )
        can_write = row.kind == "family" or place.school_class.parent_chat == "open"
        out.append(
            Summary(
                opener.public_id,
                row.kind,
                row.child_id,
                place.people.names.get(row.child_id) if row.child_id else None,
                sorted(who),
                row.last_message_at,
                _wire(opener),
                json.loads(keys[opener.id]) if opener.id in keys else None,
                can_write,
                row.kind == "family" or place.access.me in who,
            )
        )
    return out


def overview(ctx: ServiceContext, actor: Actor, class_id: int) -> Overview:
    place = chat_rules.place(ctx, actor, class_id)
    a = place.access
    rows = store.conversations_of_class(class_id)
    summaries = _summaries(ctx, place, rows)
    names = chat_rules.member_names(ctx, place, sorted(place.active))
    teacher = place.teacher()
    kids: dict[str, list[str]] = {}
    for link in place.people.links:
        kids.setdefault(groups.link_member(ctx, link), []).append(
            place.people.names.get(link.child_id, "")
        )
    people = [
        Person(m, names.get(m, ""), "teacher" if m == teacher else "guardian", sorted(kids.get(m, [])))
        for m in sorted(place.active, key=lambda m: (m != teacher, names.get(m, "").lower()))
    ]  # fmt: skip
    blocked_accounts = store.blocked_by(actor.account_id)
    ids = groups.accounts_of_members(ctx, sorted(place.active))
    blocked = sorted(m for m, i in ids.items() if i in blocked_accounts)
    mine = place.people.names if a.is_teacher else {c: place.people.names[c] for c in a.my_children}
    reports = len(store.reports_of_class(class_id)) if a.is_teacher else 0
    families = {}
    for child_id in mine:
        try:
            families[child_id] = place.family_audience(child_id)
        except Invalid:  # no approved guardian of this child yet
            continue
    return Overview(
        class_id, a.school_class.name, a.is_teacher, a.me, settings_of(place),
        a.is_teacher or store.has_accepted_conduct(actor.account_id, class_id),
        summaries, people, blocked, sorted(mine.items(), key=lambda kv: kv[1]), reports,
        families,
    )  # fmt: skip


def _before(raw: Any) -> int | None:
    if raw is None:
        return None
    if type(raw) is not int or raw < 1:
        raise Invalid(N_("before must be a positive whole number."), field="before")
    return raw


def conversation(
    ctx: ServiceContext, actor: Actor, class_id: int, public_id: str, before: Any = None
) -> ConversationPage:
    """One conversation: its newest messages (``before`` a cursor for older ones)."""
    cursor = _before(before)
    place = chat_rules.place(ctx, actor, class_id)
    found = store.select_conversation(class_id, public_id)
    if found is None or found[1].deleted_at is not None:
        raise NotFound(N_("No such conversation."))
    row, opener = found
    if not place.can_read(row, store.members_of([row.id])):
        raise NotFound(N_("No such conversation."))
    [summary] = _summaries(ctx, place, [row])
    rows = store.chat_messages(opener.id, cursor, PAGE + 1)
    next_before = rows[PAGE - 1].id if len(rows) > PAGE else None
    blocked = store.blocked_by(actor.account_id)
    me = place.access.me
    # history from join only: what was not sealed to the reader is not theirs to see
    rows = [
        r
        for r in rows[:PAGE]
        if r.author_id not in blocked and me in json.loads(r.header or "{}").get("to", [])
    ]
    events = store.member_events(opener.id) if row.kind != "family" else []
    keys = feed_store.sealed_keys_for([r.id for r in rows + events], place.access.me)
    authors = sorted({r.author_member for r in rows + events} | set(summary.members))
    names = chat_rules.member_names(ctx, place, authors)
    items = [
        ChatItem(
            r.public_id,
            r.kind,
            r.author_member,
            names.get(r.author_member, ""),
            r.created_at,
            _wire(r),
            json.loads(keys[r.id]) if r.id in keys else None,
            r.kind == "chat" and r.author_id == actor.account_id,
        )  # fmt: skip
        for r in reversed(rows)
    ]
    chain = [_wire(opener)] + [_wire(e) for e in events]
    return ConversationPage(
        summary, items, next_before, chain,
        current_members(ctx, place, row), names, settings_of(place),
    )  # fmt: skip


def locate(ctx: ServiceContext, actor: Actor, class_id: int, message_id: str) -> str:
    """The conversation a chat message belongs to, if the actor may read it (a notification's link)."""
    place = chat_rules.place(ctx, actor, class_id)
    row = feed_store.select_message(place.access.group.id, message_id)
    opener = row.parent if row is not None and row.parent_id else None
    if opener is not None and opener.kind == "conversation":
        found = store.select_conversation(class_id, opener.public_id)
        if found is not None and place.can_read(found[0], store.members_of([found[0].id])):
            return str(opener.public_id)
    raise NotFound(N_("No such conversation."))


def kind_of(ctx: ServiceContext, actor: Actor, class_id: int, message_id: str) -> str | None:
    """The kind of a live message of the class (the caller's services check the rest)."""
    a = chat_rules.place(ctx, actor, class_id).access
    row = feed_store.select_message(a.group.id, message_id)
    return None if row is None or row.deleted_at is not None else str(row.kind)
