"""Conversations of a class: the parents' room, private parent groups, teacher-family threads.

A conversation is opened by a message of kind ``conversation`` (ciphertext,
in ``node.storage.feed``); its chat messages, membership events and reports
are message rows replying to that one.  These tables hold only the metadata
the node routes and enforces rules by: the conversation's kind, the child of
a family thread, the members of a room or group, who accepted the code of
conduct, who blocked whom, and which message was reported.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import peewee

from node.storage.accounts import Account
from node.storage.db import BaseModel, locked
from node.storage.directory import Child, SchoolClass
from node.storage.feed import Message

KINDS = ("room", "group", "family")


class Conversation(BaseModel):
    message = peewee.ForeignKeyField(Message, unique=True, on_delete="CASCADE")
    message_id: int
    school_class = peewee.ForeignKeyField(
        SchoolClass, column_name="class_id", object_id_name="class_id", on_delete="CASCADE"
    )
    class_id: int
    #: ``room`` (the class's parents), ``group`` (private), ``family`` (one child's thread)
    kind = peewee.CharField(max_length=8)
    child = peewee.ForeignKeyField(Child, null=True, on_delete="CASCADE")
    child_id: int | None
    #: ``room:<class id>`` or ``family:<child id>``: there is one of each
    singleton = peewee.CharField(max_length=40, null=True, unique=True)
    created_at = peewee.DateTimeField()
    last_message_at = peewee.DateTimeField()


class ConversationMember(BaseModel):
    """A member of a room or a group (a family thread's members follow the class's links)."""

    conversation = peewee.ForeignKeyField(Conversation, on_delete="CASCADE")
    conversation_id: int
    member = peewee.CharField(max_length=128)
    account = peewee.ForeignKeyField(Account, null=True, on_delete="CASCADE")
    account_id: int | None
    joined_at = peewee.DateTimeField()

    class Meta:
        table_name = "conversation_member"


class ChatConduct(BaseModel):
    account = peewee.ForeignKeyField(Account, on_delete="CASCADE")
    account_id: int
    school_class = peewee.ForeignKeyField(
        SchoolClass, column_name="class_id", object_id_name="class_id", on_delete="CASCADE"
    )
    class_id: int
    accepted_at = peewee.DateTimeField()

    class Meta:
        table_name = "chat_conduct"


class ChatBlock(BaseModel):
    blocker = peewee.ForeignKeyField(Account, on_delete="CASCADE")
    blocker_id: int
    blocked = peewee.ForeignKeyField(Account, on_delete="CASCADE")
    blocked_id: int
    created_at = peewee.DateTimeField()

    class Meta:
        table_name = "chat_block"


class ChatReport(BaseModel):
    #: the report itself: a message of kind ``report`` sealed to the teacher and the reporter
    report = peewee.ForeignKeyField(Message, unique=True, on_delete="CASCADE")
    report_id: int
    reported = peewee.ForeignKeyField(Message, on_delete="CASCADE")
    reported_id: int
    school_class = peewee.ForeignKeyField(
        SchoolClass, column_name="class_id", object_id_name="class_id", on_delete="CASCADE"
    )
    class_id: int
    created_at = peewee.DateTimeField()
    handled_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "chat_report"


#: primary keys as columns (``BaseModel.id`` is typed as the row's int)
_CONVERSATION_ID: Any = Conversation.id
_MEMBER_ROW_ID: Any = ConversationMember.id
_MESSAGE_ID: Any = Message.id
_REPORT_ROW_ID: Any = ChatReport.id


def select_conversation(
    class_id: int, public_id: str, lock: bool = False
) -> tuple[Conversation, Message] | None:
    """A conversation of the class by its opening message's id."""
    query = (
        Conversation.select(Conversation, Message)
        .join(Message)
        .where((Conversation.class_id == class_id) & (Message.public_id == public_id))
    )
    row = (locked(query) if lock else query).first()
    return (row, row.message) if row else None


def select_singleton(key: str) -> Conversation | None:
    return Conversation.get_or_none(Conversation.singleton == key)


def conversations_of_class(class_id: int) -> list[Conversation]:
    query = (
        Conversation.select(Conversation, Message)
        .join(Message)
        .where((Conversation.class_id == class_id) & Message.deleted_at.is_null())
        .order_by(Conversation.last_message_at.desc(), _CONVERSATION_ID.desc())
    )
    return list(query)


