"""A teacher's pages: classes, children, guardians and slips through the HTML forms."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client

from node.services import directory, onboarding
from node.services.context import ServiceContext
from node.storage.db import Storage
from tests.factories import api_login as login
from tests.factories import (
    invite,
    make_child,
    make_class,
    make_guardian,
    make_school,
    make_staff,
)

FINGERPRINT = re.compile(r"^[0-9A-F]{4}( [0-9A-F]{4}){7}$")


async def page(client: Client, path: str) -> tuple[str, str]:
    """The page's HTML and the CSRF token its forms carry."""
    response = await client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    text = await response.get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', text)
    assert match is not None
    return text, match[1]


async def submit(client: Client, path: str, token: str, **fields: str) -> Any:
    return await client.post(path, form={"csrf_token": token, **fields})


def slip_fields(text: str) -> dict[str, str]:
    code = re.search(r"<p class=\"slip-code\"[^>]*>([^<]+)</p>", text)
    fingerprint = re.search(r"data-fingerprint>([^<]*)</dd>", text)
    assert code is not None and fingerprint is not None
    return {"code": html.unescape(code[1]).strip(), "fingerprint": fingerprint[1].strip()}


async def test_teacher_creates_class_adds_child_and_prints_a_slip(
    client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    school = make_school(storage, ctx)
    await login(client, "dubois@school.test")
    _, token = await page(client, "/classes")
    response = await submit(client, "/classes", token, name="CM1 Soleil", school_year="2026-2027")
    assert response.status_code == 302
    class_path = response.headers["Location"]
    class_id = int(class_path.rsplit("/", 1)[1])
    assert class_id != school.class_id

    text, token = await page(client, class_path)
    assert "CM1 Soleil" in text and "2026-2027" in text
    response = await submit(
        client, f"{class_path}/children", token, first_name="Inès", last_name="Roy"
    )
    assert response.status_code == 302
    roster = storage.call(directory.class_roster, ctx, school.teacher, class_id)
    assert [(e.child.first_name, e.child.last_name) for e in roster] == [("Inès", "Roy")]
    child_id = roster[0].child.id

    text, token = await page(client, class_path)
    assert "Inès Roy" in text
    response = await submit(
        client,
        f"/children/{child_id}/guardians",
        token,
        display_name="Nora Roy",
        phone="06 39 98 00 05",
        code="",
        class_id=str(class_id),
    )
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    slip = await response.get_data(as_text=True)
    fields = slip_fields(slip)
    assert re.fullmatch(r"[A-Z0-9]{4}(-[A-Z0-9]{4}){3}-[A-Z0-9]", fields["code"])
    assert FINGERPRINT.match(fields["fingerprint"]), fields["fingerprint"]
    assert "ending in 05" in slip
    assert "Nora Roy" in slip and "Inès Roy" in slip and "CM1 Soleil" in slip
    assert "http://127.0.0.1:8000/welcome" in slip
    assert "639980005" not in slip
    # The printed code is the one the parent can use.
    view = storage.call(onboarding.start, ctx, "+33639980005", fields["code"], "192.0.2.1", "en")
    assert view.phone_masked.endswith("05")

    # The class page now lists the guardian, masked, and offers a new code.
    text, _ = await page(client, class_path)
    assert "Nora Roy" in text and "•• •• •• •• 05" in text
    assert "/code" in text


async def test_slip_fingerprint_is_the_teachers_key(
    client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    from node.e2e.encoding import b64url_decode
    from node.e2e.keys import fingerprint
    from tests.factories import client_account

    school = make_school(storage, ctx)
    await login(client, "dubois@school.test")
    text, token = await page(client, f"/classes/{school.class_id}")
    response = await submit(
        client,
        f"/children/{school.child_id}/guardians",
        token,
        display_name="Camille Martin",
        phone="0639980001",
        code="",
        class_id=str(school.class_id),
    )
    sign_pk = client_account("dubois@school.test").credentials.sign_pk
    expected = fingerprint(b64url_decode(sign_pk, length=32))
    assert slip_fields(await response.get_data(as_text=True))["fingerprint"] == expected


async def test_reissue_and_print_run_pages_are_not_cached(
    client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    school = make_school(storage, ctx)
    slip = invite(storage, ctx, school.teacher, school.child_id)
    await login(client, "dubois@school.test")
    text, token = await page(client, f"/classes/{school.class_id}")
    response = await submit(client, f"/guardians/{slip.invitation_id}/code", token)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    new_code = slip_fields(await response.get_data(as_text=True))["code"]
    assert new_code != slip.code
    response = await submit(client, f"/classes/{school.class_id}/slips", token)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert (await response.get_data(as_text=True)).count('class="slip-code"') == 1


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"first_name": "", "last_name": "Roy"}, "Enter a name."),
        ({"first_name": "   ", "last_name": "Roy"}, "Enter a name."),
        ({"first_name": "Inès", "last_name": "R" * 61}, "This name is too long."),
        ({"first_name": "In\u202eès", "last_name": "Roy"}, "not allowed"),
    ],
)
async def test_bad_child_form_re_renders_with_400_and_stores_nothing(
    client: Client, storage: Storage, ctx: ServiceContext, fields: dict[str, str], message: str
) -> None:
    school = make_school(storage, ctx)
    await login(client, "dubois@school.test")
    _, token = await page(client, f"/classes/{school.class_id}")
    response = await submit(client, f"/classes/{school.class_id}/children", token, **fields)
    assert response.status_code == 400
    text = await response.get_data(as_text=True)
    assert message in html.unescape(text)
    assert 'role="alert"' in text
    assert "<form" in text  # the class page again, not an error page
    roster = storage.call(directory.class_roster, ctx, school.teacher, school.class_id)
    assert [e.child.first_name for e in roster] == ["Léa"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"display_name": "Nora", "phone": "12345"}, "country code"),
        ({"display_name": "Nora", "phone": "06 12 AB"}, "only digits"),
        ({"display_name": "Nora", "phone": "+881 612 345 678"}, "cannot receive"),
        ({"display_name": "Nora", "phone": ""}, "Enter a phone number"),
        ({"display_name": "", "phone": "0639980005"}, "Enter a name."),
        ({"display_name": "Nora", "phone": "0639980005", "code": "SHORT"}, "8 to 32"),
    ],
)
async def test_bad_guardian_form_re_renders_with_400_and_stores_nothing(
    client: Client, storage: Storage, ctx: ServiceContext, fields: dict[str, str], message: str
) -> None:
    school = make_school(storage, ctx)
    await login(client, "dubois@school.test")
    _, token = await page(client, f"/classes/{school.class_id}")
    response = await submit(
        client,
        f"/children/{school.child_id}/guardians",
        token,
        class_id=str(school.class_id),
        **fields,
    )
    assert response.status_code == 400
    text = html.unescape(await response.get_data(as_text=True))
    assert message in text
    assert f'id="child-{school.child_id}"' in text
    assert 'class="slip-code"' not in text
    roster = storage.call(directory.class_roster, ctx, school.teacher, school.class_id)
    assert roster[0].guardians == []


