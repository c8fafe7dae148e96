"""Actionable posts over the JSON API: posting with a structure, answering, the status, refusals, the .ics."""

from __future__ import annotations

from typing import Any

import pytest
from quart import Quart

from node import refclient_groups as rc
from node.storage.db import Storage
from tests.action_factories import post_action, slip_signature, structure
from tests.feed_factories import ClassFeed, make_class_feed
from tests.node.api.test_api_feed import PARENT_0, PARENT_1, TEACHER, as_, send


@pytest.fixture
def cf(storage: Storage, ctx) -> ClassFeed:  # type: ignore[no-untyped-def]
    return make_class_feed(storage, ctx, families=2)


def answer_path(cf: ClassFeed, post: str) -> str:
    return f"/api/v1/classes/{cf.class_id}/posts/{post}/answer"


async def test_post_an_event_over_the_api_and_rsvp(app: Quart, cf: ClassFeed) -> None:
    teacher = await as_(app, TEACHER)
    state, keys = cf.keys_of(cf.teacher)
    body = rc.encrypt(
        cf.teacher.keys, cf.teacher.me, state, keys, "post",
        {"text": "", "attachments": [], "action": {"type": "event", "title": "Kermesse"}},
    )  # fmt: skip
    created = await send(
        teacher, "POST", f"/api/v1/classes/{cf.class_id}/posts",
        {**body, "action": structure("event", deadline="2026-12-11T12:00:00Z")},
    )  # fmt: skip
    assert created.status_code == 201, await created.get_data()
    post = (await created.get_json())["id"]

    parent = await as_(app, PARENT_0)
    page = await (await parent.get("/api/v1/feed")).get_json()
    assert page["items"][0]["action"]["type"] == "event"
    response = await send(
        parent,
        "POST",
        answer_path(cf, post),
        {"child": cf.guardians[0].child_id, "choice": ["yes"]},
    )
    assert response.status_code == 200, await response.get_data()
    assert (await response.get_json())["answers"][0]["choice"] == ["yes"]

    rows = await (
        await teacher.get(f"/api/v1/classes/{cf.class_id}/posts/{post}/answers")
    ).get_json()
    assert (rows["answered"], rows["total"]) == (1, 2)
    by_child = {f["child_id"]: f for f in rows["families"]}
    assert by_child[cf.guardians[0].child_id]["choice"] == ["yes"]
    assert by_child[cf.guardians[1].child_id]["choice"] is None
    reminded = await send(
        teacher, "POST", f"/api/v1/classes/{cf.class_id}/posts/{post}/answers/remind"
    )
    assert (await reminded.get_json())["reminded"] == 1
    again = await send(
        teacher, "POST", f"/api/v1/classes/{cf.class_id}/posts/{post}/answers/remind"
    )
    assert again.status_code == 429


async def test_a_bad_action_gets_a_400_naming_the_field(app: Quart, cf: ClassFeed) -> None:
    teacher = await as_(app, TEACHER)
    state, keys = cf.keys_of(cf.teacher)
    body = rc.encrypt(cf.teacher.keys, cf.teacher.me, state, keys, "post", {"text": "x", "attachments": []})  # fmt: skip
    for action, field in [("event", "action"), ({"type": "event"}, "starts_at")]:
        response = await send(
            teacher, "POST", f"/api/v1/classes/{cf.class_id}/posts", {**body, "action": action}
        )
        assert response.status_code == 400
        assert (await response.get_json())["error"]["field"] == field
    assert cf.feed_of(cf.teacher)["items"] == []


MINE, OTHER = "mine", "other"


