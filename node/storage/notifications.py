"""Push subscriptions, quiet hours, and the notification outbox.

A notification row is written in the same transaction as what it announces
(a post, a reminder), so a crash cannot lose one; the push worker delivers
rows whose ``deliver_after`` has come (quiet hours push it to the morning).
"""

from __future__ import annotations

import peewee

from node.storage.accounts import Account
from node.storage.db import BaseModel
from node.storage.directory import SchoolClass
from node.storage.feed import Message


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
    updated_at = peewee.DateTimeField()

    class Meta:
        table_name = "notification_settings"


class Notification(BaseModel):
    account = peewee.ForeignKeyField(Account, on_delete="CASCADE")
    account_id: int
    kind = peewee.CharField(max_length=16)
    message = peewee.ForeignKeyField(Message, null=True, on_delete="CASCADE")
    message_id: int | None
    school_class = peewee.ForeignKeyField(SchoolClass, column_name="class_id", null=True, on_delete="CASCADE")
    school_class_id: int | None
    urgency = peewee.CharField(max_length=8, default="normal")
    created_at = peewee.DateTimeField()
    deliver_after = peewee.DateTimeField()
    pushed_at = peewee.DateTimeField(null=True)
    attempts = peewee.IntegerField(default=0)
    #: pending | sent | no_device | failed
    status = peewee.CharField(max_length=10)