async def test_bad_class_form_re_renders_with_400(
    client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    school = make_school(storage, ctx)
    await login(client, "dubois@school.test")
    _, token = await page(client, "/classes")
    for fields, message in (
        ({"name": "", "school_year": "2026-2027"}, "Enter a name."),
        ({"name": "CM1", "school_year": "2026-2030"}, "2026-2027"),
    ):
        response = await submit(client, "/classes", token, **fields)
        assert response.status_code == 400
        text = html.unescape(await response.get_data(as_text=True))
        assert message in text
        assert 'value="' + fields["school_year"] + '"' in text  # what was typed comes back
    classes = storage.call(directory.list_classes, ctx, school.teacher)
    assert [c.name for c in classes] == ["CE1 A"]


async def test_teacher_pages_of_another_teacher_are_404(
    client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    school = make_school(storage, ctx)
    other = make_staff(storage, ctx, by=school.admin)
    other_class = make_class(storage, ctx, other, "CM2 B")
    other_child = make_child(storage, ctx, other, other_class.id, "Hugo", "Petit")
    other_slip = invite(storage, ctx, other, other_child.id, phone="+33639980002")
    await login(client, "dubois@school.test")
    _, token = await page(client, "/classes")
    assert (await client.get(f"/classes/{other_class.id}")).status_code == 404
    for path, fields in (
        (f"/classes/{other_class.id}/children", {"first_name": "X", "last_name": "Y"}),
        (
            f"/children/{other_child.id}/guardians",
            {"display_name": "X", "phone": "0639980099", "class_id": str(school.class_id)},
        ),
        (f"/guardians/{other_slip.invitation_id}/code", {}),
        (f"/guardians/{other_slip.invitation_id}/remove", {"class_id": str(school.class_id)}),
        (f"/classes/{other_class.id}/slips", {}),
    ):
        response = await submit(client, path, token, **fields)
        assert response.status_code == 404, path
        text = await response.get_data(as_text=True)
        assert "Hugo" not in text and "Petit" not in text
    roster = storage.call(directory.class_roster, ctx, other, other_class.id)
    assert [e.child.first_name for e in roster] == ["Hugo"]
    assert [g.display_name for g in roster[0].guardians] == ["Camille Martin"]
    assert storage.call(onboarding.start, ctx, "+33639980002", other_slip.code, "192.0.2.1", "en")


@pytest.mark.parametrize("bad_id", ["0", "-1", "abc", "99999999999999999999"])
async def test_odd_class_ids_are_404_pages(
    client: Client, storage: Storage, ctx: ServiceContext, bad_id: str
) -> None:
    make_school(storage, ctx)
    await login(client, "dubois@school.test")
    response = await client.get(f"/classes/{bad_id}")
    assert response.status_code == 404
    assert "text/html" in response.headers["Content-Type"]


async def test_teacher_pages_need_a_login_and_a_teacher(
    app: Quart, client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    school = make_school(storage, ctx)
    for path in ("/classes", f"/classes/{school.class_id}", "/admin", "/home"):
        response = await client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].endswith("/login")
    slip = invite(storage, ctx, school.teacher, school.child_id)
    make_guardian(storage, ctx, slip.code)
    await login(client, "+33639980001")
    assert (await client.get("/classes")).status_code == 403
    assert (await client.get(f"/classes/{school.class_id}")).status_code in (403, 404)


async def test_removing_a_guardian_through_the_form(
    client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    school = make_school(storage, ctx)
    slip = invite(storage, ctx, school.teacher, school.child_id)
    await login(client, "dubois@school.test")
    _, token = await page(client, f"/classes/{school.class_id}")
    response = await submit(
        client, f"/guardians/{slip.invitation_id}/remove", token, class_id=str(school.class_id)
    )
    assert response.status_code == 302
    assert response.headers["Location"] == f"/classes/{school.class_id}"
    roster = storage.call(directory.class_roster, ctx, school.teacher, school.class_id)
    assert roster[0].guardians == []
    from node.errors import CarnetError

    with pytest.raises(CarnetError):
        storage.call(onboarding.start, ctx, "+33639980001", slip.code, "192.0.2.1", "en")
