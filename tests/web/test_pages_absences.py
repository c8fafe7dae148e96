"""The absence notes page, its links, and the daily digest setting on the account page."""

from __future__ import annotations

from quart import Quart
from quart.typing import TestClientProtocol as Client

from node.services import notifications
from node.services.context import ServiceContext
from node.storage.db import Storage
from tests.factories import api_login, csrf, invite, make_child, make_class, make_guardian
from tests.feed_factories import ClassFeed, make_class_feed

PARENT_0 = "+33639980000"


async def page(client: Client, path: str, **kw: object) -> tuple[int, str]:
    response = await client.get(path, **kw)  # type: ignore[arg-type]
    return response.status_code, (await response.get_data()).decode()


async def as_(app: Quart, login: str) -> Client:
    client = app.test_client()
    await api_login(client, login)
    return client


async def test_the_teacher_and_a_guardian_get_the_page_strangers_do_not(
    app: Quart, storage: Storage, ctx: ServiceContext
) -> None:
    cf = make_class_feed(storage, ctx, families=1)
    url = f"/classes/{cf.class_id}/absences"
    status, html = await page(await as_(app, "dubois@school.test"), url)
    assert status == 200 and 'data-mode="teacher"' in html and "Absence notes for today" in html
    assert "/static/js/pages/absences.js" in html

    parent = await as_(app, PARENT_0)
    status, html = await page(parent, f"{url}?child={cf.guardians[0].child_id}")
    assert status == 200 and 'data-mode="guardian"' in html
    assert f'data-child-id="{cf.guardians[0].child_id}"' in html
    assert "Report an absence or a lateness" in html
    _, home = await page(parent, "/home")
    assert f'href="{url}?child={cf.guardians[0].child_id}"' in home
    status, french = await page(parent, url, headers={"Accept-Language": "fr"})
    assert "Signaler une absence ou un retard" in french and "Motif (facultatif)" in french

    other = make_class(storage, ctx, cf.teacher.actor, "CM2 B")
    kid = make_child(storage, ctx, cf.teacher.actor, other.id, "Tom")
    slip = invite(storage, ctx, cf.teacher.actor, kid.id, phone="+33639987777")
    make_guardian(storage, ctx, slip.code, "+33639987777")
    status, _ = await page(await as_(app, "+33639987777"), url)
    assert status == 404
    status, _ = await page(app.test_client(), url)
    assert status in (302, 401)


async def test_the_teachers_class_page_shows_todays_notes(
    app: Quart, storage: Storage, ctx: ServiceContext
) -> None:
    cf: ClassFeed = make_class_feed(storage, ctx, families=1)
    status, html = await page(await as_(app, "dubois@school.test"), f"/classes/{cf.class_id}")
    assert status == 200 and 'id="absences"' in html and "Absence notes for today" in html


async def test_the_digest_form_saves_and_explains_mistakes(
    app: Quart, storage: Storage, ctx: ServiceContext
) -> None:
    cf = make_class_feed(storage, ctx, families=1)
    parent = await as_(app, PARENT_0)
    _, html = await page(parent, "/account")
    assert "Information posts" in html and 'value="18:00"' in html
    token = await csrf(parent)
    saved = await parent.post(
        "/account/notifications/digest",
        form={"csrf_token": token, "mode": "digest", "digest_time": "19:15"},
    )
    assert saved.status_code == 302 and saved.headers["Location"] == "/account#notifications"
    settings = storage.call(notifications.get_settings, ctx, cf.guardians[0].actor)
    assert settings.digest_time == "19:15"
    wrong = await parent.post(
        "/account/notifications/digest",
        form={"csrf_token": token, "mode": "digest", "digest_time": "soir"},
    )
    assert wrong.status_code == 400
    assert "Enter a time like 18:00." in (await wrong.get_data()).decode()
    _, teacher_page = await page(await as_(app, "dubois@school.test"), "/account")
    assert "Information posts" not in teacher_page  # a parent's choice
