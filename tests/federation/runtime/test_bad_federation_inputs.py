"""The federation inputs of the reliability research (§6) not tried by the other runtime tests.

A confirmed peer signs each request correctly, so what is refused is the
content: bodies that are not a transaction, a body one byte over the limit,
odd transaction ids, an activity whose id names another school.  Each gets
a 4xx with the NP/1 refusal body (``{"error": reason, "message": …}``) and
nothing is applied or stored.  Signatures, replays, clocks and origins are
covered by test_peering.py and test_inbox.py.
"""

from __future__ import annotations

import json
import os
import random
import string
import time
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock
from quart import Quart
from quart.typing import TestClientProtocol as Client

from federation.activity import Activity, build_activity
from federation.canonical import canonical_json
from federation.keys import key_id
from federation.runtime import worker
from federation.runtime.client import Answer
from federation.runtime.routes import Federation
from federation.transaction import MAX_BODY_BYTES
from node.services.context import ServiceContext
from node.storage import activities as store
from node.storage.db import Storage
from tests.federation.runtime.peer_factories import (
    PUBLIC_URL,
    STREAM,
    FakePeer,
    activity,
    as_admin,
    note,
    peered,
    put_transaction,
    transaction,
    txn_id,
)


@pytest.fixture
def applied(app: Quart) -> list[str]:
    """Record the object id of every Create the node applies."""
    seen: list[str] = []

    def create(ctx: ServiceContext, peer_id: int, received: Activity) -> None:
        assert isinstance(received.object, dict)
        seen.append(received.object["id"])

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


def received(storage: Storage) -> int:
    """Transactions and activities the node recorded from peers."""
    return storage.call(
        lambda: store.FedTxnIn.select().count() + store.FedReceived.select().count()
    )


async def refusal(response: Any, status: int) -> str:
    assert response.status_code == status, await response.get_data()
    body = await response.get_json()
    assert body["error"] and body["message"], body
    reason: str = body["error"]
    return reason


NOT_TRANSACTIONS = [
    b"not json",
    b'{"txn": "a", "txn": "b"}',  # duplicate keys
    b"[" * 10_000 + b"]" * 10_000,  # deep nesting
    b"[]",
    b'{"activities": NaN}',
    b'{"activities": 1e309}',
    b"\xff\xfe\x00",
    b"{}",
    b'{"activities": "all of them", "streams": [], "origin": 7}',
]


async def test_a_signed_body_that_is_not_a_transaction_is_refused(
    client: Client, storage: Storage, peer: FakePeer, applied: list[str]
) -> None:
    before = received(storage)
    for body in NOT_TRANSACTIONS:
        response = await put_transaction(client, peer, txn_id(), body)
        await refusal(response, 400)
    assert applied == [] and received(storage) == before


async def test_a_body_one_byte_over_the_limit_is_refused_before_it_is_read(
    client: Client, storage: Storage, peer: FakePeer, applied: list[str]
) -> None:
    before = received(storage)
    body = b" " * (MAX_BODY_BYTES + 1)
    response = await put_transaction(client, peer, txn_id(), body)
    assert response.status_code == 413
    assert applied == [] and received(storage) == before


#: the NUL one reached PostgreSQL's lookup and was a 500
ODD_TXN_IDS = ["x" * 300, "..%2F..%2Fapi%2Fv1%2Fme", "01J8Z6R4%00", "%C2%B2", "%20"]


async def test_an_odd_transaction_id_is_refused(
    client: Client, storage: Storage, peer: FakePeer, applied: list[str]
) -> None:
    before = received(storage)
    body = transaction(peer, txn_id(), [activity(peer, 1)])
    for txn in ODD_TXN_IDS:
        response = await put_transaction(client, peer, txn, body)
        # "..%2F" is a slash once decoded: no such route, a 404 page; the others reach the inbox
        assert 400 <= response.status_code < 500, (txn, await response.get_data())
    assert applied == [] and received(storage) == before


async def test_an_activity_whose_id_names_another_school_is_refused_alone(
    client: Client, peer: FakePeer, applied: list[str]
) -> None:
    foreign = build_activity(
        id="https://ecole-c.example/np/act/cm2-2", type="Create",
        actor=f"{peer.origin}/users/teacher", stream=STREAM, seq=2,
        published=int(time.time()), audience=STREAM + "#members", object=note(peer, 2),
        signing_key=peer.keys["k1"], keyid=key_id(peer.origin, "k1"),
        to=[PUBLIC_URL + "/users/7"],
    )  # fmt: skip
    txn = txn_id()
    # our builder refuses to make it: the peer's body is written by hand
    document = json.loads(transaction(peer, txn, [activity(peer, 1), activity(peer, 3)]))
    document["activities"].insert(1, foreign)
    body = canonical_json(document)
    response = await put_transaction(client, peer, txn, body)
    assert await refusal(response, 403) == "origin_mismatch"  # the whole transaction
    assert applied == []


