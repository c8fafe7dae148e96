"""Delivering the notification outbox: what the push worker sends, and what it learnt.

The worker (``node.workers.push``) calls ``claim_due`` for a batch of due
notifications with every device to send each to, sends them, and hands the
push services' answers to ``record_results`` in one transaction.

A payload names the kind, the class, the author and a link, with a short
text in each language the node speaks (accounts have no language of their
own; the service worker shows the browser's): never content.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from node.errors import N_
from node.services import digests
from node.services.context import ServiceContext
from node.storage import accounts as account_store
from node.storage import alerts as alert_store
from node.storage import notifications as store
from node.storage.db import write_transaction

#: Languages the payload carries a text in; the service worker picks the browser's.
PAYLOAD_LOCALES = ("fr", "en")

#: How long the worker holds claimed rows; a crashed worker's rows come due after it.
LEASE = dt.timedelta(minutes=10)
#: Delays before the next try when no device took a notification (network, 5xx, 429).
RETRY_DELAYS = (
    dt.timedelta(seconds=30),
    dt.timedelta(minutes=2),
    dt.timedelta(minutes=10),
    dt.timedelta(minutes=30),
    dt.timedelta(hours=1),
)
#: Tries per notification (the first one and ``len(RETRY_DELAYS)`` retries).
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
#: Longest ``Retry-After`` honoured, in seconds.
MAX_RETRY_AFTER = 3600
#: A device that fails this many times in a row (without a 404/410) is dropped.
MAX_SUBSCRIPTION_FAILURES = 30
#: Finished notifications are forgotten after this long.
KEEP_DONE = dt.timedelta(days=30)

#: The notification text per kind, with and without an author's name.
_TEXTS = {
    "post": (N_("New post from {author}"), N_("New post")),
    "comment": (N_("New comment from {author}"), N_("New comment")),
    "share": (N_("{author} shared a post with you"), N_("A post was shared with you")),
    "message": (N_("New message from {author}"), N_("New message")),
    "report": (N_("{author} reported a message to you"), N_("A message was reported to you")),
    "reminder": (
        N_("Reminder from {author}: a post is waiting for you"),
        N_("A post is waiting for you"),
    ),
    "alert": (
        N_("Emergency alert from {author}: open Carnet now"),
        N_("Emergency alert: open Carnet now"),
    ),
    # the class is the title ("New absence note — CE1 A"); the parent's name is not needed
    "absence": (N_("New absence note"), N_("New absence note")),
    "drill": (
        N_("DRILL from {author}: an exercise alert, open Carnet"),
        N_("DRILL: an exercise alert, open Carnet"),
    ),
}


@dataclass(frozen=True)
class PushTarget:
    subscription_id: int
    endpoint: str
    p256dh: str
    auth: str


@dataclass(frozen=True)
class PushJob:
    notification_id: int
    urgency: str
    #: The JSON the service worker receives (kind, names, texts, link; no content).
    payload: dict[str, Any]
    targets: tuple[PushTarget, ...]


@dataclass(frozen=True)
class DeviceResult:
    subscription_id: int
    #: ``ok`` (2xx), ``gone`` (404/410: the subscription is dead), ``retry``
    #: (network error, timeout, 429, 5xx) or ``rejected`` (another 4xx).
    outcome: str
    #: Seconds the push service asked us to wait (``Retry-After``), if any.
    retry_after: int | None = None


def claim_due(ctx: ServiceContext, limit: int = 50) -> tuple[list[PushJob], int]:
    """Take up to ``limit`` due notifications and say what to send for each.

    Claimed rows are leased (``deliver_after`` moves ``LEASE`` ahead and the
    attempt is counted) so another process skips them; ``record_results``
    settles them.  Rows with nowhere to go are settled here: no device
    (``no_device``), a disabled account or a deleted message (``cancelled``).
    Rows are read and settled a few hundred per statement, not one statement per row.

    Returns:
        What to send, and how many rows were claimed (sent or settled).
    """
    now = ctx.now()
    with write_transaction():
        rows = store.select_due_notifications(now, limit)
        if not rows:
            return [], 0
        store.lease_notifications([r.id for r in rows], now + LEASE)
        accounts = {r.account_id for r in rows}
        statuses = store.select_account_statuses(accounts)
        devices = store.select_subscriptions_of(accounts)
        classes = store.select_class_names(
            r.school_class_id for r in rows if r.school_class_id is not None
        )
        labels = store.select_message_labels(r.message_id for r in rows if r.message_id)
        alerts = alert_store.select_labels(r.alert_id for r in rows if r.alert_id)
        summaries = digests.summaries(rows)  # a daily digest: its classes and counts
        roles = account_store.select_roles(accounts)
        # a guardian unlinked from the class since the row was queued gets nothing, not even names
        guardians = {a for a in accounts if roles.get(a) == "guardian"}
        classes_of = store.select_guardian_classes(guardians)
        jobs = []
        cancelled, no_device = [], []
        for row in rows:
            label = labels.get(row.message_id) if row.message_id else None
            left = (
                row.school_class_id is not None
                and roles.get(row.account_id) == "guardian"
                and row.school_class_id not in classes_of.get(row.account_id, ())
            )
            alert = alerts.get(row.alert_id) if row.alert_id else None
            withdrawn = alert is not None and alert[2] == "cancelled"
            summary = summaries.get(row.id)
            if (
                statuses.get(row.account_id) != "active"
                or left
                or withdrawn
                or (label is not None and label[2])
                or (row.kind == "digest" and not summary)  # every post it counted is gone
            ):
                cancelled.append(row.id)
                continue
            targets = devices.get(row.account_id, [])
            if not targets:
                no_device.append(row.id)
                continue
            class_name = classes.get(row.school_class_id) if row.school_class_id else None
            if alert is not None:
                payload = alert_payload(ctx, row.id, alert[0], alert[1], alert[3])
            elif summary:
                payload = digests.digest_payload(ctx, row.id, summary, PAYLOAD_LOCALES)
            else:
                payload = build_payload(
                    ctx, row.id, row.kind, row.school_class_id, class_name, label
                )
            jobs.append(
                PushJob(
                    row.id,
                    row.urgency,
                    payload,
                    tuple(PushTarget(s.id, s.endpoint, s.p256dh, s.auth) for s in targets),
                )
            )
        store.update_notifications(cancelled, "cancelled")
        store.update_notifications(no_device, "no_device")
        return jobs, len(rows)


def open_url(class_id: int | None, message_public_id: str | None, kind: str = "post") -> str:
    """The page a notification opens: the class's feed, at the post (``#m-<public id>``),
    the conversation of a chat message, or the teacher's reports."""
    if class_id is None:
        return "/"
    if kind == "message" and message_public_id:
        return f"/classes/{class_id}/chat/m/{message_public_id}"
    if kind == "report":
        return f"/classes/{class_id}/chat/reports"
    anchor = f"#m-{message_public_id}" if message_public_id else ""
    return f"/classes/{class_id}/feed{anchor}"


