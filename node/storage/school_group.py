"""The school's "all guardians" group: its signed log, members and sealed epoch keys.

The same log format as a class's group (``node.storage.groups``), in tables
of its own because ``e2e_group`` belongs to a class.  Members and the head
are derived from the log by ``node.services.school_group`` in the
transaction that appends the entries.
"""

from __future__ import annotations

from typing import Any

import peewee

from node.storage.accounts import Account
from node.storage.db import BaseModel, locked


class SchoolGroup(BaseModel):
    public_id = peewee.CharField(max_length=22, unique=True)
    #: JSON list of the emergency-role signing keys named by the create entry
    admins = peewee.TextField()
    head_seq = peewee.IntegerField()
    head_hash = peewee.CharField(max_length=43)
    current_epoch = peewee.IntegerField(null=True)
    pending_removals = peewee.IntegerField(default=0)
    created_at = peewee.DateTimeField()

    class Meta:
        table_name = "school_group"


class SchoolGroupEntry(BaseModel):
    group = peewee.ForeignKeyField(SchoolGroup, on_delete="CASCADE")
    group_id: int
    seq = peewee.IntegerField()
    op = peewee.CharField(max_length=8)
    entry = peewee.TextField()
    created_at = peewee.DateTimeField()

    class Meta:
        table_name = "school_group_entry"


class SchoolGroupMember(BaseModel):
    group = peewee.ForeignKeyField(SchoolGroup, on_delete="CASCADE")
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
        table_name = "school_group_member"


class SchoolGroupEnvelope(BaseModel):
    group = peewee.ForeignKeyField(SchoolGroup, on_delete="CASCADE")
    group_id: int
    epoch = peewee.IntegerField()
    member = peewee.CharField(max_length=128)
    enc_pk = peewee.CharField(max_length=43)
    envelope = peewee.TextField()
    created_at = peewee.DateTimeField()

    class Meta:
        table_name = "school_group_envelope"


def select_group(lock: bool = False) -> SchoolGroup | None:
    """The node's one school group, or None before an admin has set it up."""
    return locked(SchoolGroup.select().order_by(SchoolGroup.id), lock).first()


def select_entries(group_id: int) -> list[str]:
    query = SchoolGroupEntry.select(SchoolGroupEntry.entry).where(
        SchoolGroupEntry.group == group_id
    )
    return [row.entry for row in query.order_by(SchoolGroupEntry.seq)]


def select_members(group_id: int) -> list[SchoolGroupMember]:
    query = SchoolGroupMember.select().where(SchoolGroupMember.group == group_id)
    return list(query.order_by(SchoolGroupMember.id))


def select_member(group_id: int, member: str) -> SchoolGroupMember | None:
    return SchoolGroupMember.get_or_none(
        (SchoolGroupMember.group == group_id) & (SchoolGroupMember.member == member)
    )


def select_member_of_account(group_id: int, account_id: int) -> SchoolGroupMember | None:
    return SchoolGroupMember.get_or_none(
        (SchoolGroupMember.group == group_id) & (SchoolGroupMember.account == account_id)
    )


def select_envelopes(group_id: int, member: str, enc_pk: str) -> list[str]:
    query = SchoolGroupEnvelope.select(SchoolGroupEnvelope.envelope).where(
        (SchoolGroupEnvelope.group == group_id)
        & (SchoolGroupEnvelope.member == member)
        & (SchoolGroupEnvelope.enc_pk == enc_pk)
    )
    return [row.envelope for row in query.order_by(SchoolGroupEnvelope.epoch)]


def envelope_holders(group_id: int, epoch: int) -> set[tuple[str, str]]:
    query: Any = SchoolGroupEnvelope.select(
        SchoolGroupEnvelope.member, SchoolGroupEnvelope.enc_pk
    ).where((SchoolGroupEnvelope.group == group_id) & (SchoolGroupEnvelope.epoch == epoch))
    return set(query.tuples())


def insert_envelopes(group_id: int, rows: list[tuple[int, str, str, str]], now: Any) -> None:
    """(epoch, member, enc_pk, envelope text) rows, 500 per INSERT."""
    for start in range(0, len(rows), 500):
        SchoolGroupEnvelope.insert_many(
            [
                {"group": group_id, "epoch": e, "member": m, "enc_pk": k, "envelope": t,
                 "created_at": now}
                for e, m, k, t in rows[start : start + 500]
            ]
        ).execute()  # fmt: skip
