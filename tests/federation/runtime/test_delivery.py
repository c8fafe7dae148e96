"""Delivering the activity log to a peer: batches, ranges, retries, refusals, priority, pulls."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import time
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock
from quart import Quart
from quart.typing import TestClientProtocol as Client

from federation.httpsig import sign_request, verify_request
from federation.keys import key_id
from federation.runtime import delivery, outbox
from federation.runtime.routes import Federation
from federation.runtime.worker import DeliveryWorker
from node.services.context import ServiceContext
from node.storage import activities as store
from node.storage import peers as peer_store
from node.storage.db import Storage, write_transaction
from tests.conftest import PUBLIC_URL
from tests.federation.runtime.peer_factories import B, FakePeer, peered

INBOX = re.compile(re.escape(B) + r"/np/inbox/txn/[0-9A-Z]{26}")
CLASS = PUBLIC_URL + "/classes/1"
ALERTS = PUBLIC_URL + "/alerts"


@pytest.fixture
async def worker(app: Quart) -> DeliveryWorker:
    await app.extensions["carnet_delivery"].stop()  # the server's own would race the test
    return DeliveryWorker(app.extensions["carnet_federation"])


@pytest.fixture
async def peer(
    client: Client, storage: Storage, ctx: ServiceContext, httpx_mock: HTTPXMock
) -> FakePeer:
    school = FakePeer()
    await peered(client, storage, ctx, httpx_mock, school)
    return school


def publish(
    storage: Storage, ctx: ServiceContext, n: int, *, stream: str = CLASS, kind: str = "class",
    to: dict[str, list[str]] | None = None,
) -> list[str]:  # fmt: skip
    """Publish ``n`` activities (opaque ciphertext notes) as the node's services will."""

    def write() -> list[str]:
        ids = []
        with write_transaction():
            for _ in range(n):
                note_id = outbox.new_id(ctx, "posts")
                published = outbox.publish(
                    ctx, stream=stream, kind=kind, type="Create",
                    actor=PUBLIC_URL + "/users/1", audience=stream + "#members",
                    object={"id": note_id, "type": "Note", "version": 1,
                            "attributedTo": PUBLIC_URL + "/users/1", "content": "ciphertext"},
                    recipients=to if to is not None else {B: [B + "/users/7"]},
                )  # fmt: skip
                ids.append(published.activity_id)
        return ids

    return storage.call(write)


