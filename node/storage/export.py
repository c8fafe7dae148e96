"""What a guardian's export reads that no other feature lists: their own notifications.

Read-only helpers for ``node.services.export``; who may read them is decided
there (a person reads their own rows only, by account id).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import peewee

from node.storage.directory import SchoolClass
from node.storage.feed import Message
from node.storage.notifications import Notification


@dataclass(frozen=True)
class NotificationRow:
    kind: str
    urgency: str
    status: str
    created_at: dt.datetime
    pushed_at: dt.datetime | None
    class_name: str | None
    #: the public id of the post or message it announced (None: a digest, an alert)
    message: str | None


def select_notifications_of(account_id: int, limit: int) -> list[NotificationRow]:
    """The account's notifications still kept by the node, newest first."""
    newest_first: Any = Notification._meta.primary_key  # ``Model.id`` is typed ``int`` for rows
    query = (
        Notification.select(
            Notification.kind,
            Notification.urgency,
            Notification.status,
            Notification.created_at,
            Notification.pushed_at,
            SchoolClass.name,
            Message.public_id,
        )
        .join(
            SchoolClass,
            join_type=peewee.JOIN.LEFT_OUTER,
            on=(Notification.school_class == SchoolClass.id),
        )
        .switch(Notification)
        .join(Message, join_type=peewee.JOIN.LEFT_OUTER, on=(Notification.message == Message.id))
        .where(Notification.account == account_id)
        .order_by(Notification.created_at.desc(), newest_first.desc())
        .limit(limit)
    )
    rows: Any = query.tuples()
    return [NotificationRow(*row) for row in rows]
