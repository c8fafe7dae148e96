"""CSRF: every state-changing route, API or page, refuses requests without the right token or from another site."""

from __future__ import annotations

import re

import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client

from node.services.context import ServiceContext
from node.storage.db import Storage
from tests.factories import api_login, csrf, invite, make_school

STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}


async def login(client: Client, who: str) -> str:
    """Log in; return the CSRF token the login answer carries."""
    new_token: str = (await api_login(client, who))["csrf_token"]
    return new_token


def state_changing_routes(app: Quart) -> list[tuple[str, str, str]]:
    """(method, concrete path, endpoint) for every rule that changes state, ids filled with 1."""
    exempt = app.config["CARNET_CSRF_EXEMPT"]
    routes = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in exempt:
            continue
        path = re.sub(r"<int:\w+>", "1", rule.rule)
        path = re.sub(r"<(?:\w+:)?\w+>", "some-token", path)
        for method in sorted((rule.methods or set()) & STATE_CHANGING):
            routes.append((method, path, rule.endpoint))
    return routes


def row_counts(storage: Storage) -> dict[str, int]:
    db = storage.db

    def count() -> dict[str, int]:
        return {
            t: db.execute_sql(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0]
            for t in db.get_tables()
            if t != "rate_event"
        }

    return storage.call(count)


def refused_by_csrf(status: int, text: str) -> bool:
    return status == 403 and ("another site" in text or "Reload the page" in text)


@pytest.fixture
async def logged_in_admin(client: Client, storage: Storage, ctx: ServiceContext) -> str:
    school = make_school(storage, ctx)
    invite(storage, ctx, school.teacher, school.child_id)
    return await login(client, "admin@school.test")


def test_the_app_has_state_changing_routes_to_check(app: Quart) -> None:
    endpoints = {endpoint for _, _, endpoint in state_changing_routes(app)}
    # API and pages both: a regression that drops a blueprint would empty this list.
    assert {"api.create_class", "api.login", "api.remove_guardian"} <= endpoints
    assert {"teacher.add_child", "admin.create_staff", "pages.language", "auth.logout"} <= endpoints
    assert "api.sms_status" not in endpoints


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-CSRF-Token": ""},
        {"X-CSRF-Token": "0" * 64},
    ],
    ids=["no-token", "empty-token", "forged-token"],
)
async def test_every_state_changing_route_refuses_a_missing_or_forged_token(
    app: Quart, client: Client, storage: Storage, logged_in_admin: str, headers: dict[str, str]
) -> None:
    before = row_counts(storage)
    for method, path, endpoint in state_changing_routes(app):
        for body in ({"json": {}}, {"form": {"csrf_token": headers.get("X-CSRF-Token", "")}}):
            response = await client.open(path, method=method, headers=headers, **body)
            text = await response.get_data(as_text=True)
            assert refused_by_csrf(response.status_code, text), (method, path, endpoint)
    assert row_counts(storage) == before
    assert (await client.get("/api/v1/me")).status_code == 200  # still logged in


@pytest.mark.parametrize(
    "site_headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "http://evil.test"},
        {"Origin": "null"},
        {"Origin": "http://127.0.0.1:8001"},
    ],
    ids=["cross-site", "same-site", "evil-origin", "null-origin", "other-port"],
)
async def test_every_state_changing_route_refuses_other_sites_even_with_the_token(
    app: Quart,
    client: Client,
    storage: Storage,
    logged_in_admin: str,
    site_headers: dict[str, str],
) -> None:
    token = logged_in_admin
    before = row_counts(storage)
    for method, path, endpoint in state_changing_routes(app):
        response = await client.open(
            path, method=method, headers={"X-CSRF-Token": token, **site_headers}, json={}
        )
        text = await response.get_data(as_text=True)
        assert response.status_code == 403, (method, path, endpoint)
        assert "another site" in text, (method, path, endpoint)
        response = await client.open(
            path, method=method, headers=site_headers, form={"csrf_token": token}
        )
        assert response.status_code == 403, (method, path, endpoint)
    assert row_counts(storage) == before


async def test_the_right_token_from_this_site_is_accepted(
    client: Client, logged_in_admin: str
) -> None:
    headers = {
        "X-CSRF-Token": logged_in_admin,
        "Sec-Fetch-Site": "same-origin",
        "Origin": "http://127.0.0.1:8000",
    }
    response = await client.post(
        "/api/v1/classes", json={"name": "CM1", "teacher_id": 2}, headers=headers
    )
    assert response.status_code == 201


async def test_a_token_from_before_login_is_refused_after_login(
    client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    make_school(storage, ctx)
    anonymous_token = await csrf(client)
    fresh_token = await login(client, "dubois@school.test")
    assert fresh_token != anonymous_token
    response = await client.post(
        "/api/v1/classes", json={"name": "CM1"}, headers={"X-CSRF-Token": anonymous_token}
    )
    assert response.status_code == 403
    response = await client.post("/classes", form={"csrf_token": anonymous_token, "name": "CM1"})
    assert response.status_code == 403
    classes = await (await client.get("/api/v1/classes")).get_json()
    assert [c["name"] for c in classes] == ["CE1 A"]
    response = await client.post(
        "/api/v1/classes", json={"name": "CM1"}, headers={"X-CSRF-Token": fresh_token}
    )
    assert response.status_code == 201


async def test_a_token_of_another_browser_is_refused(
    app: Quart, client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    make_school(storage, ctx)
    await login(client, "dubois@school.test")
    other_browser_token = await csrf(app.test_client())
    response = await client.post(
        "/api/v1/classes", json={"name": "CM1"}, headers={"X-CSRF-Token": other_browser_token}
    )
    assert response.status_code == 403


async def test_the_token_is_required_even_without_a_csrf_cookie(
    app: Quart, storage: Storage, ctx: ServiceContext
) -> None:
    make_school(storage, ctx)
    cookieless = app.test_client()
    cookieless.cookie_jar = None  # type: ignore[attr-defined]
    response = await cookieless.post("/api/v1/auth/prelogin", json={"login": "a@b.test"})
    assert response.status_code == 403
