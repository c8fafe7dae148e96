"""The whole onboarding through the JSON API: admin → teacher → class → guardian → home."""

from __future__ import annotations

from quart.typing import TestClientProtocol as Client

from node.services.context import ServiceContext
from node.storage.db import Storage
from tests.factories import api_login, csrf, invite, make_guardian, make_school


async def test_guardian_sees_own_child_after_first_login(
    client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    school = make_school(storage, ctx)
    slip = invite(storage, ctx, school.teacher, school.child_id)
    make_guardian(storage, ctx, slip.code)
    await api_login(client, "06 39 98 00 01")
    response = await client.get("/api/v1/me/children")
    assert response.status_code == 200
    children = await response.get_json()
    assert [c["first_name"] for c in children] == ["Léa"]
    assert children[0]["class_name"] == "CE1 A"


async def test_post_without_csrf_token_is_refused(client: Client) -> None:
    await csrf(client)
    response = await client.post("/api/v1/auth/prelogin", json={"login": "a@b.test"})
    assert response.status_code == 403
    body = await response.get_json()
    assert "another site" in body["error"]["message"] or "expired" in body["error"]["message"]
