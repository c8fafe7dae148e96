"""A class's content on its stream, as the class's node publishes and receives it (NP/1 §6.1).

School B (a FakePeer) hosts a guardian of this node's class: the teacher's
approval sends B the class as it is (its log from the start, its posts),
then every change; a delete purges what the stream carried; B's guardian's
comment, read and delete, forwarded on B's peer stream, are done here by
their shadow account and announced back.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from pytest_httpx import HTTPXMock
from quart.typing import TestClientProtocol as Client

from federation.runtime import delivery
from node import refclient_groups as rc
from node.e2e.encoding import b64url_encode
from node.e2e.keys import AccountKeys, generate_account_keys
from node.services import feed, posts
from node.services.context import Actor, ServiceContext
from node.storage import accounts as account_store
from node.storage import activities as fed_store
from node.storage import directory as directory_store
from node.storage import feed as feed_store
from node.storage import groups as group_store
from node.storage import peers as peer_store
from node.storage.db import Storage
from tests.conftest import PUBLIC_URL
from tests.federation.runtime.peer_factories import (
    B,
    FakePeer,
    activity,
    peered,
    put_transaction,
    transaction,
    txn_id,
)
from tests.feed_factories import ClassFeed, Person, make_class_feed

MEMBER = "42@ecole-b.example"
ACTOR = B + "/users/42"
HOST = PUBLIC_URL.split("://", 1)[1]
B_STREAM = f"{B}/peers/{HOST}"


@pytest.fixture
async def cf(
    client: Client, storage: Storage, ctx: ServiceContext, httpx_mock: HTTPXMock, peer: FakePeer
) -> ClassFeed:
    made = make_class_feed(storage, ctx, families=2)
    await peered(client, storage, ctx, httpx_mock, peer, school=False)
    return made


@pytest.fixture
def peer() -> FakePeer:
    return FakePeer()


def remote_guardian(cf: ClassFeed, child_id: int) -> Person:
    """B's guardian, linked to ``child_id`` as a confirmed join leaves them."""
    keys: AccountKeys = generate_account_keys()

    def make() -> account_store.Account:
        peer = peer_store.select_peer_by_origin(B)
        assert peer is not None
        account = account_store.insert_remote_guardian(
            "np:" + MEMBER, "Parent à B", b64url_encode(keys.sign_pk), b64url_encode(keys.enc_pk),
            peer.id, dt.datetime(2026, 9, 1),
        )  # fmt: skip
        directory_store.Guardianship.create(
            child=child_id, account=account, created_at=dt.datetime(2026, 9, 1)
        )
        return account

    account = cf.storage.call(make)
    return Person(Actor(account.id, "guardian", "Parent à B"), keys, MEMBER, child_id)


def keys_of_remote(cf: ClassFeed, them: Person) -> tuple[Any, dict[int, bytes]]:
    """What B's guardian's browser opens: the class log, and the keys sealed to them."""

    def envelopes() -> list[dict[str, Any]]:
        group = group_store.select_group_of_class(cf.class_id)
        assert group is not None
        sealed = group_store.select_envelopes(group.id, MEMBER, b64url_encode(them.keys.enc_pk))
        return [json.loads(text) for text in sealed]

    view = {"entries": cf.view(cf.teacher)["entries"], "envelopes": cf.storage.call(envelopes)}
    return rc.open_epoch_keys({**view, "me": MEMBER}, them.keys)


def sent_to_b(cf: ClassFeed) -> list[dict[str, Any]]:
    """What the delivery worker would send B, in order (with B's recipients)."""

    def rows() -> list[Any]:
        peer = peer_store.select_peer_by_origin(B)
        assert peer is not None
        return fed_store.pending_for(peer.id, 10_000)

    out = []
    for *_, body, recipients in cf.storage.call(rows):
        item = json.loads(body)
        item["to"] = json.loads(recipients)
        out.append(item)
    return out


