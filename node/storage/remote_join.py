"""Requests of guardians of other schools' nodes to join a class of this node (NP/1 §9.2).

A row ties the other node's request id to the first-login attempt that
carries the SMS code (``login_attempt``, as for a local guardian), then to
the ``remote`` account made once the code is confirmed.  ``state``:
``code_sent`` → ``linked`` (the teacher sees them to approve) → ``accepted``
(the teacher approved their keys; Accept sent) → ``removed`` (Remove sent)
or ``left`` (their node sent Undo), or ``rejected`` (unlinked before
approval; Reject sent).
"""

from __future__ import annotations

import peewee

from node.storage.accounts import Account
from node.storage.db import BaseModel, locked
from node.storage.directory import GuardianInvitation, SchoolClass
from node.storage.onboarding import LoginAttempt
from node.storage.peers import Peer

STATES = ("code_sent", "linked", "accepted", "rejected", "removed", "left")


class RemoteFollow(BaseModel):
    follow_id = peewee.CharField(max_length=400, unique=True)
    peer = peewee.ForeignKeyField(Peer, on_delete="CASCADE")
    peer_id: int
    actor = peewee.CharField(max_length=400)
    member = peewee.CharField(max_length=128)
    school_class = peewee.ForeignKeyField(SchoolClass, column_name="class_id", on_delete="CASCADE")
    class_id: int
    invitation = peewee.ForeignKeyField(GuardianInvitation, null=True, on_delete="SET NULL")
    attempt = peewee.ForeignKeyField(LoginAttempt, null=True, on_delete="SET NULL")
    account = peewee.ForeignKeyField(Account, null=True, on_delete="SET NULL")
    account_id: int | None
    sign_pk = peewee.CharField(max_length=64)
    enc_pk = peewee.CharField(max_length=64)
    state = peewee.CharField(max_length=12)
    created_at = peewee.DateTimeField()
    updated_at = peewee.DateTimeField()

    class Meta:
        table_name = "remote_follow"


def select_by_attempt(
    peer_id: int, attempt_public_id: str, lock: bool = False
) -> RemoteFollow | None:
    query = (
        RemoteFollow.select(RemoteFollow, LoginAttempt)
        .join(LoginAttempt)
        .where((RemoteFollow.peer == peer_id) & (LoginAttempt.public_id == attempt_public_id))
    )
    found: RemoteFollow | None = locked(query, lock, of=RemoteFollow).first()
    return found


def select_by_follow_id(follow_id: str) -> RemoteFollow | None:
    found: RemoteFollow | None = RemoteFollow.get_or_none(RemoteFollow.follow_id == follow_id)
    return found


def select_live_follow(class_id: int, account_id: int) -> RemoteFollow | None:
    """The linked or accepted request that made this remote guardian a guardian of the class."""
    query = RemoteFollow.select().where(
        (RemoteFollow.school_class == class_id)
        & (RemoteFollow.account == account_id)
        & RemoteFollow.state.in_(("linked", "accepted"))
    )
    found: RemoteFollow | None = locked(query).first()
    return found


def follows_of_peer(peer_id: int, class_id: int | None = None) -> list[RemoteFollow]:
    """A peer's requests that made (or make) its guardians members of classes here."""
    query = RemoteFollow.select().where(
        (RemoteFollow.peer == peer_id)
        & RemoteFollow.state.in_(("linked", "accepted", "removed", "left"))
    )
    if class_id is not None:
        query = query.where(RemoteFollow.school_class == class_id)
    return list(query.order_by(RemoteFollow.id))


def linked_for_members(class_id: int, members: list[str]) -> list[RemoteFollow]:
    """Linked requests of these members to this class (the teacher just approved them)."""
    if not members:
        return []
    query = (
        RemoteFollow.select(RemoteFollow, Peer)
        .join(Peer)
        .where(
            (RemoteFollow.school_class == class_id)
            & RemoteFollow.member.in_(members)
            & (RemoteFollow.state == "linked")
        )
    )
    return list(query)


# -- the home side: this node's guardians joining classes elsewhere ----------------------


class JoinRequest(BaseModel):
    account = peewee.ForeignKeyField(Account, on_delete="CASCADE")
    account_id: int
    peer = peewee.ForeignKeyField(Peer, on_delete="CASCADE")
    peer_id: int
    follow_id = peewee.CharField(max_length=400, unique=True)
    #: the class's node's handle of the request
    join_id = peewee.CharField(max_length=64, null=True)
    #: code_sent | linked | accepted | rejected
    state = peewee.CharField(max_length=12)
    masked_phone = peewee.CharField(max_length=40, default="")
    school_name = peewee.CharField(max_length=200, default="")
    class_name = peewee.CharField(max_length=200, default="")
    child_first_name = peewee.CharField(max_length=200, default="")
    class_url = peewee.CharField(max_length=400, null=True)
    #: the child on the class's node this request was for (from the Accept)
    child_url = peewee.CharField(max_length=400, null=True)
    created_at = peewee.DateTimeField()
    updated_at = peewee.DateTimeField()

    class Meta:
        table_name = "join_request"


def select_join_request(request_id: int, account_id: int, lock: bool = False) -> JoinRequest | None:
    query = (
        JoinRequest.select(JoinRequest, Peer)
        .join(Peer)
        .where((JoinRequest._meta.primary_key == request_id) & (JoinRequest.account == account_id))
    )
    found: JoinRequest | None = locked(query, lock, of=JoinRequest).first()
    return found


def select_join_by_follow(follow_id: str, lock: bool = False) -> JoinRequest | None:
    query = JoinRequest.select().where(JoinRequest.follow_id == follow_id)
    found: JoinRequest | None = locked(query, lock).first()
    return found


def select_joins_of_peer(peer_id: int, lock: bool = False) -> list[JoinRequest]:
    query = JoinRequest.select().where(JoinRequest.peer == peer_id)
    return list(locked(query, lock).order_by(JoinRequest.id))


def select_joins_of(account_id: int) -> list[JoinRequest]:
    query = (
        JoinRequest.select(JoinRequest, Peer).join(Peer).where(JoinRequest.account == account_id)
    )
    return list(query.order_by(JoinRequest.created_at.desc()))
