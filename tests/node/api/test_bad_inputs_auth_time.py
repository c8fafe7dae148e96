"""The bad inputs of the reliability research (§6) on sign-in, phones and time, over HTTP.

SMS codes as people type or paste them, a code that lost its leading zero,
codes used twice, from an earlier attempt, late or after the server's clock
moved; phone numbers as teachers type them, on the JSON API and on the
teacher's form; the answers to an unknown login, a wrong passphrase and a
locked account, which must not tell them apart.  Each refusal gets its
status and the message a person reads, and changes nothing stored.
Already covered elsewhere: SMS code tries, full-width digits and other
attempts' codes in the services (test_onboarding_service), malformed numbers
at first login (test_api_onboarding), wrong passphrase vs unknown login and
their limits (test_api_auth).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client

from node.services import accounts, directory, onboarding, ratelimit
from node.services.context import ServiceContext
from node.storage import onboarding as onboarding_store
from node.storage.db import Storage
from tests.factories import (
    School,
    api_login,
    invite,
    make_school,
    secret_for,
    sms_code,
    texts_to,
)
from tests.node.api.test_bad_inputs import Snapshot as _Snapshot
from tests.node.api.test_bad_inputs import refused, send

PHONE = "+33639980001"
TEACHER = "dubois@school.test"
IP = "192.0.2.1"
#: Monday 1 March 2027, 09:00 UTC: the node's stopped clock
NOW = dt.datetime(2027, 3, 1, 9, 0)


@pytest.fixture
def node_config(node_config: dict[str, Any]) -> dict[str, Any]:
    # one slip, many attempts: the three-texts-an-hour limit is tested elsewhere
    return {**node_config, "sms_per_number_per_hour": 40, "login_failures_per_address_per_15min": 1}


class Snapshot(_Snapshot):
    """Every stored row but SQLite's id counters (a refusal may count a failure)."""

    def take(self) -> dict[str, Any]:
        rows = super().take()
        rows.pop("sqlite_sequence", None)
        return rows


class Clock:
    """The app's clock, stopped at ``NOW`` and moved by the test."""

    def __init__(self, app: Quart, monkeypatch: pytest.MonkeyPatch) -> None:
        self.moment = NOW
        ctx: ServiceContext = app.config["CARNET_CTX"]
        stopped = dataclasses.replace(ctx, clock=lambda: self.moment)
        monkeypatch.setitem(app.config, "CARNET_CTX", stopped)
        self.ctx = stopped

    def move(self, **delta: float) -> None:
        self.moment += dt.timedelta(**delta)


