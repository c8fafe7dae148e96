"""The SMS outbox: texts are written in the transaction that decides to send them.

A worker (``node.workers.sms``) sends queued texts through the gateway and
records the outcome here; provider delivery callbacks update the status.
The body is erased as soon as the provider has the text.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from node.secrets_util import new_token
from node.services.context import ServiceContext
from node.storage import onboarding as store
from node.storage.db import write_transaction

#: Delays before retrying a text the gateway could not hand over.
RETRY_DELAYS = (dt.timedelta(seconds=30), dt.timedelta(minutes=2), dt.timedelta(minutes=10))
#: How long a worker holds the texts it took (the gateway answers within 30 s).
LEASE = dt.timedelta(minutes=2)


@dataclass(frozen=True)
class QueuedText:
    id: int
    reference: str
    recipient: str
    body: str
    #: an emergency alert: sent from the alert sender
    urgent: bool = False


def enqueue(ctx: ServiceContext, recipient: str, purpose: str, body: str) -> str:
    """Queue a text; call inside the caller's transaction.  Returns its reference.

    Raises:
        ValueError: an unknown purpose (a programming error: see ``PURPOSES``).
    """
    if purpose not in PURPOSES:
        raise ValueError(f"unknown SMS purpose {purpose!r}")
    now = ctx.now()
    reference = new_token()[:43]
    store.SmsMessage.create(
        reference=reference,
        recipient=recipient,
        purpose=purpose,
        body=body,
        status="queued",
        created_at=now,
        updated_at=now,
    )
    return reference


def due(ctx: ServiceContext, limit: int = 20) -> list[QueuedText]:
    """Take the texts to send now; no other worker takes them for ``LEASE``.

    With several node processes, each text goes to the gateway once. If this
    process dies before recording the result, the text is sent again after
    the lease: a possible duplicate, never a lost text.
    """
    with write_transaction():
        rows = store.select_due_sms(ctx.now(), limit)
        store.lease_sms([m.id for m in rows], ctx.now() + LEASE)
        return [
            QueuedText(m.id, m.reference, m.recipient, m.body or "", m.purpose == "alert")
            for m in rows
        ]


def record_result(
    ctx: ServiceContext,
    message_id: int,
    status: str,
    provider_id: str | None,
    error: str | None,
    retryable: bool,
) -> None:
    """Store what the gateway said; schedule a retry while retries remain."""
    with write_transaction():
        message = store.SmsMessage.get_or_none(store.SmsMessage.id == message_id)
        if message is None:
            return
        now = ctx.now()
        message.attempts += 1
        message.updated_at = now
        message.provider_id = provider_id
        message.error = (error or "")[:200] or None
        if status == "sent":
            message.status = "sent"
            message.body = None
            message.next_attempt_at = None
        elif retryable and message.attempts <= len(RETRY_DELAYS):
            message.status = "queued"
            message.next_attempt_at = now + RETRY_DELAYS[message.attempts - 1]
        else:
            message.status = "failed"
            message.body = None
            message.next_attempt_at = None
        message.save()


def apply_status_callback(ctx: ServiceContext, reference: str, status: str) -> bool:
    """A provider's delivery report; returns False for an unknown reference."""
    with write_transaction():
        message = store.select_sms_by_reference(reference)
        if message is None:
            return False
        message.status = status
        message.updated_at = ctx.now()
        if status != "queued":  # no code stays at rest once the provider has reported
            message.body = None
            message.next_attempt_at = None
        message.save()
        return True


def status_of(ctx: ServiceContext, reference: str) -> str | None:
    message = store.select_sms_by_reference(reference)
    return message.status if message is not None else None


#: Why texts go out.  Neither kind is ever silenced by a STOP reply: an emergency alert
#: must reach every family (DESIGN §5), and a code is sent because the person asked for it.
PURPOSES = ("first-login", "alert")


def apply_reply(ctx: ServiceContext, number: str, keyword: str) -> None:
    """A text a person sent back: STOP is recorded (START forgets it); anything else is ignored.

    Carnet sends no ordinary texts, so a STOP silences nothing today: alerts
    and asked-for codes go on (alerts from their own sender number where the
    provider has one, ``sms.http_alert_sender``, which the provider's own STOP
    blocking does not touch).  The record keeps the wish for any future
    ordinary text and lets the admin know.
    """
    with write_transaction():
        if keyword == "stop":
            store.SmsOptOut.insert(
                phone=number, created_at=ctx.now()
            ).on_conflict_ignore().execute()
        elif keyword == "start":
            store.SmsOptOut.delete().where(store.SmsOptOut.phone == number).execute()


def opted_out(ctx: ServiceContext, number: str) -> bool:
    return bool(store.SmsOptOut.select().where(store.SmsOptOut.phone == number).exists())
