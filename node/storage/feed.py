"""Posts, comments and reactions (ciphertext), their attachments' blobs, and read receipts.

A message row holds the signed header, the ciphertext and the signature as
the author's client produced them, plus the metadata the node routes by
(kind, parent, author, epoch, version).  A deleted message keeps its row as a
tombstone with ``header``, ``ct`` and ``sig`` emptied.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import peewee

from node.storage.accounts import Account
from node.storage.db import BaseModel, locked
from node.storage.directory import Child, Guardianship
from node.storage.groups import E2eGroup, GroupMember


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
    #: NP/1 object version: + 1 with every change announced to other schools
    revision = peewee.IntegerField(default=1)
    #: a post's level, ``info`` | ``action`` | ``urgent``: routes its notifications (digests)
    priority = peewee.CharField(max_length=8, default="info")
    #: backref of ``parent``: this post's comments and reactions
    replies: peewee.ModelSelect


#: the primary key as a column (``BaseModel.id`` is typed as the row's int)
_ID: Any = Message.id


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


def messages_by_id(ids: Iterable[int | None]) -> dict[int, Message]:
    """Message rows by primary key, in one query."""
    wanted = sorted({i for i in ids if i})
    if not wanted:
        return {}
    return {m.id: m for m in Message.select().where(_ID.in_(wanted))}


def select_message(group_id: int, public_id: str, lock: bool = False) -> Message | None:
    query = Message.select().where((Message.group == group_id) & (Message.public_id == public_id))
    return locked(query, lock).first()


def children_of_message(message_id: int) -> list[int]:
    query = MessageChild.select(MessageChild.child).where(MessageChild.message == message_id)
    return [row.child_id for row in query]


def children_of_messages(message_ids: list[int]) -> dict[int, list[int]]:
    found: dict[int, list[int]] = {}
    if message_ids:
        query = MessageChild.select().where(MessageChild.message.in_(message_ids))
        for row in query:
            found.setdefault(row.message_id, []).append(row.child_id)
    return found


def sealed_keys_for(message_ids: list[int], member: str) -> dict[int, str]:
    if not message_ids:
        return {}
    query = MessageKey.select().where(
        MessageKey.message.in_(message_ids) & (MessageKey.member == member)
    )
    return {row.message_id: row.sealed for row in query}


def select_posts(
    group_ids: list[int], *, before: int | None, limit: int, child_ids: list[int] | None
) -> list[Message]:
    """Live posts of some groups, newest first; ``child_ids`` limits to posts a guardian may see.

    A post with no ``message_child`` rows is for the whole class; one with rows
    is visible to the guardians of those children only.
    """
    if not group_ids:
        return []
    query = (
        Message.select(Message, Account.id, Account.display_name)
        .join(Account, peewee.JOIN.LEFT_OUTER)
        .where(
            Message.group.in_(group_ids) & (Message.kind == "post") & Message.deleted_at.is_null()
        )
    )
    if before is not None:
        query = query.where(Message.id < before)
    if child_ids is not None:
        addressed = MessageChild.select(MessageChild.message)
        mine = MessageChild.select(MessageChild.message).where(
            MessageChild.child.in_(child_ids or [0])
        )
        query = query.where(_ID.not_in(addressed) | _ID.in_(mine))
    return list(query.order_by(_ID.desc()).limit(limit))


def select_replies(post_ids: list[int]) -> list[Message]:
    if not post_ids:
        return []
    query = (
        Message.select(Message, Account.id, Account.display_name)
        .join(Account, peewee.JOIN.LEFT_OUTER)
        .where(Message.parent.in_(post_ids) & Message.deleted_at.is_null())
    )
    return list(query.order_by(Message.id))


def read_by(message_ids: list[int], account_id: int | None = None) -> dict[int, dict[int, Any]]:
    """message id → {account id: read_at}; only ``account_id``'s receipts when given."""
    found: dict[int, dict[int, Any]] = {}
    if message_ids:
        query: Any = ReadReceipt.select(
            ReadReceipt.message, ReadReceipt.account, ReadReceipt.read_at
        ).where(ReadReceipt.message.in_(message_ids))
        if account_id is not None:
            query = query.where(ReadReceipt.account == account_id)
        for message_id, account, read_at in query.tuples():
            found.setdefault(message_id, {})[account] = read_at
    return found


def read_counts(message_ids: list[int], group_id: int, class_id: int) -> dict[int, int]:
    """message id → how many of its audience read it, counted by the database.

    The audience of a post: active guardian members of the group, linked to a
    child of the class (of the post's children, for a post to some families).
    The teacher's page of a class of 2,000 families gets 20 numbers, not 40,000 rows.
    """
    if not message_ids:
        return {}
    addressed = MessageChild.select(MessageChild.child).where(
        MessageChild.message == ReadReceipt.message
    )
    linked = (
        Guardianship.select(Guardianship.id)
        .join(Child)
        .where(
            (Guardianship.account == ReadReceipt.account)
            & (Child.school_class == class_id)
            & (~peewee.fn.EXISTS(addressed) | Guardianship.child.in_(addressed))
        )
    )
    query: Any = (
        ReadReceipt.select(ReadReceipt.message, peewee.fn.COUNT(ReadReceipt.account))
        .join(
            GroupMember,
            on=(GroupMember.account == ReadReceipt.account)
            & (GroupMember.group == group_id)
            & GroupMember.active
            & (GroupMember.role == "guardian"),
        )
        .where(ReadReceipt.message.in_(message_ids) & peewee.fn.EXISTS(linked))
        .group_by(ReadReceipt.message)
        .tuples()
    )
    return {message_id: count for message_id, count in query}


def blobs_of_message(message_id: int) -> list[Blob]:
    return list(Blob.select().where(Blob.message == message_id))


def select_blob(public_id: str, lock: bool = False) -> Blob | None:
    return locked(Blob.select().where(Blob.public_id == public_id), lock).first()


def upload_usage(owner_id: int, since: Any) -> tuple[int, int]:
    """(uploads not attached yet, bytes of uploads started since ``since``) of one account."""
    pending = Blob.select().where((Blob.owner == owner_id) & Blob.message.is_null()).count()
    recent = (
        Blob.select(peewee.fn.COALESCE(peewee.fn.SUM(Blob.size), 0))
        .where((Blob.owner == owner_id) & (Blob.created_at > since))
        .scalar()
    )
    return int(pending), int(recent or 0)


def select_stale_blobs(cutoff: Any) -> list[Blob]:
    """Uploads never attached to a message, older than ``cutoff``."""
    return list(Blob.select().where(Blob.message.is_null() & (Blob.created_at < cutoff)))


def known_blob_ids(public_ids: list[str]) -> set[str]:
    """Those of these ids that a blob row still has."""
    found: set[str] = set()
    for start in range(0, len(public_ids), 500):
        query = Blob.select(Blob.public_id).where(
            Blob.public_id.in_(public_ids[start : start + 500])
        )
        found.update(b.public_id for b in query)
    return found
