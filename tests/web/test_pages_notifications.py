"""My account → Notifications, the service worker, and live updates on pages."""

from __future__ import annotations

from quart import Quart

from node.services import notifications
from node.services.context import ServiceContext
from node.storage.db import Storage
from tests.factories import api_login, csrf, make_school
from tests.push_factories import FakeBrowser


async def test_account_page_has_the_notifications_section(
    app: Quart, storage: Storage, ctx: ServiceContext
) -> None:
    school = make_school(storage, ctx)
    FakeBrowser("https://fcm.googleapis.com/fcm/send/x").subscribe(storage, ctx, school.teacher)
    browser = app.test_client()
    await api_login(browser, "dubois@school.test")
    html = (await (await browser.get("/account")).get_data()).decode()
    assert 'id="notifications"' in html
    assert f'data-vapid-key="{app.config["CARNET_KEYS"].vapid_public_key}"' in html
    assert "Turn on notifications on this device" in html
    assert "Notifications are on for 1 device" in html
    assert "/static/js/pages/notifications.js" in html
    assert "fcm.googleapis.com" not in html  # endpoints stay on the node
    french = (
        await (await browser.get("/account", headers={"Accept-Language": "fr"})).get_data()
    ).decode()
    assert "Heures calmes" in french and "Europe/Paris" in french


async def test_quiet_hours_form_saves_and_explains_mistakes(
    app: Quart, storage: Storage, ctx: ServiceContext
) -> None:
    school = make_school(storage, ctx)
    browser = app.test_client()
    await api_login(browser, "dubois@school.test")
    token = await csrf(browser)
    saved = await browser.post(
        "/account/notifications/quiet-hours",
        form={"csrf_token": token, "quiet_start": "21:30", "quiet_end": "07:00"},
    )
    assert saved.status_code == 302 and saved.headers["Location"] == "/account#notifications"
    settings = storage.call(notifications.get_settings, ctx, school.teacher)
    assert (settings.quiet_start, settings.quiet_end) == ("21:30", "07:00")
    page = (await (await browser.get("/account")).get_data()).decode()
    assert 'value="21:30"' in page and "No quiet hours" in page

    wrong = await browser.post(
        "/account/notifications/quiet-hours",
        form={"csrf_token": token, "quiet_start": "21:30", "quiet_end": ""},
    )
    assert wrong.status_code == 400
    html = (await wrong.get_data()).decode()
    assert "Give both the start and the end of quiet hours, or neither." in html
    assert 'value="21:30"' in html  # what was typed stays

    cleared = await browser.post(
        "/account/notifications/quiet-hours",
        form={"csrf_token": token, "quiet_start": "21:30", "quiet_end": "07:00", "clear": "1"},
    )
    assert cleared.status_code == 302
    assert storage.call(notifications.get_settings, ctx, school.teacher).quiet_start is None


async def test_a_device_can_be_turned_off_from_the_list(
    app: Quart, storage: Storage, ctx: ServiceContext
) -> None:
    school = make_school(storage, ctx)
    view = FakeBrowser("https://fcm.googleapis.com/fcm/send/x").subscribe(
        storage, ctx, school.teacher
    )
    browser = app.test_client()
    await api_login(browser, "dubois@school.test")
    token = await csrf(browser)
    response = await browser.post(
        f"/account/notifications/devices/{view.id}/remove", form={"csrf_token": token}
    )
    assert response.status_code == 302
    assert storage.call(notifications.my_subscriptions, ctx, school.teacher) == []


async def test_service_worker_is_served_from_the_root(app: Quart) -> None:
    client = app.test_client()
    response = await client.get("/sw.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert response.headers["Cache-Control"] == "no-cache"
    assert "worker-src 'self'" in response.headers["Content-Security-Policy"]
    body = (await response.get_data()).decode()
    assert "showNotification" in body and "notificationclick" in body
    manifest = await client.get("/static/manifest.webmanifest")
    assert manifest.status_code == 200
    assert (await manifest.get_json())["display"] == "standalone"


async def test_live_updates_load_only_for_logged_in_people(
    app: Quart, storage: Storage, ctx: ServiceContext
) -> None:
    make_school(storage, ctx)
    browser = app.test_client()
    login_page = (await (await browser.get("/login")).get_data()).decode()
    assert "/static/js/live.js" not in login_page
    await api_login(browser, "dubois@school.test")
    page = (await (await browser.get("/account")).get_data()).decode()
    assert '<script type="module" src="/static/js/live.js"></script>' in page
    assert '"live_post": "New post"' in page
