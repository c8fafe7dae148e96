"""Who may send alerts, as people use it, each person in their own Chromium profile.

The school of the feed test (an admin, M. Dubois the teacher, a class, three
guardians who joined).  The admin names the teacher under "Who may send
alerts" on /alerts (an ``admins`` entry, a new key, then the page adds the
teacher to the group); the teacher opens /alerts from the nav and sends an
alert; a guardian's page decrypts it and shows the teacher's key as the
signer; the admin takes the teacher out of the role again (the page removes
them with a new key): the teacher's nav and /alerts no longer offer sending,
and the guardian still reads the alert the teacher sent while in the role.

``CARNET_TEST_SCREENSHOTS=1`` saves screenshots under ``tests/browser/screenshots/``.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import ServedNode, new_page
from tests.browser.test_alerts_browser import (
    ADMIN,
    DESKTOP,
    PHONE,
    log_in,
    ready,
    school,  # noqa: F401  (the fixture)
    shoot,
)
from tests.browser.test_feed_browser import CAMILLE, TEACHER

pytestmark = pytest.mark.browser

EVACUATION_TEXT = "Évacuation vers le gymnase : venez chercher les enfants là-bas."


def school_group(page: Page) -> dict[str, Any]:
    view: dict[str, Any] = page.evaluate("async () => (await fetch('/api/v1/school-group')).json()")
    return view


def role_row(admin: Page, name: str) -> Any:
    return admin.locator("#role-list li", has_text=name)


def test_the_admin_names_a_teacher_who_sends_an_alert_until_taken_out(
    school: tuple[ServedNode, dict[str, Any]],  # noqa: F811
    browser: Browser,
) -> None:
    node, _ = school

    # The teacher has logged in once (their keys exist); nothing about alerts for them yet.
    teacher = new_page(browser, **PHONE)
    log_in(teacher, node, TEACHER, "/classes")
    expect(teacher.locator("nav a", has_text="Alerts")).to_have_count(0)
    assert teacher.request.get(f"{node.url}/alerts").status == 403

    # The admin's page sets up the group and lists the staff: the admin (in the role, and
    # kept there), the teacher (not in it), each with the fingerprint of their key.
    admin = new_page(browser, **DESKTOP)
    log_in(admin, node, ADMIN, "/admin")
    admin.goto(f"{node.url}/alerts")
    ready(admin)
    form = admin.locator("#role-form")
    expect(form).to_be_visible()
    expect(form).to_contain_text("Saving creates a new alert key")
    expect(admin.locator("#role-list li")).to_have_count(2)
    me = role_row(admin, "Claire Directrice")
    expect(me.locator("input")).to_be_checked()
    expect(me.locator("input")).to_be_disabled()
    expect(me).to_contain_text("Admin")
    expect(admin.locator("#role-self-hint")).to_be_visible()
    dubois = role_row(admin, "M. Dubois")
    expect(dubois.locator("input")).not_to_be_checked()
    expect(dubois).to_contain_text("Teacher")
    teacher_print = dubois.locator(".fingerprint").text_content() or ""
    assert re.fullmatch(r"[0-9A-F ]{39}", teacher_print), teacher_print
    admin_print = me.locator(".fingerprint").text_content()
    expect(admin.locator("#group-keys .fingerprint")).to_have_text([admin_print or ""])
    # nothing changed: no new key
    before = school_group(admin)
    admin.click("#role-save")
    expect(admin.locator("#role-status")).to_have_text("Nothing changed.")
    assert len(school_group(admin)["entries"]) == len(before["entries"])

    # The admin names the teacher: an admins entry, a new key, and the teacher is added.
    dubois.locator("input").check()
    expect(admin.locator("#role-status")).to_have_text("")  # the old status goes with a change
    shoot(admin, "alerts-role-desktop")
    admin.set_viewport_size(PHONE["viewport"])
    shoot(admin, "alerts-role-phone")
    admin.set_viewport_size(DESKTOP["viewport"])
    admin.click("#role-save")
    expect(admin.locator("#role-status")).to_have_text(
        "Saved: a new alert key is in use.", timeout=20_000
    )
    expect(admin.locator("#role-form .alert.error")).to_be_hidden()
    expect(dubois.locator("input")).to_be_checked()
    expect(admin.locator("#group-keys .fingerprint")).to_have_count(2)
    view = school_group(admin)
    assert view["add"] == [] and view["remove"] == []
    ops = [e["op"] for e in view["entries"]][len(before["entries"]) :]
    assert ops == ["admins", "rotate", "add"], ops
    assert [s["in_role"] for s in view["staff"] if s["name"] == "M. Dubois"] == [True]

    # The teacher now has "Alerts" in the nav: the composer and the list, nothing else.
    teacher.goto(f"{node.url}/classes")
    teacher.click("nav >> text=Alerts")
    teacher.wait_for_url(f"{node.url}/alerts")
    ready(teacher)
    expect(teacher.locator("#group-status")).to_have_text("Up to date.")
    expect(teacher.locator("#alert-composer")).to_be_visible()
    for admins_only in ("#policy-form", "#role-form", "#worklist-link"):
        expect(teacher.locator(admins_only)).to_have_count(0)
    teacher.select_option("#alert-template", "evacuation")
    teacher.fill("#alert-text", EVACUATION_TEXT)
    teacher.click("#alert-send")
    expect(teacher.locator("#confirm-text")).to_have_text("Send this alert to 3 guardians now?")
    teacher.click("#alert-confirm-send")
    teacher.wait_for_url(re.compile(r"/alerts/[A-Za-z0-9_-]+$"), timeout=20_000)
    ready(teacher)
    alert_id = teacher.url.rsplit("/", 1)[1]
    expect(teacher.locator("#thread .alert-text")).to_have_text(EVACUATION_TEXT)
    expect(teacher.locator("#reach-acknowledged")).to_have_text("0 of 3")
    expect(teacher.locator("#follow-up")).to_be_visible()

    # Camille's page decrypts and verifies it: signed with the teacher's key.
    camille = new_page(browser, **PHONE)
    log_in(camille, node, CAMILLE[1], "/home")
    camille.goto(f"{node.url}/alerts/{alert_id}")
    ready(camille)
    message = camille.locator("#thread .alert-message")
    expect(message.locator(".alert-title")).to_have_text("Evacuation")
    expect(message.locator(".alert-text")).to_have_text(EVACUATION_TEXT)
    expect(camille.locator("#alert-signer .fingerprint")).to_have_text([teacher_print])
    camille.click("#ack")
    expect(camille.locator("#ack-done")).to_be_visible()
    expect(teacher.locator("#reach-acknowledged")).to_have_text("1 of 3", timeout=15_000)

    # The admin takes the teacher out of the role; the page removes them with a new key.
    admin.reload()
    ready(admin)
    dubois = role_row(admin, "M. Dubois")
    expect(dubois.locator("input")).to_be_checked()
    dubois.locator("input").uncheck()
    admin.click("#role-save")
    expect(admin.locator("#role-status")).to_have_text(
        "Saved: a new alert key is in use.", timeout=20_000
    )
    expect(dubois.locator("input")).not_to_be_checked()
    expect(admin.locator("#group-keys .fingerprint")).to_have_text([admin_print or ""])
    view = school_group(admin)
    assert view["add"] == [] and view["remove"] == []
    assert [e["op"] for e in view["entries"]][-4:] == ["admins", "rotate", "remove", "rotate"]

    # The teacher's pages no longer offer sending.
    teacher.goto(f"{node.url}/classes")
    expect(teacher.locator("nav a", has_text="Alerts")).to_have_count(0)
    response = teacher.goto(f"{node.url}/alerts")
    assert response is not None and response.status == 403
    expect(teacher.locator("#alert-composer")).to_have_count(0)
    response = teacher.goto(f"{node.url}/alerts/{alert_id}")
    assert response is not None and response.status == 404
    expect(teacher.locator("#follow-up")).to_have_count(0)

    # Camille still reads what the teacher signed while in the role (her pin holds).
    camille.reload()
    ready(camille)
    expect(camille.locator("#thread .alert-text")).to_have_text(EVACUATION_TEXT)
    expect(camille.locator("#alert-signer .fingerprint")).to_have_text([teacher_print])

    for page in (admin, camille):
        assert page.js_errors == [], page.js_errors  # type: ignore[attr-defined]
    # the teacher's only console errors: the two refused pages above
    assert teacher.js_errors == [  # type: ignore[attr-defined]
        f"Failed to load resource: the server responded with a status of {status} ()"
        for status in (403, 404)
    ], teacher.js_errors  # type: ignore[attr-defined]
