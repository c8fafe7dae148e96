"""What the school-year rollover reads and writes: this school's classes, children and links."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import peewee

from node.storage.accounts import Account
from node.storage.directory import Child, GuardianInvitation, Guardianship, SchoolClass


def active_classes() -> list[SchoolClass]:
    """This school's classes that are not archived (mirrors of other schools' are theirs)."""
    query = SchoolClass.select(SchoolClass, Account).join(Account)
    query = query.where(SchoolClass.archived_at.is_null() & SchoolClass.peer_id.is_null())
    return list(query.order_by(SchoolClass.school_year, SchoolClass.name))


def children_of(class_ids: Iterable[int]) -> list[Child]:
    ids = list(class_ids)
    if not ids:
        return []
    query = Child.select().where(Child.school_class.in_(ids))
    return list(query.order_by(Child.last_name, Child.first_name, Child.id))


def live_invitations(child_ids: Iterable[int]) -> list[GuardianInvitation]:
    """The children's invitations the teacher has not withdrawn, with their accounts."""
    ids = list(child_ids)
    if not ids:
        return []
    query = (
        GuardianInvitation.select(GuardianInvitation, Account)
        .join(
            Account, on=GuardianInvitation.account == Account.id, join_type=peewee.JOIN.LEFT_OUTER
        )
        .where(GuardianInvitation.child.in_(ids) & GuardianInvitation.revoked_at.is_null())
    )
    return list(query.order_by(GuardianInvitation.id))


def archive(class_ids: Iterable[int], now: dt.datetime) -> int:
    ids = list(class_ids)
    if not ids:
        return 0
    key: Any = SchoolClass._meta.primary_key  # ``SchoolClass.id`` is typed int for rows
    query = SchoolClass.update(archived_at=now).where(
        key.in_(ids) & SchoolClass.archived_at.is_null()
    )
    return int(query.execute())


def link(child: Child, account_id: int, invitation: GuardianInvitation, now: dt.datetime) -> None:
    Guardianship.create(child=child, account=account_id, invitation=invitation, created_at=now)
