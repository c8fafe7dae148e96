"""The audit log's rows: pseudonymous, append-only, purged after the retention period.

Storage rule (as every ``node.storage`` module): peewee models and the small
queries on them, no rules.  Nothing here knows who an actor is: the service
writes pseudonyms, and the table holds no name, phone number or e-mail.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import peewee

from node.storage.db import BaseModel


class AuditEvent(BaseModel):
    created_at = peewee.DateTimeField()
    action = peewee.CharField(max_length=40)
    #: pseudonym of who acted (None: nobody logged in, or the node itself)
    actor = peewee.CharField(max_length=32, null=True)
    #: pseudonym of the account acted upon
    target = peewee.CharField(max_length=32, null=True)
    outcome = peewee.CharField(max_length=16)
    #: canonical JSON object of ids and counts
    details = peewee.TextField()

    class Meta:
        table_name = "audit_event"


def insert_event(
    created_at: dt.datetime,
    action: str,
    actor: str | None,
    target: str | None,
    outcome: str,
    details: str,
) -> AuditEvent:
    event: AuditEvent = AuditEvent.create(
        created_at=created_at,
        action=action,
        actor=actor,
        target=target,
        outcome=outcome,
        details=details,
    )
    return event


#: the primary key as a column (``BaseModel.id`` is typed as the row's int)
_ID: Any = AuditEvent.id


def _filtered(action: str | None, pseudonym: str | None) -> Any:
    query = AuditEvent.select()
    if action:
        query = query.where(AuditEvent.action == action)
    if pseudonym:
        query = query.where((AuditEvent.actor == pseudonym) | (AuditEvent.target == pseudonym))
    return query


def select_events(
    action: str | None, pseudonym: str | None, offset: int, limit: int
) -> list[AuditEvent]:
    """Newest first (ids grow with time)."""
    query = _filtered(action, pseudonym).order_by(_ID.desc()).offset(offset).limit(limit)
    return list(query)


def count_events(action: str | None, pseudonym: str | None) -> int:
    count: int = _filtered(action, pseudonym).count()
    return count


def delete_events_before(cutoff: dt.datetime) -> int:
    deleted: int = AuditEvent.delete().where(AuditEvent.created_at < cutoff).execute()
    return deleted
