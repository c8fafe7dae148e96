"""Conversations on a class's stream (NP/1 §6.6), class side: which schools get an opening.

School B (a FakePeer) hosts a guardian of this node's class.  The class's parents' room is
announced to B before B's guardian is in it (so they can join it); a private group only to
the schools of its members.
"""

from __future__ import annotations

from typing import Any

import pytest

from node import refclient_groups as rc
from node.e2e.encoding import b64url_encode
from node.e2e.keys import AccountKeys, generate_account_keys
from node.errors import Conflict
from node.services import conversations, directory, erasure, remote_join
from node.storage import directory as directory_store
from node.storage import peers as peer_store
from node.storage.db import write_transaction
from tests import chat_factories as chat
from tests.factories import invite, make_guardian, sms_code
from tests.federation.runtime.peer_factories import B
from tests.federation.runtime.test_class_stream import (  # noqa: F401 - fixtures used by name
    ACTOR,
    MEMBER,
    cf,
    keys_of_remote,
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


def families_sent(cf: ClassFeed) -> list[tuple[list[Any], list[str]]]:  # noqa: F811
    """The ``families`` of each Class update queued for B, with its recipients there."""
    return [
        (a["object"]["families"], a["to"])
        for a in sent_to_b(cf)
        if isinstance(a["object"], dict) and a["object"]["type"] == "Class"
        and "families" in a["object"]
    ]  # fmt: skip


def family_of(
    found: list[tuple[list[Any], list[str]]], child_id: int, to: tuple[str, ...] = (ACTOR,)
) -> list[str]:
    """The one update in ``found``: it is for B's guardians of the child (``to``) and names
    that child alone; its guardians' member ids."""
    [([family], sent_to)] = found
    assert sent_to == list(to)
    assert family["id"].endswith(f"/children/{child_id}")
    return sorted(g["member"] for g in family["guardians"])


def child_url(cf: ClassFeed, child_id: int) -> str:  # noqa: F811
    return f"{cf.ctx.config.origin}/classes/{cf.class_id}/children/{child_id}"


def test_a_co_guardian_approved_here_is_in_the_child_s_family_at_the_other_school(
    cf: ClassFeed,  # noqa: F811
) -> None:
    """B's guardian's child has a second guardian here: B is told the child's family when
    the teacher approves them (a family thread B's guardian opens is sealed to them too),
    and again as soon as the teacher unlinks them (before removing their keys); never the
    family of a child nobody of B is linked to."""
    mine, other = cf.guardians[1].child_id, cf.guardians[0].child_id
    assert mine is not None and other is not None
    remote_guardian(cf, mine)
    cf.approve_all()

    def families() -> list[Any]:
        return [found for found, _ in families_sent(cf)]

    before = len(families())
    bis = chat.second_guardian(cf, mine)
    chat.second_guardian(cf, other, phone="+33639989998")  # another family: B hears nothing
    found = families()[before:]
    assert len(found) == 1
    [[family]] = found
    assert family["id"] == child_url(cf, mine)
    assert sorted(g["member"] for g in family["guardians"]) == sorted(
        [cf.guardians[1].me, MEMBER, bis.me]
    )
    assert {g["name"] for g in family["guardians"]} >= {"Parent Bis", "Parent à B"}
    # the teacher unlinks the co-guardian: B hears it at once, before the keys change
    [invitation] = [i for i in cf.storage.call(invitations_of, bis)]
    cf.storage.call(directory.remove_guardian, cf.ctx, cf.teacher.actor, invitation)
    assert family_of(families_sent(cf)[before + 1 :], mine) == sorted([cf.guardians[1].me, MEMBER])
    cf.remove_pending()  # then removes them from the class's keys: the same family again
    assert [f for f, _ in families_sent(cf)[before + 1 :]] == [families()[before + 1]] * 2


def test_an_erased_co_guardian_leaves_the_family_at_the_other_school(
    cf: ClassFeed,  # noqa: F811
) -> None:
    """A co-guardian here deletes their account: B is told the child's family without them
    at once; the erasure of a guardian of a child nobody of B is linked to tells B nothing."""
    mine, other = cf.guardians[1].child_id, cf.guardians[0].child_id
    assert mine is not None and other is not None
    remote_guardian(cf, mine)
    cf.approve_all()
    bis = chat.second_guardian(cf, mine)
    before = len(families_sent(cf))
    cf.storage.call(erasure.request_erasure, cf.ctx, bis.actor, "DELETE")
    assert family_of(families_sent(cf)[before:], mine) == sorted([cf.guardians[1].me, MEMBER])
    before = len(families_sent(cf))
    cf.storage.call(erasure.request_erasure, cf.ctx, cf.guardians[0].actor, "DELETE")
    assert families_sent(cf)[before:] == []


def test_a_link_of_an_approved_member_tells_the_schools_of_the_child_s_guardians(
    cf: ClassFeed,  # noqa: F811
) -> None:
    """An approved guardian is linked to a second child of the class (their own first
    login with the new slip, or a join from B): that child's family changes at once, and B
    hears it when it has a guardian of that child.  A guardian of B who leaves (B's Undo)
    is out of the family B's other guardian of the child is told."""
    mine, other = cf.guardians[1].child_id, cf.guardians[0].child_id
    assert mine is not None and other is not None
    them = remote_guardian(cf, mine)
    cf.approve_all()
    g0, g1 = cf.guardians[0], cf.guardians[1]
    # Parent 0 (approved, of the other child) gets a slip for B's guardian's child
    before = len(families_sent(cf))
    slip = invite(cf.storage, cf.ctx, cf.teacher.actor, mine, phone="+33639980000", name="P0")
    make_guardian(cf.storage, cf.ctx, slip.code, "+33639980000")
    assert family_of(families_sent(cf)[before:], mine) == sorted([g0.me, g1.me, MEMBER])
    # Parent 1 for the other child: nobody of B is linked to it, B hears nothing
    before = len(families_sent(cf))
    slip = invite(cf.storage, cf.ctx, cf.teacher.actor, other, phone="+33639980001", name="P1")
    make_guardian(cf.storage, cf.ctx, slip.code, "+33639980001")
    assert families_sent(cf)[before:] == []
    # B's guardian joins from B for the other child too: approved already, so B is told
    before = len(families_sent(cf))
    join_from_b(cf, other, "+33639989997", them.keys, ACTOR, "/follows/1")
    assert family_of(families_sent(cf)[before:], other) == sorted([g0.me, g1.me, MEMBER])
    # a second guardian of B for B's guardian's child, approved, then leaves from B
    follow = join_from_b(cf, mine, "+33639989996", generate_account_keys(), B + "/users/43",
                         "/follows/2")  # fmt: skip
    cf.approve_all()
    co = "43@ecole-b.example"
    both = (ACTOR, B + "/users/43")
    assert family_of(families_sent(cf)[-1:], mine, both) == sorted([g0.me, g1.me, MEMBER, co])
    before = len(families_sent(cf))
    cf.storage.call(left, cf, follow)
    assert family_of(families_sent(cf)[before:], mine) == sorted([g0.me, g1.me, MEMBER])


def join_from_b(
    cf: ClassFeed, child_id: int, phone: str, keys: AccountKeys, actor: str, follow: str,  # noqa: F811
) -> str:  # fmt: skip
    """A guardian of B joins the class for ``child_id`` (access code, then SMS code), as B's
    node relays it; the request's id."""
    slip = invite(cf.storage, cf.ctx, cf.teacher.actor, child_id, phone=phone, name="Parent à B")
    b = cf.storage.call(peer_store.select_peer_by_origin, B)
    assert b is not None
    started = cf.storage.call(
        remote_join.start, cf.ctx, peer_id=b.id, peer_origin=B, follow_id=B + follow,
        actor=actor, code=slip.code, sign_pk=b64url_encode(keys.sign_pk),
        enc_pk=b64url_encode(keys.enc_pk), locale="fr",
    )  # fmt: skip
    cf.storage.call(
        remote_join.confirm, cf.ctx, peer_id=b.id, peer_origin=B, join_id=started.join_id,
        sms_code=sms_code(cf.storage, cf.ctx.config.data_dir, phone),
    )  # fmt: skip
    return B + follow


def left(cf: ClassFeed, follow: str) -> None:  # noqa: F811
    """B's Undo of the request, as its inbox applies it (in one transaction)."""
    b = peer_store.select_peer_by_origin(B)
    assert b is not None
    with write_transaction():
        assert remote_join.left(cf.ctx, b.id, follow)


def test_after_a_co_guardian_is_unlinked_here_b_s_guardian_writes_to_the_family_b_was_told(
    cf: ClassFeed,  # noqa: F811
) -> None:
    """The family thread of B's guardian's child had a co-guardian here; the teacher unlinks
    them.  B's guardian's message sealed to the family B's update now names is taken (it was
    refused as 'people changed' while B knew only the family with the co-guardian)."""
    mine = cf.guardians[1].child_id
    assert mine is not None
    them = remote_guardian(cf, mine)
    cf.approve_all()
    bis = chat.second_guardian(cf, mine)
    teacher = cf.teacher
    everyone = sorted([teacher.me, cf.guardians[1].me, MEMBER, bis.me])
    thread = chat.open_conversation(cf, teacher, "family", everyone, child=mine)
    [invitation] = cf.storage.call(invitations_of, bis)
    cf.storage.call(directory.remove_guardian, cf.ctx, teacher.actor, invitation)
    [family] = families_sent(cf)[-1][0]
    told = sorted([teacher.me, *(g["member"] for g in family["guardians"])])
    assert told == sorted([teacher.me, cf.guardians[1].me, MEMBER])

    def say(to: list[str]) -> conversations.Said:
        state, keys = keys_of_remote(cf, them)
        request = rc.encrypt(
            them.keys, MEMBER, state, keys, "chat", {"text": "Bonjour"}, parent=thread, to=to
        )
        return cf.storage.call(
            conversations.say, cf.ctx, them.actor, cf.class_id, thread, request["message"],
            keys=request["keys"],
        )  # fmt: skip

    with pytest.raises(Conflict, match="people in this conversation changed"):
        say(everyone)  # what B would seal to without the update
    assert say(told).kind == "chat"
    assert chat.read(cf, cf.guardians[1], thread) == ["Bonjour"]


def invitations_of(person: Person) -> list[int]:
    query = directory_store.GuardianInvitation.select().where(
        directory_store.GuardianInvitation.account == person.actor.account_id
    )
    return [i.id for i in query]
