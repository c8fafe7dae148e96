"""The alert pages: who may open them, what the shells carry, the nav link and the banner slot."""

from __future__ import annotations

from quart import Quart
from quart.typing import TestClientProtocol as Client

from node.services.context import ServiceContext
from node.storage.db import Storage
from tests.alert_factories import make_alert_school
from tests.factories import api_login as login

GUARDIAN = "+33639980000"  # Parent 0 of make_class_feed


async def page(client: Client, path: str, status: int = 200) -> str:
    response = await client.get(path)
    assert response.status_code == status, path
    text: str = await response.get_data(as_text=True)
    return text


async def test_admin_alerts_page_and_nav(
    client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    make_alert_school(storage, ctx)
    await login(client, "admin@school.test")
    text = await page(client, "/alerts")
    assert '<a href="/alerts">Alerts</a>' in text
    assert 'data-page="admin"' in text and 'id="alert-composer"' in text
    assert 'id="alert-drill"' in text and 'value="120"' in text  # the default SMS delay
    assert "SMS copies are not end-to-end encrypted" in text
    assert 'id="sms-box" hidden' in text  # no SMS text unless the school opted in
    assert 'id="alert-banner"' not in text  # the banner is for guardians


async def test_guardian_cannot_open_the_admin_page_and_sees_the_banner_slot(
    client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    make_alert_school(storage, ctx)
    await login(client, GUARDIAN)
    await page(client, "/alerts", 403)
    home = await page(client, "/home")
    assert 'id="alert-banner"' in home and 'href="/alerts"' not in home


async def test_alert_page_for_its_guardians_and_admins_only(
    app: Quart, client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    school = make_alert_school(storage, ctx)
    sent = school.send("lockdown", "Confinement.", drill=True)
    await login(client, GUARDIAN)
    text = await page(client, f"/alerts/{sent.alert_id}")
    assert f'data-alert-id="{sent.alert_id}"' in text and 'data-role="guardian"' in text
    assert 'id="ack"' in text and 'role="alert"' in text
    assert "EXERCICE / DRILL" in text
    assert 'id="alert-banner"' not in text  # not on the alert's own page
    assert "Confinement." not in text  # the node never has the text to show
    await page(client, "/alerts/nope", 404)

    admin = app.test_client()
    await login(admin, "admin@school.test")
    text = await page(admin, f"/alerts/{sent.alert_id}")
    assert 'id="reach"' in text and 'id="follow-up"' in text and 'id="ack"' not in text

    teacher = app.test_client()
    await login(teacher, "dubois@school.test")
    await page(teacher, f"/alerts/{sent.alert_id}", 404)
    await page(teacher, "/alerts", 403)
