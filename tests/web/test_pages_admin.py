"""The school admin's page: staff list, new teachers and their setup links, disabling."""

from __future__ import annotations

import html
import re

from quart import Quart
from quart.typing import TestClientProtocol as Client

from node.services import accounts
from node.services.context import ServiceContext
from node.storage.db import Storage
from tests.factories import api_login as login
from tests.factories import csrf, make_school


async def admin_page(client: Client) -> tuple[str, str]:
    response = await client.get("/admin")
    assert response.status_code == 200
    text = await response.get_data(as_text=True)
    match = re.search(
        r'<form method="post" action="/admin/staff".*?name="csrf_token" value="([0-9a-f]{64})"',
        text,
        re.S,
    )
    assert match is not None
    return text, match[1]


def staff_logins(storage: Storage, ctx: ServiceContext) -> list[tuple[str, str]]:
    views = storage.call(accounts.list_staff, ctx, None)
    return sorted((v.display_name, v.status) for v in views)


async def test_admin_creates_a_teacher_and_sees_the_setup_link(
    client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    make_school(storage, ctx)
    await login(client, "admin@school.test")
    text, token = await admin_page(client)
    assert "M. Dubois" in text and "d•••@s•••" in text
    response = await client.post(
        "/admin/staff",
        form={
            "csrf_token": token,
            "display_name": "Mme Bernard",
            "email": "Bernard@School.test",
            "role": "teacher",
        },
    )
    assert response.status_code == 200
    page = await response.get_data(as_text=True)
    match = re.search(r'<code id="setup-url">([^<]+)</code>', page)
    assert match is not None
    url = html.unescape(match[1])
    assert url.startswith("http://127.0.0.1:8000/setup/")
    assert "Mme Bernard" in page
    token_in_link = url.rsplit("/", 1)[1]
    info = storage.call(accounts.inspect_setup_link, ctx, token_in_link)
    assert info.login == "bernard@school.test"
    assert info.role == "teacher"
    # The visitor's setup page opens from the link, with no login.
    visitor = client.app.test_client()  # type: ignore[attr-defined]
    setup = await visitor.get(url.replace("http://127.0.0.1:8000", ""))
    assert setup.status_code == 200
    assert setup.headers["Cache-Control"] == "no-store"
    assert ("Mme Bernard", "pending") in staff_logins(storage, ctx)


async def test_bad_staff_form_re_renders_with_the_message_and_stores_nothing(
    client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    make_school(storage, ctx)
    await login(client, "admin@school.test")
    before = staff_logins(storage, ctx)
    _, token = await admin_page(client)
    for fields, status, message in (
        ({"display_name": "X", "email": "not-an-email", "role": "teacher"}, 400, "valid e-mail"),
        ({"display_name": "", "email": "x@school.test", "role": "teacher"}, 400, "Enter a name."),
        ({"display_name": "X", "email": "x@school.test", "role": "guardian"}, 400, "Unknown role."),
        (
            {"display_name": "X", "email": "dubois@school.test", "role": "teacher"},
            409,
            "already exists",
        ),
    ):
        response = await client.post("/admin/staff", form={"csrf_token": token, **fields})
        assert response.status_code == status, fields
        text = html.unescape(await response.get_data(as_text=True))
        assert message in text
        assert 'id="form-error"' in text
        assert 'id="setup-url"' not in text
    assert staff_logins(storage, ctx) == before


async def test_admin_disables_a_teacher_from_the_page(
    app: Quart, client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    school = make_school(storage, ctx)
    teacher = app.test_client()
    await login(teacher, "dubois@school.test")
    assert (await teacher.get("/classes")).status_code == 200
    await login(client, "admin@school.test")
    text, token = await admin_page(client)
    action = f"/admin/accounts/{school.teacher.account_id}/disable"
    assert action in text
    # The admin's own row offers no disable button.
    assert f"/admin/accounts/{school.admin.account_id}/disable" not in text
    response = await client.post(action, form={"csrf_token": token})
    assert response.status_code == 302
    assert ("M. Dubois", "disabled") in staff_logins(storage, ctx)
    response = await teacher.get("/classes")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/login")


async def test_new_setup_link_for_a_pending_teacher(
    client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    school = make_school(storage, ctx)
    view, first = storage.call(
        accounts.create_staff, ctx, school.admin, "teacher", "Mme Neuve", "neuve@school.test"
    )
    await login(client, "admin@school.test")
    text, token = await admin_page(client)
    action = f"/admin/staff/{view.id}/setup-link"
    assert action in text
    response = await client.post(action, form={"csrf_token": token})
    assert response.status_code == 200
    match = re.search(
        r'<code id="setup-url">[^<]*/setup/([^<]+)</code>', await response.get_data(as_text=True)
    )
    assert match is not None and match[1] != first
    from node.errors import Gone

    try:
        storage.call(accounts.inspect_setup_link, ctx, first)
    except Gone:
        pass
    else:
        raise AssertionError("the earlier setup link still works")
    assert storage.call(accounts.inspect_setup_link, ctx, match[1]).login == "neuve@school.test"


async def test_teacher_cannot_use_the_admin_page(
    client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    make_school(storage, ctx)
    await login(client, "dubois@school.test")
    assert (await client.get("/admin")).status_code == 403
    token = await csrf(client)
    response = await client.post(
        "/admin/staff",
        form={
            "csrf_token": token,
            "display_name": "Moi",
            "email": "moi@school.test",
            "role": "admin",
        },
    )
    assert response.status_code == 403
    assert "Moi" not in [name for name, _ in staff_logins(storage, ctx)]
