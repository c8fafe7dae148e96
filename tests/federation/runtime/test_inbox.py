"""Receiving a peer's transactions: order, duplicates, refusals, gaps and the pull that fills them."""

from __future__ import annotations

import asyncio

import pytest
from pytest_httpx import HTTPXMock
from quart import Quart
from quart.typing import TestClientProtocol as Client

from federation.activity import Activity
from federation.canonical import canonical_json
from federation.errors import ActivityError
from federation.runtime.routes import Federation
from node.services.context import ServiceContext
from node.storage import activities as store
from node.storage.db import Storage
from tests.federation.runtime.peer_factories import (
    PUBLIC_URL,
    STREAM,
    B,
    FakePeer,
    activity,
    peered,
    put_transaction,
    transaction,
    txn_id,
)


@pytest.fixture
def applied(app: Quart) -> list[tuple[str, int]]:
    """Register a Create handler that records (object id, seq) and refuses 'refuse me'."""
    seen: list[tuple[str, int]] = []

    def create(ctx: ServiceContext, peer_id: int, received: Activity) -> None:
        assert isinstance(received.object, dict)
        if received.object["content"] == "refuse me":
            raise ActivityError("this post is for a class we do not host")
        seen.append((received.object["id"], received.seq))

    fed: Federation = app.extensions["carnet_federation"]
    fed.handlers["Create"] = create
    return seen


@pytest.fixture
async def peer(
    client: Client, storage: Storage, ctx: ServiceContext, httpx_mock: HTTPXMock
) -> FakePeer:
    school = FakePeer()
    await peered(client, storage, ctx, httpx_mock, school)
    return school


async def test_activities_are_applied_once_in_order_and_a_retry_gets_the_same_answer(
    client: Client, peer: FakePeer, applied: list[tuple[str, int]]
) -> None:
    txn = txn_id()
    body = transaction(peer, txn, [activity(peer, 1), activity(peer, 2)])
    first = await put_transaction(client, peer, txn, body)
    assert first.status_code == 200
    answer = await first.get_json()
    assert answer == {"results": {f"{B}/np/act/cm2-1": {}, f"{B}/np/act/cm2-2": {}}}
    again = await put_transaction(client, peer, txn, body)
    assert await again.get_json() == answer
    # the same activity in a new transaction (a sender that lost our answer)
    later = txn_id()
    third = await put_transaction(
        client, peer, later, transaction(peer, later, [activity(peer, 2), activity(peer, 3)])
    )
    assert (await third.get_json())["results"][f"{B}/np/act/cm2-2"] == {}
    assert applied == [(f"{B}/posts/1", 1), (f"{B}/posts/2", 2), (f"{B}/posts/3", 3)]


async def test_a_refused_or_forged_activity_fails_alone(
    client: Client, storage: Storage, peer: FakePeer, applied: list[tuple[str, int]]
) -> None:
    refused = activity(peer, 2, content="refuse me")
    txn = txn_id()
    body = transaction(peer, txn, [activity(peer, 1), refused, activity(peer, 3)])
    results = (await (await put_transaction(client, peer, txn, body)).get_json())["results"]
    assert results[f"{B}/np/act/cm2-2"]["error"] == "bad_activity"
    assert "class we do not host" in results[f"{B}/np/act/cm2-2"]["message"]
    assert applied == [(f"{B}/posts/1", 1), (f"{B}/posts/3", 3)]
    tampered = activity(peer, 4)
    tampered["object"]["content"] = "changed after signing"
    txn = txn_id()
    body = transaction(peer, txn, [tampered])
    results = (await (await put_transaction(client, peer, txn, body)).get_json())["results"]
    assert results[f"{B}/np/act/cm2-4"]["error"] == "bad_activity"
    letters = storage.call(lambda: [(d.direction, d.reason) for d in store.FedDeadLetter.select()])
    assert letters == [("in", "bad_activity"), ("in", "bad_activity")]


async def test_a_gap_is_pulled_and_everything_applied_in_order(
    app: Quart, client: Client, peer: FakePeer, applied: list[tuple[str, int]],
    httpx_mock: HTTPXMock,
) -> None:  # fmt: skip
    # seqs 1-3 never arrived (a lost transaction); this batch declares after=3
    txn = txn_id()
    body = transaction(peer, txn, [activity(peer, 4), activity(peer, 5)], {STREAM: (3, 5)})
    page = {"activities": [activity(peer, n) for n in range(1, 6)], "next_after": 5, "head_seq": 5}
    httpx_mock.add_response(
        url=f"{B}/np/streams/classes/cm2?after=0&limit=100", json=page, is_reusable=False
    )
    answer = await (await put_transaction(client, peer, txn, body)).get_json()
    assert answer["results"] == {f"{B}/np/act/cm2-4": {}, f"{B}/np/act/cm2-5": {}}
    fed: Federation = app.extensions["carnet_federation"]
    await fed.puller.wait()
    assert [seq for _, seq in applied] == [1, 2, 3, 4, 5]
    pull = httpx_mock.get_request(url=f"{B}/np/streams/classes/cm2?after=0&limit=100")
    assert pull is not None and "np1" in pull.headers["Signature-Input"]
    # the next batch continues from 5: nothing pulled again
    txn = txn_id()
    await put_transaction(client, peer, txn, transaction(peer, txn, [activity(peer, 6)]))
    assert [seq for _, seq in applied] == [1, 2, 3, 4, 5, 6]