def summary(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [
        (a["type"], a["object"]["type"] if isinstance(a["object"], dict) else a["object"])
        for a in items
    ]


def test_a_school_whose_first_guardian_is_approved_gets_the_class_as_it_is(cf: ClassFeed) -> None:
    mine, other = cf.guardians[1].child_id, cf.guardians[0].child_id
    assert mine is not None and other is not None
    before = cf.post({"text": "Rentrée"})
    cf.post({"text": "Pour la famille 0"}, children=[other])
    remote_guardian(cf, mine)
    cf.approve_all()
    sent = sent_to_b(cf)
    classes = [a for a in sent if a["stream"].startswith(PUBLIC_URL + "/classes/")]
    kinds = summary(classes)
    head = len([k for k in kinds if k == ("Create", "GroupEntry")])
    # the log from its first entry, the whole-class post (not the other family's),
    # then the entry approving them and the key sealed to them
    assert kinds[: head - 1] == [("Create", "GroupEntry")] * (head - 1)
    assert kinds[head - 1 :] == [
        ("Create", "Note"),
        ("Create", "GroupEntry"),
        ("Create", "EpochKey"),
    ]
    seqs = [a["object"]["entry"]["seq"] for a in classes if a["object"]["type"] == "GroupEntry"]
    assert seqs == list(range(head))  # the log starts at 0
    [note] = [a["object"] for a in classes if a["object"]["type"] == "Note"]
    assert note["id"].endswith("/messages/" + before) and note["kind"] == "post"
    assert note["message"]["header"]["id"] == before and note["authorName"]
    [key] = [a["object"] for a in classes if a["object"]["type"] == "EpochKey"]
    assert key["envelope"]["member"] == MEMBER
    assert all(a["to"] == [ACTOR] for a in classes)


def test_later_posts_edits_and_deletes_follow_and_deletes_purge_the_stream(cf: ClassFeed) -> None:
    mine = cf.guardians[1].child_id
    assert mine is not None
    remote_guardian(cf, mine)
    cf.approve_all()
    start = len(sent_to_b(cf))
    post_id = cf.post({"text": "Sortie au musée"})
    cf.post({"text": "Pour la famille 0"}, children=[cf.guardians[0].child_id or 0])
    cf.storage.call(posts.set_comments, cf.ctx, cf.teacher.actor, cf.class_id, False, post_id)
    new = sent_to_b(cf)[start:]
    assert summary(new) == [("Create", "Note"), ("Update", "Note")]
    assert new[1]["object"]["version"] == 2 and new[1]["object"]["commentsEnabled"] is False
    cf.storage.call(posts.delete_message, cf.ctx, cf.teacher.actor, cf.class_id, post_id)
    after = sent_to_b(cf)[start:]
    # the Create and Update that carried its ciphertext are gone from the queue
    assert summary(after) == [("Delete", "Tombstone")]
    assert after[0]["object"]["version"] == 3

    def bodies() -> list[str]:
        query = fed_store.FedActivity.select().where(
            fed_store.FedActivity.object_id == after[0]["object"]["id"]
        )
        return [a.body for a in query.order_by(fed_store.FedActivity.seq)]

    stored = cf.storage.call(bodies)
    assert stored[:2] == ["", ""] and "Tombstone" in stored[2]


def test_nothing_is_published_for_a_class_without_members_elsewhere(cf: ClassFeed) -> None:
    cf.post({"text": "Bonjour"})

    def count() -> int:
        return fed_store.FedActivity.select().count()

    assert cf.storage.call(count) == 0


async def test_a_comment_read_and_delete_forwarded_by_b_are_done_here_and_announced(
    cf: ClassFeed, client: Client, peer: FakePeer
) -> None:
    mine = cf.guardians[1].child_id
    assert mine is not None
    them = remote_guardian(cf, mine)
    cf.approve_all()
    post_id = cf.post({"text": "Sortie au musée"})
    state, keys = keys_of_remote(cf, them)
    request = rc.encrypt(them.keys, MEMBER, state, keys, "comment", {"text": "Merci !"},
                         parent=post_id)  # fmt: skip
    comment_id = request["message"]["header"]["id"]
    post_url = f"{PUBLIC_URL}/classes/{cf.class_id}/messages/{post_id}"
    create = activity(
        peer, 1, stream=B_STREAM, actor=ACTOR, to=[PUBLIC_URL + f"/classes/{cf.class_id}"],
        object={"id": f"{B}/np/messages/{comment_id}", "type": "Note", "version": 1,
                "attributedTo": ACTOR, "kind": "comment", "inReplyTo": post_url,
                "message": request["message"], "keys": []},
    )  # fmt: skip
    read = activity(peer, 2, type="Read", stream=B_STREAM, actor=ACTOR, object=post_url,
                    to=[PUBLIC_URL + f"/classes/{cf.class_id}"])  # fmt: skip
    txn = txn_id()
    body = transaction(peer, txn, [create, read], streams={B_STREAM: (0, 2)})
    answer = await (await put_transaction(client, peer, txn, body)).get_json()
    assert answer["results"] == {create["id"]: {}, read["id"]: {}}
    # the teacher reads it, by its author, and sees B's guardian has read the post
    [item] = cf.read(cf.teacher)
    assert item["replies"] == [{"text": "Merci !"}]
    receipts = cf.storage.call(feed.receipts, cf.ctx, cf.teacher.actor, cf.class_id, post_id)
    assert receipts.read == 1
    # and it is announced on the class stream to B (whose node matches it to its copy)
    announced = [a for a in sent_to_b(cf) if isinstance(a["object"], dict)]
    assert announced[-1]["object"]["message"]["header"]["id"] == comment_id
    delete = activity(
        peer, 3, type="Delete", stream=B_STREAM, actor=ACTOR, to=[PUBLIC_URL + f"/classes/{cf.class_id}"],
        object={"id": f"{B}/np/messages/{comment_id}", "type": "Tombstone", "formerType": "Note",
                "version": 2, "deleted": "2026-11-29T10:00:00Z",
                "context": f"{PUBLIC_URL}/classes/{cf.class_id}/messages/{comment_id}"},
    )  # fmt: skip
    txn = txn_id()
    body = transaction(peer, txn, [delete], streams={B_STREAM: (2, 3)})
    answer = await (await put_transaction(client, peer, txn, body)).get_json()
    assert answer["results"] == {delete["id"]: {}}
    [item] = cf.read(cf.teacher)
    assert item["replies"] == []
    assert sent_to_b(cf)[-1]["object"]["type"] == "Tombstone"


async def test_a_comment_by_someone_not_in_the_class_is_refused(
    cf: ClassFeed, client: Client, peer: FakePeer
) -> None:
    post_id = cf.post({"text": "Sortie"})
    post_url = f"{PUBLIC_URL}/classes/{cf.class_id}/messages/{post_id}"
    create = activity(
        peer, 1, stream=B_STREAM, actor=B + "/users/9", to=[PUBLIC_URL + f"/classes/{cf.class_id}"],
        object={"id": f"{B}/np/messages/x1", "type": "Note", "version": 1,
                "attributedTo": B + "/users/9", "kind": "comment", "inReplyTo": post_url,
                "message": {"header": {}, "ct": "", "sig": ""}, "keys": []},
    )  # fmt: skip
    txn = txn_id()
    body = transaction(peer, txn, [create], streams={B_STREAM: (0, 1)})
    answer = await (await put_transaction(client, peer, txn, body)).get_json()
    assert "is not a guardian in a class of this node" in answer["results"][create["id"]]["message"]

    def comments() -> int:
        return feed_store.Message.select().where(feed_store.Message.kind == "comment").count()

    assert cf.storage.call(comments) == 0


def test_switching_comments_off_for_the_class_tells_the_schools(cf: ClassFeed) -> None:
    mine = cf.guardians[1].child_id
    assert mine is not None
    remote_guardian(cf, mine)
    cf.approve_all()
    for enabled in (False, True):
        cf.storage.call(posts.set_comments, cf.ctx, cf.teacher.actor, cf.class_id, enabled)
    changes = [a["object"] for a in sent_to_b(cf) if a["object"]["type"] == "Class"]
    assert [(c["version"], c["commentsEnabled"]) for c in changes] == [(2, False), (3, True)]
    assert changes[0]["id"] == f"{PUBLIC_URL}/classes/{cf.class_id}"


def test_a_guardian_unlinked_from_the_class_is_sent_nothing_more(cf: ClassFeed) -> None:
    mine = cf.guardians[1].child_id
    assert mine is not None
    them = remote_guardian(cf, mine)
    cf.approve_all()
    start = len(sent_to_b(cf))
    # the teacher unlinked them: until the key rotation removes them from the log they
    # are still in it, but their school hears nothing more: not the new key, not posts
    cf.storage.call(directory_store.delete_guardianship, mine, them.actor.account_id)
    cf.remove_pending()
    cf.post({"text": "Après leur départ"})
    assert sent_to_b(cf)[start:] == []


def test_a_delete_drops_a_batch_built_with_the_message(cf: ClassFeed) -> None:
    mine = cf.guardians[1].child_id
    assert mine is not None
    remote_guardian(cf, mine)
    cf.approve_all()
    post_id = cf.post({"text": "Une erreur"})

    def build() -> str:
        peer = peer_store.select_peer_by_origin(B)
        assert peer is not None
        batch = delivery.next_batch(cf.ctx, peer.id)
        assert batch is not None and post_id.encode() in batch.body
        return batch.txn_id

    first = cf.storage.call(build)  # built, sent, not acknowledged (B is down)
    cf.storage.call(posts.delete_message, cf.ctx, cf.teacher.actor, cf.class_id, post_id)

    def rebuilt() -> tuple[str, bytes]:
        peer = peer_store.select_peer_by_origin(B)
        assert peer is not None
        batch = delivery.next_batch(cf.ctx, peer.id)
        assert batch is not None
        return batch.txn_id, batch.body

    txn, body = cf.storage.call(rebuilt)
    assert txn != first  # a new batch: the one holding the ciphertext is gone
    sent = [a["object"] for a in json.loads(body)["activities"]]
    about = [o for o in sent if isinstance(o, dict) and o["id"].endswith("/messages/" + post_id)]
    assert [o["type"] for o in about] == ["Tombstone"]


def test_a_post_for_some_families_goes_to_their_school_only_naming_only_its_own(
    cf: ClassFeed,
) -> None:
    c_origin, c_member = "https://ecole-c.example", "7@ecole-c.example"
    at_b, at_c = cf.guardians[1].child_id, cf.guardians[0].child_id
    assert at_b is not None and at_c is not None
    remote_guardian(cf, at_b)
    keys = generate_account_keys()

    def at_school_c() -> None:
        now = dt.datetime(2026, 9, 1)
        c = peer_store.Peer.create(
            origin=c_origin, name="École C", state="active", document="{}",
            document_until=now, added_at=now,
        )  # fmt: skip
        account = account_store.insert_remote_guardian(
            "np:" + c_member, "Parent à C", b64url_encode(keys.sign_pk),
            b64url_encode(keys.enc_pk), c.id, now,
        )  # fmt: skip
        directory_store.Guardianship.create(child=at_c, account=account, created_at=now)

    cf.storage.call(at_school_c)
    cf.approve_all()

    def sent(origin: str) -> list[dict[str, Any]]:
        def rows() -> list[Any]:
            peer = peer_store.select_peer_by_origin(origin)
            assert peer is not None
            return fed_store.pending_for(peer.id, 10_000)

        return [json.loads(body) for *_, body, _to in cf.storage.call(rows)]

    before_b, before_c = len(sent(B)), len(sent(c_origin))
    cf.post({"text": "Pour la famille de C"}, children=[at_c])
    assert sent(B)[before_b:] == []
    [note] = [a["object"] for a in sent(c_origin)[before_c:]]
    assert {k["member"] for k in note["keys"]} == {c_member}  # not the other families'
    assert note["children"] == [f"{PUBLIC_URL}/classes/{cf.class_id}/children/{at_c}"]
    cf.post({"text": "Pour tous"})
    assert [a["object"]["keys"] for a in sent(B)[before_b:]] == [[]]
    assert [a["object"]["keys"] for a in sent(c_origin)[before_c + 1 :]] == [[]]


def test_a_reminder_reaches_the_guardians_of_other_schools_through_their_node(
    cf: ClassFeed,
) -> None:
    mine = cf.guardians[1].child_id
    assert mine is not None
    remote_guardian(cf, mine)
    cf.approve_all()
    post_id = cf.post({"text": "Sortie au musée"})
    start = len(sent_to_b(cf))
    reminded = cf.storage.call(feed.remind_unread, cf.ctx, cf.teacher.actor, cf.class_id, post_id)
    assert len(reminded) == 3  # the two guardians here and the one at B
    [remind] = sent_to_b(cf)[start:]
    assert remind["type"] == "Remind" and remind["to"] == [ACTOR]
    assert remind["object"] == f"{PUBLIC_URL}/classes/{cf.class_id}/messages/{post_id}"
