"""A class's conversations over the JSON API: a carpool group end to end, and clear refusals."""

from __future__ import annotations

from typing import Any

import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client

from node import refclient_groups as rc
from node.storage.db import Storage
from tests.chat_factories import make_chat_class
from tests.factories import api_login, csrf
from tests.feed_factories import ClassFeed

TEACHER = "dubois@school.test"
PARENTS = ["+33639980000", "+33639980001", "+33639980002"]


@pytest.fixture
def cf(storage: Storage, ctx) -> ClassFeed:  # type: ignore[no-untyped-def]
    return make_chat_class(storage, ctx, families=3, chat="off")


async def as_(app: Quart, login: str) -> Client:
    client = app.test_client()
    await api_login(client, login)
    return client


async def send(client: Client, method: str, path: str, body: Any = None) -> Any:
    headers = {"X-CSRF-Token": await csrf(client)}
    return await client.open(path, method=method, json=body, headers=headers)


async def _encrypt(client: Client, cf: ClassFeed, i: int, kind: str, body: Any, to: list[str], parent: str | None = None) -> Any:  # fmt: skip
    view = await (await client.get(f"/api/v1/classes/{cf.class_id}/group")).get_json()
    state, keys = rc.open_epoch_keys(view, cf.guardians[i].keys)
    return rc.encrypt(
        cf.guardians[i].keys, view["me"], state, keys, kind, body, parent=parent, to=to
    )


async def test_two_parents_organize_a_carpool_and_a_third_sees_nothing(
    app: Quart, cf: ClassFeed
) -> None:
    base = f"/api/v1/classes/{cf.class_id}"
    teacher = await as_(app, TEACHER)
    p0, p1, p2 = [await as_(app, phone) for phone in PARENTS]
    g0, g1, _ = cf.guardians

    refused = await send(p0, "POST", f"{base}/chat/conduct")
    assert refused.status_code == 403
    assert "not opened parent chat" in (await refused.get_json())["error"]["message"]
    response = await send(teacher, "PUT", f"{base}/chat/settings", {"parent_chat": "open"})
    assert response.status_code == 200, await response.get_data()
    assert (await response.get_json())["settings"]["parent_chat"] == "open"

    for client in (p0, p1):
        assert (await send(client, "POST", f"{base}/chat/conduct")).status_code == 200
    to = sorted([g0.me, g1.me])
    opening = await _encrypt(p0, cf, 0, "conversation", {"title": "Covoiturage"}, to)
    response = await send(
        p0, "POST", f"{base}/conversations", {"kind": "group", "members": [g1.me], **opening}
    )
    assert response.status_code == 201, await response.get_data()
    group = (await response.get_json())["id"]

    message = await _encrypt(p1, cf, 1, "chat", {"text": "Je conduis mardi"}, to, parent=group)
    response = await send(p1, "POST", f"{base}/conversations/{group}/messages", message)
    assert response.status_code == 201, await response.get_data()

    page = await (await p0.get(f"{base}/conversations/{group}")).get_json()
    view = await (await p0.get(f"{base}/group")).get_json()
    state, keys = rc.open_epoch_keys(view, g0.keys)
    [item] = page["items"]
    assert rc.decrypt(item, state, keys, g0.keys, g0.me) == {"text": "Je conduis mardi"}
    assert item["author_name"] == "Parent 1" and page["reply_to"] == to

    assert (await (await p2.get(f"{base}/chat")).get_json())["conversations"] == []
    assert (await p2.get(f"{base}/conversations/{group}")).status_code == 404
    # the teacher is not in it either
    assert (await teacher.get(f"{base}/conversations/{group}")).status_code == 404


async def test_bad_requests_get_clear_errors(app: Quart, cf: ClassFeed) -> None:
    base = f"/api/v1/classes/{cf.class_id}"
    teacher = await as_(app, TEACHER)
    p0 = await as_(app, PARENTS[0])
    response = await send(teacher, "PUT", f"{base}/chat/settings", {"parent_chat": "maybe"})
    assert response.status_code == 400
    assert "off, open or closed" in (await response.get_json())["error"]["message"]
    assert (
        await send(p0, "PUT", f"{base}/chat/settings", {"parent_chat": "open"})
    ).status_code == 403
    await send(teacher, "PUT", f"{base}/chat/settings", {"parent_chat": "open"})
    await send(p0, "POST", f"{base}/chat/conduct")
    response = await send(
        p0, "POST", f"{base}/conversations", {"kind": "party", "message": {}, "keys": []}
    )
    assert response.status_code == 400
    response = await send(p0, "POST", f"{base}/conversations", {"kind": "room"})
    assert response.status_code == 400
    response = await send(
        p0, "POST", f"{base}/conversations", {"kind": "room", "message": {"header": {}}, "keys": []}
    )
    assert response.status_code == 400
    assert (await p0.get(f"{base}/conversations/AAAAAAAAAAAAAAAAAAAAAA")).status_code == 404
    assert (
        await p0.get(f"{base}/conversations/AAAAAAAAAAAAAAAAAAAAAA?before=x")
    ).status_code == 400
    assert (await p0.get(f"{base}/chat/reports")).status_code == 403
    response = await send(p0, "PUT", f"{base}/chat/blocks", {"member": "nobody@x", "blocked": True})
    assert response.status_code == 400
