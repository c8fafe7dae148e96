"""Push subscriptions, quiet hours, and the notification outbox.

A notification row is written in the same transaction as what it announces
(a post, a reminder), so a crash cannot lose one; the push worker delivers
rows whose ``deliver_after`` has come (quiet hours push it to the morning).
While the worker sends, ``deliver_after`` holds a lease: a crashed worker's
rows come due again when it expires.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable
from typing import Any

import peewee

from node.storage.accounts import Account
from node.storage.db import BaseModel, database_proxy, is_sqlite
from node.storage.directory import Child, Guardianship, SchoolClass
from node.storage.feed import Message

#: ``status`` values of a notification.
#: ``held``: an information post waiting for the guardian's daily digest.
STATUSES = ("pending", "sent", "no_device", "failed", "cancelled", "held")


class PushSubscription(BaseModel):
    account = peewee.ForeignKeyField(Account, on_delete="CASCADE")
    account_id: int
    endpoint = peewee.TextField()
    #: SHA-256 of the endpoint: endpoints can exceed an indexable length
    endpoint_hash = peewee.CharField(max_length=64, unique=True)
    p256dh = peewee.CharField(max_length=128)
    auth = peewee.CharField(max_length=32)
    user_agent = peewee.CharField(max_length=200, default="")
    created_at = peewee.DateTimeField()
    last_success_at = peewee.DateTimeField(null=True)
    failures = peewee.IntegerField(default=0)

    class Meta:
        table_name = "push_subscription"


class NotificationSettings(BaseModel):
    account = peewee.ForeignKeyField(Account, unique=True, on_delete="CASCADE")
    account_id: int
    #: "HH:MM" in the node's time zone, or both None for no quiet hours
    quiet_start = peewee.CharField(max_length=5, null=True)
    quiet_end = peewee.CharField(max_length=5, null=True)
    #: "HH:MM": information posts wait for one daily digest then; None: notify at once
    digest_time = peewee.CharField(max_length=5, null=True)
    updated_at = peewee.DateTimeField()

    class Meta:
        table_name = "notification_settings"


class Notification(BaseModel):
    account = peewee.ForeignKeyField(Account, on_delete="CASCADE")
    account_id: int
    kind = peewee.CharField(max_length=16)
    message = peewee.ForeignKeyField(Message, null=True, on_delete="CASCADE")
    message_id: int | None
    school_class = peewee.ForeignKeyField(
        SchoolClass,
        column_name="class_id",
        object_id_name="school_class_id",
        null=True,
        on_delete="CASCADE",
    )
    school_class_id: int | None
    urgency = peewee.CharField(max_length=8, default="normal")
    #: the emergency alert it announces (``node.storage.alerts``), for kind ``alert``
    alert_id = peewee.BigIntegerField(null=True)
    created_at = peewee.DateTimeField()
    deliver_after = peewee.DateTimeField()
    pushed_at = peewee.DateTimeField(null=True)
    attempts = peewee.IntegerField(default=0)
    #: pending | sent | no_device | failed | cancelled | held (see ``STATUSES``)
    status = peewee.CharField(max_length=10)
    #: a held information post: the digest notification that announced it
    digest_id = peewee.BigIntegerField(null=True)


def _id(model: type[BaseModel]) -> Any:
    """The primary key column (``Model.id`` is typed ``int`` for rows)."""
    return model._meta.primary_key


# -- subscriptions -----------------------------------------------------------


def select_subscription_by_hash(endpoint_hash: str) -> PushSubscription | None:
    return PushSubscription.get_or_none(PushSubscription.endpoint_hash == endpoint_hash)


def select_subscriptions(account_id: int) -> list[PushSubscription]:
    query = PushSubscription.select().where(PushSubscription.account == account_id)
    return list(query.order_by(PushSubscription.created_at.desc(), _id(PushSubscription).desc()))


#: Failed pushes in a row after which a device no longer counts as working.
WORKING_UNTIL_FAILURES = 3


def accounts_with_devices() -> set[int]:
    """Every account with a working push subscription (fewer than three failures in a row;
    ids only: one light query).  The others are texted an alert at once."""
    query: Any = (
        PushSubscription.select(PushSubscription.account)
        .where(PushSubscription.failures < WORKING_UNTIL_FAILURES)
        .distinct()
    )
    return {account for (account,) in query.tuples()}


def select_subscriptions_of(account_ids: Iterable[int]) -> dict[int, list[PushSubscription]]:
    """Every subscription of these accounts, grouped by account, oldest first.

    Only what a push needs is loaded: id, account, endpoint and keys.
    """
    ids = sorted(set(account_ids))
    out: dict[int, list[PushSubscription]] = {}
    if not ids:
        return out
    columns = (
        _id(PushSubscription),
        PushSubscription.account,
        PushSubscription.endpoint,
        PushSubscription.p256dh,
        PushSubscription.auth,
    )
    query = PushSubscription.select(*columns).where(PushSubscription.account.in_(ids))
    for sub in query.order_by(PushSubscription.id):
        out.setdefault(sub.account_id, []).append(sub)
    return out


def count_subscriptions(account_id: int) -> int:
    return PushSubscription.select().where(PushSubscription.account == account_id).count()


def delete_subscription(account_id: int, endpoint_hash: str) -> int:
    return (
        PushSubscription.delete()
        .where(
            (PushSubscription.account == account_id)
            & (PushSubscription.endpoint_hash == endpoint_hash)
        )
        .execute()
    )


def delete_subscription_by_id(account_id: int, subscription_id: int) -> int:
    return (
        PushSubscription.delete()
        .where((PushSubscription.account == account_id) & (PushSubscription.id == subscription_id))
        .execute()
    )


def delete_subscriptions(subscription_ids: Iterable[int]) -> int:
    ids = list(subscription_ids)
    if not ids:
        return 0
    return PushSubscription.delete().where(_id(PushSubscription).in_(ids)).execute()


def record_subscription_success(subscription_ids: Iterable[int], now: dt.datetime) -> None:
    ids = list(subscription_ids)
    if ids:
        PushSubscription.update(failures=0, last_success_at=now).where(
            _id(PushSubscription).in_(ids)
        ).execute()


def record_subscription_failure(subscription_ids: Iterable[int]) -> None:
    ids = list(subscription_ids)
    if ids:
        PushSubscription.update(failures=PushSubscription.failures + 1).where(
            _id(PushSubscription).in_(ids)
        ).execute()


def delete_failing_subscriptions(max_failures: int) -> int:
    return PushSubscription.delete().where(PushSubscription.failures >= max_failures).execute()


# -- quiet hours -------------------------------------------------------------


def select_settings(account_id: int) -> NotificationSettings | None:
    return NotificationSettings.get_or_none(NotificationSettings.account == account_id)


def select_settings_of(account_ids: Iterable[int]) -> dict[int, NotificationSettings]:
    ids = sorted(set(account_ids))
    if not ids:
        return {}
    query = NotificationSettings.select().where(NotificationSettings.account.in_(ids))
    return {s.account_id: s for s in query}


def upsert_settings(
    account_id: int, quiet_start: str | None, quiet_end: str | None, now: dt.datetime
) -> None:
    updated = (
        NotificationSettings.update(quiet_start=quiet_start, quiet_end=quiet_end, updated_at=now)
        .where(NotificationSettings.account == account_id)
        .execute()
    )
    if not updated:
        NotificationSettings.create(
            account=account_id, quiet_start=quiet_start, quiet_end=quiet_end, updated_at=now
        )


def upsert_digest(account_id: int, digest_time: str | None, now: dt.datetime) -> None:
    updated = (
        NotificationSettings.update(digest_time=digest_time, updated_at=now)
        .where(NotificationSettings.account == account_id)
        .execute()
    )
    if not updated:
        NotificationSettings.create(account=account_id, digest_time=digest_time, updated_at=now)


def reschedule_held(account_id: int, when: dt.datetime) -> int:
    """Move an account's posts waiting for its digest to ``when`` (a new digest time)."""
    return (
        Notification.update(deliver_after=when)
        .where((Notification.account == account_id) & (Notification.status == "held"))
        .execute()
    )


