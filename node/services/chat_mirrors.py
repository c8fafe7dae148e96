"""Conversations and absence notes of classes of other schools, on a guardian's home node
(NP/1 §6.6, home side).

The class's node announces a conversation's opening message with its kind
and its members (again whenever they change), and its messages as for any
class message.  Here they are kept in the ordinary conversation tables so
our guardians read and write them as in a class of ours; the class's node
remains the one that decides (it checks again everything our guardians send).
Rules:
- a room or group opening names its members: member ids of the class only;
- a family thread's child is the one the opening is about (its ``children``);
- our guardians are told of a new chat message sealed to them, unless they
  blocked its author;
- an absence note names its kind and days, for the child it is about.
Errors are ``Invalid`` (the activity is refused and kept as a dead letter).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from node.errors import N_, Invalid
from node.services import groups, notifications
from node.services.context import ServiceContext
from node.storage import absences as absence_store
from node.storage import conversations as store
from node.storage import feed as feed_store

KINDS = ("conversation", "chat", "member", "report")
_MEMBER = re.compile(r"[1-9][0-9]{0,15}@[a-z0-9.-]{1,253}(?::[0-9]{1,5})?")


def _members(raw: Any) -> list[str]:
    if (
        not isinstance(raw, list)
        or len(raw) > 200
        or not all(isinstance(m, str) and _MEMBER.fullmatch(m) for m in raw)
    ):
        raise Invalid(N_("A conversation's members are malformed."))
    return sorted(set(raw))


def apply(
    ctx: ServiceContext, mirror: Any, row: Any, obj: dict[str, Any], new: bool,
    keys: set[str] | None,
) -> None:  # fmt: skip
    """After the message row of a conversation kind was stored or updated."""
    if row.kind == "conversation":
        _opening(ctx, mirror, row, obj)
    elif row.kind == "absence" and new:
        _absence(row, mirror, obj)
    elif row.kind == "chat" and new:
        conversation = store.conversations_of_messages([row.parent_id]).get(row.parent_id or 0)
        if conversation is None:
            raise Invalid(N_("A message answers a conversation this node does not know."))
        conversation.last_message_at = max(conversation.last_message_at, row.created_at)
        conversation.save()
        _notify(ctx, mirror, row, keys or set())


def _opening(ctx: ServiceContext, mirror: Any, row: Any, obj: dict[str, Any]) -> None:
    info = obj.get("conversation")
    if not isinstance(info, dict) or info.get("kind") not in store.KINDS:
        raise Invalid(N_("A conversation's kind is missing."))
    kind = info["kind"]
    members = _members(info.get("members", []))
    child_id = None
    if kind == "family":
        children = feed_store.children_of_message(row.id)
        if len(children) != 1:
            raise Invalid(N_("A family conversation is about one child."))
        child_id = children[0]
    singleton = {"room": f"room:{mirror.id}", "family": f"family:{child_id}"}.get(kind)
    conversation = store.conversations_of_messages([row.id]).get(row.id)
    if conversation is None:
        if singleton and store.select_singleton(singleton) is not None:
            raise Invalid(N_("This class has that conversation already."))
        conversation = store.Conversation.create(
            message=row, school_class=mirror, kind=kind, child=child_id, singleton=singleton,
            created_at=row.created_at, last_message_at=row.created_at,
        )  # fmt: skip
    elif conversation.kind != kind:
        raise Invalid(N_("A conversation cannot change its kind."))
    store.set_members(conversation, groups.accounts_of_members(ctx, members), ctx.now())


def _absence(row: Any, mirror: Any, obj: dict[str, Any]) -> None:
    info = obj.get("absence")
    children = feed_store.children_of_message(row.id)
    if (
        not isinstance(info, dict)
        or info.get("kind") not in ("absent", "late")
        or len(children) != 1
    ):
        raise Invalid(N_("An absence note is malformed."))
    try:
        first = dt.date.fromisoformat(str(info.get("firstDay")))
        last = dt.date.fromisoformat(str(info.get("lastDay")))
    except ValueError as exc:
        raise Invalid(N_("An absence note is malformed.")) from exc
    absence_store.insert_note(
        row.id, mirror.id, children[0], row.author_id, info["kind"], first, last, row.created_at
    )


def _notify(ctx: ServiceContext, mirror: Any, row: Any, keys: set[str]) -> None:
    accounts = groups.accounts_of_members(ctx, sorted(keys))
    host = "@" + ctx.config.origin.split("://", 1)[1]
    ours = {a for m, a in accounts.items() if a and m.endswith(host) and a != row.author_id}
    if row.author_id:
        ours -= store.blockers_of(row.author_id, ours)
    notifications.enqueue(
        ctx, kind="message", account_ids=sorted(ours), class_id=mirror.id, message_id=row.id
    )
