"""Logging in and out over the JSON API: cookies, fixation, uniform errors, limits, revocation."""

from __future__ import annotations

from typing import Any

import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client

from node.refclient import credentials_json
from node.services.context import ServiceContext
from node.storage import accounts as account_store
from node.storage.db import Storage
from tests.factories import client_account, csrf, make_school, secret_for

#: Small enough to reach in a test; the defaults are 100 an hour and 10 per 15 minutes.
ACCOUNT_LIMIT = 6
ADDRESS_LIMIT = 4


@pytest.fixture
def node_config(node_config: dict[str, Any]) -> dict[str, Any]:
    return {
        **node_config,
        "login_failures_per_account_per_hour": ACCOUNT_LIMIT,
        "login_failures_per_address_per_15min": ADDRESS_LIMIT,
    }


async def post(client: Client, path: str, body: Any = None, ip: str = "192.0.2.1") -> Any:
    token = await csrf(client)
    kwargs: dict[str, Any] = {"headers": {"X-CSRF-Token": token}}
    if body is not None:
        kwargs["json"] = body
    return await client.post(path, scope_base={"client": (ip, 40000)}, **kwargs)


async def prelogin(client: Client, login: str) -> dict[str, Any]:
    response = await post(client, "/api/v1/auth/prelogin", {"login": login})
    assert response.status_code == 200
    body: dict[str, Any] = await response.get_json()
    return body


async def login(client: Client, who: str, secret: str | None = None, ip: str = "192.0.2.1") -> Any:
    if secret is None:
        pre = await prelogin(client, who)
        secret = secret_for(pre["salt"], pre["iterations"])
    return await post(client, "/api/v1/auth/login", {"login": who, "login_secret": secret}, ip)


def session_cookie(response: Any) -> str:
    """The Set-Cookie line of the session cookie."""
    lines = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("carnet_session=")]
    assert len(lines) == 1, response.headers.getlist("Set-Cookie")
    line: str = lines[0]
    return line


def cookie_value(line: str) -> str:
    return line.split(";", 1)[0].split("=", 1)[1]


def jar_session(client: Client) -> str | None:
    for cookie in client.cookie_jar:  # type: ignore[attr-defined]
        if cookie.name == "carnet_session":
            value: str = cookie.value
            return value
    return None


async def me_status(app: Quart, token: str) -> int:
    """Whether a raw session token authenticates, from a fresh browser."""
    fresh = app.test_client()
    fresh.set_cookie("localhost", "carnet_session", token)  # type: ignore[attr-defined]
    return (await fresh.get("/api/v1/me")).status_code


WRONG = "A" * 43  # a well-formed login secret nobody derived


