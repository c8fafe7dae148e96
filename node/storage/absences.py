"""Absence notes: the few plaintext facts the node keeps to show a note on the right day.

The note itself (kind, days, arrival time, reason) is an encrypted message of
kind ``absence`` in ``node.storage.feed``; this row repeats its kind and days
so the teacher's page can ask "which notes cover this day" and the node can
check the dates.  It never holds the reason or the arrival time.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import peewee

from node.storage.accounts import Account
from node.storage.db import BaseModel, locked
from node.storage.directory import Child, SchoolClass
from node.storage.feed import Message

#: ``absent`` (from first_day to last_day) or ``late`` (on first_day).
KINDS = ("absent", "late")


class AbsenceNote(BaseModel):
    message = peewee.ForeignKeyField(Message, unique=True, on_delete="CASCADE")
    message_id: int
    school_class = peewee.ForeignKeyField(
        SchoolClass, column_name="class_id", object_id_name="school_class_id", on_delete="CASCADE"
    )
    school_class_id: int
    child = peewee.ForeignKeyField(Child, on_delete="CASCADE")
    child_id: int
    author = peewee.ForeignKeyField(Account, null=True, on_delete="SET NULL")
    author_id: int | None
    kind = peewee.CharField(max_length=8)
    first_day = peewee.DateField()
    last_day = peewee.DateField()
    created_at = peewee.DateTimeField()
    #: when the teacher marked it seen
    seen_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "absence_note"


def _with_message() -> Any:
    return (
        AbsenceNote.select(AbsenceNote, Message, Child)
        .join(Message)
        .switch(AbsenceNote)
        .join(Child)
    )


def select_for_day(class_id: int, day: dt.date) -> list[AbsenceNote]:
    """The class's notes that cover ``day``, by child's first name."""
    query = _with_message().where(
        (AbsenceNote.school_class == class_id)
        & (AbsenceNote.first_day <= day)
        & (AbsenceNote.last_day >= day)
    )
    return list(query.order_by(Child.first_name, Child.id, AbsenceNote.id))


def select_of_children(class_id: int, child_ids: list[int], since: dt.date) -> list[AbsenceNote]:
    """Notes for these children in this class that end on or after ``since``, soonest first."""
    if not child_ids:
        return []
    query = _with_message().where(
        (AbsenceNote.school_class == class_id)
        & AbsenceNote.child.in_(child_ids)
        & (AbsenceNote.last_day >= since)
    )
    return list(query.order_by(AbsenceNote.first_day, AbsenceNote.id))


def select_note(class_id: int, message_id: int, lock: bool = False) -> AbsenceNote | None:
    query = AbsenceNote.select().where(
        (AbsenceNote.school_class == class_id) & (AbsenceNote.message == message_id)
    )
    found: AbsenceNote | None = locked(query, lock).first()
    return found


def insert_note(
    message_id: int, class_id: int, child_id: int, author_id: int | None, kind: str,
    first_day: dt.date, last_day: dt.date, now: dt.datetime,
) -> AbsenceNote:  # fmt: skip
    note: AbsenceNote = AbsenceNote.create(
        message=message_id, school_class=class_id, child=child_id, author=author_id, kind=kind,
        first_day=first_day, last_day=last_day, created_at=now,
    )  # fmt: skip
    return note


def mark_seen(note_id: int, now: dt.datetime) -> None:
    AbsenceNote.update(seen_at=now).where(
        (AbsenceNote.id == note_id) & AbsenceNote.seen_at.is_null()
    ).execute()


def delete_note(note_id: int) -> None:
    AbsenceNote.delete().where(AbsenceNote.id == note_id).execute()
