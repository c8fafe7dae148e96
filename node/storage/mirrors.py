"""Queries for class content that crosses schools (NP/1 class streams).

Two sides: the class's node finds which of its class members live on which
peer, and purges what it announced about a deleted message; the guardian's
home node keeps a mirror of the class in the ordinary class tables, found by
the class's id on its node (``school_class.remote_url``).
"""

from __future__ import annotations

from typing import Any

from node.storage.accounts import Account
from node.storage.activities import FedActivity, FedActivityDest, FedTxnOut
from node.storage.db import locked
from node.storage.directory import Child, Guardianship, SchoolClass
from node.storage.feed import Blob, Message, MessageKey
from node.storage.groups import E2eGroup, GroupMember

# -- the class's node --------------------------------------------------------------------


def remote_active_members(group_id: int, class_id: int) -> list[tuple[str, int]]:
    """(member id, home peer id) of the group's active members living on other nodes who
    are still linked to a child of the class (one unlinked, waiting for the teacher to
    rotate the key, is sent nothing more)."""
    linked = (
        Guardianship.select(Guardianship.account).join(Child).where(Child.school_class == class_id)
    )
    account_pk: Any = Account._meta.primary_key
    query: Any = (
        GroupMember.select(GroupMember.member, Account.home_peer_id)
        .join(Account)
        .where(
            (GroupMember.group == group_id)
            & GroupMember.active
            & (Account.status == "remote")
            & Account.home_peer_id.is_null(False)
            & account_pk.in_(linked)
        )
        .tuples()
    )
    return list(query)


def live_messages(group_id: int) -> list[Message]:
    """Every message of the group not deleted, oldest first (a post before its replies)."""
    query = Message.select().where((Message.group == group_id) & Message.deleted_at.is_null())
    return list(query.order_by(Message.id))


def sealed_keys_of(message_ids: list[int]) -> dict[int, list[str]]:
    """message id → its sealed keys (JSON text), in one query."""
    found: dict[int, list[str]] = {}
    if message_ids:
        query: Any = MessageKey.select(MessageKey.message, MessageKey.sealed).where(
            MessageKey.message.in_(message_ids)
        )
        for key in query:
            found.setdefault(key.message_id, []).append(key.sealed)
    return found


def blobs_of(message_ids: list[int]) -> dict[int, list[Blob]]:
    found: dict[int, list[Blob]] = {}
    if message_ids:
        for blob in Blob.select().where(Blob.message.in_(message_ids)):
            if blob.message_id is not None:
                found.setdefault(blob.message_id, []).append(blob)
    return found


def public_ids_of(message_ids: set[int]) -> dict[int, str]:
    pk: Any = Message._meta.primary_key
    if not message_ids:
        return {}
    query = Message.select(pk, Message.public_id).where(pk.in_(sorted(message_ids)))
    return {m.id: m.public_id for m in query}


def peers_told_about(object_id: str) -> set[int]:
    """Peers that were sent an activity announcing ``object_id``."""
    query = (
        FedActivityDest.select(FedActivityDest.peer)
        .join(FedActivity)
        .where(FedActivity.object_id == object_id)
    )
    return {row.peer_id for row in query}


def announcements_of(object_id: str) -> int:
    return FedActivity.select().where(FedActivity.object_id == object_id).count()


def purge_announcements(object_id: str) -> None:
    """Forget the ciphertext the stream carried for ``object_id``: the activities keep
    their seq (so no gap opens) but are never sent or served again."""
    pk: Any = FedActivity._meta.primary_key
    rows = list(
        FedActivity.select(pk, FedActivity.activity_id).where(FedActivity.object_id == object_id)
    )
    if rows:
        ids = [a.id for a in rows]
        FedActivityDest.delete().where(FedActivityDest.activity.in_(ids)).execute()
        FedActivity.update(body="").where(pk.in_(ids)).execute()
        # a batch built but not yet acknowledged is resent byte for byte: build it again
        for batch in FedTxnOut.select():
            if any(a.activity_id in batch.body for a in rows):
                batch.delete_instance()


# -- the guardian's home node ---------------------------------------------------------------


def select_mirror(remote_url: str, lock: bool = False) -> SchoolClass | None:
    found: SchoolClass | None = locked(
        SchoolClass.select().where(SchoolClass.remote_url == remote_url), lock
    ).first()
    return found


def select_child_by_remote(remote_url: str) -> Child | None:
    found: Child | None = Child.get_or_none(Child.remote_url == remote_url)
    return found


def local_guardians_of_class(class_id: int) -> set[int]:
    """Accounts of this node linked to a child of the (mirrored) class."""
    query: Any = (
        Guardianship.select(Guardianship.account)
        .join(Child)
        .switch(Guardianship)
        .join(Account)
        .where((Child.school_class == class_id) & (Account.status == "active"))
    )
    return {row.account_id for row in query}


def blobs_of_class(class_id: int) -> list[str]:
    """Public ids of the stored (fetched) blobs of a class, to delete their files."""
    query: Any = (
        Blob.select(Blob.public_id)
        .join(E2eGroup, on=(Blob.group == E2eGroup.id))
        .where((E2eGroup.school_class == class_id) & (Blob.status != "remote"))
    )
    return [row.public_id for row in query]


def delete_class(class_id: int) -> None:
    """The mirror and everything in it (children, links, log, messages, blobs, receipts)."""
    pk: Any = SchoolClass._meta.primary_key
    SchoolClass.delete().where(pk == class_id).execute()


def shadow_accounts(logins: list[str]) -> dict[str, Account]:
    """login → account, for shadow accounts (``np:<member>``)."""
    if not logins:
        return {}
    query = Account.select().where(Account.login.in_(logins))
    return {a.login: a for a in query}
