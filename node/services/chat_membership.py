"""Who is in a class's parents' room or private group, and the people of family threads.

Who may do what:
- a guardian joins the room alone (a ``member`` event they sign, ``join``);
- a member adds one person at a time (``add``), never one who blocked them,
  and leaves when they want (``leave``); one who left reads nothing new;
- the event is sealed to the members after the change (and its author), so
  readers replay the signed chain and check that the node added nobody;
- a change forwarded by another node says what it is by whom it is sealed to;
- a family thread's people follow the class: when the child's approved guardians
  change (an approval or removal, an unlink, an erasure, a guardian leaving or an
  approved one linked to the child: node/services/families.py), the other
  schools are told the thread's new people.
"""

from __future__ import annotations

from typing import Any

from node.errors import N_, Conflict, Invalid, NotFound, PermissionDenied
from node.services import chat_rules, groups
from node.services.chat_rules import Place
from node.services.context import Actor, ServiceContext
from node.services.conversations import (
    Said,
    _keys,
    _notify,
    _store_message,
    _tell_schools,
    current_members,
)
from node.services.posts import _audience, _check_author, _wire, class_people
from node.storage import conversations as store
from node.storage import directory as directory_store
from node.storage import groups as group_store
from node.storage.db import write_transaction


def _announce_members(ctx: ServiceContext, place: Place, opener: Any) -> None:
    """A conversation's members changed: other schools get its opening again, with them."""
    if not place.mirrored:
        opener.revision += 1
        opener.save()
        ctx.publish("message_changed", {"message_id": opener.id})


def change_members(
    ctx: ServiceContext, actor: Actor, class_id: int, conversation_id: str, op: Any,
    member: Any, message: Any, *, keys: Any = None,
) -> Said:  # fmt: skip
    """``join`` the room, ``add`` someone to a room or group, or ``leave`` one.

    The signed event's recipients are the members after the change (and the
    one who leaves), so every member can check who let whom in.
    """
    if op not in ("join", "add", "leave", None):
        raise Invalid(N_("op must be join, add or leave."), field="op")
    wire = _wire(message)
    header = wire["header"]
    with write_transaction():
        place = chat_rules.place(ctx, actor, class_id, lock=True)
        found = store.select_conversation(class_id, conversation_id, lock=True)
        if found is None or found[0].kind == "family" or found[1].deleted_at is not None:
            raise NotFound(N_("No such conversation."))
        conversation, opener = found
        a = place.access
        place.require_parent_chat(write=True)
        before = current_members(ctx, place, conversation)
        if op is None:  # forwarded by another node: the signed recipients say what it is
            op, member = _change_of(a.me, before, header["to"])
        if op == "join":
            if conversation.kind != "room":
                raise PermissionDenied(N_("Only a member can add you to a private group."))
            if a.me in before:
                raise Conflict(N_("You are in this conversation already."))
            if member != a.me:
                raise Invalid(N_("You join for yourself only."), field="member")
            place.require_guardian()
            after = sorted({*before, a.me})
        elif a.me not in before:
            raise NotFound(N_("No such conversation."))
        elif op == "add":
            if not isinstance(member, str) or member in before:
                raise Conflict(N_("This person is in the conversation already."))
            place.require_addable(member)
            after = sorted({*before, member})
        else:
            if member != a.me:
                raise Invalid(N_("You can only leave for yourself."), field="member")
            after = sorted(set(before) - {a.me})
        _check_author(a, header)
        if header["kind"] != "member" or header["parent"] != opener.public_id:
            raise Invalid(N_("A membership change must name this conversation."), field="message")
        sealed = _keys(header, keys, sorted({*after, a.me}))
        row = _store_message(ctx, place, header, wire, sealed, opener)
        store.set_members(conversation, groups.accounts_of_members(ctx, after), ctx.now())
        recipients = _notify(ctx, place, row, [member] if op == "add" else [])
        _tell_schools(ctx, place, row)
        _announce_members(ctx, place, opener)
        return Said(class_id, conversation_id, header["id"], "member", recipients)


def change_signed(
    ctx: ServiceContext, actor: Actor, class_id: int, conversation_id: str, message: Any, *,
    keys: Any = None,
) -> Said:  # fmt: skip
    """A membership change forwarded by a guardian's node: what it is follows from whom
    the signed event is sealed to (``change_members`` checks it as any other)."""
    return change_members(ctx, actor, class_id, conversation_id, None, None, message, keys=keys)


def _change_of(me: str, before: list[str], to: Any) -> tuple[str, str]:
    if not isinstance(to, list):
        raise Invalid(N_("A membership change must name this conversation."), field="message")
    added = sorted(set(to) - set(before))
    if added == [me]:
        return "join", me
    if len(added) == 1:
        return "add", added[0]
    if not added:
        return "leave", me
    raise Invalid(N_("A membership change adds one person at a time."), field="message")


def refresh_families(ctx: ServiceContext, class_id: int) -> None:
    """The class's approved members changed: a family thread whose people are no longer
    those the other schools were told is announced again (called in the log's transaction)."""
    families = store.families_of_class(class_id)
    school_class = directory_store.select_class(class_id) if families else None
    group = group_store.select_group_of_class(class_id) if families else None
    if school_class is None or school_class.peer_id is not None or group is None:
        return  # no family thread (the usual case when guardians are approved), or a mirror
    a = groups.Access(school_class, group, "", True, [], True)
    people = class_people(ctx, a)
    stored = store.members_of(c.id for c in families)
    for conversation in families:
        assert conversation.child_id is not None
        try:
            now = _audience(ctx, a, [conversation.child_id], people)
        except Invalid:  # no approved guardian of the child any more
            now = [groups.member_id(ctx, school_class.teacher_id)]
        was = sorted(m.member for m in stored.get(conversation.id, []))
        if now != was:
            store.set_members(conversation, groups.accounts_of_members(ctx, now), ctx.now())
            opener = conversation.message
            opener.revision += 1
            opener.save()
            ctx.publish("message_changed", {"message_id": opener.id})
