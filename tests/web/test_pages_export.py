"""The "Download all my data" page: a guardian's, linked from their account; staff get 403."""

from __future__ import annotations

from quart import Quart

from node.services.context import ServiceContext
from node.storage.db import Storage
from tests.factories import api_login
from tests.feed_factories import make_class_feed


async def test_the_page_is_for_guardians_and_linked_from_their_account(
    app: Quart, storage: Storage, ctx: ServiceContext
) -> None:
    make_class_feed(storage, ctx, families=1)
    parent = app.test_client()
    await api_login(parent, "+33639980000")
    response = await parent.get("/me/export")
    html = (await response.get_data()).decode()
    assert response.status_code == 200 and "/static/js/pages/export.js" in html
    assert 'id="export-start"' in html and "Download all my data" in html
    account = (await (await parent.get("/account")).get_data()).decode()
    assert 'href="/me/export"' in account

    teacher = app.test_client()
    await api_login(teacher, "dubois@school.test")
    response = await teacher.get("/me/export")
    assert response.status_code == 403
    assert "staff records belong to the school" in (await response.get_data()).decode()
    assert 'href="/me/export"' not in (await (await teacher.get("/account")).get_data()).decode()

    anonymous = await app.test_client().get("/me/export")
    assert anonymous.status_code in (302, 303, 401)