def accept_all(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    return httpx.Response(200, json={"results": {a["id"]: {} for a in body["activities"]}})


def sent(httpx_mock: HTTPXMock) -> list[dict[str, Any]]:
    return [json.loads(r.content) for r in httpx_mock.get_requests(url=INBOX)]


def backlog(storage: Storage, peer_id: int = 1) -> int:
    return storage.call(store.backlog_of, peer_id)


async def test_a_batch_is_signed_addressed_and_moves_the_cursor(
    app: Quart, storage: Storage, ctx: ServiceContext, peer: FakePeer, worker: DeliveryWorker,
    httpx_mock: HTTPXMock,
) -> None:  # fmt: skip
    ids = publish(storage, ctx, 3)
    # an activity for nobody on B moves the stream's head, not B's queue
    publish(storage, ctx, 1, to={"https://ecole-z.example": ["https://ecole-z.example/users/1"]})
    assert backlog(storage) == 3
    httpx_mock.add_callback(accept_all, url=INBOX)
    assert await worker.run_once() == 1
    [request] = httpx_mock.get_requests(url=INBOX)
    signing_key = app.config["CARNET_KEYS"].signing_key
    verified = verify_request(
        method="PUT", target_uri=str(request.url), headers=request.headers.multi_items(),
        body=request.content, now=int(time.time()),
        lookup_key=lambda keyid: signing_key.verify_key,
    )  # fmt: skip
    assert verified.key_origin == PUBLIC_URL
    body = json.loads(request.content)
    assert [a["id"] for a in body["activities"]] == ids
    assert [a["seq"] for a in body["activities"]] == [1, 2, 3]
    assert all(a["to"] == [B + "/users/7"] for a in body["activities"])
    assert body["streams"] == {CLASS: {"after": 0, "through": 4}}  # seq 4 was for another school
    assert backlog(storage) == 0
    assert await worker.run_once() == 0  # nothing left


async def test_a_failed_batch_is_retried_with_the_same_txn_and_backs_off(
    storage: Storage, ctx: ServiceContext, peer: FakePeer, worker: DeliveryWorker,
    httpx_mock: HTTPXMock,
) -> None:  # fmt: skip
    publish(storage, ctx, 2)
    httpx_mock.add_response(url=INBOX, status_code=503, headers={"Retry-After": "120"})
    await worker.run_once()
    state = storage.call(peer_store.select_peer, 1)
    assert state.fail_count == 1 and "HTTP 503" in state.last_error
    wait = (state.next_attempt_at - ctx.now()).total_seconds()
    assert 100 < wait <= 120  # Retry-After wins over the 10 s step
    assert await worker.run_once() == 0  # not due yet: nothing sent
    assert len(httpx_mock.get_requests(url=INBOX)) == 1
    publish(storage, ctx, 1)  # written while the peer is down: goes in a later batch
    storage.call(_due_now)
    httpx_mock.add_callback(accept_all, url=INBOX, is_reusable=True)
    assert await worker.run_once() == 1
    first, retry = sent(httpx_mock)[:2]
    assert retry == first  # byte for byte the same transaction, same txn id
    assert await worker.run_once() == 1
    assert [a["seq"] for a in sent(httpx_mock)[2]["activities"]] == [3]
    assert backlog(storage) == 0
    assert storage.call(peer_store.select_peer, 1).fail_count == 0


def _due_now() -> None:
    peer_store.Peer.update(next_attempt_at=dt.datetime(2000, 1, 1)).execute()


async def test_retry_after_is_waited_in_full_whatever_the_backoff_factor(
    storage: Storage, ctx: ServiceContext, peer: FakePeer
) -> None:
    """The factor shrinks our own schedule (tests run at ×0.01), never the wait a peer asked for."""
    fast = dataclasses.replace(
        ctx, config=dataclasses.replace(ctx.config, federation_backoff_factor=0.01)
    )

    def wait_after(retry_after: int | None) -> float:
        storage.call(delivery.record_failure, fast, 1, None, "HTTP 429", retry_after=retry_after)
        state = storage.call(peer_store.select_peer, 1)
        return float((state.next_attempt_at - fast.now()).total_seconds())

    assert wait_after(None) < 1  # our own 30 s step ×0.01
    assert 3.5 < wait_after(4) <= 4  # the peer's 4 s, not 0.04 s
    assert 3590 < wait_after(86_400) <= 3600  # clamped to an hour


async def test_a_request_from_the_peer_clears_our_backoff_but_not_the_wait_it_asked_for(
    storage: Storage, ctx: ServiceContext, peer: FakePeer
) -> None:
    storage.call(delivery.record_failure, ctx, 1, None, "HTTP 503")
    assert storage.call(delivery.peer_is_back, ctx, 1) is True  # our own backoff: cleared
    assert storage.call(peer_store.select_peer, 1).next_attempt_at is None
    storage.call(delivery.record_failure, ctx, 1, None, "HTTP 429", retry_after=120)
    asked = storage.call(peer_store.select_peer, 1).asked_wait_until
    assert storage.call(delivery.peer_is_back, ctx, 1) is False  # its own wait runs on
    assert storage.call(peer_store.select_peer, 1).next_attempt_at == asked
    later = dataclasses.replace(ctx, clock=lambda: asked + dt.timedelta(seconds=1))
    storage.call(delivery.record_failure, later, 1, None, "HTTP 503")  # after it: ours again
    assert storage.call(delivery.peer_is_back, later, 1) is True


async def test_a_refused_batch_is_quarantined_and_later_ones_still_go(
    storage: Storage, ctx: ServiceContext, peer: FakePeer, worker: DeliveryWorker,
    httpx_mock: HTTPXMock,
) -> None:  # fmt: skip
    bad = publish(storage, ctx, 1)
    httpx_mock.add_response(
        url=INBOX, status_code=400, json={"error": "bad_transaction", "message": "no"}
    )
    await worker.run_once()
    letters = storage.call(store.open_dead_letters, 1)
    assert [(d.activity_id, d.direction) for d in letters] == [(bad[0], "out")]
    good = publish(storage, ctx, 1)
    httpx_mock.add_callback(accept_all, url=INBOX)
    assert await worker.run_once() == 1
    assert [a["id"] for a in sent(httpx_mock)[-1]["activities"]] == good


async def test_an_activity_the_peer_refuses_is_a_dead_letter_not_a_retry(
    storage: Storage, ctx: ServiceContext, peer: FakePeer, worker: DeliveryWorker,
    httpx_mock: HTTPXMock,
) -> None:  # fmt: skip
    first, second = publish(storage, ctx, 2)

    def refuse_second(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"results": {
            first: {}, second: {"error": "bad_activity", "message": "unknown class"},
        }})  # fmt: skip

    httpx_mock.add_callback(refuse_second, url=INBOX)
    assert await worker.run_once() == 1
    letters = storage.call(store.open_dead_letters, 1)
    assert [(d.activity_id, d.reason, d.message) for d in letters] == [
        (second, "bad_activity", "unknown class")
    ]
    assert backlog(storage) == 0


