"""A guardian of this node joins a class of another school's node (played by pytest-httpx and FakePeer)."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock
from quart import Quart
from quart.typing import TestClientProtocol as Client

from federation.httpsig import verify_request
from federation.runtime.routes import Federation
from federation.transaction import MembershipDigest, build_transaction, membership_digest
from node.services import directory
from node.services.context import Actor, ServiceContext
from node.storage import accounts as account_store
from node.storage import activities as store
from node.storage import peers as peer_store
from node.storage.db import Storage
from tests.conftest import PUBLIC_URL
from tests.factories import api_login, invite, make_guardian, make_school
from tests.federation.runtime.peer_factories import (
    B,
    FakePeer,
    activity,
    peered,
    put_transaction,
    transaction,
    txn_id,
)

PHONE = "+33639980001"
JOIN = B + "/np/join"


@pytest.fixture
async def guardian(
    client: Client, storage: Storage, ctx: ServiceContext, httpx_mock: HTTPXMock
) -> tuple[dict[str, str], FakePeer, int]:
    """A guardian of this node, logged in; the other school is a confirmed peer."""
    school = make_school(storage, ctx)
    peer = FakePeer()
    await peered(client, storage, ctx, httpx_mock, peer, school=False)
    slip = invite(storage, ctx, school.teacher, school.child_id, PHONE)
    actor = make_guardian(storage, ctx, slip.code, PHONE)
    token = (await api_login(client, PHONE))["csrf_token"]
    return {"X-CSRF-Token": token}, peer, actor.account_id


def mine_peer() -> int:
    """School B's peer row here."""
    peer = peer_store.select_peer_by_origin(B)
    assert peer is not None
    return int(peer.id)


def answer(status: int, body: dict[str, Any]) -> Any:
    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body)

    return respond


async def test_a_guardian_joins_a_class_of_another_school_and_is_accepted(
    app: Quart, client: Client, storage: Storage, httpx_mock: HTTPXMock,
    guardian: tuple[dict[str, str], FakePeer, int],
) -> None:  # fmt: skip
    headers, peer, account_id = guardian
    httpx_mock.add_callback(answer(201, {"join_id": "j1", "masked_phone": "•• •• 34"}), url=JOIN)
    started = await client.post(
        "/api/v1/joins", json={"school": "ecole-b.example", "code": "ABCD-EFGH"}, headers=headers
    )
    assert started.status_code == 201, await started.get_data(as_text=True)
    view = await started.get_json()
    assert (view["school"], view["state"], view["masked_phone"]) == (B, "code_sent", "•• •• 34")
    # what the class's node received: signed by this node, naming the guardian and their keys
    request = httpx_mock.get_request(url=JOIN)
    assert request is not None
    signing_key = app.config["CARNET_KEYS"].signing_key
    verify_request(
        method="POST", target_uri=JOIN, headers=request.headers.multi_items(), body=request.content,
        now=int(time.time()), lookup_key=lambda keyid: signing_key.verify_key,
    )  # fmt: skip
    sent = json.loads(request.content)
    account = storage.call(account_store.select_account, account_id)
    assert sent["actor"] == f"{PUBLIC_URL}/users/{account_id}"
    assert (sent["sign_pk"], sent["enc_pk"], sent["code"]) == (
        account.sign_pk,
        account.enc_pk,
        "ABCD-EFGH",
    )
    assert PHONE not in request.content.decode()
    code_url = f"{B}/np/join/j1/code"
    httpx_mock.add_callback(
        answer(401, {"error": "unauthenticated", "message": "x", "params": {"left": 3}}),
        url=code_url,
    )
    wrong = await client.post(
        f"/api/v1/joins/{view['id']}/code", json={"sms_code": "000000"}, headers=headers
    )
    assert wrong.status_code == 401
    assert "Tries left: 3" in (await wrong.get_json())["error"]["message"]
    httpx_mock.add_callback(
        answer(200, {"join_id": "j1", "school_name": "École B", "class_name": "CM2",
                     "child_first_name": "Noé"}),
        url=code_url,
    )  # fmt: skip
    linked = await (
        await client.post(
            f"/api/v1/joins/{view['id']}/code", json={"sms_code": "123456"}, headers=headers
        )
    ).get_json()
    assert (linked["state"], linked["class_name"], linked["child_first_name"]) == (
        "linked",
        "CM2",
        "Noé",
    )
    # the teacher approves over there: the Accept arrives as an activity of its stream for us
    stream = f"{B}/peers/127.0.0.1:8000"
    accept = activity(
        peer, 1, type="Accept", stream=stream, to=[sent["actor"]], object=sent["follow"],
        actor=B + "/classes/cm2", extra={"target": B + "/classes/cm2"},
    )  # fmt: skip
    txn = txn_id()
    results = await (
        await put_transaction(client, peer, txn, transaction(peer, txn, [accept], {stream: (0, 1)}))
    ).get_json()
    assert results["results"][accept["id"]] == {}
    mine = await (await client.get("/api/v1/joins")).get_json()
    assert [m["state"] for m in mine] == ["accepted"]


