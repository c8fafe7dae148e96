"""The SMS provider's delivery reports: shared secret, no CSRF, clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client

from node.app import create_app
from node.services import sms_outbox
from node.services.context import ServiceContext
from node.storage.db import Storage

SECRET = "provider-shared-secret"


@pytest.fixture
async def app(node_config: dict[str, Any]) -> Any:
    application = create_app({**node_config, "sms": {"status_secret": SECRET}})
    async with application.test_app():
        # the texts stay queued: the worker sending one would overwrite the status a test reports
        await application.extensions["carnet_sms"].stop()
        yield application


def queue_text(app: Quart) -> str:
    storage: Storage = app.config["CARNET_STORAGE"]
    ctx: ServiceContext = app.config["CARNET_CTX"]
    return storage.call(sms_outbox.enqueue, ctx, "+33639980001", "first-login", "hello")


async def test_delivery_report_updates_status_without_session_or_csrf(
    app: Quart, client: Client
) -> None:
    reference = queue_text(app)
    response = await client.post(
        "/api/v1/sms/status",
        json={"reference": reference, "status": "delivered"},
        headers={"X-Carnet-Sms-Secret": SECRET},
    )
    assert response.status_code == 200
    storage: Storage = app.config["CARNET_STORAGE"]
    assert storage.call(sms_outbox.status_of, app.config["CARNET_CTX"], reference) == "delivered"


async def test_wrong_secret_is_refused_and_changes_nothing(app: Quart, client: Client) -> None:
    reference = queue_text(app)
    response = await client.post(
        "/api/v1/sms/status",
        json={"reference": reference, "status": "delivered"},
        headers={"X-Carnet-Sms-Secret": "guess"},
    )
    assert response.status_code == 403
    storage: Storage = app.config["CARNET_STORAGE"]
    assert storage.call(sms_outbox.status_of, app.config["CARNET_CTX"], reference) == "queued"


async def test_unknown_reference_and_bad_body(client: Client) -> None:
    headers = {"X-Carnet-Sms-Secret": SECRET}
    unknown = await client.post(
        "/api/v1/sms/status", json={"reference": "nope", "status": "failed"}, headers=headers
    )
    assert unknown.status_code == 404
    bad = await client.post("/api/v1/sms/status", data=b"{not json", headers=headers)
    assert bad.status_code == 400
    assert "malformed" in (await bad.get_json())["error"]["message"]


async def test_callbacks_disabled_without_configured_secret(
    node_config: dict[str, Any], data_dir: Path
) -> None:
    application = create_app(node_config)
    async with application.test_app():
        response = await application.test_client().post(
            "/api/v1/sms/status",
            json={"reference": "x", "status": "failed"},
            headers={"X-Carnet-Sms-Secret": ""},
        )
        assert response.status_code == 403


@pytest.mark.parametrize(
    ("text", "keyword"),
    [
        ("STOP", "stop"),
        ("  arrêt svp", "stop"),
        ("Stop", "stop"),
        ("START", "start"),
        ("merci", "other"),
    ],
)
async def test_a_reply_is_read_for_stop_and_start(
    app: Quart, client: Client, text, keyword
) -> None:
    response = await client.post(
        "/api/v1/sms/replies", json={"from": "+33639980001", "text": text},
        headers={"X-Carnet-Sms-Secret": SECRET},
    )  # fmt: skip
    assert response.status_code == 200 and (await response.get_json())["keyword"] == keyword
    storage: Storage = app.config["CARNET_STORAGE"]
    opted = storage.call(sms_outbox.opted_out, app.config["CARNET_CTX"], "+33639980001")
    assert opted is (keyword == "stop")


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        ({"from": "+33639980001", "text": "STOP"}, {"X-Carnet-Sms-Secret": "wrong"}, 403),
        ({"from": "0639980001", "text": "STOP"}, {"X-Carnet-Sms-Secret": SECRET}, 400),
        ({"text": "STOP"}, {"X-Carnet-Sms-Secret": SECRET}, 400),
    ],
)
async def test_bad_replies_are_refused(app: Quart, client: Client, body, headers, status) -> None:
    response = await client.post("/api/v1/sms/replies", json=body, headers=headers)
    assert response.status_code == status
    storage: Storage = app.config["CARNET_STORAGE"]
    assert not storage.call(sms_outbox.opted_out, app.config["CARNET_CTX"], "+33639980001")
