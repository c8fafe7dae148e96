"""The bad inputs of the reliability research (§6) that the other API tests do not try yet.

Each case gets the exact status and a message a person understands, and the
stored data is the same afterwards (``Snapshot``).  Already covered
elsewhere, so not repeated here: malformed JSON and content types
(test_api_json_bodies), CSRF and other-site requests (test_api_csrf), login
enumeration, lockout and session fixation (test_api_auth), SMS codes and
phone numbers at first login (test_api_onboarding), push endpoints on private
addresses (test_api_notifications), federation signatures and replays
(tests/federation/runtime).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client

from node.push.webpush import parse_retry_after
from node.storage.db import Storage
from tests.factories import api_login, csrf, invite, make_school
from tests.feed_factories import make_class_feed

TEACHER = "dubois@school.test"
PARENT = "+33639980000"

#: tables that change by themselves or by any refused request (rate limits, the audit log);
#: a refusal may count against a limit, it must not change what people stored
UNCOUNTED = {"rate_event", "audit_event", "schema_version"}
#: tables whose rows the workers update in the background (texts sent, sessions seen)
COUNTED_ONLY = {"session", "sms_message", "notification", "login_attempt"}


class Snapshot:
    """Every stored row of the node (counts only where workers write)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.before = self.take()

    def take(self) -> dict[str, Any]:
        def read() -> dict[str, Any]:
            db = self.storage.db
            out: dict[str, Any] = {}
            for table in db.get_tables():
                if table in UNCOUNTED:
                    continue
                if table in COUNTED_ONLY:
                    out[table] = db.execute_sql(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0]
                else:
                    rows = db.execute_sql(f'SELECT * FROM "{table}"').fetchall()
                    out[table] = sorted(repr(r) for r in rows)
            return out

        return self.storage.call(read)

    def assert_unchanged(self) -> None:
        after = self.take()
        changed = [t for t in self.before if self.before[t] != after.get(t)]
        assert changed == [], f"stored data changed in {changed}"


async def send(client: Client, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
    headers = {"X-CSRF-Token": await csrf(client), **kwargs.pop("headers", {})}
    if body is not None:
        kwargs["json"] = body
    return await client.open(path, method=method, headers=headers, **kwargs)


async def refused(
    response: Any, status: int, message: str, field: str | None = None, case: Any = None
) -> None:
    """The answer is ``status`` with a JSON error whose message contains ``message``."""
    label = repr(case)[:80]
    assert response.status_code == status, (label, await response.get_data())
    error = (await response.get_json())["error"]
    assert message in error["message"], (label, error)
    if field is not None:
        assert error["field"] == field, (label, error)


@dataclass
class World:
    storage: Storage
    class_id: int


@pytest.fixture
def school(storage: Storage, ctx) -> World:  # type: ignore[no-untyped-def]
    """A teacher's class with a child and a guardian's invitation: ids 1 exist."""
    made = make_school(storage, ctx)
    invite(storage, ctx, made.teacher, made.child_id, phone=PARENT)
    return World(storage, made.class_id)


@pytest.fixture
def feed(storage: Storage, ctx) -> World:  # type: ignore[no-untyped-def]
    """A class whose teacher set up its encrypted group (files are attached to it)."""
    return World(storage, make_class_feed(storage, ctx, families=0).class_id)


async def as_teacher(app: Quart) -> Client:
    client = app.test_client()
    await api_login(client, TEACHER)
    return client


# --- Identifiers -----------------------------------------------------------------------

BAD_IDS = [
    "0",
    "-1",
    str(2**53),  # past the JSON-safe range: no row can have it
    str(2**63),  # SQLite's integers overflow here
    str(2**64),
    "9" * 5000,  # past int()'s 4,300-digit limit
    "1e3",
    "1.0",
    "0x1",
    "²",  # a digit to str.isdigit, not to int()
    "%2e%2e%2f1",  # ../1
    "..%2F..%2Fme",
    "1%00",
    "null",
]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/classes/{}"),
        ("POST", "/api/v1/classes/{}/children"),
        ("DELETE", "/api/v1/guardians/{}"),
    ],
)
async def test_a_malformed_id_in_a_path_is_a_404(
    app: Quart, school: World, method: str, path: str
) -> None:
    teacher = await as_teacher(app)
    snapshot = Snapshot(school.storage)
    body = {"first_name": "A", "last_name": "B"} if method == "POST" else None
    for raw in BAD_IDS:
        response = await send(teacher, method, path.format(raw), body)
        await refused(response, 404, "This page does not exist.", case=raw)
    snapshot.assert_unchanged()