def members_of(conversation_ids: Iterable[int]) -> dict[int, list[ConversationMember]]:
    found: dict[int, list[ConversationMember]] = {}
    ids = list(conversation_ids)
    if not ids:
        return found
    query = ConversationMember.select().where(ConversationMember.conversation.in_(ids))
    for row in query.order_by(ConversationMember.id):
        found.setdefault(row.conversation_id, []).append(row)
    return found


def set_members(
    conversation: Conversation, members: dict[str, int | None], now: dt.datetime
) -> None:
    """Make the stored members exactly ``members`` (member id → account id)."""
    current = {m.member: m for m in members_of([conversation.id]).get(conversation.id, [])}
    gone = [m.id for name, m in current.items() if name not in members]
    if gone:
        ConversationMember.delete().where(_MEMBER_ROW_ID.in_(gone)).execute()
    for member, account_id in members.items():
        if member not in current:
            ConversationMember.create(
                conversation=conversation, member=member, account=account_id, joined_at=now
            )


def chat_messages(message_id: int, before: int | None, limit: int) -> list[Message]:
    """A conversation's live chat messages (and membership events), newest first."""
    query = Message.select().where(
        (Message.parent == message_id)
        & Message.kind.in_(("chat", "member"))
        & Message.deleted_at.is_null()
    )
    if before is not None:
        query = query.where(_MESSAGE_ID < before)
    return list(query.order_by(_MESSAGE_ID.desc()).limit(limit))


def member_events(message_id: int) -> list[Message]:
    """Every live membership event of a conversation, oldest first (the signed chain)."""
    query = Message.select().where(
        (Message.parent == message_id) & (Message.kind == "member") & Message.deleted_at.is_null()
    )
    return list(query.order_by(Message.id))


def has_accepted_conduct(account_id: int, class_id: int) -> bool:
    return (
        ChatConduct.select()
        .where((ChatConduct.account == account_id) & (ChatConduct.school_class == class_id))
        .exists()
    )


def accept_conduct(account_id: int, class_id: int, now: dt.datetime) -> None:
    if not has_accepted_conduct(account_id, class_id):
        ChatConduct.create(account=account_id, school_class=class_id, accepted_at=now)


def blocked_by(account_id: int) -> set[int]:
    """The accounts this account blocked."""
    query = ChatBlock.select(ChatBlock.blocked).where(ChatBlock.blocker == account_id)
    return {row.blocked_id for row in query}


def blockers_of(account_id: int, among: Iterable[int]) -> set[int]:
    """Those of ``among`` who blocked this account."""
    ids = list(among)
    if not ids:
        return set()
    query = ChatBlock.select(ChatBlock.blocker).where(
        (ChatBlock.blocked == account_id) & ChatBlock.blocker.in_(ids)
    )
    return {row.blocker_id for row in query}


def block(blocker_id: int, blocked_id: int, now: dt.datetime) -> None:
    exists = ChatBlock.select().where(
        (ChatBlock.blocker == blocker_id) & (ChatBlock.blocked == blocked_id)
    )
    if not exists.exists():
        ChatBlock.create(blocker=blocker_id, blocked=blocked_id, created_at=now)


def unblock(blocker_id: int, blocked_id: int) -> None:
    ChatBlock.delete().where(
        (ChatBlock.blocker == blocker_id) & (ChatBlock.blocked == blocked_id)
    ).execute()


def reports_of_class(class_id: int, handled: bool = False) -> list[ChatReport]:
    query = ChatReport.select().where(
        (ChatReport.school_class == class_id) & (ChatReport.handled_at.is_null(not handled))
    )
    return list(query.order_by(_REPORT_ROW_ID.desc()).limit(200))


def select_report(class_id: int, report_message_id: int) -> ChatReport | None:
    return ChatReport.get_or_none(
        (ChatReport.school_class == class_id) & (ChatReport.report == report_message_id)
    )


def conversations_of_messages(message_ids: Iterable[int]) -> dict[int, Conversation]:
    """Opening message id → its conversation."""
    ids = list(message_ids)
    if not ids:
        return {}
    query = Conversation.select().where(Conversation.message.in_(ids))
    return {c.message_id: c for c in query}


def families_of_class(class_id: int) -> list[Conversation]:
    query = Conversation.select(Conversation, Message).join(Message)
    return list(
        query.where(
            (Conversation.school_class == class_id)
            & (Conversation.kind == "family")
            & Message.deleted_at.is_null()
        )
    )
