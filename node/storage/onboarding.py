"""First-login attempts (access code → SMS code → passphrase), SMS outbox and rate events."""

from __future__ import annotations

import datetime as dt
from typing import Any

import peewee

from node.storage.db import BaseModel, is_sqlite, locked
from node.storage.directory import Child, GuardianInvitation, SchoolClass


class LoginAttempt(BaseModel):
    """One guardian's first-login attempt, bound to one invitation.

    The SMS code belongs to this attempt only (ASVS 6.6.2); its hash, expiry
    and failure count live here.  ``public_id`` is the random handle the
    browser carries between the steps.
    """

    public_id = peewee.CharField(max_length=43, unique=True)
    invitation = peewee.ForeignKeyField(GuardianInvitation, on_delete="CASCADE")
    client_ip = peewee.CharField(max_length=64)
    created_at = peewee.DateTimeField()
    expires_at = peewee.DateTimeField()
    sms_code_hash = peewee.CharField(max_length=64, null=True)
    sms_code_expires_at = peewee.DateTimeField(null=True)
    sms_failures = peewee.IntegerField(default=0)
    codes_sent = peewee.IntegerField(default=0)
    verified_at = peewee.DateTimeField(null=True)
    completed_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "login_attempt"


class SmsMessage(BaseModel):
    """The SMS outbox: written in the transaction that decides to send.

    ``body`` is erased once the provider has accepted the text, so codes do
    not stay in the database at rest.
    """

    reference = peewee.CharField(max_length=43, unique=True)
    recipient = peewee.CharField(max_length=16)
    purpose = peewee.CharField(max_length=32)
    body = peewee.TextField(null=True)
    status = peewee.CharField(max_length=16)
    provider_id = peewee.CharField(max_length=128, null=True)
    attempts = peewee.IntegerField(default=0)
    error = peewee.CharField(max_length=200, null=True)
    created_at = peewee.DateTimeField()
    updated_at = peewee.DateTimeField()
    next_attempt_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "sms_message"


class SmsOptOut(BaseModel):
    """A number that answered STOP (``node.services.sms_outbox.apply_reply``)."""

    phone = peewee.CharField(max_length=16, unique=True)
    created_at = peewee.DateTimeField()

    class Meta:
        table_name = "sms_opt_out"


class RateEvent(BaseModel):
    """One counted event (a failure, a text sent) in a named rate-limit bucket."""

    bucket = peewee.CharField(max_length=120)
    created_at = peewee.DateTimeField()

    class Meta:
        table_name = "rate_event"


def delete_attempts_expired_before(cutoff: dt.datetime) -> int:
    return int(LoginAttempt.delete().where(LoginAttempt.expires_at < cutoff).execute())


def select_attempt(public_id: str, lock: bool = False) -> LoginAttempt | None:
    """The attempt with its invitation, child and class; ``lock`` holds the attempt row."""
    query = (
        LoginAttempt.select(LoginAttempt, GuardianInvitation, Child, SchoolClass)
        .join(GuardianInvitation)
        .join(Child)
        .join(SchoolClass)
        .where(LoginAttempt.public_id == public_id)
    )
    return locked(query, lock, of=LoginAttempt).first()


def count_rate_events(bucket: str, since: dt.datetime) -> int:
    query = RateEvent.select().where((RateEvent.bucket == bucket) & (RateEvent.created_at > since))
    return int(query.count())


def insert_rate_event(bucket: str, now: dt.datetime) -> None:
    RateEvent.create(bucket=bucket, created_at=now)


def delete_rate_events_before(cutoff: dt.datetime) -> int:
    return int(RateEvent.delete().where(RateEvent.created_at < cutoff).execute())


def select_due_sms(now: dt.datetime, limit: int = 20) -> list[SmsMessage]:
    """Queued texts whose time has come, alerts first.

    On PostgreSQL the rows are locked with ``SKIP LOCKED``: several node
    processes share the outbox, and the caller leases what it took
    (``lease_sms``) before the transaction ends.
    """
    query = SmsMessage.select().where(
        (SmsMessage.status == "queued")
        & (SmsMessage.next_attempt_at.is_null() | (SmsMessage.next_attempt_at <= now))
    )
    alerts_first = peewee.Case(None, [(SmsMessage.purpose == "alert", 0)], 1)
    query = query.order_by(alerts_first, SmsMessage.id).limit(limit)
    if not is_sqlite():
        query = query.for_update(skip_locked=True)
    return list(query)


def lease_sms(ids: list[int], until: dt.datetime) -> None:
    """Hold texts while a worker hands them to the gateway (its result replaces the lease)."""
    if ids:
        key: Any = SmsMessage._meta.primary_key  # ``SmsMessage.id`` is typed int for rows
        SmsMessage.update(next_attempt_at=until).where(key.in_(ids)).execute()


def select_sms_by_reference(reference: str) -> SmsMessage | None:
    return SmsMessage.get_or_none(SmsMessage.reference == reference)


def select_queued_sms_to(recipient: str) -> list[SmsMessage]:
    query = SmsMessage.select().where(
        (SmsMessage.recipient == recipient) & (SmsMessage.status == "queued")
    )
    return list(query.order_by(SmsMessage.id))