async def test_login_sets_a_strict_session_cookie(
    client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    make_school(storage, ctx)
    response = await login(client, "dubois@school.test")
    assert response.status_code == 200
    line = session_cookie(response)
    attributes = [part.strip().lower() for part in line.split(";")]
    assert "httponly" in attributes
    assert "samesite=lax" in attributes
    assert "path=/" in attributes
    assert "secure" not in attributes  # plain http: browsers would drop it
    body = await response.get_json()
    assert body["account"]["role"] == "teacher"
    assert body["vault"]["sign_pk"] == client_account("dubois@school.test").credentials.sign_pk
    assert len(body["csrf_token"]) == 64
    me = await client.get("/api/v1/me")
    assert me.status_code == 200
    assert (await me.get_json())["display_name"] == "M. Dubois"


async def test_each_login_gets_a_new_token_and_a_planted_cookie_is_not_adopted(
    app: Quart, client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    make_school(storage, ctx)
    planted = "planted-by-an-attacker-0123456789"
    client.set_cookie("localhost", "carnet_session", planted)  # type: ignore[attr-defined]
    first = cookie_value(session_cookie(await login(client, "dubois@school.test")))
    second = cookie_value(session_cookie(await login(client, "dubois@school.test")))
    assert planted not in (first, second)
    assert first != second
    assert len(second) >= 43
    assert jar_session(client) == second
    assert await me_status(app, planted) == 401
    assert await me_status(app, second) == 200


async def test_wrong_secret_and_unknown_login_get_the_same_401(
    client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    make_school(storage, ctx)
    wrong = await login(client, "dubois@school.test", WRONG)
    unknown = await login(client, "nobody@school.test", WRONG)
    unknown_phone = await login(client, "06 11 22 33 44", WRONG)
    assert wrong.status_code == unknown.status_code == unknown_phone.status_code == 401
    bodies = [await r.get_json() for r in (wrong, unknown, unknown_phone)]
    assert bodies[0] == bodies[1] == bodies[2]
    assert "Set-Cookie" not in wrong.headers or "carnet_session=" not in wrong.headers["Set-Cookie"]
    assert (await client.get("/api/v1/me")).status_code == 401


@pytest.mark.parametrize("secret", ["", "short", "!" * 43, "A" * 65, 42, None])
async def test_malformed_login_secret_is_400(
    client: Client, storage: Storage, ctx: ServiceContext, secret: Any
) -> None:
    make_school(storage, ctx)
    response = await post(
        client, "/api/v1/auth/login", {"login": "dubois@school.test", "login_secret": secret}
    )
    assert response.status_code == 400
    assert (await response.get_json())["error"]["field"] == "login_secret"


async def test_prelogin_gives_a_stable_fake_salt_for_unknown_logins(
    client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    make_school(storage, ctx)
    real = await prelogin(client, "dubois@school.test")
    assert real["salt"] == client_account("dubois@school.test").credentials.kdf_salt
    unknown = await prelogin(client, "nobody@school.test")
    again = await prelogin(client, "NOBODY@school.test ")
    other = await prelogin(client, "someone@school.test")
    assert unknown == again
    assert unknown["salt"] not in (real["salt"], other["salt"])
    assert unknown["iterations"] == real["iterations"] >= 600_000
    assert len(unknown["salt"]) == len(real["salt"])
    assert set(unknown) == set(real) == {"salt", "iterations"}


async def test_prelogin_does_not_reveal_a_pending_account(
    client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    from node.services import accounts

    school = make_school(storage, ctx)
    storage.call(
        accounts.create_staff, ctx, school.admin, "teacher", "Mme Neuve", "neuve@school.test"
    )
    pending = await prelogin(client, "neuve@school.test")
    assert pending == await prelogin(client, "neuve@school.test")
    response = await login(client, "neuve@school.test", WRONG)
    assert response.status_code == 401


async def test_strangers_failures_never_lock_out_the_real_person(
    client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    make_school(storage, ctx)
    # A distributed guesser passes the per-account ceiling (NIST: 100/hour)...
    for i in range(ACCOUNT_LIMIT):
        response = await login(client, "dubois@school.test", WRONG, ip=f"198.51.100.{i + 1}")
        assert response.status_code == 401
    # ...an address that already failed is now refused, right passphrase or not...
    refused = await login(client, "dubois@school.test", ip="198.51.100.1")
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert "carnet_session=" not in refused.headers.get("Set-Cookie", "")
    # ...but the teacher, from an address that never failed, still logs in.
    assert (await login(client, "dubois@school.test", ip="203.0.113.200")).status_code == 200


async def test_one_address_is_limited_per_login(
    client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    make_school(storage, ctx)
    for _ in range(ADDRESS_LIMIT):
        assert (
            await login(client, "dubois@school.test", WRONG, ip="198.51.100.7")
        ).status_code == 401
    assert (await login(client, "dubois@school.test", ip="198.51.100.7")).status_code == 429
    # The same address may still log in to another account, and the teacher elsewhere.
    assert (await login(client, "admin@school.test", ip="198.51.100.7")).status_code == 200
    assert (await login(client, "dubois@school.test", ip="203.0.113.5")).status_code == 200


async def test_ipv6_addresses_of_one_64_share_a_limit(
    client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    make_school(storage, ctx)
    for i in range(ADDRESS_LIMIT):
        response = await login(client, "dubois@school.test", WRONG, ip=f"2001:db8:1:2::{i + 1:x}")
        assert response.status_code == 401
    assert (await login(client, "dubois@school.test", ip="2001:db8:1:2::ffff")).status_code == 429
    assert (await login(client, "dubois@school.test", ip="2001:db8:1:3::1")).status_code == 200


async def test_unknown_and_known_logins_are_limited_alike(
    client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    make_school(storage, ctx)
    statuses = {}
    for who in ("dubois@school.test", "nobody@school.test"):
        answers = [
            (await login(client, who, WRONG, ip="198.51.100.9")).status_code
            for _ in range(ADDRESS_LIMIT + 1)
        ]
        statuses[who] = answers
    expected = [401] * ADDRESS_LIMIT + [429]
    assert statuses["dubois@school.test"] == statuses["nobody@school.test"] == expected


async def test_logout_revokes_the_session(
    app: Quart, client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    make_school(storage, ctx)
    token = cookie_value(session_cookie(await login(client, "dubois@school.test")))
    response = await post(client, "/api/v1/auth/logout")
    assert response.status_code == 200
    cleared = session_cookie(response)
    assert cookie_value(cleared) == ""
    assert (await client.get("/api/v1/me")).status_code == 401
    assert await me_status(app, token) == 401


async def test_disabling_an_account_ends_its_sessions_at_once(
    app: Quart, client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    school = make_school(storage, ctx)
    teacher = app.test_client()
    assert (await login(teacher, "dubois@school.test")).status_code == 200
    assert (await teacher.get("/api/v1/classes")).status_code == 200
    await login(client, "admin@school.test")
    response = await post(client, f"/api/v1/accounts/{school.teacher.account_id}/disable")
    assert response.status_code == 200
    assert (await response.get_json())["status"] == "disabled"
    assert (await teacher.get("/api/v1/classes")).status_code == 401
    assert (await teacher.get("/api/v1/me")).status_code == 401
    again = await login(teacher, "dubois@school.test")
    assert again.status_code == 401
    assert (await again.get_json())["error"]["message"] == "Wrong login or passphrase."


async def test_admin_cannot_disable_themselves_or_be_disabled_by_a_teacher(
    app: Quart, client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    school = make_school(storage, ctx)
    await login(client, "admin@school.test")
    response = await post(client, f"/api/v1/accounts/{school.admin.account_id}/disable")
    assert response.status_code == 409
    teacher = app.test_client()
    await login(teacher, "dubois@school.test")
    response = await post(teacher, f"/api/v1/accounts/{school.admin.account_id}/disable")
    assert response.status_code == 403
    admin = storage.call(account_store.select_account, school.admin.account_id)
    assert admin is not None and admin.status == "active"


async def test_staff_setup_link_works_once(
    client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    make_school(storage, ctx)
    await login(client, "admin@school.test")
    response = await post(
        client,
        "/api/v1/staff",
        {"role": "teacher", "display_name": "Mme Teacher", "email": "teacher@school.test"},
    )
    assert response.status_code == 201
    created = await response.get_json()
    token = created["setup_url"].rsplit("/setup/", 1)[1]
    assert created["account"]["status"] == "pending"
    assert "teacher@school.test" not in str(created["account"])

    visitor = client.app.test_client()  # type: ignore[attr-defined]
    info = await (await visitor.get(f"/api/v1/setup/{token}")).get_json()
    assert info["login"] == "teacher@school.test"
    creds = credentials_json(client_account("teacher@school.test").credentials)
    wrong_login = credentials_json(client_account("dubois@school.test").credentials)
    response = await post(visitor, f"/api/v1/setup/{token}", wrong_login)
    assert response.status_code == 400
    assert (await response.get_json())["error"]["field"] == "proof"
    response = await post(visitor, f"/api/v1/setup/{token}", {**creds, "role": "admin"})
    assert response.status_code == 400
    response = await post(visitor, f"/api/v1/setup/{token}", creds)
    assert response.status_code == 201
    assert (await response.get_json())["account"]["role"] == "teacher"
    response = await post(visitor, f"/api/v1/setup/{token}", creds)
    assert response.status_code == 410
    assert (await visitor.get("/api/v1/setup/not-a-real-token")).status_code == 404


async def test_staff_creation_refuses_unknown_fields_and_bad_roles(
    client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    make_school(storage, ctx)
    await login(client, "admin@school.test")
    staff_before = await (await client.get("/api/v1/staff")).get_json()
    for body in (
        {"role": "guardian", "display_name": "X", "email": "x@school.test"},
        {"role": "teacher", "display_name": "X", "email": "not-an-email"},
        {"role": "teacher", "display_name": "", "email": "x@school.test"},
        {"role": "teacher", "display_name": "X", "email": "x@school.test", "status": "active"},
        {"role": "teacher", "display_name": "X", "email": "dubois@school.test"},
    ):
        response = await post(client, "/api/v1/staff", body)
        assert response.status_code in (400, 409), body
    assert await (await client.get("/api/v1/staff")).get_json() == staff_before
