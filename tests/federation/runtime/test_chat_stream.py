"""Conversations on a class's stream (NP/1 §6.6), class side: which schools get an opening.

School B (a FakePeer) hosts a guardian of this node's class.  The class's parents' room is
announced to B before B's guardian is in it (so they can join it); a private group only to
the schools of its members.
"""

from __future__ import annotations

from typing import Any

from node.services import directory
from node.storage import directory as directory_store
from tests import chat_factories as chat
from tests.federation.runtime.test_class_stream import (  # noqa: F401 - fixtures used by name
    MEMBER,
    cf,
    peer,
    remote_guardian,
    sent_to_b,
)
from tests.feed_factories import ClassFeed, Person


def openings(cf: ClassFeed) -> list[dict[str, Any]]:  # noqa: F811 - cf, the fixture's name
    return [
        a["object"]["conversation"]
        for a in sent_to_b(cf)
        if isinstance(a["object"], dict) and a["object"].get("kind") == "conversation"
    ]


def test_the_parents_room_reaches_every_school_and_a_group_only_its_members(
    cf: ClassFeed,  # noqa: F811
) -> None:
    mine = cf.guardians[1].child_id
    assert mine is not None
    remote_guardian(cf, mine)
    cf.approve_all()
    chat.set_chat(cf, parent_chat="open")
    g0, g1 = cf.guardians[0], cf.guardians[1]
    chat.accept(cf, g0, g1)
    chat.open_conversation(cf, g0, "group", [g0.me, g1.me], title="sans B")
    assert openings(cf) == []  # nobody of B is in the group
    chat.open_conversation(cf, g0, "room", [g0.me])
    [room] = openings(cf)
    assert room == {"kind": "room", "members": [g0.me]}  # B's guardian may join it
    chat.open_conversation(cf, g1, "group", [g1.me, MEMBER], title="avec B")
    assert openings(cf)[-1] == {"kind": "group", "members": sorted([g1.me, MEMBER])}


def test_a_co_guardian_approved_here_is_in_the_child_s_family_at_the_other_school(
    cf: ClassFeed,  # noqa: F811
) -> None:
    """B's guardian's child has a second guardian here: B is told the child's family when
    the teacher approves them (a family thread B's guardian opens is sealed to them too),
    and again when they are removed; never the family of a child nobody of B is linked to."""
    mine, other = cf.guardians[1].child_id, cf.guardians[0].child_id
    assert mine is not None and other is not None
    remote_guardian(cf, mine)
    cf.approve_all()

    def families() -> list[Any]:
        return [
            a["object"]["families"]
            for a in sent_to_b(cf)
            if a["object"] == {**a["object"], "type": "Class"} and "families" in a["object"]
        ]

    before = len(families())
    bis = chat.second_guardian(cf, mine)
    chat.second_guardian(cf, other, phone="+33639989998")  # another family: B hears nothing
    found = families()[before:]
    assert len(found) == 1
    [[family]] = found
    assert family["id"] == f"{cf.ctx.config.origin}/classes/{cf.class_id}/children/{mine}"
    assert sorted(g["member"] for g in family["guardians"]) == sorted(
        [cf.guardians[1].me, MEMBER, bis.me]
    )
    assert {g["name"] for g in family["guardians"]} >= {"Parent Bis", "Parent à B"}
    # the teacher unlinks the co-guardian, then removes them from the class's keys
    [invitation] = [i for i in cf.storage.call(invitations_of, bis)]
    cf.storage.call(directory.remove_guardian, cf.ctx, cf.teacher.actor, invitation)
    cf.remove_pending()
    [[family]] = families()[before + 1 :]
    assert sorted(g["member"] for g in family["guardians"]) == sorted([cf.guardians[1].me, MEMBER])


def invitations_of(person: Person) -> list[int]:
    query = directory_store.GuardianInvitation.select().where(
        directory_store.GuardianInvitation.account == person.actor.account_id
    )
    return [i.id for i in query]