async def test_a_nul_in_a_text_id_is_not_found(
    app: Quart,
    storage: Storage,
    ctx,  # type: ignore[no-untyped-def]
) -> None:
    """Regression: on PostgreSQL an alert id with a NUL reached the query and was a 500."""
    make_school(storage, ctx)
    admin = app.test_client()
    await api_login(admin, "admin@school.test")
    for path in ["/api/v1/alerts/%00", "/api/v1/alerts/a%00b/reach", "/api/v1/setup/a%00b"]:
        await refused(await admin.get(path), 404, "", case=path)
    assert (await admin.get("/alerts/%00")).status_code == 404


BAD_NUMBERS = ["²", "9" * 5000, "-1", "0", "1e3", "", "١", " 1", str(2**53)]


POSITIVE = "must be a positive whole number."


@pytest.mark.parametrize(
    ("path", "name", "message"),
    [
        ("/api/v1/feed?before=", "before", f"before {POSITIVE}"),
        ("/api/v1/feed?limit=", "limit", "limit must be between 1 and 50."),
        ("/api/v1/classes/1/posts?before=", "before", f"before {POSITIVE}"),
        ("/api/v1/me/export/posts?before=", "before", f"before {POSITIVE}"),
    ],
)
async def test_a_malformed_number_in_a_query_is_a_400(
    app: Quart, school: World, path: str, name: str, message: str
) -> None:
    """Regression: "²" and 5,000 digits passed ``str.isdigit`` and crashed ``int()`` (500)."""
    teacher = await as_teacher(app)
    for raw in BAD_NUMBERS:
        response = await teacher.get(path + quote(raw))
        await refused(response, 400, message, name, case=raw)


MASS_ASSIGNMENT = [
    ("/api/v1/classes", {"name": "CM1", "school_year": "2026-2027"}, "school_id", 2),
    ("/api/v1/classes/1/children", {"first_name": "A", "last_name": "B"}, "role", "admin"),
    (
        "/api/v1/children/1/guardians",
        {"display_name": "X", "phone": "+33639980042"},
        "is_admin",
        True,
    ),
    (
        "/api/v1/children/1/guardians",
        {"display_name": "X", "phone": "+33639980042"},
        "child_ids",
        [1, 2],
    ),
    (
        "/api/v1/children/1/guardians",
        {"display_name": "X", "phone": "+33639980042"},
        "account_id",
        1,
    ),
]


async def test_extra_fields_are_refused_not_assigned(app: Quart, school: World) -> None:
    teacher = await as_teacher(app)
    snapshot = Snapshot(school.storage)
    for path, body, extra, value in MASS_ASSIGNMENT:
        response = await send(teacher, "POST", path, {**body, extra: value})
        await refused(response, 400, f"Unknown field: {extra}.", extra, case=path)
    snapshot.assert_unchanged()


async def test_a_method_override_header_is_ignored(app: Quart, school: World) -> None:
    """A POST that asks to be a DELETE stays a POST: the route has none, so 405."""
    teacher = await as_teacher(app)
    snapshot = Snapshot(school.storage)
    for header in ("X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"):
        response = await send(teacher, "POST", "/api/v1/guardians/1", headers={header: "DELETE"})
        await refused(response, 405, "This action is not allowed here.", case=header)
    snapshot.assert_unchanged()


# --- Text ----------------------------------------------------------------------------------

BAD_NAMES = [
    ("Léa\x00", "This field contains characters that are not allowed."),
    ("\u202eaéL", "This name contains characters that are not allowed."),  # right-to-left override
    ("L\u200béa", "This name contains characters that are not allowed."),  # zero-width space
    ("x" * 201, "This field is too long."),  # one long word
    ("", "Enter a name."),
    ("   ", "Enter a name."),
]


async def test_a_bad_name_is_refused_with_a_reason(app: Quart, school: World) -> None:
    teacher = await as_teacher(app)
    snapshot = Snapshot(school.storage)
    for first_name, message in BAD_NAMES:
        body = {"first_name": first_name, "last_name": "Martin"}
        response = await send(teacher, "POST", f"/api/v1/classes/{school.class_id}/children", body)
        await refused(response, 400, message, "first_name", case=first_name)
    snapshot.assert_unchanged()


