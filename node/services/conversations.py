"""Conversations of a class: the parents' room, private parent groups, teacher-family threads.

Who may do what:
- parent chat (the room and private groups) exists only while the teacher
  has it ``open`` or ``closed`` (read-only for all); it is ``off`` by
  default.  A guardian takes part once they accepted the code of conduct.
  The teacher is in a parent conversation only if a member added them;
- the room: any approved guardian of the class opens it (the first one) or
  joins it; members leave when they want;
- a private group: a guardian opens it with other approved members of the
  class; any member adds another (never one who blocked them); members leave;
- a family thread: one per child, the teacher and the child's approved
  guardians (separated parents each see everything); the teacher starts it,
  or a guardian when the teacher lets guardians start threads;
- every message is sealed to exactly the conversation's current members,
  signed by its author's current class keys (checked here and again by
  readers); a blocked person's messages are not shown to, nor notify, the
  person who blocked them.
Membership changes of a room or a group are in ``chat_membership``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from node.e2e.encoding import canonical_text
from node.errors import N_, Conflict, Invalid, NotFound, PermissionDenied
from node.services import chat_rules, groups, notifications, ratelimit
from node.services.chat_rules import Place
from node.services.context import Actor, ServiceContext
from node.services.posts import _check_author, _wire
from node.storage import conversations as store
from node.storage import feed as feed_store
from node.storage.db import write_transaction

MAX_GROUP_MEMBERS = 60
PAGE = 50


@dataclass(frozen=True)
class Said:
    """What the routes need after a write: ids, whom to tell live, an automatic reply."""

    class_id: int
    conversation: str
    message: str
    kind: str
    recipients: list[int]
    #: a family thread while the teacher is away: the day they are back
    away_until: str | None = None


def _tell_schools(ctx: ServiceContext, place: Place, row: Any) -> None:
    """In the writer's transaction: a class of ours announces the message to the other
    schools of its members; a class of another school gets our guardian's message
    forwarded, and its node stores it and announces it to everyone."""
    if place.mirrored:
        ctx.publish("mirror_reply", {"message_id": row.id})
    else:
        ctx.publish("message_changed", {"message_id": row.id})


def _store_message(
    ctx: ServiceContext, place: Place, header: dict[str, Any], wire: dict[str, Any],
    sealed: list[dict[str, Any]], parent: Any,
) -> Any:  # fmt: skip
    if feed_store.select_message(place.access.group.id, header["id"]) is not None:
        raise Conflict(N_("A message with this id already exists."))
    now = ctx.now()
    row = feed_store.Message.create(
        group=place.access.group, public_id=header["id"], kind=header["kind"], parent=parent,
        author=place.actor.account_id, author_member=place.access.me, epoch=None, version=1,
        header=canonical_text(header), ct=wire["ct"], sig=wire["sig"], created_at=now,
        updated_at=now,
    )  # fmt: skip
    for key in sealed:
        feed_store.MessageKey.create(message=row, member=key["member"], sealed=canonical_text(key))
    return row


def _keys(header: dict[str, Any], keys: Any, to: list[str]) -> list[dict[str, Any]]:
    if header["epoch"] is not None or header["to"] != to:
        raise Conflict(
            N_("The people in this conversation changed. Reload the page and send it again.")
        )
    if not isinstance(keys, list) or len(keys) != len(to):
        raise Invalid(N_("Send one sealed key per recipient."), field="keys")
    for sealed in keys:
        if (
            not isinstance(sealed, dict)
            or set(sealed) != {"member", "enc", "ct"}
            or not all(isinstance(v, str) and len(v) <= 200 for v in sealed.values())
        ):
            raise Invalid(N_("A sealed key is malformed."), field="keys")
    if sorted(k["member"] for k in keys) != to:
        raise Invalid(N_("Send one sealed key per recipient."), field="keys")
    return keys


def _notify(ctx: ServiceContext, place: Place, row: Any, to: list[str]) -> list[int]:
    """Local recipients (not the author, not who blocked them) hear of a new message."""
    accounts = groups.accounts_of_members(ctx, to)
    local = {
        a for m, a in accounts.items() if a and m in place.local_members and a != row.author_id
    }
    local -= store.blockers_of(place.actor.account_id, local)
    recipients = sorted(local)
    notifications.enqueue(
        ctx, kind="message", account_ids=recipients, class_id=place.class_id, message_id=row.id
    )
    return recipients


def open_conversation(
    ctx: ServiceContext, actor: Actor, class_id: int, kind: Any, message: Any, *,
    keys: Any = None, child: Any = None, members: Any = None,
) -> Said:  # fmt: skip
    """Open the room, a private group (with ``members``) or a child's family thread."""
    if kind not in store.KINDS:
        raise Invalid(N_("kind must be room, group or family."), field="kind")
    wire = _wire(message)
    header = wire["header"]
    with write_transaction():
        place = chat_rules.place(ctx, actor, class_id, lock=True)
        a = place.access
        ratelimit.count_message(ctx, actor.account_id)
        _check_author(a, header)
        if header["kind"] != "conversation" or header["version"] != 1:
            raise Invalid(
                N_("A new conversation has kind conversation, version 1."), field="message"
            )
        singleton = None
        child_id = None
        if kind == "family":
            child_id = chat_rules.family_child(place, child, starting=True)
            to = _family_opening(place, child_id, header)
            singleton = f"family:{child_id}"
        else:
            place.require_parent_chat(write=True)
            if kind == "room":
                to = [a.me]
                singleton = f"room:{class_id}"
            else:
                to = _group_members(ctx, place, members)
        if singleton and store.select_singleton(singleton) is not None:
            raise Conflict(N_("This conversation exists already. Reload the page to see it."))
        sealed = _keys(header, keys, to)
        row = _store_message(ctx, place, header, wire, sealed, None)
        if child_id is not None:
            feed_store.MessageChild.create(message=row, child=child_id)
        now = ctx.now()
        conversation = store.Conversation.create(
            message=row, school_class=class_id, kind=kind, child=child_id, singleton=singleton,
            created_at=now, last_message_at=now,
        )  # fmt: skip
        # a family thread is, on the class's node, every guardian of the child as they are
        # now; another node knows only whom the opening was sealed to until it hears more
        members = place.family_audience(child_id) if child_id and not place.mirrored else to
        store.set_members(conversation, groups.accounts_of_members(ctx, members), now)
        if members != to:  # the node that opened it learns the whole family from this version
            row.revision += 1
            row.save()
        recipients = _notify(ctx, place, row, [m for m in to if m != a.me])
        _tell_schools(ctx, place, row)
        return Said(class_id, header["id"], header["id"], "conversation", recipients)