@pytest.mark.parametrize(
    "typed",
    # the last two: urlsplit raised ValueError (a 500, found by scripts/fuzz)
    ["intranet", "https://metadata", "https://[fd00::1]", "î[í\x1c", "https://[::1"],
)
async def test_a_one_word_peer_address_is_refused_and_nothing_is_fetched(
    client: Client, storage: Storage, ctx: ServiceContext, httpx_mock: HTTPXMock, typed: str
) -> None:
    """A school's Carnet has a public name; "intranet" can only be a machine next door."""
    headers = await as_admin(client, storage, ctx)
    response = await client.post("/api/v1/admin/peers", json={"origin": typed}, headers=headers)
    assert response.status_code == 400
    error = (await response.get_json())["error"]
    assert error["message"] == "Enter the school's address alone, like https://ecole-b.example."
    assert error["field"] == "origin"
    assert httpx_mock.get_requests() == []


def test_an_odd_retry_after_from_a_peer_is_ignored() -> None:
    """Regression: "²" passed ``str.isdigit`` and made ``int()`` raise in the delivery worker."""
    for value in ["²", "9" * 5000, "-1", "1e3", "", "soon"]:
        answer = Answer(429, httpx.Headers({"Retry-After": value.encode()}), b"")
        assert worker._retry_after(answer) is None, value
    assert worker._retry_after(Answer(429, httpx.Headers({"Retry-After": "30"}), b"")) == 30


# --- A peer that sends garbage ------------------------------------------------------------------

#: bodies per route; scripts/fuzz's FUZZ_EXAMPLES and FUZZ_SEED reach this test too
BODIES = int(os.environ.get("FUZZ_EXAMPLES", "1")) * 12
SEED = int(os.environ.get("FUZZ_SEED", "0"))
ODD_TEXT = ["", "\x00", "²", "\u202e", "\ud800", "x" * 3000, "https://ecole-b.example/", "../.."]


def garbage(rng: random.Random, depth: int = 0) -> Any:
    """A random JSON value: odd text, huge and negative numbers, floats, deep or empty containers."""
    kind = rng.randrange(8 if depth < 4 else 5)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.choice([0, -1, 2**53, 2**63, -(2**64), rng.randrange(10**6)])
    if kind == 2:
        return rng.choice([1.5, 1e308, -0.0])
    if kind in (3, 4):
        return rng.choice(ODD_TEXT + [rng.choice(string.printable) * rng.randrange(1, 40)])
    if kind == 5:
        return [garbage(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = ["type", "id", "seq", "to", "object", "actor", "stream", "txn_id", "origin", "np"]
    return {rng.choice(keys): garbage(rng, depth + 1) for _ in range(rng.randrange(5))}


def mutate(rng: random.Random, document: Any) -> Any:
    """The document with one value somewhere replaced by garbage, or a key removed."""
    if not isinstance(document, (dict, list)) or not document or rng.random() < 0.3:
        return garbage(rng)
    copy = json.loads(json.dumps(document))
    key = rng.choice(list(copy)) if isinstance(copy, dict) else rng.randrange(len(copy))
    if isinstance(copy, dict) and rng.random() < 0.2:
        del copy[key]
    else:
        copy[key] = mutate(rng, copy[key])
    return copy


def encode(document: Any) -> bytes:
    try:
        return canonical_json(document)
    except Exception:  # floats, big numbers, lone surrogates: what a careless peer would send
        return json.dumps(document).encode("utf-8", "surrogatepass")


async def test_a_peers_garbage_never_breaks_the_node(
    client: Client, storage: Storage, peer: FakePeer, applied: list[str]
) -> None:
    """Signed requests whose bodies are random or a valid transaction mutated: never a 5xx."""
    rng = random.Random(SEED)
    before = received(storage)
    valid = json.loads(transaction(peer, txn_id(), [activity(peer, 1), activity(peer, 2)]))
    answers: dict[int, int] = {}
    for _ in range(BODIES):
        txn = txn_id()
        document = mutate(rng, {**valid, "txn_id": txn})
        response = await put_transaction(client, peer, txn, encode(document))
        answers[response.status_code] = answers.get(response.status_code, 0) + 1
        assert response.status_code < 500, (document, await response.get_data())
        if response.status_code >= 400:
            await refusal(response, response.status_code)
        body = encode(garbage(rng))
        keys = await client.post("/np/keys", data=body, headers=peer.headers("/np/keys", body))
        assert keys.status_code < 500, (body, await keys.get_data())
    # a mutated transaction may still be a valid one: only Creates of this peer are applied
    assert all(object_id.startswith(peer.origin) for object_id in applied)
    assert received(storage) >= before and sum(answers.values()) == BODIES
