"""The admin's "New school year" page: the plan as a form, the result, refusals kept in the form."""

from __future__ import annotations

import re

from quart.typing import TestClientProtocol as Client

from node.services import directory
from node.services.context import ServiceContext
from node.storage.db import Storage
from tests.factories import api_login as login
from tests.factories import invite, make_child, make_guardian, make_school


def _token(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page)
    assert match is not None
    return match[1]


async def test_the_admin_turns_the_year_over_from_the_page(
    client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    school = make_school(storage, ctx)
    slip = invite(storage, ctx, school.teacher, school.child_id)
    make_guardian(storage, ctx, slip.code)
    tom = make_child(storage, ctx, school.teacher, school.class_id, "Tom", "Petit")
    await login(client, "admin@school.test")
    response = await client.get("/admin/year")
    assert response.status_code == 200
    page = await response.get_data(as_text=True)
    assert 'value="2027-2028"' in page and 'value="CE2 A"' in page
    assert "Léa Martin" in page and "Tom Petit" in page
    form = {
        "csrf_token": _token(page),
        "school_year": "2027-2028",
        "class": str(school.class_id),
        f"name_{school.class_id}": "CE2 A",
        f"teacher_{school.class_id}": str(school.teacher.account_id),
        f"children_{school.class_id}": str(school.child_id),  # Tom leaves the school
    }
    done = await client.post("/admin/year", form=form)
    assert done.status_code == 200
    text = await done.get_data(as_text=True)
    assert "School year 2027-2028 started" in text
    assert "1 child went up." in text and "1 parent follows them." in text
    assert "1 class of last year archived." in text
    [new] = storage.call(directory.list_classes, ctx, school.admin)
    assert (new.name, new.school_year) == ("CE2 A", "2027-2028")
    roster = storage.call(directory.class_roster, ctx, school.teacher, new.id)
    assert [c.child.first_name for c in roster] == ["Léa"]
    assert tom.id not in [c.child.id for c in roster]


async def test_a_refused_plan_is_explained_and_the_form_keeps_what_was_typed(
    client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    school = make_school(storage, ctx)
    await login(client, "admin@school.test")
    page = await (await client.get("/admin/year")).get_data(as_text=True)
    form = {
        "csrf_token": _token(page),
        "school_year": "2025-2026",
        "class": str(school.class_id),
        f"name_{school.class_id}": "CE2 Bleu",
        f"teacher_{school.class_id}": str(school.teacher.account_id),
        f"children_{school.class_id}": str(school.child_id),
    }
    refused = await client.post("/admin/year", form=form)
    assert refused.status_code == 400
    text = await refused.get_data(as_text=True)
    assert "The new school year must come after 2026-2027." in text
    assert 'value="CE2 Bleu"' in text and 'value="2025-2026"' in text
    assert [c.name for c in storage.call(directory.list_classes, ctx, school.admin)] == ["CE1 A"]


async def test_a_teacher_cannot_open_the_page(
    client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    make_school(storage, ctx)
    await login(client, "dubois@school.test")
    assert (await client.get("/admin/year")).status_code == 403