def _group_members(ctx: ServiceContext, place: Place, raw: Any) -> list[str]:
    if not isinstance(raw, list) or not all(isinstance(m, str) for m in raw):
        raise Invalid(N_("Choose the people of the group."), field="members")
    chosen = set(raw) | {place.access.me}
    if len(chosen) < 2:
        raise Invalid(N_("Choose at least one other person."), field="members")
    if len(chosen) > MAX_GROUP_MEMBERS:
        raise Invalid(N_("A group has at most 60 people."), field="members")
    for member in sorted(chosen - {place.access.me}):
        place.require_addable(member)
    return sorted(chosen)


def current_members(ctx: ServiceContext, place: Place, conversation: Any) -> list[str]:
    """Who a new message of the conversation is sealed to: a family thread's are the
    teacher and the child's approved guardians as they are now (on the class's node)."""
    if conversation.kind == "family" and not place.mirrored:
        assert conversation.child_id is not None
        try:
            return place.family_audience(conversation.child_id)
        except Invalid:  # the child's last guardian left or was erased: the thread stays readable
            return [place.teacher()]
    stored = store.members_of([conversation.id]).get(conversation.id, [])
    return sorted(m.member for m in stored if m.member in place.active)


def _family_opening(place: Place, child_id: int, header: dict[str, Any]) -> list[str]:
    """Whom a family thread's opening is sealed to: the teacher and its author at least,
    and only the child's family.  (It carries no text: a guardian of another node, who
    does not know the whole family, opens it for those they know.)"""
    to = header["to"]
    if not isinstance(to, list) or not {place.teacher(), place.access.me} <= set(to):
        raise Invalid(
            N_("A family conversation is sealed to the teacher and to you."), field="message"
        )
    allowed = place.active if place.mirrored else set(place.family_audience(child_id))
    if not set(to) <= allowed:
        raise Invalid(N_("A family conversation is for the child's family only."), field="message")
    return sorted(to)


