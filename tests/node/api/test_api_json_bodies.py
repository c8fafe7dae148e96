"""Bad JSON bodies get a 400 that names the problem, and change nothing."""

from __future__ import annotations

import pytest
from quart.typing import TestClientProtocol as Client

from tests.factories import csrf


@pytest.mark.parametrize(
    "body",
    [
        b'{"login": "a@b.test", "login": "c@d.test"}',  # duplicate keys
        b'{"login": NaN}',
        b'{"login": 1e309}',
        b'{"login": 1.5}',
        b"[" * 100 + b"]" * 100,  # nesting
        b'{"login": "a@b.test"} trailing',
        b'{"login": "\\ud800"}',  # lone surrogate
        b"\xff\xfe",
    ],
)
async def test_malformed_json_is_refused(client: Client, body: bytes) -> None:
    token = await csrf(client)
    response = await client.post(
        "/api/v1/auth/prelogin",
        data=body,
        headers={"Content-Type": "application/json", "X-CSRF-Token": token},
    )
    assert response.status_code == 400
    assert (await response.get_json())["error"]["code"] == "invalid"


async def test_wrong_content_type_is_refused(client: Client) -> None:
    token = await csrf(client)
    response = await client.post(
        "/api/v1/auth/prelogin",
        data=b"login=a@b.test",
        headers={"Content-Type": "text/plain", "X-CSRF-Token": token},
    )
    assert response.status_code == 400
    assert "application/json" in (await response.get_json())["error"]["message"]
