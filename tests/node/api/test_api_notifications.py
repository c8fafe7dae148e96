"""The JSON API of notifications: the push key, subscriptions, quiet hours."""

from __future__ import annotations

from quart import Quart

from node.services.context import ServiceContext
from node.storage.db import Storage
from tests.factories import api_login, csrf, make_school
from tests.push_factories import FakeBrowser

ENDPOINT = "https://updates.push.services.mozilla.com/wpush/v2/gAAAAABk"


async def test_push_key_is_the_nodes_vapid_key(
    app: Quart, storage: Storage, ctx: ServiceContext
) -> None:
    make_school(storage, ctx)
    client = app.test_client()
    assert (await client.get("/api/v1/push/key")).status_code == 401
    await api_login(client, "dubois@school.test")
    body = await (await client.get("/api/v1/push/key")).get_json()
    assert body == {"public_key": app.config["CARNET_KEYS"].vapid_public_key}


async def test_subscribe_list_and_unsubscribe(
    app: Quart, storage: Storage, ctx: ServiceContext
) -> None:
    make_school(storage, ctx)
    client = app.test_client()
    await api_login(client, "dubois@school.test")
    headers = {
        "X-CSRF-Token": await csrf(client),
        "User-Agent": "Mozilla/5.0 (Windows NT 10.0) Firefox/128.0",
    }
    browser = FakeBrowser(ENDPOINT)
    body = {"endpoint": ENDPOINT, "p256dh": browser.p256dh, "auth": browser.auth}

    no_token = await client.post("/api/v1/push/subscriptions", json=body)
    assert no_token.status_code == 403

    created = await client.post("/api/v1/push/subscriptions", json=body, headers=headers)
    assert created.status_code == 201, await created.get_data()
    view = await created.get_json()
    assert view["device"] == "Firefox · Windows" and set(view) == {
        "id",
        "device",
        "created_at",
        "last_success_at",
    }
    assert ENDPOINT not in str(view)  # the endpoint is a capability: never echoed
    listed = await (await client.get("/api/v1/push/subscriptions")).get_json()
    assert [s["id"] for s in listed] == [view["id"]]
    settings = await (await client.get("/api/v1/notifications/settings")).get_json()
    assert settings == {
        "quiet_start": None,
        "quiet_end": None,
        "timezone": "Europe/Paris",
        "devices": 1,
        "digest_time": None,
    }

    removed = await client.delete(
        "/api/v1/push/subscriptions", json={"endpoint": ENDPOINT}, headers=headers
    )
    assert await removed.get_json() == {"removed": True}
    again = await client.delete(
        "/api/v1/push/subscriptions", json={"endpoint": ENDPOINT}, headers=headers
    )
    assert await again.get_json() == {"removed": False}


async def test_bad_subscriptions_get_clear_errors(
    app: Quart, storage: Storage, ctx: ServiceContext
) -> None:
    make_school(storage, ctx)
    client = app.test_client()
    await api_login(client, "dubois@school.test")
    headers = {"X-CSRF-Token": await csrf(client), "Accept-Language": "fr"}
    browser = FakeBrowser(ENDPOINT)
    for body, field in [
        (
            {"endpoint": "http://evil.example/x", "p256dh": browser.p256dh, "auth": browser.auth},
            "endpoint",
        ),
        ({"endpoint": ENDPOINT, "p256dh": browser.p256dh[:40], "auth": browser.auth}, "p256dh"),
        ({"endpoint": ENDPOINT, "p256dh": browser.p256dh, "auth": "AAAA"}, "auth"),
        ({"endpoint": ENDPOINT, "p256dh": browser.p256dh}, "auth"),
        ({"endpoint": ENDPOINT, "p256dh": browser.p256dh, "auth": browser.auth, "x": 1}, "x"),
    ]:
        response = await client.post("/api/v1/push/subscriptions", json=body, headers=headers)
        assert response.status_code == 400
        error = (await response.get_json())["error"]
        assert error["field"] == field, body
    response = await client.post(
        "/api/v1/push/subscriptions",
        json={"endpoint": "https://10.0.0.1/x", "p256dh": browser.p256dh, "auth": browser.auth},
        headers=headers,
    )
    assert (await response.get_json())["error"]["message"].startswith(
        "Les notifications ont besoin"
    )


async def test_quiet_hours_through_the_api(
    app: Quart, storage: Storage, ctx: ServiceContext
) -> None:
    make_school(storage, ctx)
    client = app.test_client()
    await api_login(client, "dubois@school.test")
    headers = {"X-CSRF-Token": await csrf(client)}
    saved = await client.put(
        "/api/v1/notifications/settings",
        json={"quiet_start": "21:00", "quiet_end": "07:00"},
        headers=headers,
    )
    assert saved.status_code == 200
    assert (await saved.get_json())["quiet_start"] == "21:00"
    half = await client.put(
        "/api/v1/notifications/settings",
        json={"quiet_start": "21:00", "quiet_end": None},
        headers=headers,
    )
    assert half.status_code == 400
    assert (await half.get_json())["error"]["field"] == "quiet_end"
    cleared = await client.put(
        "/api/v1/notifications/settings",
        json={"quiet_start": None, "quiet_end": None},
        headers=headers,
    )
    assert (await cleared.get_json())["quiet_start"] is None


async def test_nobody_removes_someone_elses_device(
    app: Quart, storage: Storage, ctx: ServiceContext
) -> None:
    school = make_school(storage, ctx)
    view = FakeBrowser(ENDPOINT).subscribe(storage, ctx, school.teacher)
    admin = app.test_client()
    await api_login(admin, "admin@school.test")
    headers = {"X-CSRF-Token": await csrf(admin)}
    response = await admin.delete(f"/api/v1/push/subscriptions/{view.id}", headers=headers)
    assert response.status_code == 404
    assert await (await admin.get("/api/v1/push/subscriptions")).get_json() == []
    teacher = app.test_client()
    await api_login(teacher, "dubois@school.test")
    mine = await teacher.delete(
        f"/api/v1/push/subscriptions/{view.id}", headers={"X-CSRF-Token": await csrf(teacher)}
    )
    assert await mine.get_json() == {"removed": True}