def _conversation(place: Place, public_id: str, *, lock: bool = False) -> tuple[Any, Any]:
    found = store.select_conversation(place.class_id, public_id, lock=lock)
    if found is None or found[1].deleted_at is not None:
        raise NotFound(N_("No such conversation."))
    conversation, opener = found
    if not place.can_read(conversation, store.members_of([conversation.id])):
        raise NotFound(N_("No such conversation."))
    return conversation, opener


def say(
    ctx: ServiceContext, actor: Actor, class_id: int, conversation_id: str, message: Any, *,
    keys: Any = None,
) -> Said:  # fmt: skip
    """A chat message in a conversation the actor is in."""
    wire = _wire(message)
    header = wire["header"]
    with write_transaction():
        place = chat_rules.place(ctx, actor, class_id, lock=True)
        conversation, opener = _conversation(place, conversation_id, lock=True)
        place.require_can_write(conversation)
        ratelimit.count_message(ctx, actor.account_id)
        _check_author(place.access, header)
        if header["kind"] != "chat" or header["parent"] != opener.public_id:
            raise Invalid(N_("A chat message must answer this conversation."), field="message")
        if header["version"] != 1:
            raise Invalid(N_("A new message has version 1."), field="message")
        to = current_members(ctx, place, conversation)
        if conversation.kind == "family" and to == [place.teacher()]:
            raise Invalid(
                N_("This child has no approved guardian any more: nobody would read this message."),
                field="message",
            )
        sealed = _keys(header, keys, to)
        row = _store_message(ctx, place, header, wire, sealed, opener)
        conversation.last_message_at = row.created_at
        conversation.save()
        recipients = _notify(ctx, place, row, to)
        _tell_schools(ctx, place, row)
        away = None
        if conversation.kind == "family" and not place.access.is_teacher:
            away = place.away_until()
        return Said(class_id, conversation_id, header["id"], "chat", recipients, away)


def delete_message(
    ctx: ServiceContext, actor: Actor, class_id: int, conversation_id: str, message_id: str
) -> Said:
    """The author deletes their message; the teacher deletes one that was reported to them."""
    with write_transaction():
        place = chat_rules.place(ctx, actor, class_id, lock=True)
        conversation, opener = _conversation_or_reported(place, conversation_id)
        row = feed_store.select_message(place.access.group.id, message_id, lock=True)
        if row is None or row.deleted_at is not None or row.parent_id != opener.id:
            raise NotFound(N_("No such message."))
        if row.kind != "chat":
            raise Invalid(N_("Only chat messages can be deleted."))
        own = row.author_id == actor.account_id
        if not own and not (place.access.is_teacher and chat_rules.was_reported(row.id)):
            raise PermissionDenied(N_("Only the author can delete this message."))
        to = json.loads(row.header)["to"] if row.header else []
        feed_store.MessageKey.delete().where(feed_store.MessageKey.message == row.id).execute()
        row.header = row.ct = row.sig = None
        row.deleted_at = ctx.now()
        row.revision += 1
        row.save()
        if not place.mirrored:
            gone = [[row.public_id, row.revision]]
            ctx.publish("messages_deleted", {"class_id": class_id, "messages": gone})
        elif own:  # our guardian deleted theirs: the class's node must delete it
            ctx.publish("mirror_delete", {"class_id": class_id, "message_id": row.id})
        local = groups.accounts_of_members(ctx, to)
        recipients = sorted({i for i in local.values() if i and i != actor.account_id})
        return Said(class_id, conversation_id, message_id, "chat_deleted", recipients)


def _conversation_or_reported(place: Place, conversation_id: str) -> tuple[Any, Any]:
    if place.access.is_teacher:  # moderation: the teacher reaches reported messages
        found = store.select_conversation(place.class_id, conversation_id, lock=True)
        if found is not None:
            return found
    return _conversation(place, conversation_id, lock=True)
