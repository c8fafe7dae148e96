"""Posts, comments and reactions (ciphertext), their attachments' blobs, and read receipts.

A message row holds the signed header, the ciphertext and the signature as
the author's client produced them, plus the metadata the node routes by
(kind, parent, author, epoch, version).  A deleted message keeps its row as a
tombstone with ``header``, ``ct`` and ``sig`` emptied.
"""

from __future__ import annotations

import peewee

from node.storage.accounts import Account
from node.storage.db import BaseModel
from node.storage.directory import Child
from node.storage.groups import E2eGroup


class Message(BaseModel):
    group = peewee.ForeignKeyField(E2eGroup, on_delete="CASCADE")
    group_id: int
    public_id = peewee.CharField(max_length=22)
    kind = peewee.CharField(max_length=10)
    parent = peewee.ForeignKeyField("self", null=True, on_delete="CASCADE", backref="replies")
    parent_id: int | None
    author = peewee.ForeignKeyField(Account, null=True, on_delete="SET NULL")
    author_id: int | None
    author_member = peewee.CharField(max_length=128)
    epoch = peewee.IntegerField(null=True)
    version = peewee.IntegerField()
    header = peewee.TextField(null=True)
    ct = peewee.TextField(null=True)
    sig = peewee.CharField(max_length=86, null=True)
    comments_enabled = peewee.BooleanField(default=True)
    created_at = peewee.DateTimeField()
    updated_at = peewee.DateTimeField()
    deleted_at = peewee.DateTimeField(null=True)
    reminded_at = peewee.DateTimeField(null=True)


class MessageChild(BaseModel):
    """A post addressed to some children's families names them here."""

    message = peewee.ForeignKeyField(Message, on_delete="CASCADE")
    message_id: int
    child = peewee.ForeignKeyField(Child, on_delete="CASCADE")
    child_id: int

    class Meta:
        table_name = "message_child"


class MessageKey(BaseModel):
    """A recipient-mode message's key, sealed to one member."""

    message = peewee.ForeignKeyField(Message, on_delete="CASCADE")
    message_id: int
    member = peewee.CharField(max_length=128)
    sealed = peewee.TextField()

    class Meta:
        table_name = "message_key"


class Blob(BaseModel):
    """An encrypted attachment; its bytes live in the data folder's ``blobs/``."""

    public_id = peewee.CharField(max_length=22, unique=True)
    owner = peewee.ForeignKeyField(Account, on_delete="CASCADE")
    owner_id: int
    group = peewee.ForeignKeyField(E2eGroup, on_delete="CASCADE")
    group_id: int
    message = peewee.ForeignKeyField(Message, null=True, on_delete="SET NULL")
    message_id: int | None
    size = peewee.BigIntegerField()
    received = peewee.BigIntegerField(default=0)
    sha256 = peewee.CharField(max_length=43, null=True)
    status = peewee.CharField(max_length=10)
    created_at = peewee.DateTimeField()
    completed_at = peewee.DateTimeField(null=True)


class ReadReceipt(BaseModel):
    message = peewee.ForeignKeyField(Message, on_delete="CASCADE")
    message_id: int
    account = peewee.ForeignKeyField(Account, on_delete="CASCADE")
    account_id: int
    read_at = peewee.DateTimeField()

    class Meta:
        table_name = "read_receipt"
