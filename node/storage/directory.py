"""Classes, children, guardianships and guardian invitations.

A guardianship links one guardian account to one child; a child may have
several guardians (separated parents each have their own account and the
same rights).  An invitation is the teacher's authorization for one phone
number to become a guardian of one child; its access code is stored only as
an HMAC, so the node cannot print it again (the teacher issues a new one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import peewee

from node.storage.accounts import Account
from node.storage.db import BaseModel


class SchoolClass(BaseModel):
    name = peewee.CharField(max_length=80)
    school_year = peewee.CharField(max_length=9)
    teacher = peewee.ForeignKeyField(Account, backref="classes")
    teacher_id: int
    created_at = peewee.DateTimeField()
    archived_at = peewee.DateTimeField(null=True)
    comments_enabled = peewee.BooleanField(default=True)
    #: a class of another school's node, mirrored here (NP/1): that peer's row id
    peer_id = peewee.BigIntegerField(null=True)
    #: its id on that node (``{origin}/classes/{id}``)
    remote_url = peewee.CharField(max_length=400, null=True)
    #: parent chat: ``off`` (default), ``open``, ``closed`` (read-only for all)
    parent_chat = peewee.CharField(max_length=8, default="off")
    #: teacher-family threads: ``open`` (guardians may start one) or ``reply`` (answer only)
    family_threads = peewee.CharField(max_length=8, default="open")
    office_hours = peewee.CharField(max_length=200, default="")
    #: a holiday pause: threads answer automatically until this day (included)
    away_until = peewee.DateField(null=True)

    class Meta:
        table_name = "school_class"


class Child(BaseModel):
    school_class = peewee.ForeignKeyField(
        SchoolClass,
        column_name="class_id",
        object_id_name="school_class_id",
        backref="children",
        on_delete="CASCADE",
    )
    school_class_id: int
    first_name = peewee.CharField(max_length=60)
    last_name = peewee.CharField(max_length=60)
    created_at = peewee.DateTimeField()
    #: a child of a mirrored class: its id on the class's node
    remote_url = peewee.CharField(max_length=400, null=True)


class GuardianInvitation(BaseModel):
    child = peewee.ForeignKeyField(Child, backref="invitations", on_delete="CASCADE")
    child_id: int
    account_id: int | None
    issued_by = peewee.ForeignKeyField(Account)
    display_name = peewee.CharField(max_length=120)
    phone = peewee.CharField(max_length=16)
    code_hash = peewee.CharField(max_length=64, null=True)
    created_at = peewee.DateTimeField()
    code_issued_at = peewee.DateTimeField(null=True)
    expires_at = peewee.DateTimeField(null=True)
    used_at = peewee.DateTimeField(null=True)
    revoked_at = peewee.DateTimeField(null=True)
    account = peewee.ForeignKeyField(Account, null=True)

    class Meta:
        table_name = "guardian_invitation"


class Guardianship(BaseModel):
    child = peewee.ForeignKeyField(Child, backref="guardianships", on_delete="CASCADE")
    account = peewee.ForeignKeyField(Account, backref="guardianships", on_delete="CASCADE")
    invitation = peewee.ForeignKeyField(GuardianInvitation, null=True)
    created_at = peewee.DateTimeField()


def select_class(class_id: int) -> SchoolClass | None:
    return SchoolClass.get_or_none(SchoolClass.id == class_id)


def select_classes_of_teacher(teacher_id: int) -> list[SchoolClass]:
    query = SchoolClass.select().where(
        (SchoolClass.teacher == teacher_id)
        & SchoolClass.archived_at.is_null()
        & SchoolClass.peer_id.is_null()
    )
    return list(query.order_by(SchoolClass.school_year.desc(), SchoolClass.name))


def select_all_classes() -> list[SchoolClass]:
    query = SchoolClass.select(SchoolClass, Account).join(Account)
    query = query.where(SchoolClass.archived_at.is_null() & SchoolClass.peer_id.is_null())
    return list(query.order_by(SchoolClass.name))


def select_child(child_id: int) -> Child | None:
    query = Child.select(Child, SchoolClass).join(SchoolClass).where(Child.id == child_id)
    return query.first()


def child_names(class_id: int, child_ids: list[int] | None = None) -> dict[int, str]:
    """id → first name of the class's children (of ``child_ids`` only, when given)."""
    query: Any = Child.select(Child.id, Child.first_name).where(Child.school_class == class_id)
    if child_ids is not None:
        child_pk: Any = Child._meta.primary_key
        query = query.where(child_pk.in_(child_ids or [0]))
    return dict(query.tuples())