async def test_joining_needs_a_partner_school_and_a_guardian(
    client: Client, storage: Storage, httpx_mock: HTTPXMock,
    guardian: tuple[dict[str, str], FakePeer, int],
) -> None:  # fmt: skip
    headers, _, _ = guardian
    unknown = await client.post(
        "/api/v1/joins", json={"school": "ecole-z.example", "code": "ABCD"}, headers=headers
    )
    assert unknown.status_code == 400
    assert "not a partner" in (await unknown.get_json())["error"]["message"]
    httpx_mock.add_exception(httpx.ConnectError("refused"), url=JOIN)
    down = await client.post("/api/v1/joins", json={"school": B, "code": "ABCD"}, headers=headers)
    assert down.status_code == 502
    assert await (await client.get("/api/v1/joins")).get_json() == []
    admin = (await api_login(client, "admin@school.test"))["csrf_token"]
    refused = await client.post(
        "/api/v1/joins", json={"school": B, "code": "ABCD"}, headers={"X-CSRF-Token": admin}
    )
    assert refused.status_code == 403


async def test_a_reject_or_a_remove_settles_the_request_and_only_from_its_school(
    client: Client, storage: Storage, ctx: ServiceContext, httpx_mock: HTTPXMock,
    guardian: tuple[dict[str, str], FakePeer, int],
) -> None:  # fmt: skip
    headers, peer, account_id = guardian
    httpx_mock.add_callback(answer(201, {"join_id": "j1", "masked_phone": "••"}), url=JOIN)
    httpx_mock.add_callback(answer(201, {"join_id": "j2", "masked_phone": "••"}), url=JOIN)
    follows = []
    for _ in range(2):
        await client.post("/api/v1/joins", json={"school": B, "code": "ABCD"}, headers=headers)
        follows.append(json.loads(httpx_mock.get_requests(url=JOIN)[-1].content)["follow"])
    actor = f"{PUBLIC_URL}/users/{account_id}"
    stream, group = f"{B}/peers/127.0.0.1:8000", B + "/classes/cm2"
    reject = activity(
        peer, 1, type="Reject", stream=stream, to=[actor], object=follows[0], actor=group
    )
    remove = activity(
        peer, 1, type="Remove", stream=group, to=[actor], object=actor, actor=group,
        extra={"target": group + "#members", "follow": follows[1]},
    )  # fmt: skip
    unknown = activity(
        peer,
        2,
        type="Reject",
        stream=stream,
        to=[actor],
        object=PUBLIC_URL + "/np/joins/unknown",
        actor=group,
    )  # not ours: the request was never sent to B by this node
    txn = txn_id()
    body = transaction(peer, txn, [reject, unknown, remove], {stream: (0, 2), group: (0, 1)})
    results = (await (await put_transaction(client, peer, txn, body)).get_json())["results"]
    assert results[reject["id"]] == {} and results[remove["id"]] == {}
    assert "not a request this node sent you" in results[unknown["id"]]["message"]
    states = [m["state"] for m in await (await client.get("/api/v1/joins")).get_json()]
    assert sorted(states) == ["rejected", "removed"]