async def test_a_transaction_naming_another_origin_is_refused_whole(
    client: Client, peer: FakePeer, applied: list[tuple[str, int]]
) -> None:
    impostor = FakePeer(origin="https://ecole-c.example")
    txn = txn_id()
    foreign = activity(impostor, 1, stream="https://ecole-c.example/classes/cm2")
    body = transaction(peer, txn, [activity(peer, 1)])
    tampered = body.replace(b'"activities":[', b'"activities":[' + canonical_json(foreign) + b",")
    response = await put_transaction(client, peer, txn, tampered)
    assert response.status_code == 403
    assert (await response.get_json())["error"] == "origin_mismatch"
    assert applied == []


async def test_a_second_transaction_while_one_is_applied_gets_429(
    app: Quart, client: Client, peer: FakePeer, applied: list[tuple[str, int]]
) -> None:
    fed: Federation = app.extensions["carnet_federation"]
    lock = fed.receiving.setdefault(B, asyncio.Lock())
    await lock.acquire()
    try:
        txn = txn_id()
        busy = await put_transaction(client, peer, txn, transaction(peer, txn, [activity(peer, 1)]))
        assert (busy.status_code, busy.headers["Retry-After"]) == (429, "1")
    finally:
        lock.release()
    assert applied == []


async def test_a_peer_past_its_transactions_per_minute_is_paced_and_loses_nothing(
    app: Quart, client: Client, peer: FakePeer, applied: list[tuple[str, int]]
) -> None:
    fed: Federation = app.extensions["carnet_federation"]
    fed.throttle.per_minute = 2
    answers = []
    for seq in (1, 2, 3):
        txn = txn_id()
        sent = transaction(peer, txn, [activity(peer, seq)])
        answers.append(await put_transaction(client, peer, txn, sent))
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert 1 <= int(answers[2].headers["Retry-After"]) <= 60
    assert "too many transactions" in (await answers[2].get_json())["message"]
    assert [seq for _, seq in applied] == [1, 2]
    # once the minute has passed, the same transaction goes through
    fed.throttle.accepted[B].clear()
    retry = await put_transaction(client, peer, txn, sent)
    assert retry.status_code == 200
    assert [seq for _, seq in applied] == [1, 2, 3]


async def test_an_activity_type_without_handler_is_refused_with_a_reason(
    client: Client, peer: FakePeer
) -> None:
    txn = txn_id()
    follow = activity(peer, 1, type="Follow", object=f"{PUBLIC_URL}/classes/1")
    results = (
        await (
            await put_transaction(client, peer, txn, transaction(peer, txn, [follow]))
        ).get_json()
    )["results"]
    assert "does not handle Follow activities" in results[f"{B}/np/act/cm2-1"]["message"]


async def test_content_of_a_class_nobody_here_is_in_is_refused(
    client: Client, peer: FakePeer
) -> None:
    txn = txn_id()
    body = transaction(peer, txn, [activity(peer, 1, type="Create")])
    results = (await (await put_transaction(client, peer, txn, body)).get_json())["results"]
    assert results[f"{B}/np/act/cm2-1"] == {
        "error": "bad_activity",
        "message": "No guardian of this school is in this class.",
    }


async def test_anti_entropy_pulls_what_a_lost_transaction_carried(
    app: Quart, client: Client, peer: FakePeer, applied: list[tuple[str, int]],
    httpx_mock: HTTPXMock,
) -> None:  # fmt: skip
    txn = txn_id()
    await put_transaction(client, peer, txn, transaction(peer, txn, [activity(peer, 1)]))
    # seq 2 was sent in a transaction that never arrived, and nothing came after it
    page = {"activities": [activity(peer, 2)], "next_after": 2, "head_seq": 2}
    httpx_mock.add_response(url=f"{B}/np/streams/classes/cm2?after=1&limit=100", json=page)
    fed: Federation = app.extensions["carnet_federation"]
    task = asyncio.create_task(fed.puller.anti_entropy(first_delay=0, every=3600))
    try:
        for _ in range(500):  # until the pass has scheduled its pull
            await asyncio.sleep(0.01)
            if httpx_mock.get_requests(url=f"{B}/np/streams/classes/cm2?after=1&limit=100"):
                break
        await fed.puller.wait()
    finally:
        task.cancel()
    assert [seq for _, seq in applied] == [1, 2]
