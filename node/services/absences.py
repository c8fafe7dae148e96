"""Absence notes: a guardian tells the teacher their child will be absent or late.

Who may do what:
- an approved guardian of a child (a member of the class's group holding
  their current keys) reports an absence (``absent``, from one day to
  another) or a lateness (``late``, one day) for that child only, one child
  per note; the teacher cannot report, a guardian of another child cannot
  report for this one;
- the note is an encrypted message of kind ``absence`` sealed to the teacher
  and every approved guardian of the child (separated parents both see it);
  the node keeps in plaintext only the child, the kind and the days, to show
  the note on the right day (``node.storage.absences``);
- the teacher sees the notes covering a day and marks them seen; a guardian
  sees their children's notes and withdraws their own before its first day
  (the ciphertext leaves the node, as a deleted post's does).

Days are read in the school's time zone.  A note starts at most
``MAX_PAST_DAYS`` ago and at most ``MAX_AHEAD_DAYS`` ahead, and covers at
most ``MAX_SPAN_DAYS`` days.  ``report`` takes the wire message and sealed
keys exactly like ``posts.create_post``, so the federation inbox can call it
for a guardian of another school (a shadow actor).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from typing import Any

from node.e2e.encoding import canonical_text
from node.errors import N_, Conflict, Invalid, NotFound, PermissionDenied
from node.services import groups, notifications, posts
from node.services.context import Actor, ServiceContext
from node.storage import absences as store
from node.storage import accounts as account_store
from node.storage import feed as feed_store
from node.storage.db import write_transaction

MAX_PAST_DAYS = 7
MAX_AHEAD_DAYS = 60
MAX_SPAN_DAYS = 30
#: A guardian's list shows notes that ended up to this many days ago.
HISTORY_DAYS = 60

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class Reported:
    """What the routes need after a write: ids, and whom to tell live."""

    class_id: int
    message: str
    recipients: list[int]


@dataclass
class AbsenceView:
    id: str
    child_id: int
    child_name: str
    #: ``absent`` or ``late``
    kind: str
    #: days as ``YYYY-MM-DD`` (calendar days of the school, not instants)
    first_day: str
    last_day: str
    author_name: str
    created_at: dt.datetime
    seen_at: dt.datetime | None
    #: the signed, encrypted note and the reader's sealed key: the browser decrypts
    message: dict[str, Any]
    key: dict[str, Any] | None
    can_withdraw: bool


@dataclass(frozen=True)
class ChildAudience:
    """One of a guardian's children, and who a note about them is sealed to."""

    id: int
    name: str
    #: member ids: the teacher and every approved guardian of the child (the browser
    #: checks each against the class's signed log before sealing)
    to: list[str]


@dataclass(frozen=True)
class AbsenceList:
    class_id: int
    #: the day shown (the teacher's list), or None (a guardian's: past and upcoming)
    day: str | None
    notes: list[AbsenceView]
    #: a guardian's children in this class (the teacher's list: empty)
    children: list[ChildAudience] = field(default_factory=list)
    #: the school's date today, and the range a new note may start in
    today: str | None = None
    earliest: str | None = None
    latest: str | None = None


def today(ctx: ServiceContext) -> dt.date:
    """The school's date now (days are wall-clock days in its time zone)."""
    return ctx.today()


def parse_day(raw: Any, field: str) -> dt.date:
    if not isinstance(raw, str) or not _DAY.fullmatch(raw):
        raise Invalid(N_("Enter a date like 2026-03-14."), field=field)
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise Invalid(N_("This date does not exist."), field=field) from None


