"""A parent of another school's node joins a class here: access code, SMS code, teacher approval.

The other node is ``FakePeer``; its user is ``{B}/users/42``, member
``42@ecole-b.example`` of the class's log once the teacher approves them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from pytest_httpx import HTTPXMock
from quart.typing import TestClientProtocol as Client

from federation.httpsig import sign_request
from federation.keys import key_id
from federation.runtime import delivery
from federation.transaction import membership_digest
from node.e2e.encoding import b64url_encode
from node.e2e.keys import generate_account_keys
from node.services import directory, onboarding
from node.services.context import ServiceContext
from node.storage import activities as store
from node.storage.db import Storage
from tests.conftest import PUBLIC_URL
from tests.factories import invite, sms_code, texts_to
from tests.federation.runtime.peer_factories import (
    B,
    FakePeer,
    activity,
    peered,
    put_transaction,
    transaction,
    txn_id,
)
from tests.feed_factories import ClassFeed, make_class_feed

PHONE = "+33639981234"
ACTOR = B + "/users/42"
MEMBER = "42@ecole-b.example"


@pytest.fixture
async def setup(
    client: Client, storage: Storage, ctx: ServiceContext, httpx_mock: HTTPXMock
) -> tuple[ClassFeed, FakePeer, str]:
    cf = make_class_feed(storage, ctx, families=1)
    peer = FakePeer()
    await peered(client, storage, ctx, httpx_mock, peer, school=False)
    slip = invite(storage, ctx, cf.teacher.actor, cf.guardians[0].child_id, PHONE, "Sam Durand")
    return cf, peer, slip.code


async def post(client: Client, peer: FakePeer, path: str, body: dict[str, Any]) -> Any:
    data = json.dumps(body).encode()
    headers = sign_request(
        method="POST", target_uri=PUBLIC_URL + path, body=data, signing_key=peer.keys["k1"],
        keyid=key_id(peer.origin, "k1"), created=int(time.time()),
    )  # fmt: skip
    return await client.post(path, data=data, headers=headers)


def join_body(code: str, follow: str = B + "/np/joins/1") -> dict[str, Any]:
    keys = generate_account_keys()
    return {
        "follow": follow, "actor": ACTOR, "code": code, "locale": "fr",
        "sign_pk": b64url_encode(keys.sign_pk), "enc_pk": b64url_encode(keys.enc_pk),
    }  # fmt: skip


async def test_a_parent_of_another_school_joins_and_the_teacher_approves(
    client: Client, storage: Storage, data_dir: Path, setup: tuple[ClassFeed, FakePeer, str]
) -> None:
    cf, peer, code = setup
    started = await post(client, peer, "/np/join", join_body(code))
    assert started.status_code == 201, await started.get_data(as_text=True)
    answer = await started.get_json()
    assert answer["masked_phone"].endswith("34") and PHONE not in json.dumps(answer)
    join = answer["join_id"]
    texted = sms_code(storage, data_dir, PHONE)
    wrong = "000000" if texted != "000000" else "111111"
    refused = await post(client, peer, f"/np/join/{join}/code", {"sms_code": wrong})
    body = await refused.get_json()
    assert (refused.status_code, body["error"], body["params"]["left"]) == (
        401,
        "unauthenticated",
        4,
    )
    assert "Tries left: 4" in body["message"]
    linked = await post(client, peer, f"/np/join/{join}/code", {"sms_code": texted})
    assert linked.status_code == 200
    assert await linked.get_json() == {
        "join_id": join, "school_name": "École des Tests", "class_name": "CE1 A",
        "child_first_name": "Léa",
    }  # fmt: skip
    # the teacher sees them among the guardians to approve, and approves
    assert MEMBER in {c["member"] for c in cf.view(cf.teacher)["to_approve"]}
    cf.approve_all()
    accepted = storage.call(
        lambda: [json.loads(a.body) for a in store.FedActivity.select().where(store.FedActivity.type == "Accept")]
    )  # fmt: skip
    assert [(a["object"], a["target"]) for a in accepted] == [
        (B + "/np/joins/1", f"{PUBLIC_URL}/classes/{cf.class_id}")
    ]
    # what the guardian's node shows of the class comes with it
    info = accepted[0]["class"]
    assert info["child"]["id"].startswith(f"{PUBLIC_URL}/classes/{cf.class_id}/children/")
    assert info["name"] and info["teacher"] == cf.teacher.me and info["commentsEnabled"] is True
    # waiting for the delivery worker: the Accept, the class's log from its start, their key
    entries = len(cf.view(cf.teacher)["entries"])
    assert storage.call(store.backlog_of, 1) == 1 + entries + 1
    again = await post(client, peer, f"/np/join/{join}/code", {"sms_code": texted})
    assert again.status_code == 409


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({"code": "WRONG-CODE-1234"}, 401, "unauthenticated"),
        ({"actor": "https://ecole-c.example/users/42"}, 400, "invalid"),
        ({"actor": B + "/people/42"}, 400, "invalid"),
        ({"follow": "https://ecole-c.example/np/joins/1"}, 400, "invalid"),
        ({"sign_pk": "not-a-key"}, 400, "invalid"),
    ],
)
async def test_bad_join_requests_are_refused_and_text_nothing(
    client: Client, storage: Storage, setup: tuple[ClassFeed, FakePeer, str],
    change: dict[str, str], status: int, error: str,
) -> None:  # fmt: skip
    _, peer, code = setup
    response = await post(client, peer, "/np/join", {**join_body(code), **change})
    assert (response.status_code, (await response.get_json())["error"]) == (status, error)
    assert texts_to(storage, PHONE) == []


async def test_a_used_code_cannot_join_twice(
    client: Client, storage: Storage, data_dir: Path, setup: tuple[ClassFeed, FakePeer, str]
) -> None:
    _, peer, code = setup
    join = (await (await post(client, peer, "/np/join", join_body(code))).get_json())["join_id"]
    await post(
        client, peer, f"/np/join/{join}/code", {"sms_code": sms_code(storage, data_dir, PHONE)}
    )
    second = await post(client, peer, "/np/join", join_body(code, follow=B + "/np/joins/2"))
    assert (second.status_code, (await second.get_json())["error"]) == (410, "gone")


async def test_only_a_peer_can_ask(client: Client, setup: tuple[ClassFeed, FakePeer, str]) -> None:
    _, _, code = setup
    stranger = FakePeer(origin="https://ecole-z.example")
    response = await post(client, stranger, "/np/join", join_body(code))
    assert (response.status_code, (await response.get_json())["error"]) == (403, "not_peer")


def activities_of(storage: Storage, kind: str) -> list[dict[str, Any]]:
    model = store.FedActivity
    return storage.call(
        lambda: [json.loads(a.body) for a in model.select().where(model.type == kind)]
    )


async def link_remote_guardian(
    client: Client, storage: Storage, data_dir: Path, peer: FakePeer, code: str
) -> None:
    join = (await (await post(client, peer, "/np/join", join_body(code))).get_json())["join_id"]
    texted = sms_code(storage, data_dir, PHONE)
    assert (
        await post(client, peer, f"/np/join/{join}/code", {"sms_code": texted})
    ).status_code == 200


async def test_unlinked_before_approval_is_a_reject_after_it_a_remove(
    client: Client, storage: Storage, ctx: ServiceContext, data_dir: Path,
    setup: tuple[ClassFeed, FakePeer, str],
) -> None:  # fmt: skip
    cf, peer, code = setup
    await link_remote_guardian(client, storage, data_dir, peer, code)
    [invitation] = [
        g.invitation_id
        for c in storage.call(directory.class_roster, ctx, cf.teacher.actor, cf.class_id)
        for g in c.guardians
        if g.display_name == "Sam Durand"
    ]
    storage.call(directory.remove_guardian, ctx, cf.teacher.actor, invitation)
    [reject] = activities_of(storage, "Reject")
    assert reject["object"] == B + "/np/joins/1"
    assert activities_of(storage, "Remove") == []
    assert MEMBER not in {c["member"] for c in cf.view(cf.teacher)["to_approve"]}

    # a second request, approved, then removed: Remove on the class's stream
    slip = invite(storage, ctx, cf.teacher.actor, cf.guardians[0].child_id, PHONE, "Sam Durand")
    join = (
        await (
            await post(client, peer, "/np/join", join_body(slip.code, B + "/np/joins/2"))
        ).get_json()
    )["join_id"]
    await post(
        client, peer, f"/np/join/{join}/code", {"sms_code": sms_code(storage, data_dir, PHONE)}
    )
    cf.approve_all()
    [invitation] = [
        g.invitation_id
        for c in storage.call(directory.class_roster, ctx, cf.teacher.actor, cf.class_id)
        for g in c.guardians
        if g.display_name == "Sam Durand" and g.status != "revoked"
    ]
    storage.call(directory.remove_guardian, ctx, cf.teacher.actor, invitation)
    [remove] = activities_of(storage, "Remove")
    group = f"{PUBLIC_URL}/classes/{cf.class_id}"
    assert (remove["stream"], remove["object"], remove["target"], remove["follow"]) == (
        group,
        ACTOR,
        group + "#members",
        B + "/np/joins/2",
    )
    assert MEMBER in {c["member"] for c in cf.view(cf.teacher)["to_remove"]}


async def test_a_guardian_leaving_from_their_node_is_unlinked_here(
    client: Client, storage: Storage, data_dir: Path, setup: tuple[ClassFeed, FakePeer, str]
) -> None:
    cf, peer, code = setup
    await link_remote_guardian(client, storage, data_dir, peer, code)
    cf.approve_all()
    stream = f"{B}/peers/127.0.0.1:8000"
    undo = activity(
        peer, 1, type="Undo", stream=stream, to=[f"{PUBLIC_URL}/classes/{cf.class_id}"],
        object=B + "/np/joins/1", actor=ACTOR,
    )  # fmt: skip
    stranger = activity(
        peer, 2, type="Undo", stream=stream, to=[f"{PUBLIC_URL}/classes/{cf.class_id}"],
        object=B + "/np/joins/never", actor=ACTOR,
    )  # fmt: skip
    txn = txn_id()
    body = transaction(peer, txn, [undo, stranger], {stream: (0, 2)})
    results = (await (await put_transaction(client, peer, txn, body)).get_json())["results"]
    assert results[undo["id"]] == {}
    assert "not a request of yours" in results[stranger["id"]]["message"]
    # the teacher's page now asks to remove them from the class's log
    assert MEMBER in {c["member"] for c in cf.view(cf.teacher)["to_remove"]}


async def test_transactions_carry_the_peers_members_and_the_peer_can_list_them(
    app: Any, client: Client, storage: Storage, data_dir: Path,
    setup: tuple[ClassFeed, FakePeer, str],
) -> None:  # fmt: skip
    cf, peer, code = setup
    await link_remote_guardian(client, storage, data_dir, peer, code)
    cf.approve_all()  # writes the Accept for B
    batch = storage.call(delivery.next_batch, app.config["CARNET_CTX"], 1)
    assert batch is not None
    sent = json.loads(batch.body)
    group = f"{PUBLIC_URL}/classes/{cf.class_id}"
    assert sent["membership"] == [{
        "stream": group, "digest": membership_digest([ACTOR]),
        "url": f"{PUBLIC_URL}/np/streams/classes/{cf.class_id}/members",
    }]  # fmt: skip
    path = f"/np/streams/classes/{cf.class_id}/members"
    listed = await client.get(path, headers=signed_get(peer, path))
    page = await listed.get_json()
    # with what an Accept says of the class, for a node that lost its Accept
    child = {"id": f"{PUBLIC_URL}/classes/{cf.class_id}/children/{cf.guardians[0].child_id}",
             "name": "Léa"}  # fmt: skip
    assert page["members"] == [{"actor": ACTOR, "follow": B + "/np/joins/1", "child": child}]
    assert page["pending"] == [] and page["class"]["teacher"] == cf.teacher.me
    other = await client.get(
        "/np/streams/classes/999/members",
        headers=signed_get(peer, "/np/streams/classes/999/members"),
    )
    assert (other.status_code, (await other.get_json())["error"]) == (403, "not_member")


def signed_get(peer: FakePeer, path: str) -> dict[str, str]:
    return sign_request(
        method="GET", target_uri=PUBLIC_URL + path, body=None, signing_key=peer.keys["k1"],
        keyid=key_id(peer.origin, "k1"), created=int(time.time()),
    )  # fmt: skip


async def test_a_peer_sending_wrong_codes_is_slowed_down_not_the_family(
    client: Client, storage: Storage, ctx: ServiceContext, setup: tuple[ClassFeed, FakePeer, str]
) -> None:
    _, peer, code = setup
    for n in range(ctx.config.failures_per_ip_per_15min):
        wrong = await post(
            client, peer, "/np/join", join_body(f"WRONG-{n:04d}", B + f"/np/joins/w{n}")
        )
        assert wrong.status_code == 401
    limited = await post(client, peer, "/np/join", join_body(code, B + "/np/joins/ok"))
    assert (limited.status_code, (await limited.get_json())["error"]) == (429, "rate_limited")
    assert texts_to(storage, PHONE) == []
    # the family itself can still use the code on the class's own node (the limit is the peer's)
    start = storage.call(onboarding.start, ctx, PHONE, code, "192.0.2.7", "fr")
    assert start.phone_masked and len(texts_to(storage, PHONE)) == 1
