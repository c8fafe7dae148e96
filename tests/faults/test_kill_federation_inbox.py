"""SIGKILL while a node applies another school's transaction: all of it or none, retries absorbed.

School B (``FakePeer``, as in ``tests/federation/runtime/test_class_mirror``)
runs a class one of this node's guardians joined.  Each trial's child
applies one of B's transactions through the inbox service the
``PUT /np/inbox/txn/{id}`` route calls once the request's signature is
verified (``inbox.receive_transaction``): four encrypted posts of the
class, each applied by the real class-mirror handler (the mirrored
message, its key, the guardian's notification), its ``fed_received``
dedup record, the stream's ``applied_seq`` and the transaction's recorded
answer, in one transaction.  After the kill, as the restarted node:

* the database checks clean;
* the transaction is all there (its answer, every activity's dedup record,
  every post, ``applied_seq`` at its end) or not at all, and the posts of
  the earlier trials are all still there;
* B retrying the same transaction (it got no answer) gets an answer that
  every activity is applied; B sending the same activities again in a new
  transaction (it lost the answer and rebuilt its batch) changes nothing:
  never a post twice.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from pytest_httpx import HTTPXMock

from federation.runtime import inbox
from node.services.context import ServiceContext
from node.storage import activities as fed_store
from node.storage import feed as feed_store
from node.storage import notifications as notification_store
from node.storage import peers as peer_store
from node.storage import remote_join as join_store
from tests.factories import client_account, invite, make_guardian, make_school
from tests.faults import kill
from tests.faults.conftest import running
from tests.federation.runtime.peer_factories import B, FakePeer, peered, transaction, txn_id
from tests.federation.runtime.test_class_mirror import (
    CLASS,
    FOLLOW,
    HOST,
    PHONE,
    ClassAtB,
    accept_and_open,
)

pytestmark = pytest.mark.transport

#: posts in one transaction of B's
POSTS = 4
CALIBRATION = 2


@dataclasses.dataclass
class Inbox:
    ctx: ServiceContext
    handlers: Mapping[str, inbox.Handler]
    peer_id: int
    guardian: int
    b: ClassAtB


@dataclasses.dataclass
class Batch:
    txn: str
    body: bytes
    items: list[dict[str, Any]]

    @property
    def posts(self) -> list[str]:
        return [item["object"]["message"]["header"]["id"] for item in self.items]

    @property
    def through(self) -> int:
        return int(self.items[-1]["seq"])


def _batch(b: ClassAtB, n: int) -> Batch:
    items = [b.note(f"Sortie n°{n}.{i}") for i in range(POSTS)]
    txn = txn_id()
    streams = {CLASS: (items[0]["seq"] - 1, items[-1]["seq"])}
    return Batch(txn, transaction(b.peer, txn, items, streams=streams), items)


def _receive(node: Inbox, batch: Batch, txn: str | None = None) -> inbox.Received:
    body = batch.body
    if txn is not None:  # the same activities, a new transaction
        streams = {CLASS: (batch.items[0]["seq"] - 1, batch.through)}
        body = transaction(node.b.peer, txn, batch.items, streams=streams)
    return inbox.receive_transaction(
        node.ctx, node.handlers, node.peer_id, B, txn or batch.txn, body
    )


def _state(node: Inbox, batch: Batch) -> tuple[bool, int, int, int]:
    """(answer recorded, dedup records, posts, applied_seq) of one batch."""
    answered = fed_store.select_txn_in(node.peer_id, batch.txn) is not None
    ids = [item["id"] for item in batch.items]
    dedup = fed_store.FedReceived.select().where(fed_store.FedReceived.activity_id.in_(ids))
    posts = feed_store.Message.select().where(feed_store.Message.public_id.in_(batch.posts))
    applied = fed_store.remote_stream(node.peer_id, CLASS).applied_seq
    return answered, dedup.count(), posts.count(), applied


def _all_posts() -> int:
    return feed_store.Message.select().where(feed_store.Message.kind == "post").count()


def _notices(node: Inbox) -> int:
    query = notification_store.Notification.select().where(
        (notification_store.Notification.account == node.guardian)
        & (notification_store.Notification.kind == "post")
    )
    return query.count()


@pytest.fixture
async def node(node_folder: Path, httpx_mock: HTTPXMock) -> Inbox:
    """The school_b fixture of the class-mirror tests, then B's Accept, class log and key."""
    async with running(node_folder) as app:
        # B is simulated: nothing is delivered to it or pulled from it
        await app.extensions["carnet_delivery"].stop()
        for task in app.extensions["carnet_anti_entropy"]:
            task.cancel()
        storage, ctx = app.config["CARNET_STORAGE"], app.config["CARNET_CTX"]
        client = app.test_client()
        school = make_school(storage, ctx)
        slip = invite(storage, ctx, school.teacher, school.child_id, phone=PHONE, name="Parent H")
        guardian = make_guardian(storage, ctx, slip.code, PHONE)
        peer = FakePeer()
        await peered(client, storage, ctx, httpx_mock, peer, school=False)

        def linked() -> int:
            b = peer_store.select_peer_by_origin(B)
            assert b is not None
            now = dt.datetime(2026, 11, 28)
            join_store.JoinRequest.create(
                account=guardian.account_id, peer=b, follow_id=FOLLOW, join_id="j1",
                state="linked", class_name="CE1", child_first_name="Léa", created_at=now,
                updated_at=now,
            )  # fmt: skip
            return b.id

        peer_id = storage.call(linked)
        b = ClassAtB(peer, guardian, f"{guardian.account_id}@{HOST}", client_account(PHONE).keys)
        answers = await accept_and_open(b, client)
        assert all(result == {} for result in answers.values()), answers
        handlers = dict(app.extensions["carnet_federation"].handlers)
    return Inbox(ctx, handlers, peer_id, guardian.account_id, b)


