"""Conversations on a class's stream (NP/1 §6.6), class side: which schools get an opening.

School B (a FakePeer) hosts a guardian of this node's class.  The class's parents' room is
announced to B before B's guardian is in it (so they can join it); a private group only to
the schools of its members.
"""

from __future__ import annotations

from typing import Any

from tests import chat_factories as chat
from tests.federation.runtime.test_class_stream import (  # noqa: F401 - fixtures used by name
    MEMBER,
    cf,
    peer,
    remote_guardian,
    sent_to_b,
)
from tests.feed_factories import ClassFeed


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