@pytest.mark.parametrize(
    ("who", "payload", "status", "kind"),
    [
        ("teacher", {"child": MINE, "choice": ["a"]}, 403, "signup"),  # the teacher does not answer
        ("parent", {"child": OTHER, "choice": ["a"]}, 403, "signup"),  # a child not theirs
        ("parent", {"child": MINE, "choice": ["z"]}, 400, "signup"),  # unknown slot
        ("parent", {"child": MINE, "choice": "a"}, 400, "signup"),  # not a list
        ("parent", {"choice": ["a"]}, 400, "signup"),  # no child
        ("parent", {"child": MINE, "choice": ["a"], "extra": 1}, 400, "signup"),
        ("parent", {"child": MINE, "choice": ["agree"]}, 400, "slip"),  # no signature
        ("parent", {"child": MINE, "choice": ["yes"]}, 409, "past"),  # after the deadline
        ("parent", {"child": MINE, "choice": ["a"]}, 409, "full"),  # over capacity
    ],
)
async def test_refused_answers_get_the_right_status(
    app: Quart, cf: ClassFeed, who: str, payload: dict[str, Any], status: int, kind: str
) -> None:
    if kind == "past":
        post = post_action(cf, "event", deadline="2026-01-01T00:00:00Z")
    else:
        post = post_action(cf, "signup" if kind == "full" else kind)
    if kind == "full":  # the other family took the only place of slot a
        taken = await as_(app, PARENT_1)
        first = {"child": cf.guardians[1].child_id, "choice": ["a"]}
        assert (await send(taken, "POST", answer_path(cf, post), first)).status_code == 200
    client = await as_(app, TEACHER if who == "teacher" else PARENT_0)
    ids = {MINE: cf.guardians[0].child_id, OTHER: cf.guardians[1].child_id}
    body = {k: ids[v] if k == "child" else v for k, v in payload.items()}
    response = await send(client, "POST", answer_path(cf, post), body)
    assert response.status_code == status, await response.get_data()
    error = (await response.get_json())["error"]
    assert error["message"]
    if kind == "full":
        assert error["message"] == "This slot is full."


async def test_a_signed_slip_over_the_api(app: Quart, cf: ClassFeed) -> None:
    post = post_action(cf, "slip")
    parent = await as_(app, PARENT_0)
    signature, at = slip_signature(cf, cf.guardians[0], post, "agree")
    body = {
        "child": cf.guardians[0].child_id,
        "choice": ["agree"],
        "signature": signature,
        "at": at,
    }
    response = await send(parent, "POST", answer_path(cf, post), body)
    assert response.status_code == 200, await response.get_data()
    forged = {**body, "choice": ["decline"]}
    refused = await send(parent, "POST", answer_path(cf, post), forged)
    assert refused.status_code == 400
    assert (await refused.get_json())["error"]["field"] == "signature"


async def test_only_the_teacher_gets_the_answers(app: Quart, cf: ClassFeed) -> None:
    post = post_action(cf, "poll")
    parent = await as_(app, PARENT_0)
    response = await parent.get(f"/api/v1/classes/{cf.class_id}/posts/{post}/answers")
    assert response.status_code == 403
    stranger = app.test_client()
    response = await stranger.get(f"/api/v1/classes/{cf.class_id}/posts/{post}/answers")
    assert response.status_code == 401


async def test_the_calendar_link_and_the_ics_route(app: Quart, cf: ClassFeed) -> None:
    post_action(cf, "event")
    parent = await as_(app, PARENT_0)
    before = await (await parent.get("/api/v1/account/calendar")).get_json()
    assert before == {"url": None, "created_at": None}
    made = await send(parent, "POST", "/api/v1/account/calendar", {})
    assert made.status_code == 201
    url = (await made.get_json())["url"]
    path = url.split("://", 1)[1].split("/", 1)[1]
    anonymous = app.test_client()  # a calendar app has no session: the link is the key
    response = await anonymous.get(f"/{path}")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/calendar")
    assert "no-store" in response.headers["Cache-Control"]
    text = (await response.get_data()).decode()
    assert "BEGIN:VEVENT\r\n" in text
    assert (await anonymous.get("/calendar/" + "A" * 43 + ".ics")).status_code == 404
    teacher = await as_(app, TEACHER)
    assert (await send(teacher, "POST", "/api/v1/account/calendar", {})).status_code == 403


async def test_the_operations_are_in_the_openapi_document(app: Quart) -> None:
    doc = await (await app.test_client().get("/api/v1/openapi.json")).get_json()
    paths = {p.removeprefix("/api/v1"): v for p, v in doc["paths"].items()}
    assert "post" in paths["/classes/{class_id}/posts/{message_id}/answer"]
    assert "get" in paths["/classes/{class_id}/posts/{message_id}/answers"]
    assert "post" in paths["/account/calendar"]
