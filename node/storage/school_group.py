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
    #: another school's group, mirrored for our guardians: that peer's row id
    peer_id = peewee.BigIntegerField(null=True)
    #: … and its alerts stream there
    remote_url = peewee.CharField(max_length=400, null=True)
    #: JSON list of the emergency-role signing keys named by the create entry
    admins = peewee.TextField()
    head_seq = peewee.IntegerField()
    head_hash = peewee.CharField(max_length=43)
    current_epoch = peewee.IntegerField(null=True)
    pending_removals = peewee.IntegerField(default=0)
    pending_admins = peewee.BooleanField(default=False)
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
    """This school's own group, or None before an admin has set it up."""
    query = SchoolGroup.select().where(SchoolGroup.peer_id.is_null()).order_by(SchoolGroup.id)
    return locked(query, lock).first()


def select_mirror(peer_id: int, lock: bool = False) -> SchoolGroup | None:
    """Another school's group, mirrored here for its guardians on this node."""
    query = SchoolGroup.select().where(SchoolGroup.peer_id == peer_id)
    return locked(query, lock).first()


def select_by_public_id(public_id: str) -> SchoolGroup | None:
    return SchoolGroup.get_or_none(SchoolGroup.public_id == public_id)


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


def remote_member_peers(group_id: int) -> list[int]:
    """Home peers of the group's active members who live on other nodes."""
    query: Any = (
        SchoolGroupMember.select(Account.home_peer_id)
        .join(Account, on=(SchoolGroupMember.account == Account.id))
        .where(
            (SchoolGroupMember.group == group_id)
            & SchoolGroupMember.active
            & (Account.status == "remote")
            & Account.home_peer_id.is_null(False)
        )
        .distinct()
    )
    return sorted(p for (p,) in query.tuples())


def remote_members(group_id: int) -> list[tuple[str, int]]:
    """(member id, home peer id) of the group's active members who live on other nodes."""
    query: Any = (
        SchoolGroupMember.select(SchoolGroupMember.member, Account.home_peer_id)
        .join(Account, on=(SchoolGroupMember.account == Account.id))
        .where(
            (SchoolGroupMember.group == group_id)
            & SchoolGroupMember.active
            & (Account.status == "remote")
            & Account.home_peer_id.is_null(False)
        )
    )
    return list(query.tuples())
