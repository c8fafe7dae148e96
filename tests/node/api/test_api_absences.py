"""Absence notes, post levels and digest settings over the JSON API: answers and refusals."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client

from node import refclient_groups as rc
from node.services import absences
from node.services.context import ServiceContext
from node.storage.db import Storage
from tests.absence_factories import body, sealed_note
from tests.factories import api_login, csrf
from tests.feed_factories import ClassFeed, make_class_feed

TEACHER = "dubois@school.test"
PARENT_0 = "+33639980000"
PARENT_1 = "+33639980001"


@pytest.fixture
def cf(storage: Storage, ctx: ServiceContext) -> ClassFeed:
    return make_class_feed(storage, ctx, families=2)


async def send(client: Client, method: str, path: str, data: Any = None) -> Any:
    headers = {"X-CSRF-Token": await csrf(client)}
    if data is None:
        return await client.open(path, method=method, headers=headers)
    return await client.open(path, method=method, json=data, headers=headers)


async def as_(app: Quart, login: str) -> Client:
    client = app.test_client()
    await api_login(client, login)
    return client


def day(cf: ClassFeed, offset: int) -> str:
    return (absences.today(cf.ctx) + dt.timedelta(days=offset)).isoformat()


def request_for(cf: ClassFeed, kind: str, first: str, last: str | None = None) -> dict[str, Any]:
    parent = cf.guardians[0]
    sealed = sealed_note(cf, parent, body(kind, first, last, text="Rendez-vous"))
    return {
        "message": sealed["message"], "keys": sealed["keys"], "child": parent.child_id,
        "kind": kind, "first_day": first, "last_day": last,
    }  # fmt: skip


async def test_report_list_see_and_withdraw_over_the_api(app: Quart, cf: ClassFeed) -> None:
    parent, teacher = await as_(app, PARENT_0), await as_(app, TEACHER)
    url = f"/api/v1/classes/{cf.class_id}/absences"
    tomorrow = day(cf, 1)
    response = await send(parent, "POST", url, request_for(cf, "absent", tomorrow))
    assert response.status_code == 201, await response.get_data()
    note_id = (await response.get_json())["id"]

    listed = await (await teacher.get(f"{url}?day={tomorrow}")).get_json()
    assert listed["day"] == tomorrow and [n["id"] for n in listed["notes"]] == [note_id]
    note = listed["notes"][0]
    assert note["child_name"] == "Léa" and note["kind"] == "absent"
    state, keys = cf.keys_of(cf.teacher)
    assert rc.decrypt(note, state, keys, cf.teacher.keys, cf.teacher.me)["text"] == "Rendez-vous"
    assert (await teacher.get(url)).status_code == 200  # today by default

    assert (await send(teacher, "POST", f"{url}/{note_id}/seen")).status_code == 200
    assert (await send(parent, "POST", f"{url}/{note_id}/seen")).status_code == 403
    mine = await (await parent.get(url)).get_json()
    assert mine["day"] is None and mine["notes"][0]["seen_at"] is not None

    other = await as_(app, PARENT_1)
    assert (await send(other, "DELETE", f"{url}/{note_id}")).status_code == 404
    assert (await send(parent, "DELETE", f"{url}/{note_id}")).status_code == 200
    assert (await (await teacher.get(f"{url}?day={tomorrow}")).get_json())["notes"] == []


async def test_a_note_for_another_child_or_by_the_teacher_is_forbidden(
    app: Quart, cf: ClassFeed
) -> None:
    url = f"/api/v1/classes/{cf.class_id}/absences"
    data = request_for(cf, "absent", day(cf, 1)) | {"child": cf.guardians[1].child_id}
    response = await send(await as_(app, PARENT_0), "POST", url, data)
    assert response.status_code == 403
    assert "your own child" in (await response.get_json())["error"]["message"]
    teacher = await as_(app, TEACHER)
    assert (
        await send(teacher, "POST", url, request_for(cf, "absent", day(cf, 1)))
    ).status_code == 403


@pytest.mark.parametrize(
    ("offset", "last", "kind", "field"),
    [(-8, None, "absent", "first_day"), (61, None, "absent", "first_day"),
     (1, 31, "absent", "last_day"), (2, 1, "absent", "last_day"), (1, 2, "late", "last_day"),
     (1, None, "ill", "kind")],
)  # fmt: skip
async def test_dates_out_of_range_are_refused_with_400(
    app: Quart, cf: ClassFeed, offset: int, last: int | None, kind: str, field: str
) -> None:
    data = request_for(cf, "absent", day(cf, offset), day(cf, last) if last else None)
    data["kind"] = kind
    response = await send(
        await as_(app, PARENT_0), "POST", f"/api/v1/classes/{cf.class_id}/absences", data
    )
    assert response.status_code == 400
    assert (await response.get_json())["error"]["field"] == field


@pytest.mark.parametrize(
    ("change", "field"),
    [({"child": "1"}, "child"), ({"first_day": 20260311}, "first_day"), ({"secret": 1}, "secret"),
     ({"message": "x"}, "message"), ({"first_day": "2026-13-01"}, "first_day")],
)  # fmt: skip
async def test_malformed_bodies_are_refused_with_400(
    app: Quart, cf: ClassFeed, change: dict[str, Any], field: str
) -> None:
    data = request_for(cf, "absent", day(cf, 1)) | change
    response = await send(
        await as_(app, PARENT_0), "POST", f"/api/v1/classes/{cf.class_id}/absences", data
    )
    assert response.status_code == 400
    assert (await response.get_json())["error"]["field"] == field


async def test_strangers_and_bad_days_in_the_list(app: Quart, cf: ClassFeed) -> None:
    url = f"/api/v1/classes/{cf.class_id}/absences"
    assert (await app.test_client().get(url)).status_code == 401
    teacher = await as_(app, TEACHER)
    assert (await teacher.get(f"{url}?day=lundi")).status_code == 400
    assert (await teacher.get(f"/api/v1/classes/{cf.class_id + 99}/absences")).status_code == 404


async def test_post_levels_over_the_api(app: Quart, cf: ClassFeed) -> None:
    teacher = await as_(app, TEACHER)
    state, keys = cf.keys_of(cf.teacher)
    url = f"/api/v1/classes/{cf.class_id}/posts"
    post = rc.encrypt(cf.teacher.keys, cf.teacher.me, state, keys, "post", {"text": "Grève"})
    response = await send(teacher, "POST", url, post | {"priority": "urgent"})
    assert response.status_code == 201
    bad = rc.encrypt(cf.teacher.keys, cf.teacher.me, state, keys, "post", {"text": "?"})
    refused = await send(teacher, "POST", url, bad | {"priority": "critical"})
    assert refused.status_code == 400
    assert (await refused.get_json())["error"]["field"] == "priority"
    page = await (await (await as_(app, PARENT_0)).get("/api/v1/feed")).get_json()
    assert [i["priority"] for i in page["items"]] == ["urgent"]


async def test_digest_settings_over_the_api(app: Quart, cf: ClassFeed) -> None:
    parent = await as_(app, PARENT_0)
    response = await send(
        parent, "PUT", "/api/v1/notifications/digest", {"mode": "digest", "digest_time": "18:30"}
    )
    assert response.status_code == 200
    settings = await (await parent.get("/api/v1/notifications/settings")).get_json()
    assert settings["digest_time"] == "18:30"
    refused = await send(
        parent, "PUT", "/api/v1/notifications/digest", {"mode": "digest", "digest_time": "soir"}
    )
    assert refused.status_code == 400
    back = await send(parent, "PUT", "/api/v1/notifications/digest", {"mode": "now"})
    assert (await back.get_json())["digest_time"] is None