# -- the outbox --------------------------------------------------------------


#: The columns an outbox row is inserted with, in the order ``insert_notifications`` gives them.
_INSERTED = (
    Notification.account,
    Notification.kind,
    Notification.school_class,
    Notification.message,
    Notification.urgency,
    Notification.alert_id,
    Notification.created_at,
    Notification.deliver_after,
    Notification.status,
    Notification.attempts,
)


@functools.lru_cache(maxsize=16)
def _insert_sql(database: int, rows: int) -> str:
    """peewee's ``INSERT … RETURNING id`` for ``rows`` rows, every value a placeholder.

    Built once per size (and database): peewee spends ~0.15 ms per row
    turning values into SQL, 130 ms of CPU for a post to 2,000 families, in
    the request that posts.  The statement does not depend on the values.
    """
    shape = [(0, "", None, None, "", None, None, None, "", 0)] * rows
    query = Notification.insert_many(shape, fields=list(_INSERTED)).returning(_id(Notification))
    sql: str = query.sql()[0]
    return sql


def insert_notifications(
    rows: list[tuple[int, dt.datetime]],
    kind: str,
    class_id: int | None,
    message_id: int | None,
    urgency: str,
    now: dt.datetime,
    alert_id: int | None = None,
    held: set[int] | frozenset[int] = frozenset(),
) -> list[int]:
    """One outbox row per (account id, deliver after), in one INSERT per 500 rows.

    The rows of the accounts in ``held`` wait for their daily digest (status ``held``).
    Returns the new ids in the order of ``rows`` (ids grow in insertion order).
    """
    db = Notification._meta.database
    ids: list[int] = []
    for start in range(0, len(rows), 500):
        chunk = rows[start : start + 500]
        params: list[Any] = []
        for account_id, deliver_after in chunk:
            params += (
                account_id,
                kind,
                class_id,
                message_id,
                urgency,
                alert_id,
                now,
                deliver_after,
                "held" if account_id in held else "pending",
                0,
            )
        sql = _insert_sql(id(database_proxy.obj), len(chunk))
        ids += sorted(row[0] for row in db.execute_sql(sql, params).fetchall())
    return ids


