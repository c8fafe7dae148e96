"""The rules of a class's conversations, in one place: who is where, who may read and write.

Every conversation service starts with ``place(...)``: the actor must be an
approved member of the class's encrypted group (teacher or guardian).  The
checks here raise the errors people see:
- parent chat ``off`` → 403 for the room and groups (family threads go on);
- parent chat ``closed`` → 403 on every write to the room and groups;
- a guardian who has not accepted the code of conduct → 403 until they do;
- a child not theirs, a person outside the class, a person who blocked
  the actor → 403.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from node.errors import N_, Invalid, PermissionDenied
from node.services import groups
from node.services.context import Actor, ServiceContext
from node.services.posts import ClassPeople, _audience, class_people
from node.storage import accounts as account_store
from node.storage import conversations as store
from node.storage import groups as group_store

PARENT_CHAT = ("off", "open", "closed")
FAMILY_THREADS = ("open", "reply")


@dataclass
class Place:
    ctx: ServiceContext
    actor: Actor
    class_id: int
    access: groups.Access
    people: ClassPeople
    #: active members of the class's group who are its teacher or a linked guardian
    active: set[str]

    @property
    def school_class(self) -> Any:
        return self.access.school_class

    @property
    def local_members(self) -> set[str]:
        """Members of this node (those of other nodes are told by their own node)."""
        return {m for m in self.active if m.endswith(self._host)}

    def teacher(self) -> str:
        account = account_store.select_account(self.school_class.teacher_id)
        return groups.member_of(self.ctx, account) if account else ""

    def guardians(self) -> set[str]:
        return self.active - {self.teacher()}

    def require_guardian(self) -> None:
        if self.access.is_teacher:
            raise PermissionDenied(N_("Parent chat is for parents; a member can invite you."))

    def require_parent_chat(self, *, write: bool) -> None:
        state = self.school_class.parent_chat
        if state == "off":
            raise PermissionDenied(N_("The teacher has not opened parent chat for this class."))
        if write and state == "closed":
            raise PermissionDenied(
                N_("The teacher closed this class's parent chat: it is read-only.")
            )
        if (
            not self.access.is_teacher
            and not self.acting_for_another_node
            and not store.has_accepted_conduct(self.actor.account_id, self.class_id)
        ):
            raise PermissionDenied(N_("Accept the parent chat's code of conduct first."))

    @property
    def acting_for_another_node(self) -> bool:
        """A guardian of another node, whose own node asked them to accept the code."""
        account = account_store.select_account(self.actor.account_id)
        return account is not None and account.status == "remote"

    @property
    def mirrored(self) -> bool:
        """A class of another school's node: its node decides, this one relays."""
        return self.school_class.peer_id is not None

    def require_addable(self, member: str) -> None:
        """An approved member of the class who has not blocked the actor (as far as this
        node knows: a person of another node blocks on their own node)."""
        if member not in self.active:
            raise PermissionDenied(N_("This person is not a member of the class."))
        account = groups.account_of_member(self.ctx, member)
        if account is None and not self.mirrored and member.endswith(self._host):
            raise PermissionDenied(N_("This person is not a member of the class."))
        if account is not None and store.blockers_of(self.actor.account_id, [account]):
            raise PermissionDenied(N_("You cannot add this person."))

    @property
    def _host(self) -> str:
        return "@" + self.ctx.config.origin.split("://", 1)[1]

    def family_audience(self, child_id: int) -> list[str]:
        """The teacher and every approved guardian of the child, as they are now."""
        return _audience(self.ctx, self.access, [child_id], self.people)

    def can_read(self, conversation: Any, members: dict[int, list[Any]]) -> bool:
        me = self.access.me
        if conversation.kind == "family":
            return self.access.is_teacher or conversation.child_id in self.access.my_children
        if self.school_class.parent_chat == "off":
            return False
        return any(m.member == me for m in members.get(conversation.id, []))

    def require_can_write(self, conversation: Any) -> None:
        if conversation.kind != "family":
            self.require_parent_chat(write=True)

    def away_until(self) -> str | None:
        """The teacher's holiday pause: the last day away, while it lasts."""
        until = self.school_class.away_until
        if until is None or until < self.ctx.now().date():
            return None
        return until.isoformat() if isinstance(until, dt.date) else str(until)


def place(ctx: ServiceContext, actor: Actor, class_id: int, *, lock: bool = False) -> Place:
    a = groups.require_member(ctx, actor, class_id, lock=lock)
    people = class_people(ctx, a)
    active = set(people.active)
    if a.school_class.peer_id is not None:
        # a mirror knows only its own guardians' links: every active member of the class's
        # verified log is a member (the class's node checks the rest)
        active = {m.member for m in group_store.select_members(a.group.id) if m.active}
    return Place(ctx, actor, class_id, a, people, active)


def family_child(place: Place, raw: Any, *, starting: bool) -> int:
    """The child of a family thread the actor may open (``starting``) or read."""
    if type(raw) is not int or raw not in place.people.names:
        raise Invalid(N_("Choose a child of this class."), field="child")
    if place.access.is_teacher:
        return raw
    if raw not in place.access.my_children:
        raise PermissionDenied(N_("This child is not yours."))
    if starting and place.school_class.family_threads != "open":
        raise PermissionDenied(
            N_("The teacher starts the conversations with families; you can answer in yours.")
        )
    return raw


def member_names(ctx: ServiceContext, place: Place, members: list[str]) -> dict[str, str]:
    """member id → display name, for the members of the class (others: no name)."""
    ids = groups.accounts_of_members(ctx, members)
    accounts = account_store.select_accounts({i for i in ids.values() if i})
    return {m: accounts[i].display_name for m, i in ids.items() if i and i in accounts}


def was_reported(message_id: int) -> bool:
    return store.ChatReport.select().where(store.ChatReport.reported == message_id).exists()
