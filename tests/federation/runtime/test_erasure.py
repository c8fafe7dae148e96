"""Issue 8: a guardian's erasure travels to the schools of their classes (NP/1 §6.7).

Class side: school B (a FakePeer) sends the Delete of its erased guardian's
person; their shadow account here and their comment go, and the comment's
Tombstone is announced back.  Home side: our guardian in a class of B is
erased; B is sent one signed Delete of the person, for that class.
"""

from __future__ import annotations

import datetime as dt

import pytest
from pytest_httpx import HTTPXMock
from quart.typing import TestClientProtocol as Client

from node import refclient_groups as rc
from node.services import erasure
from node.services.context import ServiceContext
from node.storage import accounts as account_store
from node.storage import peers as peer_store
from node.storage import remote_join as remote_store
from node.storage.db import Storage
from tests.conftest import PUBLIC_URL
from tests.factories import make_school
from tests.federation.runtime.peer_factories import (
    B,
    FakePeer,
    activity,
    peered,
    put_transaction,
    transaction,
    txn_id,
)
from tests.federation.runtime.test_class_stream import (
    ACTOR,
    B_STREAM,
    MEMBER,
    keys_of_remote,
    remote_guardian,
    sent_to_b,
)
from tests.feed_factories import ClassFeed, make_class_feed
from tests.retention_factories import audit_rows


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


def _b() -> int:
    found = peer_store.select_peer_by_origin(B)
    assert found is not None
    return int(found.id)


def tombstone_of(actor: str) -> dict[str, object]:
    return {
        "id": actor, "type": "Tombstone", "formerType": "Person", "version": 1,
        "deleted": "2026-11-29T10:00:00Z",
    }  # fmt: skip


async def test_the_delete_of_a_guardian_of_b_erases_their_shadow_and_words_here(
    cf: ClassFeed, client: Client, peer: FakePeer
) -> None:
    mine = cf.guardians[1].child_id
    assert mine is not None
    them = remote_guardian(cf, mine)
    now = dt.datetime(2026, 9, 1)
    cf.storage.call(
        remote_store.RemoteFollow.create, follow_id=f"{B}/np/follow/1", peer=cf.storage.call(_b),
        actor=ACTOR, member=MEMBER, school_class=cf.class_id, account=them.actor.account_id,
        sign_pk="x", enc_pk="y", state="accepted", created_at=now, updated_at=now,
    )  # fmt: skip
    cf.approve_all()
    post_id = cf.post({"text": "Sortie au musée"})
    state, keys = keys_of_remote(cf, them)
    request = rc.encrypt(them.keys, MEMBER, state, keys, "comment", {"text": "Merci !"},
                         parent=post_id)  # fmt: skip
    comment_id = request["message"]["header"]["id"]
    class_url = f"{PUBLIC_URL}/classes/{cf.class_id}"
    create = activity(
        peer, 1, stream=B_STREAM, actor=ACTOR, to=[class_url],
        object={"id": f"{B}/np/messages/{comment_id}", "type": "Note", "version": 1,
                "attributedTo": ACTOR, "kind": "comment", "inReplyTo": f"{class_url}/messages/{post_id}",
                "message": request["message"], "keys": []},
    )  # fmt: skip
    delete = activity(peer, 2, type="Delete", stream=B_STREAM, actor=ACTOR, to=[class_url],
                      object=tombstone_of(ACTOR))  # fmt: skip
    txn = txn_id()
    body = transaction(peer, txn, [create, delete], streams={B_STREAM: (0, 2)})
    answer = await (await put_transaction(client, peer, txn, body)).get_json()
    assert answer["results"] == {create["id"]: {}, delete["id"]: {}}

    assert cf.storage.call(account_store.select_account, them.actor.account_id) is None
    [item] = cf.read(cf.teacher)
    assert item["replies"] == []
    # B had been sent the comment on the class stream: it is told to delete its copy
    last = sent_to_b(cf)[-1]
    assert last["type"] == "Delete" and last["object"]["formerType"] == "Note"
    assert last["object"]["id"].endswith("/messages/" + comment_id)
    assert audit_rows(cf)[-1].action == "erasure_received"


async def test_a_person_tombstone_sent_by_someone_else_is_refused(
    client: Client, storage: Storage, ctx: ServiceContext, httpx_mock: HTTPXMock, peer: FakePeer
) -> None:
    make_school(storage, ctx)
    await peered(client, storage, ctx, httpx_mock, peer, school=False)
    delete = activity(peer, 1, type="Delete", stream=B_STREAM, actor=B + "/users/9",
                      to=[PUBLIC_URL + "/classes/1"], object=tombstone_of(ACTOR))  # fmt: skip
    txn = txn_id()
    body = transaction(peer, txn, [delete], streams={B_STREAM: (0, 1)})
    answer = await (await put_transaction(client, peer, txn, body)).get_json()
    assert "that person's actor" in answer["results"][delete["id"]]["message"]


def test_our_guardian_erased_is_deleted_at_the_school_of_their_class(cf: ClassFeed) -> None:
    parent = cf.guardians[0]
    class_url = f"{B}/classes/9"
    now = dt.datetime(2026, 9, 1)
    cf.storage.call(
        remote_store.JoinRequest.create, account=parent.actor.account_id, peer=cf.storage.call(_b),
        follow_id=f"{PUBLIC_URL}/np/follow/1", state="accepted", class_url=class_url,
        created_at=now, updated_at=now,
    )  # fmt: skip
    cf.storage.call(erasure.request_erasure, cf.ctx, parent.actor, "DELETE")
    [sent] = [a for a in sent_to_b(cf) if a["type"] == "Delete"]
    me = f"{PUBLIC_URL}/users/{parent.actor.account_id}"
    assert sent["actor"] == me and sent["stream"] == f"{PUBLIC_URL}/peers/ecole-b.example"
    assert sent["object"]["type"] == "Tombstone" and sent["object"]["formerType"] == "Person"
    assert sent["object"]["id"] == me and sent["to"] == [class_url]