def select_due_notifications(now: dt.datetime, limit: int) -> list[Notification]:
    """Pending rows whose time has come, emergencies first.

    On PostgreSQL the rows are locked with ``SKIP LOCKED``, so several node
    processes share the outbox without sending a row twice.
    """
    high_first = peewee.Case(None, [(Notification.urgency == "high", 0)], 1)
    query = (
        Notification.select()
        .where((Notification.status == "pending") & (Notification.deliver_after <= now))
        .order_by(high_first, Notification.deliver_after, Notification.id)
        .limit(limit)
    )
    if not is_sqlite():
        query = query.for_update(skip_locked=True)
    return list(query)


def lease_notifications(ids: Iterable[int], until: dt.datetime) -> None:
    """Hold rows while the worker sends them; count the attempt."""
    keys = list(ids)
    if keys:
        Notification.update(deliver_after=until, attempts=Notification.attempts + 1).where(
            _id(Notification).in_(keys)
        ).execute()


def select_notifications(ids: Iterable[int]) -> dict[int, Notification]:
    """The rows' id, status, attempts, account and alert (what settling a push needs), by id."""
    keys = list(ids)
    if not keys:
        return {}
    columns = (
        _id(Notification),
        Notification.status,
        Notification.attempts,
        Notification.account,
        Notification.alert_id,
    )
    query = Notification.select(*columns).where(_id(Notification).in_(keys))
    return {n.id: n for n in query}


def update_notification(
    notification_id: int,
    status: str,
    deliver_after: dt.datetime | None = None,
    pushed_at: dt.datetime | None = None,
) -> None:
    values: dict[str, object] = {"status": status}
    if deliver_after is not None:
        values["deliver_after"] = deliver_after
    if pushed_at is not None:
        values["pushed_at"] = pushed_at
    Notification.update(**values).where(Notification.id == notification_id).execute()


def update_notifications(
    notification_ids: Iterable[int],
    status: str,
    deliver_after: dt.datetime | None = None,
    pushed_at: dt.datetime | None = None,
) -> None:
    """``update_notification`` for many rows at once: one statement per 500 rows."""
    ids = sorted(set(notification_ids))
    values: dict[str, object] = {"status": status}
    if deliver_after is not None:
        values["deliver_after"] = deliver_after
    if pushed_at is not None:
        values["pushed_at"] = pushed_at
    for start in range(0, len(ids), 500):
        Notification.update(**values).where(
            _id(Notification).in_(ids[start : start + 500])
        ).execute()


def select_guardian_classes(account_ids: Iterable[int]) -> dict[int, set[int]]:
    """Account id → the classes it is a guardian in now (through a child), for these accounts only.

    Reads only the given accounts' links (by the ``guardianship_account``
    index), not whole classes: a claim of a few hundred notifications for a
    class of 2,000 families stays small.
    """
    ids = sorted(set(account_ids))
    out: dict[int, set[int]] = {}
    for start in range(0, len(ids), 500):
        query: Any = (
            Guardianship.select(Guardianship.account, Child.school_class)
            .join(Child)
            .where(Guardianship.account.in_(ids[start : start + 500]))
            .tuples()
        )
        for account_id, class_id in query:
            out.setdefault(account_id, set()).add(class_id)
    return out


def select_account_statuses(account_ids: Iterable[int]) -> dict[int, str]:
    ids = sorted(set(account_ids))
    if not ids:
        return {}
    query = Account.select(Account.id, Account.status).where(_id(Account).in_(ids))
    return {a.id: a.status for a in query}


def select_class_names(class_ids: Iterable[int]) -> dict[int, str]:
    ids = sorted(set(class_ids))
    if not ids:
        return {}
    query = SchoolClass.select(SchoolClass.id, SchoolClass.name).where(_id(SchoolClass).in_(ids))
    return {c.id: c.name for c in query}


def select_message_labels(message_ids: Iterable[int]) -> dict[int, tuple[str, str | None, bool]]:
    """Message id → (public id, author's display name, deleted?): what a notification may name."""
    ids = sorted(set(message_ids))
    if not ids:
        return {}
    query = (
        Message.select(Message.id, Message.public_id, Message.deleted_at, Account.display_name)
        .join(Account, peewee.JOIN.LEFT_OUTER, on=(Message.author == Account.id))
        .where(_id(Message).in_(ids))
    )
    out: dict[int, tuple[str, str | None, bool]] = {}
    rows: Iterable[dict[str, Any]] = query.dicts()  # type: ignore[assignment]
    for row in rows:
        out[row["id"]] = (row["public_id"], row["display_name"], row["deleted_at"] is not None)
    return out


def delete_notifications_done_before(cutoff: dt.datetime) -> int:
    """Forget delivered, undeliverable and cancelled rows older than ``cutoff``."""
    return (
        Notification.delete()
        .where(Notification.status.not_in(("pending", "held")) & (Notification.created_at < cutoff))
        .execute()
    )