@pytest.fixture
def clock(app: Quart, monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(app, monkeypatch)


@pytest.fixture
def school(storage: Storage, clock: Clock) -> School:
    return make_school(storage, clock.ctx)


async def start(client: Client, access_code: str, phone: str = PHONE) -> str:
    response = await send(
        client, "POST", "/api/v1/onboarding/start", {"phone": phone, "code": access_code}
    )
    assert response.status_code == 201, await response.get_data()
    attempt_id: str = (await response.get_json())["attempt_id"]
    return attempt_id


async def verify(client: Client, attempt_id: str, typed: Any) -> Any:
    body = {"attempt_id": attempt_id, "sms_code": typed}
    return await send(client, "POST", "/api/v1/onboarding/verify", body)


def failures(storage: Storage, attempt_id: str) -> tuple[int, int]:
    """The attempt's wrong codes and the address's failures."""
    row = storage.call(onboarding_store.select_attempt, attempt_id)
    assert row is not None
    since = dt.datetime(2000, 1, 1)
    ip_failures = storage.call(onboarding_store.count_rate_events, ratelimit.ip_bucket(IP), since)
    return row.sms_failures, ip_failures


# --- SMS codes as typed ----------------------------------------------------------------

TYPED: list[tuple[str, Callable[[str], str]]] = [
    ("space", lambda c: f"{c[:3]} {c[3:]}"),
    ("around", lambda c: f" {c} "),
    ("pairs", lambda c: f"{c[:2]} {c[2:4]} {c[4:]}"),
    ("tab", lambda c: f"{c[:3]}\t{c[3:]}"),
    ("no-break space", lambda c: f"{c[:3]}\u00a0{c[3:]}"),
    ("narrow no-break space", lambda c: f"{c[:3]}\u202f{c[3:]}"),
    ("dash", lambda c: f"{c[:3]}-{c[3:]}"),
    ("en dash", lambda c: f"{c[:3]}\u2013{c[3:]}"),
    ("full width, ideographic space", lambda c: _full_width(c[:3]) + "\u3000" + _full_width(c[3:])),
    ("pasted with a newline", lambda c: c + "\n"),
    ("zero-width space", lambda c: f"{c[:3]}\u200b{c[3:]}"),
]


def _full_width(digits: str) -> str:
    return "".join(chr(ord("０") + int(d)) for d in digits)


async def test_a_code_is_read_as_typed_and_one_that_lost_its_leading_zero_is_not_counted(
    client: Client,
    storage: Storage,
    clock: Clock,
    school: School,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slip = invite(storage, clock.ctx, school.teacher, school.child_id, PHONE)
    for label, typed in TYPED:
        attempt_id = await start(client, slip.code)
        response = await verify(client, attempt_id, typed(sms_code(storage, data_dir, PHONE)))
        assert response.status_code == 200, (label, await response.get_data())
        assert (await response.get_json())["child_first_name"] == "Léa", label

    monkeypatch.setattr(onboarding, "generate_sms_code", lambda: "012345")
    attempt_id = await start(client, slip.code)
    assert sms_code(storage, data_dir, PHONE) == "012345"
    snapshot = Snapshot(storage)
    # typed without its zero, or sent as a JSON number by a client that parsed it
    for typed, message in [
        ("12345", "The code has 6 digits."),
        (" 12 345 ", "The code has 6 digits."),
        ("12345\u00a0", "The code has 6 digits."),
        ("0 1 2 3 4 5 6", "The code has 6 digits."),
        (12345, "This field must be text."),
    ]:
        response = await verify(client, attempt_id, typed)
        await refused(response, 400, message, "sms_code", case=typed)
        assert failures(storage, attempt_id) == (0, 0), typed
    snapshot.assert_unchanged()
    response = await verify(client, attempt_id, "012345")
    assert response.status_code == 200, await response.get_data()


async def test_a_used_an_earlier_or_a_late_code_is_refused_with_its_reason(
    client: Client, storage: Storage, clock: Clock, school: School, data_dir: Path
) -> None:
    slip = invite(storage, clock.ctx, school.teacher, school.child_id, PHONE)
    # used: the phone is confirmed, the code does not confirm it again
    first = await start(client, slip.code)
    used = sms_code(storage, data_dir, PHONE)
    assert (await verify(client, first, used)).status_code == 200
    response = await verify(client, first, used)
    await refused(response, 409, "Your phone number is already confirmed.", "sms_code")
    # an earlier attempt's code, and the code a resend replaced
    second = await start(client, slip.code)
    earlier = sms_code(storage, data_dir, PHONE)
    resent = await send(client, "POST", "/api/v1/onboarding/resend", {"attempt_id": second})
    assert resent.status_code == 200
    current = sms_code(storage, data_dir, PHONE)
    for old in {used, earlier} - {current}:
        response = await verify(client, second, old)
        await refused(response, 401, "Wrong code. Tries left:", "sms_code", case=old)
    # late: the code lived its 10 minutes
    clock.move(minutes=clock.ctx.config.sms_code_minutes, seconds=1)
    snapshot = Snapshot(storage)
    response = await verify(client, second, current)
    await refused(response, 410, "This code has expired. Ask for a new code.", "sms_code")
    response = await verify(client, second, current)
    await refused(response, 410, "This code can no longer be used. Ask for a new code.")
    snapshot.assert_unchanged()


#: (when the code is sent, how the server clock moves before it is typed, the answer)
CLOCK_CASES = [
    (NOW, {"minutes": 9, "seconds": 59}, 200),  # still within its 10 minutes
    (NOW, {"minutes": 10}, 410),  # the clock jumped forward past its validity
    (NOW, {"hours": -1}, 410),  # set back an hour: the code does not get an hour more
    (NOW, {"seconds": -1}, 410),
    # 02:55 summer time, typed at 02:04 winter time (wall clock: 51 minutes "before"): valid
    (dt.datetime(2027, 10, 31, 0, 55), {"minutes": 9}, 200),
    # 01:58 winter time, typed at 03:09 summer time (wall clock: 71 minutes later): valid
    (dt.datetime(2027, 3, 28, 0, 58), {"minutes": 9}, 200),
    (dt.datetime(2027, 3, 28, 0, 58), {"minutes": 10, "seconds": 1}, 410),
    (dt.datetime(2028, 2, 28, 23, 55), {"minutes": 9}, 200),  # across 29 February
]


async def test_a_server_clock_jump_never_stretches_a_code(
    client: Client, storage: Storage, clock: Clock, school: School, data_dir: Path
) -> None:
    slip = invite(storage, clock.ctx, school.teacher, school.child_id, PHONE)
    for sent_at, shift, status in CLOCK_CASES:
        case = (sent_at, shift)
        clock.moment = sent_at
        slip = storage.call(directory.reissue_code, clock.ctx, school.teacher, slip.invitation_id)
        attempt_id = await start(client, slip.code)
        clock.move(**shift)
        response = await verify(client, attempt_id, sms_code(storage, data_dir, PHONE))
        if status == 410:
            message = "This code has expired. Ask for a new code."
            await refused(response, 410, message, "sms_code", case=case)
            # a new code, sent on the clock as it is now, works
            body = {"attempt_id": attempt_id}
            resent = await send(client, "POST", "/api/v1/onboarding/resend", body)
            assert resent.status_code == 200, case
            response = await verify(client, attempt_id, sms_code(storage, data_dir, PHONE))
        assert response.status_code == 200, (case, await response.get_data())


# --- Phone numbers on the invitation path ----------------------------------------------

SAME_NUMBER = ["06.39.98.00.01", "+33 (0)6 39 98 00 01", "0033 6 39 98 00 01", "+33639980001"]

#: refused on the API and at first login; the first of each message on the teacher's form too
BAD_PHONES = [
    ("+33 6 39 98 00 01 23 45 67", "This is not a valid phone number."),  # 16 digits
    ("06 39 98 AB 01", "A phone number contains only digits."),
    ("06 39 98 OO 01", "A phone number contains only digits."),  # letters O for zeros
    ("+881 6 12 34 56 78", "Numbers in this range cannot receive Carnet texts."),
    ("+882 1234 5678", "Numbers in this range cannot receive Carnet texts."),
    ("+979 1234 5678", "Numbers in this range cannot receive Carnet texts."),
    ("00 979 1234 5678", "Numbers in this range cannot receive Carnet texts."),
]


async def test_a_number_written_any_way_is_one_number_and_bad_ones_are_refused_everywhere(
    app: Quart, storage: Storage, clock: Clock, school: School
) -> None:
    teacher = app.test_client()
    await api_login(teacher, TEACHER)
    path = f"/api/v1/children/{school.child_id}/guardians"
    response = await send(
        teacher, "POST", path, {"display_name": "Camille Martin", "phone": SAME_NUMBER[0]}
    )
    assert response.status_code == 201, await response.get_data()
    slip = await response.get_json()
    assert slip["phone_masked"] == "•• •• •• •• 01"
    snapshot = Snapshot(storage)
    for written in SAME_NUMBER:
        response = await send(teacher, "POST", path, {"display_name": "Bis", "phone": written})
        await refused(
            response, 409, "This number is already registered for this child.", "phone", written
        )
    snapshot.assert_unchanged()
    parent = app.test_client()
    for written in SAME_NUMBER[1:]:
        await start(parent, slip["code"], phone=written)
    assert len(texts_to(storage, PHONE)) == len(SAME_NUMBER) - 1

    # refused: on the API, on the teacher's form, and at first login
    page = await teacher.get(f"/classes/{school.class_id}")
    token = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', await page.get_data(True))
    assert token is not None
    snapshot = Snapshot(storage)
    on_form = set()
    for phone, message in BAD_PHONES:
        body = {"display_name": "Camille Martin", "phone": phone}
        response = await send(
            teacher, "POST", f"/api/v1/children/{school.child_id}/guardians", body
        )
        await refused(response, 400, message, "phone", case=phone)
        # first login with that number: refused before any text is sent
        body = {"phone": phone, "code": slip["code"]}
        response = await send(parent, "POST", "/api/v1/onboarding/start", body)
        await refused(response, 400, message, "phone", case=phone)
        if message in on_form:
            continue
        on_form.add(message)
        response = await teacher.post(
            f"/children/{school.child_id}/guardians",
            form={
                "csrf_token": token[1],
                "class_id": str(school.class_id),
                "display_name": "Camille Martin",
                "phone": phone,
            },
        )
        assert response.status_code == 400, phone
        text = html.unescape(await response.get_data(as_text=True))
        assert message in text, phone
        assert 'class="slip-code"' not in text
    snapshot.assert_unchanged()


# --- Login enumeration -----------------------------------------------------------------


async def answer(app: Quart, login: str, secret: str, ip: str) -> tuple[int, Any, dict[str, str]]:
    """Everything a login's answer shows: status, body and headers (but the date)."""
    client = app.test_client()
    response = await send(
        client, "POST", "/api/v1/auth/login", {"login": login, "login_secret": secret},
        scope_base={"client": (ip, 40000)},
    )  # fmt: skip
    headers = {k.lower(): v for k, v in response.headers.items() if k.lower() != "date"}
    return response.status_code, await response.get_json(), headers


async def test_unknown_wrong_and_locked_logins_get_the_same_answer(
    app: Quart, storage: Storage, clock: Clock, school: School
) -> None:
    ctx = clock.ctx
    real_salt = storage.call(accounts.prelogin, ctx, TEACHER)
    right = secret_for(real_salt.salt, real_salt.iterations)
    wrong = "A" * 43
    storage.call(accounts.create_staff, ctx, school.admin, "teacher", "Mme N", "new@school.test")
    cases = {
        "unknown": ("nobody@school.test", wrong),
        "unknown phone": ("06 11 22 33 44", wrong),
        "wrong passphrase": (TEACHER, wrong),
        "not set up yet": ("new@school.test", wrong),
    }
    answers = {name: await answer(app, *case, ip="198.51.100.1") for name, case in cases.items()}
    storage.call(accounts.disable_account, ctx, school.admin, school.teacher.account_id)
    answers["disabled, right passphrase"] = await answer(app, TEACHER, right, "198.51.100.2")
    status, body, headers = answers["unknown"]
    assert status == 401
    error = {"code": "unauthenticated", "message": "Wrong login or passphrase.", "field": None}
    assert body == {"error": error}
    assert "carnet_session=" not in headers.get("set-cookie", "")
    for name, seen in answers.items():
        assert seen == (status, body, headers), name
    # locked after too many failures from one address: the same 429 for anyone
    locked = {}
    for who in (TEACHER, "nobody@school.test"):
        assert (await answer(app, who, wrong, "203.0.113.9"))[0] == 401
        locked[who] = await answer(app, who, wrong, "203.0.113.9")
    assert locked[TEACHER][0] == 429
    assert locked[TEACHER] == locked["nobody@school.test"]
    # and the key-derivation step shows the same shape for the disabled and the unknown
    for who in (TEACHER, "nobody@school.test"):
        response = await send(app.test_client(), "POST", "/api/v1/auth/prelogin", {"login": who})
        pre = await response.get_json()
        assert response.status_code == 200 and set(pre) == {"salt", "iterations"}
        assert pre["salt"] != real_salt.salt
