"""Boundaries of a class's conversations: the teacher's settings, the code of conduct,
blocking a person, and reporting one message to the teacher.

Who may do what:
- only the class's teacher switches parent chat off, on or closed
  (read-only for all), lets guardians start family threads or only answer,
  and sets office hours and a holiday pause;
- a guardian accepts the code of conduct before taking part in parent chat;
- a guardian blocks another parent of the class: that person's messages
  are no longer shown to them nor notify them, and that person can no
  longer add them to a conversation;
- a member reports a message of a conversation they are in (not their
  own): the report is a message sealed to the teacher and the reporter
  that carries that one message's key, so the teacher reads that message
  and no other.  The teacher may then delete it.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from node.errors import N_, Conflict, Invalid, NotFound, PermissionDenied
from node.services import chat_rules, groups, notifications
from node.services.chat_rules import FAMILY_THREADS, PARENT_CHAT
from node.services.context import Actor, ServiceContext
from node.services.conversations import Said, _keys, _store_message, _tell_schools
from node.services.posts import _check_author, _wire
from node.storage import conversations as store
from node.storage import feed as feed_store
from node.storage.db import write_transaction

MAX_AWAY = dt.timedelta(days=366)


def _teacher_place(ctx: ServiceContext, actor: Actor, class_id: int) -> chat_rules.Place:
    place = chat_rules.place(ctx, actor, class_id, lock=True)
    if not place.access.is_teacher:
        raise PermissionDenied(N_("Only the class's teacher can change this."))
    return place


def set_settings(
    ctx: ServiceContext, actor: Actor, class_id: int, *, parent_chat: Any = None,
    family_threads: Any = None, office_hours: Any = None, away_until: Any = None,
) -> None:  # fmt: skip
    """Change the settings given (None: leave as it is; ``away_until`` "" ends a pause)."""
    if parent_chat is not None and parent_chat not in PARENT_CHAT:
        raise Invalid(N_("parent_chat must be off, open or closed."), field="parent_chat")
    if family_threads is not None and family_threads not in FAMILY_THREADS:
        raise Invalid(N_("family_threads must be open or reply."), field="family_threads")
    if office_hours is not None and (
        not isinstance(office_hours, str)
        or len(office_hours) > 200
        or any(ord(ch) < 32 for ch in office_hours)
    ):
        raise Invalid(
            N_("Office hours are one line of at most 200 characters."), field="office_hours"
        )
    until = _away(ctx, away_until)
    with write_transaction():
        c = _teacher_place(ctx, actor, class_id).school_class
        if parent_chat is not None:
            c.parent_chat = parent_chat
        if family_threads is not None:
            c.family_threads = family_threads
        if office_hours is not None:
            c.office_hours = office_hours.strip()
        if away_until is not None:
            c.away_until = until
        c.save()
        ctx.publish("class_changed", {"class_id": class_id})


def _away(ctx: ServiceContext, raw: Any) -> dt.date | None:
    if raw is None or raw == "":
        return None
    try:
        day = dt.date.fromisoformat(raw) if isinstance(raw, str) and len(raw) == 10 else None
    except ValueError:
        day = None
    if day is None:
        raise Invalid(N_("Give the last day away as YYYY-MM-DD."), field="away_until")
    today = ctx.now().date()
    if day < today or day > today + MAX_AWAY:
        raise Invalid(
            N_("The last day away must be between today and a year from now."), field="away_until"
        )
    return day


def accept_conduct(ctx: ServiceContext, actor: Actor, class_id: int) -> None:
    with write_transaction():
        place = chat_rules.place(ctx, actor, class_id)
        place.require_guardian()
        if place.school_class.parent_chat == "off":
            raise PermissionDenied(N_("The teacher has not opened parent chat for this class."))
        store.accept_conduct(actor.account_id, class_id, ctx.now())


def _other_parent(ctx: ServiceContext, place: chat_rules.Place, member: Any) -> int:
    if not isinstance(member, str) or member not in place.guardians():
        raise Invalid(N_("You can block another parent of the class only."), field="member")
    account = groups.account_of_member(ctx, member)
    if account is None or account == place.actor.account_id:
        raise Invalid(N_("You can block another parent of the class only."), field="member")
    return account


def block(ctx: ServiceContext, actor: Actor, class_id: int, member: Any) -> None:
    with write_transaction():
        place = chat_rules.place(ctx, actor, class_id)
        place.require_guardian()
        store.block(actor.account_id, _other_parent(ctx, place, member), ctx.now())


def unblock(ctx: ServiceContext, actor: Actor, class_id: int, member: Any) -> None:
    with write_transaction():
        place = chat_rules.place(ctx, actor, class_id)
        place.require_guardian()
        store.unblock(actor.account_id, _other_parent(ctx, place, member))


def report(
    ctx: ServiceContext, actor: Actor, class_id: int, conversation_id: str, message_id: str,
    message: Any, *, keys: Any = None,
) -> Said:  # fmt: skip
    """Report one message to the teacher, with that message's key sealed to them."""
    wire = _wire(message)
    header = wire["header"]
    with write_transaction():
        place = chat_rules.place(ctx, actor, class_id, lock=True)
        found = store.select_conversation(class_id, conversation_id)
        if found is None or not place.can_read(found[0], store.members_of([found[0].id])):
            raise NotFound(N_("No such conversation."))
        conversation, opener = found
        reported = feed_store.select_message(place.access.group.id, message_id)
        if (
            reported is None
            or reported.deleted_at is not None
            or reported.parent_id != opener.id
            or reported.kind != "chat"
            or place.access.me not in (json.loads(reported.header or "{}").get("to") or [])
        ):
            raise NotFound(N_("No such message."))
        if reported.author_id == actor.account_id:
            raise Invalid(N_("You cannot report your own message."))
        if place.access.is_teacher:
            raise Invalid(N_("You are the class's moderator: delete the message instead."))
        _check_author(place.access, header)
        if header["kind"] != "report" or header["parent"] != reported.public_id:
            raise Invalid(N_("A report must name the reported message."), field="message")
        already = (
            feed_store.Message.select()
            .where(
                (feed_store.Message.parent == reported.id)
                & (feed_store.Message.author == actor.account_id)
                & (feed_store.Message.kind == "report")
            )
            .exists()
        )
        if already:
            raise Conflict(N_("You reported this message already."))
        to = sorted({place.teacher(), place.access.me})
        sealed = _keys(header, keys, to)
        row = _store_message(ctx, place, header, wire, sealed, reported)
        store.ChatReport.create(
            report=row, reported=reported, school_class=class_id, created_at=row.created_at
        )
        _tell_schools(ctx, place, row)
        # the class's node tells its teacher (a report made here for a class of another
        # school is forwarded there with the message)
        teacher = [] if place.mirrored else [place.school_class.teacher_id]
        notifications.enqueue(
            ctx, kind="report", account_ids=teacher, class_id=class_id, message_id=row.id
        )
        return Said(class_id, conversation_id, header["id"], "report", teacher)


