"""Daily digests: information posts held for a guardian, and the digest that announces them.

A held row is an ordinary notification row (``node.storage.notifications``)
with status ``held`` and ``deliver_after`` at the guardian's digest time.
Forming a digest inserts one ``digest`` notification and marks the held rows
it covers ``sent``, naming it in ``digest_id``: in one transaction, so a
worker that runs twice finds nothing left to form.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from node.storage.db import is_sqlite
from node.storage.feed import Message
from node.storage.notifications import Notification

_NID: Any = Notification._meta.primary_key


def select_due_held(now: dt.datetime, limit: int) -> list[tuple[int, int]]:
    """(notification id, account id) of held rows whose digest time has come, oldest first.

    On PostgreSQL the rows are locked with ``SKIP LOCKED``: two processes
    forming digests at once take different rows, never the same twice.
    """
    query: Any = (
        Notification.select(_NID, Notification.account)
        .where((Notification.status == "held") & (Notification.deliver_after <= now))
        .order_by(Notification.account, _NID)
        .limit(limit)
    )
    if not is_sqlite():
        query = query.for_update(skip_locked=True)
    return [(row_id, account_id) for row_id, account_id in query.tuples()]


def mark_digested(ids: Iterable[int], digest_id: int, now: dt.datetime) -> None:
    """The held rows count as delivered, by the digest ``digest_id``."""
    keys = sorted(set(ids))
    for start in range(0, len(keys), 500):
        Notification.update(status="sent", pushed_at=now, digest_id=digest_id).where(
            _NID.in_(keys[start : start + 500]) & (Notification.status == "held")
        ).execute()


def digest_counts(digest_ids: Iterable[int]) -> dict[int, dict[int, int]]:
    """Digest id → {class id: posts still there}: what each digest announces (deleted posts
    are not counted)."""
    keys = sorted(set(digest_ids))
    out: dict[int, dict[int, int]] = {}
    if not keys:
        return out
    query: Any = (
        Notification.select(Notification.digest_id, Notification.school_class)
        .join(Message, on=(Notification.message == Message.id))
        .where(Notification.digest_id.in_(keys) & Message.deleted_at.is_null())
        .tuples()
    )
    for digest_id, class_id in query:
        if class_id is not None:
            counts = out.setdefault(digest_id, {})
            counts[class_id] = counts.get(class_id, 0) + 1
    return out