MARKUP = ["<script>alert(1)</script>", '<img src=x onerror="alert(1)">', "{{7*7}}{% raw %}"]


async def test_markup_in_a_name_is_kept_as_text_and_shown_escaped(
    app: Quart, school: World
) -> None:
    """Names are the node's plaintext (content is encrypted): HTML and template code stay text."""
    teacher = await as_teacher(app)
    for i, name in enumerate(MARKUP):
        body = {"first_name": name, "last_name": f"N{i}"}
        response = await send(teacher, "POST", f"/api/v1/classes/{school.class_id}/children", body)
        assert response.status_code == 201, await response.get_data()
        assert (await response.get_json())["first_name"] == name
    # a line break cannot reach a header or a CSV row: whitespace in names is one space
    body = {"first_name": "Léa\r\nSet-Cookie: x=1", "last_name": "Martin"}
    response = await send(teacher, "POST", f"/api/v1/classes/{school.class_id}/children", body)
    assert (await response.get_json())["first_name"] == "Léa Set-Cookie: x=1"
    page = (await (await teacher.get(f"/classes/{school.class_id}")).get_data()).decode()
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page
    assert "<img src=x" not in page
    assert "{{7*7}}" in page and "49{%" not in page


# --- JSON and HTTP ---------------------------------------------------------------------------


async def test_deep_nesting_and_a_body_one_byte_too_large_are_refused(
    app: Quart, school: World
) -> None:
    teacher = await as_teacher(app)
    snapshot = Snapshot(school.storage)
    path = f"/api/v1/classes/{school.class_id}/children"
    json_type = {"Content-Type": "application/json"}
    nested = b'{"first_name": ' + b"[" * 10_000 + b"]" * 10_000 + b', "last_name": "B"}'
    response = await send(teacher, "POST", path, data=nested, headers=json_type)
    await refused(response, 400, "The request body is not valid JSON.")
    limit = app.config["CARNET"].max_request_bytes
    prefix, suffix = b'{"first_name": "', b'", "last_name": "B"}'
    body = prefix + b"x" * (limit + 1 - len(prefix) - len(suffix)) + suffix
    assert len(body) == limit + 1
    response = await send(teacher, "POST", path, data=body, headers=json_type)
    await refused(response, 413, "What you sent is too large.")
    snapshot.assert_unchanged()


async def test_odd_cookies_and_many_headers(app: Quart) -> None:
    """A 64 KB or garbled session cookie is simply "not logged in"; 1,000 headers are served."""
    client = app.test_client()
    for cookie in ["x" * 65_536, "é" * 100, "; ; ;", "A" * 4096 + "=="]:
        response = await client.get(
            "/api/v1/me", headers={"Cookie": f"carnet_session={cookie}".encode()}
        )
        await refused(response, 401, "Log in first.", case=cookie[:20])
    headers = {f"X-Fuzz-{i}": "x" * 20 for i in range(1000)}
    assert (await client.get("/api/v1/session", headers=headers)).status_code == 200


@pytest.fixture
def node_config(node_config: dict[str, Any]) -> dict[str, Any]:
    return {**node_config, "login_failures_per_address_per_15min": 3}


async def test_x_forwarded_for_does_not_dodge_the_login_limit(app: Quart, school: World) -> None:
    """No proxy is trusted by default: the header is the client's word, not its address."""
    client = app.test_client()
    wrong = {"login": TEACHER, "login_secret": "A" * 43}
    statuses = []
    for i in range(4):
        response = await send(
            client, "POST", "/api/v1/auth/login", wrong,
            headers={"X-Forwarded-For": f"203.0.113.{i + 1}"},
        )  # fmt: skip
        statuses.append(response.status_code)
    assert statuses == [401, 401, 401, 429]


# --- Sign-in ---------------------------------------------------------------------------------


async def test_the_same_login_written_differently_is_the_same_person(
    app: Quart, school: World
) -> None:
    client = app.test_client()

    async def salt(login: str) -> str:
        response = await send(client, "POST", "/api/v1/auth/prelogin", {"login": login})
        assert response.status_code == 200, await response.get_data()
        value: str = (await response.get_json())["salt"]
        return value

    teacher = await salt(TEACHER)
    for written in [" dubois@school.test ", "DUBOIS@School.Test"]:
        assert await salt(written) == teacher, written
    other = await salt("nobody@school.test")
    assert other != teacher


