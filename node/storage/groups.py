"""Encrypted groups: the signed membership log, its members, and sealed epoch keys.

The node keeps each entry exactly as signed (canonical JSON text) and, beside
it, the membership it establishes so that access checks are one indexed
query.  ``group_member`` and ``e2e_group``'s head are derived from the log by
``node.services.groups`` in the same transaction that appends an entry.
"""

from __future__ import annotations

from typing import Any

import peewee

from node.storage.accounts import Account
from node.storage.db import BaseModel, locked
from node.storage.directory import SchoolClass


class E2eGroup(BaseModel):
    public_id = peewee.CharField(max_length=22, unique=True)
    school_class = peewee.ForeignKeyField(
        SchoolClass, column_name="class_id", object_id_name="school_class_id", on_delete="CASCADE"
    )
    school_class_id: int
    #: JSON list of the admin signing keys named by the create entry
    admins = peewee.TextField()
    head_seq = peewee.IntegerField()
    head_hash = peewee.CharField(max_length=43)
    current_epoch = peewee.IntegerField(null=True)
    pending_removals = peewee.IntegerField(default=0)
    created_at = peewee.DateTimeField()

    class Meta:
        table_name = "e2e_group"


class GroupEntry(BaseModel):
    group = peewee.ForeignKeyField(E2eGroup, backref="entries", on_delete="CASCADE")
    group_id: int
    seq = peewee.IntegerField()
    op = peewee.CharField(max_length=8)
    entry = peewee.TextField()
    created_at = peewee.DateTimeField()

    class Meta:
        table_name = "group_entry"


class GroupMember(BaseModel):
    group = peewee.ForeignKeyField(E2eGroup, backref="members", on_delete="CASCADE")
    group_id: int
    member = peewee.CharField(max_length=128)
    account = peewee.ForeignKeyField(Account, null=True, on_delete="SET NULL")
    account_id: int | None
    role = peewee.CharField(max_length=16)
    sign_pk = peewee.CharField(max_length=43)
    enc_pk = peewee.CharField(max_length=43)
    active = peewee.BooleanField()
    added_seq = peewee.IntegerField()

    class Meta:
        table_name = "group_member"


class EpochEnvelope(BaseModel):
    group = peewee.ForeignKeyField(E2eGroup, on_delete="CASCADE")
    group_id: int
    epoch = peewee.IntegerField()
    member = peewee.CharField(max_length=128)
    enc_pk = peewee.CharField(max_length=43)
    envelope = peewee.TextField()
    created_at = peewee.DateTimeField()

    class Meta:
        table_name = "epoch_envelope"


def select_group_of_class(class_id: int, lock: bool = False) -> E2eGroup | None:
    query = E2eGroup.select().where(E2eGroup.school_class == class_id)
    return locked(query, lock).first()


def select_group(group_id: int) -> E2eGroup | None:
    return E2eGroup.get_or_none(E2eGroup.id == group_id)


def select_entries(group_id: int) -> list[str]:
    query = GroupEntry.select(GroupEntry.entry).where(GroupEntry.group == group_id)
    return [row.entry for row in query.order_by(GroupEntry.seq)]


def select_members(group_id: int) -> list[GroupMember]:
    return list(GroupMember.select().where(GroupMember.group == group_id).order_by(GroupMember.id))


def active_members(group_id: int, members: list[str] | None = None) -> set[str]:
    """Active member ids of a group (among ``members`` when given), without loading whole rows."""
    query: Any = GroupMember.select(GroupMember.member).where(
        (GroupMember.group == group_id) & GroupMember.active
    )
    if members is not None:
        query = query.where(GroupMember.member.in_(members or [""]))
    return {member for (member,) in query.tuples()}


def active_guardian_accounts(group_id: int) -> set[int]:
    """Accounts of the group's active guardian members (the audience of its posts)."""
    query: Any = GroupMember.select(GroupMember.account).where(
        (GroupMember.group == group_id)
        & GroupMember.active
        & (GroupMember.role == "guardian")
        & GroupMember.account.is_null(False)
    )
    return {account for (account,) in query.tuples()}


def select_member(group_id: int, member: str) -> GroupMember | None:
    return GroupMember.get_or_none((GroupMember.group == group_id) & (GroupMember.member == member))


def select_envelopes(group_id: int, member: str, enc_pk: str) -> list[str]:
    query = EpochEnvelope.select(EpochEnvelope.envelope).where(
        (EpochEnvelope.group == group_id)
        & (EpochEnvelope.member == member)
        & (EpochEnvelope.enc_pk == enc_pk)
    )
    return [row.envelope for row in query.order_by(EpochEnvelope.epoch)]


def envelope_holders(group_id: int, epoch: int) -> set[tuple[str, str]]:
    query = EpochEnvelope.select(EpochEnvelope.member, EpochEnvelope.enc_pk).where(
        (EpochEnvelope.group == group_id) & (EpochEnvelope.epoch == epoch)
    )
    return {(row.member, row.enc_pk) for row in query}


def active_groups_of_account(account_id: int) -> list[GroupMember]:
    query = GroupMember.select().where((GroupMember.account == account_id) & GroupMember.active)
    return list(query)
