"""A person sees their own sessions and ends them; never anyone else's."""

from __future__ import annotations

from quart import Quart

from node.services.context import ServiceContext
from node.storage.db import Storage
from tests.factories import api_login, csrf, make_school


async def test_list_and_end_own_sessions(app: Quart, storage: Storage, ctx: ServiceContext) -> None:
    make_school(storage, ctx)
    phone = app.test_client()
    laptop = app.test_client()
    await api_login(phone, "dubois@school.test")
    await api_login(laptop, "dubois@school.test")

    listed = await (await phone.get("/api/v1/me/sessions", headers={"User-Agent": "x"})).get_json()
    # The factory's setup session plus the two logins.
    assert len(listed) == 3
    assert sum(1 for s in listed if s["current"]) == 1
    others = [s for s in listed if not s["current"]]

    token = await csrf(phone)
    ended = await phone.post("/api/v1/me/sessions/end-others", headers={"X-CSRF-Token": token})
    assert (await ended.get_json()) == {"ended": len(others)}
    assert (await laptop.get("/api/v1/me")).status_code == 401
    assert (await phone.get("/api/v1/me")).status_code == 200


async def test_cannot_end_someone_elses_session(
    app: Quart, storage: Storage, ctx: ServiceContext
) -> None:
    make_school(storage, ctx)
    admin = app.test_client()
    teacher = app.test_client()
    await api_login(admin, "admin@school.test")
    await api_login(teacher, "dubois@school.test")
    teacher_sessions = await (await teacher.get("/api/v1/me/sessions")).get_json()
    target = next(s["id"] for s in teacher_sessions if s["current"])
    token = await csrf(admin)
    response = await admin.delete(f"/api/v1/me/sessions/{target}", headers={"X-CSRF-Token": token})
    assert response.status_code == 404
    assert (await teacher.get("/api/v1/me")).status_code == 200


async def test_account_page_lists_devices_and_logs_one_out(
    app: Quart, storage: Storage, ctx: ServiceContext
) -> None:
    make_school(storage, ctx)
    browser = app.test_client()
    other = app.test_client()
    await api_login(browser, "dubois@school.test")
    await other.get("/api/v1/session")
    await api_login(other, "dubois@school.test")
    page = await browser.get("/account")
    html = (await page.get_data()).decode()
    assert page.status_code == 200
    assert "This device" in html and "dubois@school.test" not in html
    sessions = await (await browser.get("/api/v1/me/sessions")).get_json()
    victim = next(s["id"] for s in sessions if not s["current"])
    token = await csrf(browser)
    ended = await browser.post(f"/account/sessions/{victim}/end", form={"csrf_token": token})
    assert ended.status_code == 302
    remaining = {s["id"] for s in await (await browser.get("/api/v1/me/sessions")).get_json()}
    assert victim not in remaining


async def test_logging_in_as_someone_else_ends_the_previous_session(
    app: Quart, storage: Storage, ctx: ServiceContext
) -> None:
    make_school(storage, ctx)
    shared = app.test_client()
    await api_login(shared, "admin@school.test")
    admin_sessions = await (await shared.get("/api/v1/me/sessions")).get_json()
    admin_current = next(s["id"] for s in admin_sessions if s["current"])
    await api_login(shared, "dubois@school.test")
    other = app.test_client()
    await api_login(other, "admin@school.test")
    remaining = {s["id"] for s in await (await other.get("/api/v1/me/sessions")).get_json()}
    assert admin_current not in remaining