BAD_LOGINS = [
    ("   ", "Enter your e-mail address or phone number."),
    ("dubois@school.test\x00", "This field contains characters that are not allowed."),
    ("x" * 255, "This field is too long."),
    ("06 39 98 00 0A", "Enter your e-mail address or phone number."),
    ("+1234567890123456", "Enter your e-mail address or phone number."),
]


async def test_a_malformed_login_is_a_400(app: Quart) -> None:
    client = app.test_client()
    response = await send(client, "POST", "/api/v1/auth/prelogin", {})
    await refused(response, 400, "This field is required.", "login")
    for login, message in BAD_LOGINS:
        response = await send(client, "POST", "/api/v1/auth/prelogin", {"login": login})
        await refused(response, 400, message, "login", case=login)


# --- Files (ciphertext uploads) -------------------------------------------------------------


async def started_upload(teacher: Client, class_id: int, size: int) -> str:
    response = await send(teacher, "POST", f"/api/v1/classes/{class_id}/blobs", {"size": size})
    assert response.status_code == 201, await response.get_data()
    blob_id: str = (await response.get_json())["id"]
    return blob_id


OCTETS = "application/octet-stream"
BAD_PARTS = [
    ("²", OCTETS, b"abc", 400, "The offset must be a whole number."),
    ("-1", OCTETS, b"abc", 400, "The offset must be a whole number."),
    ("9" * 20, OCTETS, b"abc", 400, "The offset must be a whole number."),
    ("0", "text/html", b"<script>", 400, "Send the part as application/octet-stream."),
    ("0", OCTETS, b"", 400, "A part must not be empty."),
    ("0", OCTETS, b"x" * 33, 400, "This part goes beyond the declared size."),
    ("5", OCTETS, b"abc", 409, "Parts must be sent in order"),
]


SIZE_ERRORS = (
    "An attachment must be at most 200 MB.",  # regression: was "at most %(mb)s MB."
    "This number is out of range.",
    "This field must be a whole number.",
    "This field is required.",
)


async def test_a_bad_upload_part_is_refused(app: Quart, feed: World) -> None:
    teacher = await as_teacher(app)
    blob_id = await started_upload(teacher, feed.class_id, 32)
    snapshot = Snapshot(feed.storage)
    for offset, content_type, data, status, message in BAD_PARTS:
        response = await send(
            teacher, "PUT", f"/api/v1/blobs/{blob_id}?offset={quote(offset)}", data=data,
            headers={"Content-Type": content_type},
        )  # fmt: skip
        await refused(response, status, message, case=(offset, content_type, len(data)))
    for size in [0, -1, 15, 10**12, "16", None]:
        response = await send(
            teacher, "POST", f"/api/v1/classes/{feed.class_id}/blobs", {"size": size}
        )
        assert response.status_code == 400, await response.get_data()
        error = (await response.get_json())["error"]
        assert error["field"] == "size", error
        assert error["message"] in SIZE_ERRORS, error
    # past 2**53 a number is not exact in JavaScript: the strict JSON parser refuses it whole
    response = await send(
        teacher, "POST", f"/api/v1/classes/{feed.class_id}/blobs", {"size": 2**63}
    )
    await refused(response, 400, "The request body is not valid JSON.")
    snapshot.assert_unchanged()


async def test_a_file_whose_bytes_do_not_match_is_refused_and_an_html_polyglot_is_served_inert(
    app: Quart, feed: World
) -> None:
    """The node serves ciphertext; even bytes that look like HTML are never run by a browser."""
    teacher = await as_teacher(app)
    polyglot = b"\xff\xd8\xff\xe0<html><script>alert(1)</script></html>"
    blob_id = await started_upload(teacher, feed.class_id, len(polyglot))
    part = await send(
        teacher, "PUT", f"/api/v1/blobs/{blob_id}?offset=0", data=polyglot,
        headers={"Content-Type": OCTETS},
    )  # fmt: skip
    assert part.status_code == 200, await part.get_data()
    wrong = b64(hashlib.sha256(b"other").digest())
    done = await send(teacher, "POST", f"/api/v1/blobs/{blob_id}/complete", {"sha256": wrong})
    await refused(done, 400, "do not match their checksum")
    right = b64(hashlib.sha256(polyglot).digest())
    done = await send(teacher, "POST", f"/api/v1/blobs/{blob_id}/complete", {"sha256": right})
    assert done.status_code == 200, await done.get_data()
    served = await teacher.get(f"/api/v1/blobs/{blob_id}")
    assert served.status_code == 200
    assert served.headers["Content-Type"] == OCTETS
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'self'" in served.headers["Content-Security-Policy"]


