"""Headers every response carries, the language switch, logging out, and error pages."""

from __future__ import annotations

import re

import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client

from node.services.context import ServiceContext
from node.storage.db import Storage
from tests.factories import api_login as login
from tests.factories import make_school


def page_token(text: str) -> str:
    match = re.search(r'<meta name="csrf-token" content="([0-9a-f]{64})">', text)
    assert match is not None
    return match[1]


def assert_security_headers(response: object, where: str) -> None:
    headers = response.headers  # type: ignore[attr-defined]
    csp = headers.get("Content-Security-Policy", "")
    directives = {d.strip().split(" ", 1)[0]: d.strip() for d in csp.split(";")}
    assert directives.get("object-src") == "object-src 'none'", where
    assert directives.get("base-uri") == "base-uri 'none'", where
    assert directives.get("frame-ancestors") == "frame-ancestors 'none'", where
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp, where
    assert headers.get("X-Content-Type-Options") == "nosniff", where
    assert headers.get("Referrer-Policy") in ("same-origin", "no-referrer", "strict-origin"), where
    assert headers.get("X-Frame-Options") == "DENY", where


async def test_every_kind_of_response_has_the_security_headers(
    client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    make_school(storage, ctx)
    anonymous = [
        ("/login", 200),
        ("/welcome", 200),
        ("/setup/not-a-token", 404),
        ("/no/such/page", 404),
        ("/static/css/carnet.css", 200),
        ("/static/js/e2e/suite.js", 200),
        ("/static/no-such-file.js", 404),
        ("/healthz", 200),
        ("/api/v1/session", 200),
        ("/api/v1/nothing-here", 404),
        ("/classes", 302),
    ]
    for path, status in anonymous:
        response = await client.get(path)
        assert response.status_code == status, path
        assert_security_headers(response, path)
    response = await client.post("/api/v1/auth/prelogin", json={"login": "x@y.test"})
    assert response.status_code == 403
    assert_security_headers(response, "csrf refusal")
    await login(client, "dubois@school.test")
    for path, status in (("/classes", 200), ("/admin", 403), ("/classes/99", 404)):
        response = await client.get(path)
        assert response.status_code == status, path
        assert_security_headers(response, path)


async def test_pages_that_carry_secrets_are_not_cached(client: Client) -> None:
    for path in ("/login", "/welcome", "/api/v1/session"):
        response = await client.get(path)
        assert response.headers["Cache-Control"] == "no-store", path


async def test_404_page_is_html_and_api_404_is_json(client: Client) -> None:
    page = await client.get("/no/such/page")
    assert page.status_code == 404
    assert "text/html" in page.headers["Content-Type"]
    assert "This page does not exist." in await page.get_data(as_text=True)
    api = await client.get("/api/v1/no/such/thing")
    assert api.status_code == 404
    assert (await api.get_json())["error"]["code"] == "not_found"


async def test_language_switch_sets_a_cookie_and_the_page_language(client: Client) -> None:
    text = await (await client.get("/login")).get_data(as_text=True)
    assert '<html lang="en">' in text
    token = page_token(text)
    response = await client.post(
        "/language", form={"csrf_token": token, "locale": "fr", "next": "/login"}
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/login"
    cookie = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("carnet_lang=")]
    assert len(cookie) == 1
    assert cookie[0].startswith("carnet_lang=fr;")
    assert "SameSite=Lax" in cookie[0]
    text = await (await client.get("/login")).get_data(as_text=True)
    assert '<html lang="fr">' in text
    # The cookie wins over the browser's preference.
    text = await (
        await client.get("/login", headers={"Accept-Language": "en-GB,en;q=0.9"})
    ).get_data(as_text=True)
    assert '<html lang="fr">' in text


@pytest.mark.parametrize(
    "target", ["//evil.test/", "https://evil.test/", "evil", "/\\evil.test/", "/\\/evil.test/"]
)
async def test_language_switch_never_redirects_off_site(client: Client, target: str) -> None:
    token = page_token(await (await client.get("/login")).get_data(as_text=True))
    response = await client.post(
        "/language", form={"csrf_token": token, "locale": "en", "next": target}
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


async def test_unknown_locale_sets_no_cookie(client: Client) -> None:
    token = page_token(await (await client.get("/login")).get_data(as_text=True))
    response = await client.post(
        "/language", form={"csrf_token": token, "locale": "xx", "next": "/login"}
    )
    assert response.status_code == 302
    assert not [c for c in response.headers.getlist("Set-Cookie") if "carnet_lang=" in c]


async def test_language_switch_needs_the_token(client: Client) -> None:
    await client.get("/login")
    response = await client.post("/language", form={"locale": "fr", "next": "/login"})
    assert response.status_code == 403
    assert not [c for c in response.headers.getlist("Set-Cookie") if "carnet_lang=" in c]


async def test_logout_form_ends_the_session(
    app: Quart, client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    make_school(storage, ctx)
    await login(client, "dubois@school.test")
    text = await (await client.get("/classes")).get_data(as_text=True)
    assert 'action="/logout"' in text
    session = next(c.value for c in client.cookie_jar if c.name == "carnet_session")  # type: ignore[attr-defined]
    response = await client.post("/logout", form={"csrf_token": page_token(text)})
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?bye=1"
    assert (await client.get("/classes")).status_code == 302
    replay = app.test_client()
    replay.set_cookie("localhost", "carnet_session", session)  # type: ignore[attr-defined]
    assert (await replay.get("/api/v1/me")).status_code == 401


async def test_oversized_form_is_413(
    app: Quart, client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    school = make_school(storage, ctx)
    await login(client, "dubois@school.test")
    text = await (await client.get(f"/classes/{school.class_id}")).get_data(as_text=True)
    limit = app.config["CARNET"].max_request_bytes
    response = await client.post(
        f"/classes/{school.class_id}/children",
        form={"csrf_token": page_token(text), "first_name": "x" * (limit + 1), "last_name": "Y"},
    )
    assert response.status_code == 413
    assert "too large" in await response.get_data(as_text=True)
    assert_security_headers(response, "413")


async def test_static_files_do_not_look_up_the_session(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from node.services import accounts

    calls: list[str] = []
    monkeypatch.setattr(accounts, "authenticate", lambda *a: calls.append("auth"))
    client.set_cookie("127.0.0.1", "carnet_session", "x" * 43)
    response = await client.get("/static/css/carnet.css")
    assert response.status_code == 200
    assert calls == []