def check_days(
    ctx: ServiceContext, kind: Any, first: Any, last: Any
) -> tuple[str, dt.date, dt.date]:
    """The note's kind and days, or Invalid with a message a parent understands."""
    if kind not in store.KINDS:
        raise Invalid(N_("Choose absent or late."), field="kind")
    first_day = parse_day(first, "first_day")
    if kind == "late":
        if last not in (None, first):
            raise Invalid(N_("A lateness is for one day."), field="last_day")
        last_day = first_day
    else:
        last_day = first_day if last is None else parse_day(last, "last_day")
    now = today(ctx)
    if first_day < now - dt.timedelta(days=MAX_PAST_DAYS):
        raise Invalid(
            N_("An absence note can start at most %(days)d days ago."),
            field="first_day",
            days=MAX_PAST_DAYS,
        )
    if first_day > now + dt.timedelta(days=MAX_AHEAD_DAYS):
        raise Invalid(
            N_("An absence note can start at most %(days)d days ahead."),
            field="first_day",
            days=MAX_AHEAD_DAYS,
        )
    if last_day < first_day:
        raise Invalid(N_("The last day cannot be before the first day."), field="last_day")
    if (last_day - first_day).days >= MAX_SPAN_DAYS:
        raise Invalid(
            N_("An absence note covers at most %(days)d days."),
            field="last_day",
            days=MAX_SPAN_DAYS,
        )
    return str(kind), first_day, last_day


def report(
    ctx: ServiceContext, actor: Actor, class_id: int, message: Any, *,
    keys: Any, child: Any, kind: Any, first_day: Any, last_day: Any = None,
) -> Reported:  # fmt: skip
    """Store a guardian's absence note and tell the teacher (in-app and push).

    The arrival time and the reason are in the encrypted body only; the node
    never receives them in the clear.
    """
    wire = posts._wire(message)
    header = wire["header"]
    if type(child) is not int:
        raise Invalid(N_("Choose one of your children."), field="child")
    note_kind, first, last = check_days(ctx, kind, first_day, last_day)
    with write_transaction():
        a = groups.require_member(ctx, actor, class_id, lock=True)
        if a.is_teacher:
            raise PermissionDenied(N_("Absence notes are written by a child's guardians."))
        if child not in a.my_children:
            raise PermissionDenied(N_("You can only report an absence for your own child."))
        posts._check_author(a, header)
        if header["kind"] != "absence" or header["version"] != 1:
            raise Invalid(N_("An absence note has kind absence and version 1."), field="message")
        to = posts._audience(ctx, a, [child])
        sealed = posts._check_keying(ctx, a, header, keys, to)
        if feed_store.select_message(a.group.id, header["id"]) is not None:
            raise Conflict(N_("A message with this id already exists."))
        now = ctx.now()
        row = feed_store.Message.create(
            group=a.group, public_id=header["id"], kind="absence", author=actor.account_id,
            author_member=a.me, epoch=None, version=1, header=canonical_text(header),
            ct=wire["ct"], sig=wire["sig"], comments_enabled=False, created_at=now, updated_at=now,
        )  # fmt: skip
        feed_store.MessageChild.create(message=row, child=child)
        for key in sealed:
            feed_store.MessageKey.create(
                message=row, member=key["member"], sealed=canonical_text(key)
            )
        store.insert_note(row.id, class_id, child, actor.account_id, note_kind, first, last, now)
        teacher = a.school_class.teacher_id
        recipients = [teacher] if a.school_class.peer_id is None else []
        notifications.enqueue(
            ctx, kind="absence", account_ids=recipients, class_id=class_id, message_id=row.id
        )
        posts._tell_schools(ctx, a, row)
        return Reported(class_id, header["id"], recipients)