# --- Web Push subscriptions -------------------------------------------------------------------


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


#: the P-256 generator point: a valid uncompressed public key
P256DH = b64(
    bytes.fromhex(
        "04"
        "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
        "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5"
    )
)
AUTH = b64(b"0123456789abcdef")
ENDPOINT = "https://push.example.net/send/abc"
HTTPS = "https address"
BAD_SUBSCRIPTIONS = [
    ({"endpoint": "https://127.0.0.1/x"}, "endpoint", HTTPS),
    ({"endpoint": "https://169.254.169.254/latest"}, "endpoint", HTTPS),  # cloud metadata
    ({"endpoint": "https://[::1]/x"}, "endpoint", HTTPS),
    ({"endpoint": "file:///etc/passwd"}, "endpoint", HTTPS),
    ({"endpoint": "https://push.localhost/x"}, "endpoint", HTTPS),
    ({"endpoint": "https://metadata.internal/x"}, "endpoint", HTTPS),
    ({"endpoint": "https://user:pw@push.example.net/x"}, "endpoint", HTTPS),
    ({"endpoint": "https://push.example.net/" + "x" * 10_000}, "endpoint", "too long"),
    ({"p256dh": b64(b"\x02" + bytes(32))}, "p256dh", ""),  # a compressed point
    ({"p256dh": b64(b"\x04" + bytes(63) + b"\x01")}, "p256dh", ""),  # not on the curve
    ({"auth": b64(bytes(15))}, "auth", ""),
    ({"auth": b64(bytes(17))}, "auth", ""),
]


async def test_a_bad_push_subscription_is_refused(app: Quart, school: World) -> None:
    teacher = await as_teacher(app)
    snapshot = Snapshot(school.storage)
    for change, field, message in BAD_SUBSCRIPTIONS:
        body = {"endpoint": ENDPOINT, "p256dh": P256DH, "auth": AUTH, **change}
        response = await send(teacher, "POST", "/api/v1/push/subscriptions", body)
        await refused(response, 400, message, field, case=change)
    snapshot.assert_unchanged()
    for _ in range(2):  # the same browser twice is one device
        body = {"endpoint": ENDPOINT, "p256dh": P256DH, "auth": AUTH}
        response = await send(teacher, "POST", "/api/v1/push/subscriptions", body)
        assert response.status_code in (200, 201), await response.get_data()
    devices = await (await teacher.get("/api/v1/push/subscriptions")).get_json()
    assert len(devices) == 1


# --- Time -------------------------------------------------------------------------------------

BAD_TIMES = ["24:00", "23:60", "7:5", "12:00:00", "１２:００", "-1:00", "ab:cd", "25:00"]


async def test_a_time_that_is_not_a_time_of_day_is_refused(app: Quart, school: World) -> None:
    teacher = await as_teacher(app)
    snapshot = Snapshot(school.storage)
    for value in BAD_TIMES:
        body = {"quiet_start": value, "quiet_end": "07:00"}
        response = await send(teacher, "PUT", "/api/v1/notifications/settings", body)
        message = "This field is too long." if len(value) > 5 else "Enter a time like 21:30."
        await refused(response, 400, message, case=value)
    snapshot.assert_unchanged()


# --- What other servers answer ----------------------------------------------------------------


def test_an_odd_retry_after_from_a_push_service_is_ignored() -> None:
    """Regression: 5,000 digits passed ``str.isdigit`` and made ``int()`` raise in the worker."""
    for value in ["²", "-1", "1e3", "soon", "\x00"]:
        assert parse_retry_after(value) is None, value
    assert parse_retry_after("9" * 5000) == 999_999_999
    assert parse_retry_after(" 120 ") == 120
