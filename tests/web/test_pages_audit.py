"""Issue 8 pages: the admin's audit log, and "Delete my account" with its typed confirmation."""

from __future__ import annotations

import re
from typing import Any

from quart import Quart
from quart.typing import TestClientProtocol as Client

from node.services import audit
from node.storage.db import Storage
from tests.factories import api_login
from tests.feed_factories import make_class_feed


async def page(client: Client, path: str) -> tuple[int, str]:
    response = await client.get(path)
    return response.status_code, await response.get_data(as_text=True)


def token_of(text: str) -> str:
    match = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', text)
    assert match is not None
    return match[1]


async def test_the_admin_reads_the_log_and_finds_a_pseudonym(
    app: Quart, storage: Storage, ctx: Any
) -> None:
    cf = make_class_feed(storage, ctx, families=1)
    admin = app.test_client()
    await api_login(admin, "admin@school.test")
    status, text = await page(admin, "/admin/audit?action=guardian_approved")
    assert status == 200 and "Guardian approved" in text
    parent = audit.pseudonym(ctx, cf.guardians[0].actor.account_id)
    assert parent is not None and parent in text and "Parent 0" not in text
    response = await admin.post(
        "/admin/audit/pseudonym", form={"csrf_token": token_of(text), "login": "06 39 98 00 00"}
    )
    found = await response.get_data(as_text=True)
    assert response.status_code == 200 and f'value="{parent}"' in found
    assert response.headers["Cache-Control"] == "no-store"
    response = await admin.post(
        "/admin/audit/pseudonym", form={"csrf_token": token_of(text), "login": "nobody@x.test"}
    )
    assert response.status_code == 404 and "No such account" in await response.get_data(
        as_text=True
    )
    assert (await page(admin, "/admin/audit?page=abc"))[0] == 400


async def test_a_guardian_deletes_their_account_after_typing_the_word(
    app: Quart, storage: Storage, ctx: Any
) -> None:
    make_class_feed(storage, ctx, families=1)
    client = app.test_client()
    await api_login(client, "+33639980000")
    status, text = await page(client, "/account")
    assert status == 200 and 'action="/account/erase"' in text
    status, text = await page(client, "/account/erase")
    assert status == 200 and "To confirm, type DELETE" in text
    french = await client.get("/account/erase", headers={"Accept-Language": "fr-FR"})
    assert "Pour confirmer, tapez SUPPRIMER" in await french.get_data(as_text=True)
    response = await client.post(
        "/account/erase", form={"csrf_token": token_of(text), "confirm": ""}
    )
    assert response.status_code == 400
    assert "Type DELETE" in await response.get_data(as_text=True)
    assert (await page(client, "/account"))[0] == 200  # still there
    response = await client.post(
        "/account/erase", form={"csrf_token": token_of(text), "confirm": "delete"}
    )
    assert response.status_code == 200
    assert "Your account is deleted" in await response.get_data(as_text=True)
    assert (await client.get("/account")).status_code in (302, 303, 401)
