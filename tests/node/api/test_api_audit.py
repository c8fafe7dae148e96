"""Issue 8 over the JSON API: the audit log (admins only) and a guardian's erasure."""

from __future__ import annotations

from typing import Any

from quart import Quart
from quart.typing import TestClientProtocol as Client

from node.storage.db import Storage
from tests.factories import api_login, csrf
from tests.feed_factories import make_class_feed

PARENT = "+33639980000"


async def as_(app: Quart, login: str) -> Client:
    client = app.test_client()
    await api_login(client, login)
    return client


async def erase(client: Client, body: Any) -> Any:
    headers = {"X-CSRF-Token": await csrf(client)}
    return await client.post("/api/v1/me/erasure", json=body, headers=headers)


async def test_only_admins_read_the_audit_log(app: Quart, storage: Storage, ctx: Any) -> None:
    make_class_feed(storage, ctx, families=1)
    anonymous = app.test_client()
    assert (await anonymous.get("/api/v1/admin/audit")).status_code == 401
    # a teacher's refusal is the service's (tests/node/services/test_audit_service.py)
    response = await (await as_(app, PARENT)).get("/api/v1/admin/audit")
    assert response.status_code == 403
    admin = await as_(app, "admin@school.test")
    response = await admin.get("/api/v1/admin/audit?action=login")
    assert response.status_code == 200
    page = await response.get_json()
    assert page["total"] >= 3 and {e["action"] for e in page["events"]} == {"login"}
    assert all(len(e["target"]) == 16 for e in page["events"])
    bad = await admin.get("/api/v1/admin/audit?action=nope")
    assert bad.status_code == 400
    assert (await bad.get_json())["error"]["field"] == "action"


async def test_a_guardian_erases_their_account_over_the_api(
    app: Quart, storage: Storage, ctx: Any
) -> None:
    make_class_feed(storage, ctx, families=1)
    admin = await as_(app, "admin@school.test")  # staff: the school's accounts
    assert (await erase(admin, {"confirm": "DELETE"})).status_code == 403
    assert (await admin.get("/api/v1/me")).status_code == 200
    parent = await as_(app, PARENT)
    refused = await erase(parent, {"confirm": "oui"})
    assert refused.status_code == 400
    assert (await refused.get_json())["error"]["field"] == "confirm"
    assert (await erase(parent, {"confirm": "DELETE", "account_id": 1})).status_code == 400
    assert (await parent.get("/api/v1/me")).status_code == 200  # nothing happened yet
    done = await erase(parent, {"confirm": "supprimer"})
    assert done.status_code == 200, await done.get_data()
    assert (await done.get_json())["erased"] is True
    assert (await parent.get("/api/v1/me")).status_code == 401
