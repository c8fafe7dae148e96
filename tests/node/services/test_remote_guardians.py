"""A guardian whose account lives on another school's node, as the class's node sees them.

Joining across nodes (NP/1 §9.2) creates such a guardian; here they are made
directly so the class-side rules can be checked on their own: the teacher
approves their keys like anyone's, posts reach them through the log, this
node never notifies them itself, and they can never log in here.
"""

from __future__ import annotations

import datetime as dt

import pytest

from node import refclient_groups as rc
from node.e2e.encoding import b64url_encode
from node.e2e.keys import generate_account_keys
from node.errors import Unauthenticated
from node.services import accounts, feed, posts
from node.storage import accounts as account_store
from node.storage import directory as directory_store
from node.storage import groups as group_store
from node.storage import peers as peer_store
from node.storage.db import Storage
from tests.feed_factories import ClassFeed, make_class_feed

MEMBER = "42@ecole-b.example"


@pytest.fixture
def cf(storage: Storage, ctx) -> ClassFeed:  # type: ignore[no-untyped-def]
    return make_class_feed(storage, ctx, families=2)


def remote_guardian(cf: ClassFeed, child_id: int) -> account_store.Account:
    keys = generate_account_keys()

    def make() -> account_store.Account:
        now = dt.datetime(2026, 9, 1)
        peer = peer_store.Peer.create(
            origin="https://ecole-b.example", name="École B", state="active", document="{}",
            document_until=now, added_at=now,
        )  # fmt: skip
        account = account_store.insert_remote_guardian(
            "np:" + MEMBER, "Parent distant", b64url_encode(keys.sign_pk),
            b64url_encode(keys.enc_pk), peer.id, now,
        )  # fmt: skip
        directory_store.Guardianship.create(child=child_id, account=account, created_at=now)
        return account

    return cf.storage.call(make)


def test_the_teacher_approves_a_remote_guardian_by_their_member_id(cf: ClassFeed) -> None:
    child = cf.guardians[0].child_id
    account = remote_guardian(cf, child)
    view = cf.view(cf.teacher)
    wanted = {c["member"]: c for c in view["to_approve"]}
    assert wanted[MEMBER]["display_name"] == "Parent distant"
    assert wanted[MEMBER]["account_id"] == account.id
    cf.approve_all()
    view = cf.view(cf.teacher)
    assert view["to_approve"] == []
    [mine] = [c for c in view["children"] if c["id"] == child]
    assert MEMBER in mine["members"]
    # the new class key was sealed to their keys, as to every member's
    group = cf.storage.call(group_store.select_group_of_class, cf.class_id)
    sealed = cf.storage.call(group_store.select_envelopes, group.id, MEMBER, account.enc_pk)
    assert sealed


def test_posts_reach_a_remote_guardian_but_this_node_does_not_notify_them(cf: ClassFeed) -> None:
    child = cf.guardians[0].child_id
    remote_guardian(cf, child)
    cf.approve_all()
    state, keys = cf.keys_of(cf.teacher)
    request = rc.encrypt(cf.teacher.keys, cf.teacher.me, state, keys, "post", {"text": "Sortie"})
    posted = cf.storage.call(
        posts.create_post, cf.ctx, cf.teacher.actor, cf.class_id, request["message"]
    )
    local = sorted(g.actor.account_id for g in cf.guardians)
    assert posted.recipients == local  # the remote guardian's own node tells them
    # a post for that child's families is sealed to the remote guardian too
    family = cf.post({"text": "Pour Léa"}, children=[child])
    items = cf.storage.call(feed.class_feed, cf.ctx, cf.teacher.actor, cf.class_id).items
    [item] = [i for i in items if i.id == family]
    assert MEMBER in item.message["header"]["to"]
    assert item.receipts == (0, 2)  # the local parent and the remote one


def test_a_remote_guardian_can_never_log_in_here(cf: ClassFeed) -> None:
    remote_guardian(cf, cf.guardians[0].child_id)
    with pytest.raises(Unauthenticated):
        cf.storage.call(
            accounts.login, cf.ctx, "np:" + MEMBER, b64url_encode(bytes(32)), "127.0.0.1"
        )