async def test_alerts_go_before_any_backlog_and_batches_hold_at_most_50(
    storage: Storage, ctx: ServiceContext, peer: FakePeer, worker: DeliveryWorker,
    httpx_mock: HTTPXMock,
) -> None:  # fmt: skip
    publish(storage, ctx, 60)
    alert = publish(storage, ctx, 1, stream=ALERTS, kind="alerts")
    httpx_mock.add_callback(accept_all, url=INBOX, is_reusable=True)
    while await worker.run_once():
        pass
    first, second = sent(httpx_mock)
    assert first["activities"][0]["id"] == alert[0]
    assert len(first["activities"]) == 50
    assert first["streams"][CLASS] == {"after": 0, "through": 49}
    assert second["streams"][CLASS] == {"after": 49, "through": 60}
    assert len(second["activities"]) == 11


async def test_a_peer_pulls_only_its_own_activities_of_a_routed_stream(
    client: Client, storage: Storage, ctx: ServiceContext, peer: FakePeer
) -> None:
    ids = publish(storage, ctx, 2)
    publish(storage, ctx, 1, to={"https://ecole-z.example": ["https://ecole-z.example/users/1"]})
    path = "/np/streams/classes/1?after=0&limit=100"
    page = await client.get(path, headers=_signed_get(peer, path))
    assert page.status_code == 200, await page.get_data(as_text=True)
    body = await page.get_json()
    assert [a["id"] for a in body["activities"]] == ids
    assert (body["next_after"], body["head_seq"]) == (3, 3)
    other = "/np/streams/alerts?after=0&limit=100"
    refused = await client.get(other, headers=_signed_get(peer, other))
    assert (refused.status_code, (await refused.get_json())["error"]) == (403, "not_member")


def _signed_get(peer: FakePeer, path: str) -> dict[str, str]:
    return sign_request(
        method="GET", target_uri=PUBLIC_URL + path, body=None, signing_key=peer.keys["k1"],
        keyid=key_id(B, "k1"), created=int(time.time()),
    )  # fmt: skip


async def test_a_request_from_a_peer_ends_its_backoff(
    app: Quart, client: Client, storage: Storage, ctx: ServiceContext, peer: FakePeer,
    worker: DeliveryWorker, httpx_mock: HTTPXMock,
) -> None:  # fmt: skip
    publish(storage, ctx, 1)
    httpx_mock.add_response(url=INBOX, status_code=503)
    await worker.run_once()
    assert storage.call(peer_store.select_peer, 1).next_attempt_at is not None
    fed: Federation = app.extensions["carnet_federation"]
    woken: list[bool] = []
    fed.wake_delivery = lambda: woken.append(True)
    path = "/np/streams/classes/1?after=0&limit=100"
    await client.get(path, headers=_signed_get(peer, path))
    assert woken == [True]
    assert storage.call(peer_store.select_peer, 1).next_attempt_at is None


async def test_a_late_failure_of_a_batch_another_worker_delivered_changes_nothing(
    worker: DeliveryWorker, storage: Storage, ctx: ServiceContext, peer: FakePeer
) -> None:
    """Two worker processes sent the same batch: one was answered 200, the other 429 (busy)."""
    publish(storage, ctx, 2)
    batch = storage.call(delivery.next_batch, ctx, 1)
    assert batch is not None
    results = {a["id"]: {} for a in json.loads(batch.body)["activities"]}
    storage.call(delivery.record_success, ctx, 1, batch.txn_id, results)
    storage.call(delivery.record_failure, ctx, 1, batch.txn_id, "HTTP 429", retry_after=1)
    state = storage.call(peer_store.select_peer, 1)
    assert (state.fail_count, state.next_attempt_at, state.last_error) == (0, None, None)
    # a failure of the batch in flight still counts
    publish(storage, ctx, 1)
    current = storage.call(delivery.next_batch, ctx, 1)
    assert current is not None
    storage.call(delivery.record_failure, ctx, 1, current.txn_id, "HTTP 503")
    assert storage.call(peer_store.select_peer, 1).fail_count == 1