def _views(
    ctx: ServiceContext, actor: Actor, a: groups.Access, notes: list[store.AbsenceNote]
) -> list[AbsenceView]:
    keys = feed_store.sealed_keys_for([n.message_id for n in notes], a.me)
    authors = {n.author_id for n in notes if n.author_id}
    names = {i: acc.display_name for i, acc in account_store.select_accounts(authors).items()}
    first = today(ctx)
    out = []
    for note in notes:
        msg = note.message
        out.append(
            AbsenceView(
                msg.public_id, note.child_id, note.child.first_name, note.kind,
                note.first_day.isoformat(), note.last_day.isoformat(), names.get(note.author_id, "") if note.author_id else "",
                note.created_at, note.seen_at,
                {"header": json.loads(msg.header or "{}"), "ct": msg.ct, "sig": msg.sig},
                json.loads(keys[msg.id]) if msg.id in keys else None,
                note.author_id == actor.account_id and first < note.first_day,
            )
        )  # fmt: skip
    return out


def list_notes(ctx: ServiceContext, actor: Actor, class_id: int, day: Any = None) -> AbsenceList:
    """The teacher: the notes covering ``day`` (default today).  A guardian: their
    children's notes in this class, from ``HISTORY_DAYS`` ago on."""
    a = groups.require_member(ctx, actor, class_id)
    now = today(ctx)
    if a.is_teacher:
        shown = now if day is None else parse_day(day, "day")
        notes = store.select_for_day(class_id, shown)
        views = _views(ctx, actor, a, notes)
        return AbsenceList(class_id, shown.isoformat(), views, [], now.isoformat())
    notes = store.select_of_children(class_id, a.my_children, now - dt.timedelta(days=HISTORY_DAYS))
    people = posts.class_people(ctx, a, a.my_children)
    children = [
        ChildAudience(c, people.names[c], posts._audience(ctx, a, [c], people))
        for c in sorted(a.my_children, key=lambda c: (people.names.get(c, ""), c))
        if c in people.names
    ]
    return AbsenceList(
        class_id, None, _views(ctx, actor, a, notes), children, now.isoformat(),
        (now - dt.timedelta(days=MAX_PAST_DAYS)).isoformat(),
        (now + dt.timedelta(days=MAX_AHEAD_DAYS)).isoformat(),
    )  # fmt: skip


def _note(a: groups.Access, public_id: str, lock: bool = False) -> tuple[Any, store.AbsenceNote]:
    row = feed_store.select_message(a.group.id, public_id, lock=lock)
    note = store.select_note(a.school_class.id, row.id, lock=lock) if row is not None else None
    if row is None or note is None or row.deleted_at is not None:
        raise NotFound(N_("No such absence note."))
    if not a.is_teacher and note.child_id not in a.my_children:
        raise NotFound(N_("No such absence note."))
    return row, note


def mark_seen(ctx: ServiceContext, actor: Actor, class_id: int, public_id: str) -> None:
    """The teacher has seen the note (once: seeing it again changes nothing)."""
    with write_transaction():
        a = groups.require_member(ctx, actor, class_id)
        if not a.is_teacher:
            raise PermissionDenied(N_("Only the class's teacher marks absence notes as seen."))
        _, note = _note(a, public_id, lock=True)
        store.mark_seen(note.id, ctx.now())


def withdraw(ctx: ServiceContext, actor: Actor, class_id: int, public_id: str) -> Reported:
    """The guardian who wrote the note withdraws it, before its first day."""
    with write_transaction():
        a = groups.access(ctx, actor, class_id, lock=True)
        if a.group is None:
            raise NotFound(N_("No such absence note."))
        row, note = _note(a, public_id, lock=True)
        if note.author_id != actor.account_id:
            raise PermissionDenied(N_("Only the guardian who wrote this note can withdraw it."))
        if today(ctx) >= note.first_day:
            raise Conflict(
                N_("This absence note has already started: it can no longer be withdrawn.")
            )
        posts._tell_deleted(ctx, a, [row], True)
        feed_store.MessageKey.delete().where(feed_store.MessageKey.message == row.id).execute()
        store.delete_note(note.id)
        row.header = row.ct = row.sig = None
        row.deleted_at = ctx.now()
        row.save()
        teacher = a.school_class.teacher_id
        return Reported(class_id, public_id, [teacher] if a.school_class.peer_id is None else [])