async def test_leaving_a_class_tells_its_school(
    client: Client, storage: Storage, httpx_mock: HTTPXMock,
    guardian: tuple[dict[str, str], FakePeer, int],
) -> None:  # fmt: skip
    headers, _, account_id = guardian
    httpx_mock.add_callback(answer(201, {"join_id": "j1", "masked_phone": "••"}), url=JOIN)
    view = await (
        await client.post("/api/v1/joins", json={"school": B, "code": "ABCD"}, headers=headers)
    ).get_json()
    early = await client.delete(f"/api/v1/joins/{view['id']}", headers=headers)
    assert early.status_code == 409  # not in the class yet: nothing to leave
    httpx_mock.add_callback(
        answer(200, {"join_id": "j1", "school_name": "École B", "class_name": "CM2",
                     "child_first_name": "Noé"}),
        url=f"{B}/np/join/j1/code",
    )  # fmt: skip
    await client.post(
        f"/api/v1/joins/{view['id']}/code", json={"sms_code": "123456"}, headers=headers
    )
    left = await client.delete(f"/api/v1/joins/{view['id']}", headers=headers)
    assert (await left.get_json())["state"] == "left"
    follow = json.loads(httpx_mock.get_requests(url=JOIN)[0].content)["follow"]
    model = store.FedActivity
    [undo] = storage.call(
        lambda: [json.loads(a.body) for a in model.select().where(model.type == "Undo")]
    )
    assert (undo["object"], undo["actor"]) == (follow, f"{PUBLIC_URL}/users/{account_id}")


async def test_a_lost_accept_is_repaired_by_the_membership_digest(
    app: Quart, client: Client, storage: Storage, httpx_mock: HTTPXMock,
    guardian: tuple[dict[str, str], FakePeer, int],
) -> None:  # fmt: skip
    headers, peer, account_id = guardian
    httpx_mock.add_callback(answer(201, {"join_id": "j1", "masked_phone": "••"}), url=JOIN)
    view = await (
        await client.post("/api/v1/joins", json={"school": B, "code": "ABCD"}, headers=headers)
    ).get_json()
    follow = json.loads(httpx_mock.get_requests(url=JOIN)[0].content)["follow"]
    # the teacher approved over there, but the Accept was lost; a later transaction
    # (about anything) carries the class's digest, which names our guardian
    group, actor = B + "/classes/cm2", f"{PUBLIC_URL}/users/{account_id}"
    members_url = B + "/np/streams/classes/cm2/members"
    child = {"id": group + "/children/4", "name": "Noé"}
    info = {"name": "CM2 B", "teacher": "5@ecole-b.example", "teacherName": "Mme Roux"}
    httpx_mock.add_response(
        url=members_url,
        json={"class": info, "members": [{"actor": actor, "follow": follow, "child": child}],
              "pending": []},
    )  # fmt: skip

    def refused_before() -> None:
        row = store.remote_stream(mine_peer(), group)
        row.applied_seq = 5
        row.save()

    storage.call(refused_before)
    stream = f"{B}/peers/127.0.0.1:8000"
    txn = txn_id()
    body = build_transaction(
        txn_id=txn, origin=B, destination=PUBLIC_URL, activities=[], streams={stream: (0, 0)},
        membership=[MembershipDigest(group, membership_digest([actor]), members_url)],
    )  # fmt: skip
    assert (await put_transaction(client, peer, txn, body)).status_code == 200
    fed: Federation = app.extensions["carnet_federation"]
    await fed.puller.wait()
    [mine] = await (await client.get("/api/v1/joins")).get_json()
    assert (mine["id"], mine["state"]) == (view["id"], "accepted")
    # and the class is there for the guardian, labelled, to be read from its start
    # (what came before was refused: no guardian of ours was in it yet)
    ctx: ServiceContext = app.config["CARNET_CTX"]
    me = Actor(account_id, "guardian", "Parent")
    cards = storage.call(directory.my_children, ctx, me)
    assert ("Noé", "CM2 B", "École B") in {(c.first_name, c.class_name, c.school) for c in cards}
    assert storage.call(lambda: store.remote_stream(mine_peer(), group).applied_seq) == 0