def build_payload(
    ctx: ServiceContext,
    notification_id: int,
    kind: str,
    class_id: int | None,
    class_name: str | None,
    label: tuple[str, str | None, bool] | None,
) -> dict[str, Any]:
    """The push payload: names and a link, each text in every language the node speaks."""
    public_id, author = (label[0], label[1]) if label is not None else (None, None)
    with_author, without = _TEXTS.get(kind, _TEXTS["post"])
    body = {
        locale: (
            ctx.translate(locale, with_author).format(author=author)
            if author
            else ctx.translate(locale, without)
        )
        for locale in PAYLOAD_LOCALES
    }
    return {
        "v": 1,
        "kind": kind,
        "class": class_name,
        "author": author,
        "title": class_name or ctx.config.school_name,
        "body": body,
        "lang": ctx.config.default_locale,
        "url": f"/classes/{class_id}/absences"
        if kind == "absence" and class_id is not None
        else open_url(class_id, public_id, kind),
        "tag": f"m-{public_id}" if public_id else f"n-{notification_id}",
    }


def alert_payload(
    ctx: ServiceContext, notification_id: int, public_id: str, drill: bool, sender: str | None
) -> dict[str, Any]:
    """An emergency alert's notice: the school, the sender, a link; never the alert's text."""
    with_author, without = _TEXTS["drill" if drill else "alert"]
    body = {
        locale: (
            ctx.translate(locale, with_author).format(author=sender)
            if sender
            else ctx.translate(locale, without)
        )
        for locale in PAYLOAD_LOCALES
    }
    return {
        "v": 1,
        "kind": "alert",
        "drill": drill,
        "class": None,
        "author": sender,
        "title": ctx.config.school_name,
        "body": body,
        "lang": ctx.config.default_locale,
        "url": f"/alerts/{public_id}",
        # one notice per alert thread on a device: a follow-up replaces the last one
        "tag": f"alert-{public_id}",
    }


