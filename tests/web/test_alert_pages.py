"""The alert pages: who may open them, what the shells carry, the nav link and the banner slot."""

from __future__ import annotations

import re
from typing import Any

from quart import Quart
from quart.typing import TestClientProtocol as Client

from node import refclient_groups as rc
from node.services import school_group
from node.services.context import ServiceContext
from node.storage.db import Storage
from tests.alert_factories import AlertSchool, make_alert_school
from tests.factories import api_login as login
from tests.factories import invite, make_child
from tests.push_factories import fake_browser

GUARDIAN = "+33639980000"  # Parent 0 of make_class_feed


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None
    return found[1]


def name_staff(school: AlertSchool, *people: Any) -> None:
    """As the admin's role section does: an admins entry naming ``people`` and the admin, a new
    key, then the sync that adds who was named and removes who was taken out."""
    view = school.view(school.admin)
    keys = [school.admin.keys.sign_pk] + [p.keys.sign_pk for p in people]
    new, envelopes, school.epoch_key = rc.change_admins(
        school.admin.keys, view["entries"], keys, school.epoch_key
    )
    school.storage.call(school_group.append, school.ctx, school.admin.actor, new, envelopes)
    school.sync()
    view = school.view(school.admin)
    if view["remove"]:
        new, envelopes, school.epoch_key = rc.remove(
            school.admin.keys, view["entries"], view["remove"], school.epoch_key, cut=True
        )
        school.storage.call(school_group.append, school.ctx, school.admin.actor, new, envelopes)


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
    # the admins' sections: who may send alerts (filled in by the page), the worklist, the policy
    assert 'id="role-form"' in text and "Who may send alerts" in text
    assert "Saving creates a new alert key" in text and "At least one admin must stay" in text
    assert 'data-manages="true"' in text and 'id="policy-form"' in text
    assert 'id="worklist-link"' in text


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


async def test_the_worklist_page_is_for_admins_and_explains_each_problem(
    app: Quart, client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    school = make_alert_school(storage, ctx, families=2)
    teacher_actor = school.feed.teacher.actor
    fake_browser().subscribe(storage, ctx, school.guardians[0].actor)
    zoe = make_child(storage, ctx, teacher_actor, school.feed.class_id, "Zoé", "Seule")
    invite(storage, ctx, teacher_actor, zoe.id, phone="+33639982222", name="Maman de Zoé")
    await login(client, "admin@school.test")
    index = await page(client, "/alerts")
    assert 'href="/alerts/reach"' in index
    text = await page(client, "/alerts/reach")
    assert "Families alerts cannot reach in the app" in text
    assert "Zoé Seule" in text and "Maman de Zoé" in text
    assert "Has not joined Carnet yet" in text and "New access code and slip" in text
    invitation = re.search(r'action="/guardians/(\d+)/code"', text)
    assert invitation is not None
    assert 'name="csrf_token"' in text
    assert f'action="/classes/{school.feed.class_id}/slips"' in text
    # the second family has joined but gets no notification: SMS only, and what to do
    assert "Ask them to turn notifications on in My account" in text
    assert text.count('class="badge badge-worklist-sms"') == 2  # the legend and the family
    assert text.count('class="badge badge-worklist-none"') == 2  # the legend and Zoé's family
    assert "Every family gets alerts in the app" not in text
    assert "+3363998" not in text  # never a phone number

    # the button's form leads to the printable slip of that guardian
    response = await client.post(
        f"/guardians/{invitation[1]}/code", form={"csrf_token": csrf_of(text)}
    )
    assert response.status_code == 200
    slip = await response.get_data(as_text=True)
    assert "Hello Maman de Zoé," in slip and "data-code" in slip

    teacher = app.test_client()
    await login(teacher, "dubois@school.test")
    await page(teacher, "/alerts/reach", 403)
    parent = app.test_client()
    await login(parent, GUARDIAN)
    await page(parent, "/alerts/reach", 403)
    anonymous = app.test_client()
    response = await anonymous.get("/alerts/reach")
    assert response.status_code in (302, 303, 401) and "Zoé" not in await response.get_data(
        as_text=True
    )


async def test_the_worklist_says_when_every_family_is_reached(
    client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    school = make_alert_school(storage, ctx, families=1)
    fake_browser().subscribe(storage, ctx, school.guardians[0].actor)
    await login(client, "admin@school.test")
    text = await page(client, "/alerts/reach")
    assert 'id="worklist-empty"' in text and "Every family gets alerts in the app." in text
    assert "New access code and slip" not in text and "/slips" not in text


async def test_the_admins_alert_page_has_the_timing_report_labelled_for_drills(
    client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    school = make_alert_school(storage, ctx)
    drill = school.send("lockdown", "Exercice.", drill=True)
    await login(client, "admin@school.test")
    text = await page(client, f"/alerts/{drill.alert_id}")
    assert 'id="timing"' in text and "Drill report" in text
    assert "SMS a real alert would have sent" in text
    real = school.send("shelter", "Restez à l'abri.")
    text = await page(client, f"/alerts/{real.alert_id}")
    assert 'id="timing"' in text and "Drill report" not in text
    assert "SMS a real alert would have sent" not in text and "SMS sent" in text


async def test_a_teacher_in_the_emergency_role_sends_and_follows_alerts_but_manages_nothing(
    app: Quart, client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    school = make_alert_school(storage, ctx)
    sent = school.send("lockdown", "Confinement.")
    await login(client, "dubois@school.test")
    classes = await page(client, "/classes")
    assert 'href="/alerts"' not in classes  # not in the role: no link, no page
    await page(client, "/alerts", 403)
    await page(client, f"/alerts/{sent.alert_id}", 404)

    name_staff(school, school.feed.teacher)
    classes = await page(client, "/classes")
    assert '<a href="/alerts">Alerts</a>' in classes
    text = await page(client, "/alerts")
    assert 'data-page="admin"' in text and 'data-manages="false"' in text
    assert 'id="alert-composer"' in text and 'id="alert-list"' in text
    assert 'id="sms-box" hidden' in text
    assert "put you in the emergency role" in text
    for admins_only in (
        'id="policy-form"',
        'id="role-form"',
        'id="worklist-link"',
        "/alerts/reach",
    ):
        assert admins_only not in text, admins_only
    await page(client, "/alerts/reach", 403)
    alert = await page(client, f"/alerts/{sent.alert_id}")
    assert 'data-sender="true"' in alert and 'data-role="teacher"' in alert
    assert 'id="follow-up"' in alert and 'id="reach"' in alert and 'id="ack"' not in alert
    assert '<a href="/alerts">' in alert  # the way back to the list

    # taken out of the role: back to what any teacher sees
    name_staff(school)
    classes = await page(client, "/classes")
    assert 'href="/alerts"' not in classes
    await page(client, "/alerts", 403)
    await page(client, f"/alerts/{sent.alert_id}", 404)


async def test_guardians_alert_page_has_no_sender_sections(
    client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    school = make_alert_school(storage, ctx)
    name_staff(school, school.feed.teacher)
    sent = school.send("shelter", "Abri.")
    await login(client, GUARDIAN)
    text = await page(client, f"/alerts/{sent.alert_id}")
    assert 'data-sender="false"' in text and 'id="ack"' in text
    assert 'id="follow-up"' not in text and 'id="reach"' not in text
    home = await page(client, "/home")
    assert 'href="/alerts"' not in home