def test_a_transaction_killed_while_applied_is_all_or_nothing_and_its_retry_is_absorbed(
    node_folder: Path, node: Inbox
) -> None:
    def operation(batch: Batch) -> Any:
        def apply(progress: kill.Progress) -> None:
            received = _receive(node, batch)
            assert all(result == {} for result in received.response["results"].values())
            progress.report("answered")

        return apply

    batches = [_batch(node.b, n) for n in range(CALIBRATION + kill.trials())]
    with kill.open_node(node_folder) as db:
        posts_before = _all_posts()
    window = kill.calibrate(node_folder, [operation(b) for b in batches[:CALIBRATION]])
    seed, delays = kill.delays("federation inbox", window, kill.trials())
    table = kill.Table("federation inbox", seed, window)
    print(f"\nfederation inbox: seed {seed}, {len(delays)} trials, window {window * 1000:.1f} ms")
    applied = CALIBRATION
    for batch, delay in zip(batches[CALIBRATION:], delays, strict=True):
        outcome = kill.run_and_kill(node_folder, operation(batch), delay)
        with kill.open_node(node_folder) as db:
            kill.check_database(db)
            answered, dedup, posts, seq = _state(node, batch)
            mine = answered
            if mine:
                assert (dedup, posts, seq) == (POSTS, POSTS, batch.through)
            else:
                assert (dedup, posts, seq) == (0, 0, batch.items[0]["seq"] - 1)
                assert outcome.killed and "answered" not in outcome.reports
            # the earlier trials' posts are all here, each once
            assert _all_posts() == posts_before + POSTS * (applied + mine)
            assert _notices(node) == POSTS * (applied + mine)
            table.count(outcome, mine)
            # B got no answer and sends the same transaction again
            again = _receive(node, batch)
            assert set(again.response["results"]) == {item["id"] for item in batch.items}
            assert all(result == {} for result in again.response["results"].values())
            # B lost the answer and sends the same activities in a new transaction
            rebuilt = _receive(node, batch, txn_id())
            assert all(result == {} for result in rebuilt.response["results"].values())
            table.replays_absorbed += mine
            applied += 1
            assert _state(node, batch) == (True, POSTS, POSTS, batch.through)
            assert _all_posts() == posts_before + POSTS * applied
            assert _notices(node) == POSTS * applied
            kill.check_database(db)
    print(table.line())
    assert table.killed > 0
