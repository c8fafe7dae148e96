"""Actionable posts: their plaintext structure, the families' answers, calendar tokens.

A ``post_action`` row is what the node must know to enforce the rules of an
event, sign-up, permission slip or poll (kind, deadline, times, choice ids
and capacities); the labels stay in the post's ciphertext.  An
``action_answer`` row is one child's answer (the family unit), replaced by
the next answer for that child.  Choice lists are stored as JSON text.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import peewee

from node.storage.accounts import Account
from node.storage.db import BaseModel, locked
from node.storage.directory import Child
from node.storage.feed import Message, MessageChild


class PostAction(BaseModel):
    message = peewee.ForeignKeyField(Message, unique=True, on_delete="CASCADE")
    message_id: int
    type = peewee.CharField(max_length=8)
    deadline = peewee.DateTimeField(null=True)
    starts_at = peewee.DateTimeField(null=True)
    ends_at = peewee.DateTimeField(null=True)
    all_day = peewee.BooleanField(default=False)
    choices = peewee.TextField()
    multiple = peewee.BooleanField(default=False)
    reminded_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "post_action"

    def choice_list(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = json.loads(self.choices)
        return found


class ActionAnswer(BaseModel):
    message = peewee.ForeignKeyField(Message, on_delete="CASCADE")
    message_id: int
    child = peewee.ForeignKeyField(Child, on_delete="CASCADE")
    child_id: int
    account = peewee.ForeignKeyField(Account, null=True, on_delete="SET NULL")
    account_id: int | None
    member = peewee.CharField(max_length=128)
    choice = peewee.TextField()
    signature = peewee.CharField(max_length=86, null=True)
    post_version = peewee.IntegerField(null=True)
    signed_at = peewee.BigIntegerField(null=True)
    answered_at = peewee.DateTimeField()

    class Meta:
        table_name = "action_answer"

    def choice_ids(self) -> list[str]:
        found: list[str] = json.loads(self.choice)
        return found


class CalendarToken(BaseModel):
    account = peewee.ForeignKeyField(Account, unique=True, on_delete="CASCADE")
    account_id: int
    token_hash = peewee.CharField(max_length=64, unique=True)
    created_at = peewee.DateTimeField()

    class Meta:
        table_name = "calendar_token"


def select_action(message_id: int, lock: bool = False) -> PostAction | None:
    """The action of a post; ``lock`` queues concurrent answers to it (PostgreSQL)."""
    query = PostAction.select().where(PostAction.message == message_id)
    return locked(query, lock).first()


def actions_of(message_ids: list[int]) -> dict[int, PostAction]:
    if not message_ids:
        return {}
    query = PostAction.select().where(PostAction.message.in_(message_ids))
    return {row.message_id: row for row in query}


def answers_of(message_ids: list[int], child_ids: list[int] | None = None) -> list[ActionAnswer]:
    """The answers to some posts (only those for ``child_ids`` when given), with the answerer's name."""
    if not message_ids:
        return []
    query = (
        ActionAnswer.select(ActionAnswer, Account.id, Account.display_name)
        .join(Account, peewee.JOIN.LEFT_OUTER)
        .where(ActionAnswer.message.in_(message_ids))
    )
    if child_ids is not None:
        query = query.where(ActionAnswer.child.in_(child_ids or [0]))
    return list(query.order_by(ActionAnswer.id))


def select_answer(message_id: int, child_id: int) -> ActionAnswer | None:
    return ActionAnswer.get_or_none(
        (ActionAnswer.message == message_id) & (ActionAnswer.child == child_id)
    )


def save_action(message: Any, fields: dict[str, Any]) -> PostAction:
    row = select_action(message.id)
    if row is None:
        return PostAction.create(message=message, **fields)
    for name, value in fields.items():
        setattr(row, name, value)
    row.save()
    return row


def save_answer(message_id: int, child_id: int, fields: dict[str, Any]) -> ActionAnswer:
    """Insert or replace the child's answer (callers hold the action's lock)."""
    row = select_answer(message_id, child_id)
    if row is None:
        return ActionAnswer.create(message=message_id, child=child_id, **fields)
    for name, value in fields.items():
        setattr(row, name, value)
    row.save()
    return row


def events_of_groups(group_ids: list[int], child_ids: list[int], since: dt.datetime) -> list[Any]:
    """Live event posts of some groups a guardian of ``child_ids`` may see, ending after ``since``.

    Returns (message, action) pairs, soonest first.
    """
    if not group_ids:
        return []
    addressed = MessageChild.select(MessageChild.message)
    mine = MessageChild.select(MessageChild.message).where(MessageChild.child.in_(child_ids or [0]))
    message_id: Any = Message.id
    query = (
        PostAction.select(PostAction, Message)
        .join(Message)
        .where(
            Message.group.in_(group_ids)
            & Message.deleted_at.is_null()
            & (PostAction.type == "event")
            & PostAction.starts_at.is_null(False)
            & (peewee.fn.COALESCE(PostAction.ends_at, PostAction.starts_at) >= since)
            & (message_id.not_in(addressed) | message_id.in_(mine))
        )
        .order_by(PostAction.starts_at, PostAction.id)
    )
    return [(row.message, row) for row in query]


def select_calendar_token(token_hash: str) -> CalendarToken | None:
    return CalendarToken.get_or_none(CalendarToken.token_hash == token_hash)


def calendar_token_of(account_id: int) -> CalendarToken | None:
    return CalendarToken.get_or_none(CalendarToken.account == account_id)


def replace_calendar_token(account_id: int, token_hash: str, now: dt.datetime) -> None:
    CalendarToken.delete().where(CalendarToken.account == account_id).execute()
    CalendarToken.create(account=account_id, token_hash=token_hash, created_at=now)


def remote_child_ids(child_ids: list[int]) -> dict[int, int]:
    """Children of mirrored classes: our id → their id on the class's node (from their URL)."""
    child_id_column: Any = Child.id
    query: Any = Child.select(child_id_column, Child.remote_url).where(
        child_id_column.in_(child_ids or [0]) & Child.remote_url.is_null(False)
    )
    out = {}
    for child_id, url in query.tuples():
        tail = url.rsplit("/", 1)[-1]
        if tail.isdigit():
            out[child_id] = int(tail)
    return out
