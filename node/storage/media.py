"""Queries behind NP/1 media (a peer fetching a class's attachment): whom that peer hosts.

Read-only.  A peer's users are here as ``remote`` accounts whose
``home_peer_id`` is that peer; the rules that use these answers live in
``federation.runtime.media``.
"""

from __future__ import annotations

from typing import Any

from node.storage.accounts import Account
from node.storage.directory import Guardianship
from node.storage.feed import MessageKey
from node.storage.groups import GroupMember


def peer_members(group_id: int, peer_id: int) -> dict[str, int]:
    """member id → account id of the group's active members whose account lives on that peer."""
    query: Any = (
        GroupMember.select(GroupMember.member, GroupMember.account)
        .join(Account, on=(GroupMember.account == Account.id))
        .where(
            (GroupMember.group == group_id)
            & GroupMember.active
            & (Account.status == "remote")
            & (Account.home_peer_id == peer_id)
        )
    )
    return {member: account for member, account in query.tuples()}


def any_guardian_of(account_ids: list[int], child_ids: list[int]) -> bool:
    """Is one of these accounts a guardian of one of these children?"""
    if not account_ids or not child_ids:
        return False
    query = Guardianship.select(Guardianship.id).where(
        Guardianship.account.in_(account_ids) & Guardianship.child.in_(child_ids)
    )
    return bool(query.exists())


def any_key_for(message_ids: list[int], members: list[str]) -> bool:
    """Was one of these messages' keys sealed to one of these members?"""
    if not message_ids or not members:
        return False
    query = MessageKey.select(MessageKey.id).where(
        MessageKey.message.in_(message_ids) & MessageKey.member.in_(members)
    )
    return bool(query.exists())