@dataclass
class ReportItem:
    id: str
    conversation: str
    conversation_kind: str
    reporter_name: str
    author_name: str
    created_at: dt.datetime
    handled: bool
    #: the report (sealed to the teacher): it carries the reported message's key
    message: dict[str, Any]
    key: dict[str, Any] | None
    #: the reported message as stored (None once deleted)
    reported: dict[str, Any] | None
    reported_id: str


def reports(
    ctx: ServiceContext, actor: Actor, class_id: int, handled: bool = False
) -> list[ReportItem]:
    place = chat_rules.place(ctx, actor, class_id)
    if not place.access.is_teacher:
        raise PermissionDenied(N_("Only the class's teacher reads reports."))
    rows = store.reports_of_class(class_id, handled)
    # every message involved, the conversations and the names: a fixed number of queries
    messages = feed_store.messages_by_id(
        {r.report_id for r in rows} | {r.reported_id for r in rows}
    )
    openers = feed_store.messages_by_id(
        {m.parent_id for m in messages.values() if m.kind == "chat"}
    )
    conversations = store.conversations_of_messages(openers)
    people = {m.author_member for m in messages.values()}
    names = chat_rules.member_names(ctx, place, sorted(people))
    keys = feed_store.sealed_keys_for([r.report_id for r in rows], place.access.me)
    out = []
    for r in rows:
        rep, reported = messages[r.report_id], messages[r.reported_id]
        opener = openers[reported.parent_id or 0]
        out.append(
            ReportItem(
                rep.public_id,
                opener.public_id,
                conversations[opener.id].kind,
                names.get(rep.author_member, ""),
                names.get(reported.author_member, ""),
                r.created_at,
                r.handled_at is not None,
                _wire_of(rep),
                json.loads(keys[rep.id]) if rep.id in keys else None,
                None if reported.header is None else _wire_of(reported),
                reported.public_id,
            )  # fmt: skip
        )
    return out


def _wire_of(row: Any) -> dict[str, Any]:
    return {"header": json.loads(row.header or "null"), "ct": row.ct, "sig": row.sig}


def handle_report(ctx: ServiceContext, actor: Actor, class_id: int, report_id: str) -> None:
    with write_transaction():
        place = _teacher_place(ctx, actor, class_id)
        row = feed_store.select_message(place.access.group.id, report_id)
        found = store.select_report(class_id, row.id) if row is not None else None
        if found is None:
            raise NotFound(N_("No such report."))
        found.handled_at = ctx.now()
        found.save()