def record_results(ctx: ServiceContext, results: Mapping[int, Sequence[DeviceResult]]) -> None:
    """Settle claimed notifications from what each device's push service answered.

    A notification is ``sent`` once any device took it.  If none did and
    some failure may pass (network, 429, 5xx), it is retried after
    ``RETRY_DELAYS`` (or ``Retry-After``), up to ``MAX_ATTEMPTS``; otherwise
    it is ``failed``, or ``no_device`` when every subscription was gone.
    Dead subscriptions (404/410) are deleted; the others count failures.
    Rows are updated in one statement per outcome (per retry time), so the
    worker can settle hundreds of notifications in one short transaction.
    """
    now = ctx.now()
    gone: set[int] = set()
    succeeded: set[int] = set()
    failed: set[int] = set()
    settled: dict[str, list[int]] = {"sent": [], "no_device": [], "failed": []}
    retries: dict[dt.datetime, list[int]] = {}
    with write_transaction():
        rows = store.select_notifications(results)
        for notification_id, devices in results.items():
            for device in devices:
                {"ok": succeeded, "gone": gone}.get(device.outcome, failed).add(
                    device.subscription_id
                )
            row = rows.get(notification_id)
            if row is None or row.status != "pending":
                continue
            outcomes = {d.outcome for d in devices}
            if "ok" in outcomes:
                settled["sent"].append(row.id)
            elif "retry" in outcomes and row.attempts < MAX_ATTEMPTS:
                delay = RETRY_DELAYS[min(row.attempts, len(RETRY_DELAYS)) - 1]
                asked = max(
                    (d.retry_after or 0 for d in devices if d.outcome == "retry"), default=0
                )
                delay = max(delay, dt.timedelta(seconds=min(asked, MAX_RETRY_AFTER)))
                retries.setdefault(now + delay, []).append(row.id)
            elif outcomes <= {"gone"}:
                settled["no_device"].append(row.id)
            else:
                settled["failed"].append(row.id)
        store.update_notifications(settled["sent"], "sent", pushed_at=now)
        delivered = alert_store.mark_delivered(
            [(r.alert_id, r.account_id) for i in settled["sent"] if (r := rows[i]).alert_id],
            now,
        )
        for alert_id in alert_store.mirrored(delivered):  # another school's: it counts them too
            ctx.publish(
                "alert_delivered", {"alert_id": alert_id, "account_ids": delivered[alert_id]}
            )
        store.update_notifications(settled["no_device"], "no_device")
        store.update_notifications(settled["failed"], "failed")
        for when, ids in retries.items():
            store.update_notifications(ids, "pending", deliver_after=when)
        store.delete_subscriptions(gone)
        store.record_subscription_success(succeeded - gone, now)
        store.record_subscription_failure(failed - gone - succeeded)
        store.delete_failing_subscriptions(MAX_SUBSCRIPTION_FAILURES)


def purge_done(ctx: ServiceContext) -> int:
    """Forget finished notifications after ``KEEP_DONE``; call inside a transaction."""
    return store.delete_notifications_done_before(ctx.now() - KEEP_DONE)