def select_children_of_class(class_id: int) -> list[Child]:
    query = Child.select().where(Child.school_class == class_id)
    return list(query.order_by(Child.last_name, Child.first_name, Child.id))


def select_invitations_of_class(class_id: int) -> list[GuardianInvitation]:
    query = (
        GuardianInvitation.select()
        .join(Child)
        .where((Child.school_class == class_id) & GuardianInvitation.revoked_at.is_null())
    )
    return list(query.order_by(GuardianInvitation.created_at, GuardianInvitation.id))


def select_invitation(invitation_id: int) -> GuardianInvitation | None:
    query = (
        GuardianInvitation.select(GuardianInvitation, Child, SchoolClass)
        .join(Child)
        .join(SchoolClass)
        .where(GuardianInvitation.id == invitation_id)
    )
    return query.first()


def select_children_of_guardian(account_id: int) -> list[Child]:
    query = (
        Child.select(Child, SchoolClass, Account)
        .join(Guardianship)
        .switch(Child)
        .join(SchoolClass)
        .join(Account)
        .where((Guardianship.account == account_id) & SchoolClass.archived_at.is_null())
    )
    return list(query.order_by(Child.first_name, Child.id))


def is_guardian_of(account_id: int, child_id: int) -> bool:
    query = Guardianship.select().where(
        (Guardianship.account == account_id) & (Guardianship.child == child_id)
    )
    return bool(query.exists())


def select_live_invitations_of_child(child_id: int) -> list[GuardianInvitation]:
    query = GuardianInvitation.select().where(
        (GuardianInvitation.child == child_id) & GuardianInvitation.revoked_at.is_null()
    )
    return list(query)


def select_unrevoked_invitations_for_phone(phone: str) -> list[GuardianInvitation]:
    """Every live invitation of a number, expired or used ones included (to explain failures)."""
    query = (
        GuardianInvitation.select(GuardianInvitation, Child, SchoolClass)
        .join(Child)
        .join(SchoolClass)
        .where(
            (GuardianInvitation.phone == phone)
            & GuardianInvitation.revoked_at.is_null()
            & GuardianInvitation.code_hash.is_null(False)
        )
    )
    return list(query)


def select_invitation_by_code_hash(code_hash: str) -> GuardianInvitation | None:
    """The live invitation an access code was issued for (codes are unique: 83 random bits)."""
    query = (
        GuardianInvitation.select(GuardianInvitation, Child, SchoolClass)
        .join(Child)
        .join(SchoolClass)
        .where(
            (GuardianInvitation.code_hash == code_hash) & GuardianInvitation.revoked_at.is_null()
        )
    )
    found: GuardianInvitation | None = query.first()
    return found


def delete_guardianship(child_id: int, account_id: int) -> None:
    Guardianship.delete().where(
        (Guardianship.child == child_id) & (Guardianship.account == account_id)
    ).execute()


#: Login of a guardian whose account lives on another node: ``np:<member id>``.
REMOTE_LOGIN_PREFIX = "np:"


@dataclass(frozen=True)
class GuardianLink:
    child_id: int
    account_id: int
    display_name: str
    #: a guardian of another school's node: their member id there (``12@ecole-b.example``)
    remote_member: str | None = None


def guardian_links_of_class(
    class_id: int, child_ids: list[int] | None = None
) -> list[GuardianLink]:
    """Every (child, guardian) pair of a class (or of some of its children), in one query."""
    query: Any = (
        Guardianship.select(
            Guardianship.child, Guardianship.account, Account.display_name, Account.login
        )
        .join(Child)
        .switch(Guardianship)
        .join(Account)
        .where(Child.school_class == class_id)
        .order_by(Guardianship.id)
        .tuples()
    )
    if child_ids is not None:
        query = query.where(Guardianship.child.in_(child_ids or [0]))
    return [
        GuardianLink(child_id, account_id, name, remote_member_of(login))
        for child_id, account_id, name, login in query
    ]


def remote_member_of(login: str) -> str | None:
    """The member id of a remote guardian's account login, None for a local account."""
    return login[len(REMOTE_LOGIN_PREFIX) :] if login.startswith(REMOTE_LOGIN_PREFIX) else None


def local_guardians_of_peer(peer_id: int) -> list[int]:
    """Our own active guardians of children in the classes of that peer's school we mirror."""
    query: Any = (
        Guardianship.select(Guardianship.account)
        .join(Child, on=(Guardianship.child == Child.id))
        .join(SchoolClass, on=(Child.school_class == SchoolClass.id))
        .switch(Guardianship)
        .join(Account, on=(Guardianship.account == Account.id))
        .where((SchoolClass.peer_id == peer_id) & (Account.status == "active"))
        .distinct()
    )
    return sorted(a for (a,) in query.tuples())
