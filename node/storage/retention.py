"""Rows retention and erasure act on: who left every class, since when, and what a person wrote.

Storage rule: models and queries only.  What counts as "left" and what is
erased or kept is decided in ``node.services.retention`` and
``node.services.erasure``; these functions only find and delete rows.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import peewee

from node.storage.absences import AbsenceNote
from node.storage.accounts import Account
from node.storage.actions import ActionAnswer
from node.storage.conversations import Conversation
from node.storage.db import BaseModel
from node.storage.directory import Child, GuardianInvitation, Guardianship, SchoolClass
from node.storage.feed import Blob, Message, MessageKey
from node.storage.groups import E2eGroup
from node.storage.remote_join import JoinRequest, RemoteFollow

#: join requests still waiting for, or accepted by, a class of another school
LIVE_JOIN_STATES = ("code_sent", "linked", "accepted")


class Departure(BaseModel):
    account = peewee.ForeignKeyField(Account, null=True, unique=True, on_delete="CASCADE")
    account_id: int | None
    child = peewee.ForeignKeyField(Child, null=True, unique=True, on_delete="CASCADE")
    child_id: int | None
    since = peewee.DateTimeField()

    class Meta:
        table_name = "departure"


# the primary keys as columns (``BaseModel.id`` is typed as the row's int)
_ACCOUNT_ID: Any = Account.id
_CHILD_ID: Any = Child.id
_MESSAGE_ID: Any = Message.id
_GROUP_ID: Any = E2eGroup.id
_DEPARTURE_ID: Any = Departure.id


# -- who is in no class -----------------------------------------------------------------------


def guardians_in_no_class(only: int | None = None) -> set[int]:
    """Guardian accounts (of this node or shadows of other nodes') linked to no child of
    any class here that is not archived, this school's or mirrored, and with no live
    request to join one (``only``: just that account, if it is one of them)."""
    linked = (
        Guardianship.select(Guardianship.account)
        .join(Child)
        .join(SchoolClass)
        .where(SchoolClass.archived_at.is_null())
    )
    joining = JoinRequest.select(JoinRequest.account).where(JoinRequest.state.in_(LIVE_JOIN_STATES))
    # a shadow (status ``remote``) counts only if it joined a class here (a follow names
    # it): those a mirrored class makes for the other members of another school's class
    # are never linked to a child here, and must stay
    followed = RemoteFollow.select(RemoteFollow.account).where(RemoteFollow.account.is_null(False))
    query = Account.select(Account.id).where(
        (Account.role == "guardian")
        & ((Account.status != "remote") | _ACCOUNT_ID.in_(followed))
        & _ACCOUNT_ID.not_in(linked)
        & _ACCOUNT_ID.not_in(joining)
    )
    if only is not None:
        query = query.where(Account.id == only)
    return {row.id for row in query}


def children_without_family() -> set[int]:
    """Children of this school's classes whose every guardian invitation was withdrawn and
    who have no guardian linked (a child never given an invitation is not counted), and
    every child of an archived class (last year's record: the child went up or left)."""
    linked = Guardianship.select(Guardianship.child)
    live = GuardianInvitation.select(GuardianInvitation.child).where(
        GuardianInvitation.revoked_at.is_null()
    )
    invited = GuardianInvitation.select(GuardianInvitation.child)
    query = (
        Child.select(Child.id)
        .join(SchoolClass)
        .where(
            SchoolClass.peer_id.is_null()
            & (
                (_CHILD_ID.in_(invited) & _CHILD_ID.not_in(linked) & _CHILD_ID.not_in(live))
                | SchoolClass.archived_at.is_null(False)
            )
        )
    )
    return {row.id for row in query}


def children_back(child_ids: set[int]) -> set[int]:
    """Those of these children who have a guardian again, or an invitation not withdrawn."""
    if not child_ids:
        return set()
    linked = Guardianship.select(Guardianship.child)
    live = GuardianInvitation.select(GuardianInvitation.child).where(
        GuardianInvitation.revoked_at.is_null()
    )
    query = (
        Child.select(Child.id)
        .join(SchoolClass)
        .where(
            _CHILD_ID.in_(sorted(child_ids))
            & (_CHILD_ID.in_(linked) | _CHILD_ID.in_(live))
            & SchoolClass.archived_at.is_null()  # an archived class's child never comes back
        )
    )
    return {row.id for row in query}


def departures() -> list[Departure]:
    return list(Departure.select())


def add_departures(now: dt.datetime, account_ids: set[int], child_ids: set[int]) -> None:
    for account_id in sorted(account_ids):
        Departure.create(account=account_id, since=now)
    for child_id in sorted(child_ids):
        Departure.create(child=child_id, since=now)


def delete_departures(ids: set[int]) -> None:
    if ids:
        Departure.delete().where(_DEPARTURE_ID.in_(sorted(ids))).execute()


# -- what a person wrote, and the rows that name them -----------------------------------------


def select_account(account_id: int) -> Account | None:
    found: Account | None = Account.get_or_none(Account.id == account_id)
    return found


def messages_authored(account_id: int, kinds_kept: tuple[str, ...]) -> list[Message]:
    """Their messages not deleted yet, except the kinds that hold up others' threads."""
    query = Message.select().where(
        (Message.author == account_id)
        & Message.deleted_at.is_null()
        & Message.kind.not_in(kinds_kept)
    )
    return list(query.order_by(Message.id))


def blob_ids_owned(account_id: int) -> list[str]:
    return [b.public_id for b in Blob.select(Blob.public_id).where(Blob.owner == account_id)]


def delete_blobs_owned(account_id: int) -> None:
    Blob.delete().where(Blob.owner == account_id).execute()


def delete_absence_notes_by(account_id: int) -> int:
    deleted: int = AbsenceNote.delete().where(AbsenceNote.author == account_id).execute()
    return deleted


def delete_answers_by(account_id: int) -> int:
    deleted: int = ActionAnswer.delete().where(ActionAnswer.account == account_id).execute()
    return deleted


def delete_links_of(account_id: int, now: dt.datetime) -> None:
    """Their guardianships; the invitations that named them are withdrawn and blanked (the
    row stays, nameless, so the child still counts as invited and can leave in turn)."""
    Guardianship.delete().where(Guardianship.account == account_id).execute()
    GuardianInvitation.update(
        display_name="", phone="", code_hash=None, account=None,
        revoked_at=peewee.fn.COALESCE(GuardianInvitation.revoked_at, now),
    ).where(GuardianInvitation.account == account_id).execute()  # fmt: skip


def delete_account(account_id: int) -> None:
    """The account row; sessions, push subscriptions, notifications, read receipts and
    memberships of conversations go with it (ON DELETE CASCADE in the schema)."""
    Account.delete().where(Account.id == account_id).execute()


def delete_child(child_id: int) -> None:
    """A child row; invitations, answers, absence notes, labels and family threads of the
    child go with it (ON DELETE CASCADE)."""
    Child.delete().where(Child.id == child_id).execute()


def family_thread_openings(child_id: int) -> list[int]:
    """Message ids opening the child's family threads (their replies cascade)."""
    query = Conversation.select(Conversation.message).where(Conversation.child == child_id)
    return [row.message_id for row in query]


def delete_messages(ids: list[int]) -> None:
    if ids:
        Message.delete().where(_MESSAGE_ID.in_(ids)).execute()


def live_joins_of(account_id: int) -> list[JoinRequest]:
    query = JoinRequest.select().where(
        (JoinRequest.account == account_id) & JoinRequest.state.in_(LIVE_JOIN_STATES)
    )
    return list(query.order_by(JoinRequest.id))


def accounts_of_remote_actor(peer_id: int, actor: str) -> set[int]:
    """Shadow accounts here of one guardian of a peer, by their actor id there."""
    query = RemoteFollow.select(RemoteFollow.account).where(
        (RemoteFollow.peer == peer_id)
        & (RemoteFollow.actor == actor)
        & RemoteFollow.account.is_null(False)
    )
    return {row.account_id for row in query if row.account_id is not None}


def classes_of_groups(group_ids: set[int]) -> dict[int, SchoolClass]:
    """group id → its class (``peer_id`` set: a class of another school, mirrored here)."""
    if not group_ids:
        return {}
    query = (
        E2eGroup.select(E2eGroup, SchoolClass)
        .join(SchoolClass)
        .where(_GROUP_ID.in_(sorted(group_ids)))
    )
    return {group.id: group.school_class for group in query}


def blank_message(row: Message, now: dt.datetime) -> list[str]:
    """Make a message a tombstone: ciphertext, signature, sealed keys and attached files'
    rows go; the row stays so threads and other schools' copies keep their order.
    Returns the public ids of the files to delete from disk after the commit."""
    files = [b.public_id for b in Blob.select(Blob.public_id).where(Blob.message == row.id)]
    Blob.delete().where(Blob.message == row.id).execute()
    MessageKey.delete().where(MessageKey.message == row.id).execute()
    row.header = row.ct = row.sig = None
    row.deleted_at = now
    row.save()
    return files


def blob_ids_of_threads(opening_ids: list[int]) -> list[str]:
    """Files attached to these messages or to their replies."""
    if not opening_ids:
        return []
    replies = Message.select(Message.id).where(Message.parent.in_(opening_ids))
    query = Blob.select(Blob.public_id).where(
        Blob.message.in_(opening_ids) | Blob.message.in_(replies)
    )
    return [b.public_id for b in query]
