"""Served over HTTPS, the cookies take the ``__Host-`` prefix and ``Secure``; HSTS is on."""

from __future__ import annotations

from typing import Any

import pytest
from quart.typing import TestClientProtocol as Client

from node.refclient import login_secret
from node.services.context import ServiceContext
from node.storage.db import Storage
from tests.factories import PASSPHRASE, make_school


@pytest.fixture
def node_config(node_config: dict[str, Any]) -> dict[str, Any]:
    return {**node_config, "public_url": "https://carnet.school.test"}


async def test_https_cookies_are_host_prefixed_and_secure(
    client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    make_school(storage, ctx)
    session = await client.get("/api/v1/session", scheme="https")
    assert "max-age=31536000" in session.headers["Strict-Transport-Security"]
    csrf_line = session.headers["Set-Cookie"]
    assert csrf_line.startswith("__Host-carnet_csrf=")
    assert "Secure" in csrf_line
    token = (await session.get_json())["csrf_token"]
    headers = {"X-CSRF-Token": token, "Origin": "https://carnet.school.test"}
    pre = await client.post(
        "/api/v1/auth/prelogin",
        json={"login": "dubois@school.test"},
        headers=headers,
        scheme="https",
    )
    salt = await pre.get_json()
    secret = login_secret(PASSPHRASE, salt["salt"], salt["iterations"])
    response = await client.post(
        "/api/v1/auth/login",
        json={"login": "dubois@school.test", "login_secret": secret},
        headers=headers,
        scheme="https",
    )
    assert response.status_code == 200
    lines = [c for c in response.headers.getlist("Set-Cookie") if "carnet_session=" in c]
    assert len(lines) == 1
    assert lines[0].startswith("__Host-carnet_session=")
    attributes = {part.strip().lower() for part in lines[0].split(";")}
    assert {"secure", "httponly", "samesite=lax", "path=/"} <= attributes
    assert not any(a.startswith("domain=") for a in attributes)
    # The browser sends the __Host- cookie back over https: the session works.
    assert (await client.get("/api/v1/me", scheme="https")).status_code == 200
    # http://carnet.school.test is another origin than the https node.
    plain = await client.post(
        "/api/v1/auth/prelogin",
        json={"login": "dubois@school.test"},
        headers={**headers, "Origin": "http://carnet.school.test"},
        scheme="https",
    )
    assert plain.status_code == 403
