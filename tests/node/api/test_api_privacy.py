"""No response, page or log line shows another person's phone number or e-mail address in full."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client

from node.refclient import credentials_json
from node.services.context import ServiceContext
from node.storage import onboarding as onboarding_store
from node.storage.db import Storage
from tests.factories import api_login as login
from tests.factories import (
    client_account,
    csrf,
    invite,
    make_guardian,
    make_school,
    sms_code,
    texts_to,
)

JOINED = "+33639980001"
INVITED = "+33639980002"
STAFF_EMAILS = ("admin@school.test", "dubois@school.test")


def forms_of(number: str) -> list[str]:
    """Ways a full number could leak: E.164, national, bare, spaced, 00-prefixed."""
    national = "0" + number[3:]
    spaced = " ".join(national[i : i + 2] for i in range(0, 10, 2))
    return [number, number[1:], national, number[3:], spaced, "00" + number[1:]]


def leaks(text: str, numbers: tuple[str, ...] = (JOINED, INVITED)) -> list[str]:
    found = [form for number in numbers for form in forms_of(number) if form in text]
    found += [email for email in STAFF_EMAILS if email in text]
    return found


async def text_of(response: Any) -> str:
    assert response.status_code < 400, (response.status_code, await response.get_data())
    body: str = await response.get_data(as_text=True)
    # JSON may escape non-ASCII; decode it so masked numbers compare as shown.
    if response.mimetype == "application/json":
        return json.dumps(json.loads(body), ensure_ascii=False)
    return body


async def post(client: Client, path: str, body: Any = None) -> Any:
    token = await csrf(client)
    return await client.post(path, json=body or {}, headers={"X-CSRF-Token": token})


async def post_form(client: Client, path: str, form: dict[str, str] | None = None) -> Any:
    token = await csrf(client)
    return await client.post(path, form={"csrf_token": token, **(form or {})})


@pytest.fixture
def school_with_guardians(storage: Storage, ctx: ServiceContext) -> Any:
    school = make_school(storage, ctx)
    joined = invite(storage, ctx, school.teacher, school.child_id, phone=JOINED)
    make_guardian(storage, ctx, joined.code, JOINED)
    invited = invite(
        storage, ctx, school.teacher, school.child_id, phone=INVITED, name="Sam Martin"
    )
    return school, invited


@pytest.mark.parametrize("who", ["admin@school.test", "dubois@school.test"])
async def test_staff_api_and_pages_never_show_numbers_or_emails(
    client: Client, school_with_guardians: Any, who: str
) -> None:
    school, invited = school_with_guardians
    await login(client, who)
    class_id = school.class_id
    seen: dict[str, str] = {}
    for path in (
        "/api/v1/classes",
        f"/api/v1/classes/{class_id}",
        "/api/v1/session",
        "/classes",
        f"/classes/{class_id}",
    ):
        seen[path] = await text_of(await client.get(path))
    if who.startswith("admin"):
        for path in ("/api/v1/staff", "/admin"):
            seen[path] = await text_of(await client.get(path))
    # Slips, as JSON and as printed pages: the last two digits only.
    seen["reissue api"] = await text_of(
        await post(client, f"/api/v1/guardians/{invited.invitation_id}/code")
    )
    seen["slips api"] = await text_of(await post(client, f"/api/v1/classes/{class_id}/slips"))
    seen["reissue page"] = await text_of(
        await post_form(client, f"/guardians/{invited.invitation_id}/code")
    )
    seen["slips page"] = await text_of(await post_form(client, f"/classes/{class_id}/slips"))
    seen["register api"] = await text_of(
        await post(
            client,
            f"/api/v1/children/{school.child_id}/guardians",
            {"display_name": "Noa Martin", "phone": "06 39 98 00 03"},
        )
    )
    seen["register page"] = await text_of(
        await post_form(
            client,
            f"/children/{school.child_id}/guardians",
            {"display_name": "Eli Martin", "phone": "06 39 98 00 04", "class_id": str(class_id)},
        )
    )
    numbers = (JOINED, INVITED, "+33639980003", "+33639980004")
    found = {where: leaks(text, numbers) for where, text in seen.items()}
    assert {where: f for where, f in found.items() if f} == {}
    assert "•• •• •• •• 01" in seen[f"/classes/{class_id}"]
    assert "ending in 02" in seen["reissue page"]
    assert "ending in 04" in seen["register page"]
    assert "•• •• •• •• 03" in seen["register api"]


async def test_admin_staff_list_masks_emails(client: Client, school_with_guardians: Any) -> None:
    await login(client, "admin@school.test")
    staff = await (await client.get("/api/v1/staff")).get_json()
    contacts = {s["display_name"]: s["contact_masked"] for s in staff}
    assert contacts == {"Mme Admin": "a•••@s•••", "M. Dubois": "d•••@s•••"}


async def test_guardian_views_never_show_staff_emails_or_other_numbers(
    client: Client, school_with_guardians: Any
) -> None:
    await login(client, JOINED)
    for path in ("/api/v1/me", "/api/v1/me/children", "/api/v1/session", "/home"):
        text = await text_of(await client.get(path))
        assert leaks(text) == [], path
    me = await (await client.get("/api/v1/me")).get_json()
    assert me["contact_masked"] == "•• •• •• •• 01"


async def test_error_messages_never_echo_a_number(
    client: Client, school_with_guardians: Any
) -> None:
    school, _ = school_with_guardians
    response = await post(
        client, "/api/v1/onboarding/start", {"phone": INVITED, "code": "WRONG-CODE-1"}
    )
    assert response.status_code == 401
    assert leaks(await response.get_data(as_text=True)) == []
    await login(client, "dubois@school.test")
    response = await post(
        client,
        f"/api/v1/children/{school.child_id}/guardians",
        {"display_name": "Twice", "phone": JOINED},
    )
    assert response.status_code == 409
    assert leaks(await response.get_data(as_text=True)) == []


async def test_logs_of_a_whole_onboarding_hold_no_full_number(
    app: Quart,
    client: Client,
    storage: Storage,
    ctx: ServiceContext,
    data_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Every level of the node's own loggers; third-party loggers at their usual levels
    # (peewee's DEBUG log echoes SQL parameters by design and is never on in production).
    caplog.set_level(logging.DEBUG, logger="carnet")
    school = make_school(storage, ctx)
    slip = invite(storage, ctx, school.teacher, school.child_id, phone=INVITED)
    started = await post(
        client, "/api/v1/onboarding/start", {"phone": "06 39 98 00 02", "code": slip.code}
    )
    assert started.status_code == 201
    attempt_id = (await started.get_json())["attempt_id"]
    wrong = await post(
        client, "/api/v1/onboarding/verify", {"attempt_id": attempt_id, "sms_code": "000000"}
    )
    assert wrong.status_code in (200, 401)
    # Let the SMS worker hand the text to the console gateway, which logs it.
    for _ in range(250):
        if texts_to(storage, INVITED)[-1].status == "sent":
            break
        await asyncio.sleep(0.02)
    assert texts_to(storage, INVITED)[-1].status == "sent"
    code = re.search(r"(\d{6})", sms_code(storage, data_dir, INVITED))
    if wrong.status_code == 401:
        verified = await post(
            client, "/api/v1/onboarding/verify", {"attempt_id": attempt_id, "sms_code": code[1]}
        )
        assert verified.status_code == 200
    done = await post(
        client,
        "/api/v1/onboarding/complete",
        {
            "attempt_id": attempt_id,
            "credentials": credentials_json(client_account(INVITED).credentials),
        },
    )
    assert done.status_code == 201
    await client.get("/home")
    assert any(r.name == "carnet.sms" for r in caplog.records), "the SMS log line was not captured"
    for record in caplog.records:
        text = record.getMessage() + " " + (record.exc_text or "")
        assert leaks(text, (INVITED,)) == [], (record.name, text)
    # The outbox at rest keeps no code once the text went out.
    messages = storage.call(lambda: list(onboarding_store.SmsMessage.select()))
    assert messages and all(m.body is None for m in messages if m.status == "sent")
