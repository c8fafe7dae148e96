"""The export over the JSON API: a guardian's own data, 401 anonymous, 403 staff, clear refusals."""

from __future__ import annotations

import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client

from node.services.context import ServiceContext
from node.storage.db import Storage
from tests.factories import api_login
from tests.feed_factories import ClassFeed, make_class_feed

PARENT_0 = "+33639980000"


@pytest.fixture
def cf(storage: Storage, ctx: ServiceContext) -> ClassFeed:
    return make_class_feed(storage, ctx, families=2)


async def as_(app: Quart, login: str) -> Client:
    client = app.test_client()
    await api_login(client, login)
    return client


async def test_a_guardian_exports_their_own_data_and_pages_the_posts(
    app: Quart, cf: ClassFeed
) -> None:
    post = cf.post({"text": "Bonjour", "attachments": []})
    other = cf.post(
        {"text": "Pour Enfant1", "attachments": []}, children=[cf.guardians[1].child_id]
    )
    comment = cf.reply(cf.guardians[0], post, "comment", {"text": "Merci"})
    parent = await as_(app, PARENT_0)
    response = await parent.get("/api/v1/me/export")
    assert response.status_code == 200
    data = await response.get_json()
    assert data["profile"]["phone"] == PARENT_0 and data["profile"]["locale"] == "en"
    assert [c["first_name"] for c in data["children"]] == ["Léa"]
    assert [c["id"] for c in data["classes"]] == [cf.class_id]
    assert len(data["sessions"]) == 2 and sum(s["current"] for s in data["sessions"]) == 1
    assert "+33639980001" not in str(data)

    page = await (await parent.get("/api/v1/me/export/posts")).get_json()
    assert [i["id"] for i in page["items"]] == [post] and other not in str(page)
    assert [r["id"] for r in page["items"][0]["replies"]] == [comment]
    assert page["items"][0]["key"] is None and page["items"][0]["message"]["header"]["epoch"] == 0
    older = await parent.get(f"/api/v1/me/export/posts?before={page['next_before'] or 1}")
    assert older.status_code == 200 and (await older.get_json())["items"] == []


async def test_bad_cursors_and_unknown_conversations_are_refused(app: Quart, cf: ClassFeed) -> None:
    parent = await as_(app, PARENT_0)
    response = await parent.get("/api/v1/me/export/posts?before=soon")
    assert response.status_code == 400
    assert (await response.get_json())["error"]["field"] == "before"
    response = await parent.get(
        f"/api/v1/me/export/conversations/{cf.class_id}/AAAAAAAAAAAAAAAAAAAAAA"
    )
    assert response.status_code == 404


async def test_anonymous_401_and_staff_403(app: Quart, cf: ClassFeed) -> None:
    paths = [
        "/api/v1/me/export",
        "/api/v1/me/export/posts",
        f"/api/v1/me/export/conversations/{cf.class_id}/AAAAAAAAAAAAAAAAAAAAAA",
    ]
    for path in paths:
        assert (await app.test_client().get(path)).status_code == 401
    for login in ("dubois@school.test", "admin@school.test"):
        staff = await as_(app, login)
        for path in paths:
            response = await staff.get(path)
            assert response.status_code == 403
            assert (
                "staff records belong to the school"
                in (await response.get_json())["error"]["message"]
            )


async def test_the_export_is_in_the_openapi_document(app: Quart) -> None:
    doc = await (await app.test_client().get("/api/v1/openapi.json")).get_json()
    assert {"/api/v1/me/export", "/api/v1/me/export/posts"} <= set(doc["paths"])
    assert "/api/v1/me/export/conversations/{class_id}/{conversation_id}" in doc["paths"]
