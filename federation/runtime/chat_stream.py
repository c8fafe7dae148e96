"""Conversations and absence notes across schools (NP/1 §6.6): what travels beside the ciphertext.

Class side, announcing: a conversation's opening ``Note`` carries
``conversation: {kind, members}`` and goes to every school with a member in
it (a class's parents' room: to every school of the class, so their
guardians can join it); it is announced again, with a new version, when its
members change.  An absence note carries ``absence: {kind, firstDay,
lastDay}``.  Messages, membership events and reports travel as any message.

Home side, forwarding: our guardian's opening, chat message, membership
change, report or absence note goes to the class's node as a ``Note`` of our
origin, with ``context`` the class and the same plaintext fields; the class's
node applies it through the same services as for its own guardians
(``apply_forwarded``), then announces the result to every school.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from federation.errors import ActivityError
from node.services import absences, chat_membership, chat_moderation, chat_views, conversations
from node.services.context import Actor, ServiceContext
from node.storage import absences as absence_store
from node.storage import conversations as chat_store
from node.storage import directory as directory_store

TOP = ("conversation", "absence")
FORWARDED = ("conversation", "chat", "member", "report", "absence")
_CLASS = re.compile(r"/classes/([1-9][0-9]{0,15})")
_CHILD = re.compile(r"/classes/([1-9][0-9]{0,15})/children/([1-9][0-9]{0,15})")
_MESSAGE = re.compile(r"/classes/([1-9][0-9]{0,15})/messages/([A-Za-z0-9_-]{1,22})")


# -- class side: announcing ---------------------------------------------------------------


def note_extras(rows: list[Any]) -> dict[int, tuple[dict[str, Any], set[str] | None]]:
    """Message id → (fields to add to its Note, whom it is for instead of its keys'
    members: a set, or None for every member).  Openings and absence notes only."""
    out: dict[int, tuple[dict[str, Any], set[str] | None]] = {}
    openings = chat_store.conversations_of_messages(r.id for r in rows if r.kind == "conversation")
    members = chat_store.members_of(c.id for c in openings.values())
    for message_id, conversation in openings.items():
        who = sorted(m.member for m in members.get(conversation.id, []))
        fields = {"conversation": {"kind": conversation.kind, "members": who}}
        out[message_id] = (fields, None if conversation.kind == "room" else set(who))
    absences = [r.id for r in rows if r.kind == "absence"]
    if absences:
        notes = absence_store.AbsenceNote.message.in_(absences)
        for note in absence_store.AbsenceNote.select().where(notes):
            fields = {"absence": {"kind": note.kind, "firstDay": note.first_day.isoformat(),
                                  "lastDay": note.last_day.isoformat()}}  # fmt: skip
            out[note.message_id] = (fields, None)
    return out


# -- home side: forwarding ----------------------------------------------------------------


def forward_fields(row: Any, school_class: Any) -> dict[str, Any]:
    """What the class's node needs beside the ciphertext of our guardian's message."""
    fields: dict[str, Any] = {}
    if row.kind in TOP:
        fields["context"] = school_class.remote_url
    if row.kind == "conversation":
        conversation = chat_store.conversations_of_messages([row.id]).get(row.id)
        if conversation is not None:
            header = json.loads(row.header)
            fields["conversation"] = {
                "kind": conversation.kind,
                "members": [m for m in header["to"] if m != row.author_member],
            }
            if conversation.child_id is not None:
                child = directory_store.select_child(conversation.child_id)
                fields["conversation"]["child"] = child.remote_url if child else None
    elif row.kind == "absence":
        note = absence_store.AbsenceNote.get_or_none(absence_store.AbsenceNote.message == row.id)
        child = directory_store.select_child(note.child_id) if note else None
        if note is not None and child is not None:
            fields["absence"] = {
                "child": child.remote_url, "kind": note.kind,
                "firstDay": note.first_day.isoformat(), "lastDay": note.last_day.isoformat(),
            }  # fmt: skip
    return fields


# -- class side: applying what a home node forwarded ----------------------------------------


def _ours(ctx: ServiceContext, url: Any, pattern: re.Pattern[str]) -> re.Match[str]:
    prefix = ctx.config.origin
    match = (
        pattern.fullmatch(url[len(prefix) :])
        if isinstance(url, str) and url.startswith(prefix)
        else None
    )
    if match is None:
        raise ActivityError(f"{url!r} is not one of this node's classes")
    return match


def _child(ctx: ServiceContext, class_id: int, url: Any) -> int:
    match = _ours(ctx, url, _CHILD)
    if int(match[1]) != class_id:
        raise ActivityError("the child is of another class")
    return int(match[2])


def _day(raw: Any) -> str:
    if not isinstance(raw, str):
        raise ActivityError("a day is missing")
    try:
        return dt.date.fromisoformat(raw).isoformat()
    except ValueError as exc:
        raise ActivityError("a day is malformed") from exc


def apply_forwarded(ctx: ServiceContext, actor: Actor, obj: dict[str, Any]) -> None:
    """Our class's conversation message or absence note, written by a guardian of another node."""
    kind, message, keys = obj.get("kind"), obj.get("message"), obj.get("keys")
    if kind == "conversation":
        class_id = int(_ours(ctx, obj.get("context"), _CLASS)[1])
        info = obj.get("conversation")
        if not isinstance(info, dict):
            raise ActivityError("a conversation's kind is missing")
        child = _child(ctx, class_id, info.get("child")) if info.get("kind") == "family" else None
        conversations.open_conversation(
            ctx, actor, class_id, info.get("kind"), message, keys=keys, child=child,
            members=info.get("members"),
        )  # fmt: skip
    elif kind == "absence":
        class_id = int(_ours(ctx, obj.get("context"), _CLASS)[1])
        info = obj.get("absence")
        if not isinstance(info, dict):
            raise ActivityError("an absence note's days are missing")
        absences.report(
            ctx, actor, class_id, message, keys=keys, child=_child(ctx, class_id, info.get("child")),
            kind=info.get("kind"), first_day=_day(info.get("firstDay")),
            last_day=_day(info.get("lastDay")),
        )  # fmt: skip
    else:
        match = _ours(ctx, obj.get("inReplyTo"), _MESSAGE)
        class_id, parent = int(match[1]), match[2]
        if kind == "chat":
            conversations.say(ctx, actor, class_id, parent, message, keys=keys)
        elif kind == "member":
            chat_membership.change_signed(ctx, actor, class_id, parent, message, keys=keys)
        elif kind == "report":
            conversation = chat_views.locate(ctx, actor, class_id, parent)
            chat_moderation.report(ctx, actor, class_id, conversation, parent, message, keys=keys)
        else:
            raise ActivityError(f"this node does not take messages of kind {kind!r} here")


def delete_forwarded(ctx: ServiceContext, actor: Actor, class_id: int, public_id: str) -> bool:
    """A guardian of another node deleted their chat message or withdrew their absence
    note; False when the message is of another kind (a comment: the feed's services)."""
    kind = chat_views.kind_of(ctx, actor, class_id, public_id)
    if kind == "chat":
        conversation = chat_views.locate(ctx, actor, class_id, public_id)
        conversations.delete_message(ctx, actor, class_id, conversation, public_id)
        return True
    if kind == "absence":
        absences.withdraw(ctx, actor, class_id, public_id)
        return True
    return False
