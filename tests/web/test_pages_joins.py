"""Joining a class at another school through the pages, both sides.

Home side: a guardian of this node, the other school played by pytest-httpx
(its answers to the signed /np/join requests) and FakePeer (its Accept).
Class side: FakePeer's parent joins a class here; the teacher's roster and
approvals name their school.
"""

from __future__ import annotations

import html
import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock
from quart.typing import TestClientProtocol as Client

from federation.httpsig import sign_request
from federation.keys import key_id
from node.e2e.encoding import b64url_encode
from node.e2e.keys import generate_account_keys
from node.services.context import ServiceContext
from node.storage import activities as activity_store
from node.storage.db import Storage
from tests.conftest import PUBLIC_URL
from tests.factories import api_login, csrf, invite, make_guardian, make_school, sms_code
from tests.federation.runtime.peer_factories import (
    B,
    FakePeer,
    activity,
    peered,
    put_transaction,
    transaction,
    txn_id,
)
from tests.feed_factories import make_class_feed

PHONE = "+33639980001"
JOIN = B + "/np/join"
CODE_URL = B + "/np/join/j1/code"


def text_of(page: str) -> str:
    """The page's text, tags removed and spaces collapsed, as a reader sees it."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def answer(status: int, body: dict[str, Any]) -> Any:
    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body)

    return respond


async def page(client: Client, path: str, status: int = 200) -> str:
    response = await client.get(path)
    body = await response.get_data(as_text=True)
    assert response.status_code == status, (path, body[:500])
    return body


@pytest.fixture
async def guardian(
    client: Client, storage: Storage, ctx: ServiceContext, httpx_mock: HTTPXMock
) -> tuple[str, FakePeer]:
    """A guardian of this node, logged in; École B is a confirmed peer of this school."""
    school = make_school(storage, ctx)
    peer = FakePeer()
    await peered(client, storage, ctx, httpx_mock, peer, school=False)
    slip = invite(storage, ctx, school.teacher, school.child_id, PHONE)
    make_guardian(storage, ctx, slip.code, PHONE)
    await api_login(client, PHONE)
    return await csrf(client), peer


async def start(client: Client, token: str, school: str = "ecole-b.example") -> Any:
    return await client.post(
        "/joins", form={"csrf_token": token, "school": school, "code": "ABCD-EFGH"}
    )


async def test_a_guardian_joins_a_class_at_another_school_step_by_step(
    client: Client, storage: Storage, httpx_mock: HTTPXMock, guardian: tuple[str, FakePeer]
) -> None:
    token, peer = guardian
    home = text_of(await page(client, "/home"))
    assert "Join a class at another school" in home and "Classes at other schools" not in home
    form_page = text_of(await page(client, "/joins"))
    assert "must be a partner of your school" in form_page and "My requests" not in form_page
    httpx_mock.add_callback(answer(201, {"join_id": "j1", "masked_phone": "•• •• 34"}), url=JOIN)
    started = await start(client, token)
    assert started.status_code == 302, await started.get_data(as_text=True)
    location = started.headers["Location"]
    assert re.fullmatch(r"/joins/\d+", location)
    step2 = text_of(await page(client, location))
    assert "Enter the code texted to you" in step2 and "•• •• 34" in step2
    assert "Waiting for the code texted to you" in step2
    # a new code
    httpx_mock.add_callback(
        answer(200, {"join_id": "j1", "masked_phone": "•• •• 34"}), url=B + "/np/join/j1/resend"
    )
    resent = await client.post(location + "/resend", form={"csrf_token": token})
    assert (resent.status_code, resent.headers["Location"]) == (302, location + "?resent=1")
    assert "A new code is on its way." in text_of(await page(client, location + "?resent=1"))
    assert "A new code is on its way." not in text_of(await page(client, location))
    # a wrong code: the form again, with the tries left
    httpx_mock.add_callback(
        answer(401, {"error": "unauthenticated", "message": "x", "params": {"left": 3}}),
        url=CODE_URL,
    )
    wrong = await client.post(location + "/code", form={"csrf_token": token, "sms_code": "000000"})
    assert wrong.status_code == 401
    wrong_page = await wrong.get_data(as_text=True)
    assert "Wrong code. Tries left: 3." in text_of(wrong_page)
    assert 'id="sms_code"' in wrong_page
    # the right one: waiting for the teacher
    httpx_mock.add_callback(
        answer(200, {"join_id": "j1", "school_name": "École B", "class_name": "CM2",
                     "child_first_name": "Noé"}),
        url=CODE_URL,
    )  # fmt: skip
    right = await client.post(location + "/code", form={"csrf_token": token, "sms_code": "123456"})
    assert (right.status_code, right.headers["Location"]) == (302, location)
    waiting = text_of(await page(client, location))
    assert "Waiting for the teacher of CM2 at École B to approve you (child: Noé)." in waiting
    assert 'id="sms_code"' not in await page(client, location)
    home = text_of(await page(client, "/home"))
    assert "Classes at other schools" in home
    assert "Class CM2 at École B (child: Noé) Waiting for the teacher" in home
    # the teacher approves over there: their node's Accept arrives on its stream for us
    sent = json.loads(httpx_mock.get_requests(url=JOIN)[0].content)
    stream = f"{B}/peers/127.0.0.1:8000"
    accept = activity(
        peer, 1, type="Accept", stream=stream, to=[sent["actor"]], object=sent["follow"],
        actor=B + "/classes/cm2", extra={"target": B + "/classes/cm2"},
    )  # fmt: skip
    txn = txn_id()
    await put_transaction(client, peer, txn, transaction(peer, txn, [accept], {stream: (0, 1)}))
    accepted = text_of(await page(client, location))
    assert "The teacher of CM2 at École B accepted you (child: Noé)." in accepted
    assert "not available yet" in accepted
    listed = text_of(await page(client, "/joins"))
    assert "Class CM2 at École B (child: Noé) Accepted" in listed
    # leaving: the page says so, and leaving twice is refused on the page
    assert "Leave this class" in accepted
    # the delivery worker may carry the Undo to École B while the test goes on
    httpx_mock.add_response(
        method="PUT", url=re.compile(re.escape(B + "/np/inbox/txn/") + ".+"), json={"results": {}},
        is_optional=True, is_reusable=True,
    )  # fmt: skip
    left = await client.post(location + "/leave", form={"csrf_token": token})
    assert (left.status_code, left.headers["Location"]) == (302, location)
    model = activity_store.FedActivity
    [undo] = storage.call(
        lambda: [json.loads(a.body) for a in model.select().where(model.type == "Undo")]
    )
    assert undo["object"] == sent["follow"]
    gone = text_of(await page(client, location))
    assert "You left this class." in gone and "Leave this class" not in gone
    again = await client.post(location + "/leave", form={"csrf_token": token})
    assert again.status_code == 409
    assert "You are not in this class." in text_of(await again.get_data(as_text=True))


async def test_join_errors_are_shown_on_the_form_with_what_was_typed(
    client: Client, httpx_mock: HTTPXMock, guardian: tuple[str, FakePeer]
) -> None:
    token, _ = guardian
    unknown = await start(client, token, "ecole-z.example")
    assert unknown.status_code == 400
    body = await unknown.get_data(as_text=True)
    assert "is not a partner of your school yet" in text_of(body)
    assert 'value="ecole-z.example"' in body and 'value="ABCD-EFGH"' in body
    httpx_mock.add_exception(httpx.ConnectError("refused"), url=JOIN)
    down = await start(client, token)
    assert down.status_code == 502
    down_page = await down.get_data(as_text=True)
    assert "could not be reached" in text_of(down_page)
    assert 'value="ecole-b.example"' in down_page
    httpx_mock.add_callback(answer(401, {"error": "unauthenticated", "message": "x"}), url=JOIN)
    bad_code = await start(client, token)
    assert bad_code.status_code == 401  # on the form: the code, not the login, is wrong
    assert "does not recognize this access code" in text_of(await bad_code.get_data(as_text=True))
    assert "My requests" not in text_of(await page(client, "/joins"))
    await page(client, "/joins/999", 404)


async def test_only_a_guardian_joins(
    client: Client, storage: Storage, ctx: ServiceContext, httpx_mock: HTTPXMock,
    guardian: tuple[str, FakePeer],
) -> None:  # fmt: skip
    await api_login(client, "admin@school.test")
    token = await csrf(client)
    await page(client, "/joins", 403)
    refused = await start(client, token)
    assert refused.status_code == 403
    assert httpx_mock.get_requests(url=JOIN) == []


async def test_the_teacher_sees_which_school_a_remote_parent_is_from(
    client: Client, storage: Storage, ctx: ServiceContext, data_dir: Path, httpx_mock: HTTPXMock
) -> None:
    cf = make_class_feed(storage, ctx, families=1)
    peer = FakePeer()
    await peered(client, storage, ctx, httpx_mock, peer, school=False)
    remote_phone = "+33639981234"
    slip = invite(
        storage, ctx, cf.teacher.actor, cf.guardians[0].child_id, remote_phone, "Sam Durand"
    )
    keys = generate_account_keys()

    async def signed(path: str, body: dict[str, Any]) -> Any:
        data = json.dumps(body).encode()
        headers = sign_request(
            method="POST", target_uri=PUBLIC_URL + path, body=data, signing_key=peer.keys["k1"],
            keyid=key_id(peer.origin, "k1"), created=int(time.time()),
        )  # fmt: skip
        return await client.post(path, data=data, headers=headers)

    await api_login(client, "dubois@school.test")
    before = text_of(await page(client, f"/classes/{cf.class_id}"))
    assert "Sam Durand" in before and "another school" not in before
    started = await signed("/np/join", {
        "follow": B + "/np/joins/1", "actor": B + "/users/42", "code": slip.code, "locale": "en",
        "sign_pk": b64url_encode(keys.sign_pk), "enc_pk": b64url_encode(keys.enc_pk),
    })  # fmt: skip
    join = (await started.get_json())["join_id"]
    code = sms_code(storage, data_dir, remote_phone)
    linked = await signed(f"/np/join/{join}/code", {"sms_code": code})
    assert linked.status_code == 200
    roster = await page(client, f"/classes/{cf.class_id}")
    row = re.search(r"<li>\s*<span class=\"name\">Sam Durand</span>(.*?)</li>", roster, re.S)
    assert row is not None
    assert "parent at École B, another school" in text_of(row[1])
    assert "Forgotten passphrase" not in text_of(row[1])  # they have no passphrase here
    local = re.search(r"<li>\s*<span class=\"name\">(?!Sam Durand)(.*?)</li>", roster, re.S)
    assert local is not None and "another school" not in text_of(local[1])
    to_approve = cf.view(cf.teacher)["to_approve"]
    assert {c["display_name"]: c["school"] for c in to_approve} == {"Sam Durand": "École B"}
    # the class's feed page, whose approvals panel lists them, gets the words to say it
    feed = await page(client, f"/classes/{cf.class_id}/feed")
    messages = re.search(
        r'<script type="application/json" id="feed-messages">(.*?)</script>', feed, re.S
    )
    assert messages is not None
    assert (
        json.loads(html.unescape(messages[1]))["remote_school"]
        == "parent at {school}, another school"
    )
