"""Absence notes and post levels as people use them, each person in their own Chromium profile.

The school is the one ``test_feed_browser`` seeds (a teacher, Léa with two
guardians who live apart, Tom with one).  The teacher's first visit sets up
the class keys and approves everyone; the teacher posts an urgent notice;
Léa's guardian reports a lateness today and an absence tomorrow from her
phone, sealed to the teacher and Léa's other guardian; the teacher reads
them on the class page (today, then tomorrow with the date picker) and marks
one seen; Léa's other guardian reads both; the first withdraws the absence.

``CARNET_TEST_SCREENSHOTS=1`` saves screenshots under ``tests/browser/screenshots/``.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import zoneinfo
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import ServedNode, new_page
from tests.browser.test_feed_browser import (  # noqa: F401 - fixtures used by name
    CAMILLE,
    PHONE,
    SAM,
    TEACHER,
    chromium,
    feed_ready,
    log_in,
    post_card,
    school,
    shoot,
)

pytestmark = pytest.mark.browser
DESKTOP = {"viewport": {"width": 1280, "height": 900}}


def ready(page: Page) -> None:
    expect(page.locator("#absences")).to_have_attribute("aria-busy", "false", timeout=15_000)
    expect(page.locator("#absences-error")).to_be_hidden()


def test_absence_notes_and_post_levels_end_to_end(
    school: tuple[ServedNode, dict[str, Any]],  # noqa: F811
    chromium: Browser,  # noqa: F811
) -> None:
    node, ids = school
    class_id = ids["class_id"]
    today = dt.datetime.now(zoneinfo.ZoneInfo("Europe/Paris")).date()
    tomorrow = (today + dt.timedelta(days=1)).isoformat()

    # The teacher sets up the class keys, approves the families and posts an urgent notice.
    teacher = new_page(chromium, **DESKTOP)
    log_in(teacher, node, TEACHER, "/classes")
    teacher.goto(f"{node.url}/classes/{class_id}/feed")
    feed_ready(teacher)
    expect(teacher.locator("#approval-list li")).to_have_count(3)
    teacher.click("#approve-all")
    expect(teacher.locator("#approvals")).to_be_hidden()
    teacher.fill("#post-text", "École fermée demain : grève.")
    teacher.select_option("#post-priority", "urgent")
    teacher.click("#post-submit")
    urgent = post_card(teacher, "École fermée demain")
    expect(urgent.locator(".badge.priority-urgent")).to_have_text("Urgent", timeout=20_000)
    teacher.fill("#post-text", "Photos de la classe en ligne.")
    teacher.click("#post-submit")
    expect(post_card(teacher, "Photos de la classe").locator(".badge")).to_have_count(0)
    shoot(teacher, "absences-teacher-feed-levels")

    # Léa's guardian sees the badge, then reports a lateness today and an absence tomorrow.
    camille = new_page(chromium, **PHONE)
    log_in(camille, node, CAMILLE[2], "/home")
    feed_ready(camille)
    expect(post_card(camille, "École fermée demain").locator(".priority-urgent")).to_be_visible()
    shoot(camille, "absences-guardian-feed-urgent-phone")
    camille.click("a.absence-link")
    camille.wait_for_url(f"{node.url}/classes/{class_id}/absences?child={ids['lea']}")
    ready(camille)
    form = camille.locator("#absence-form")
    expect(form).to_be_visible()
    expect(camille.locator("#absence-child")).to_have_value(str(ids["lea"]))
    expect(camille.locator("#absences-status")).to_have_text("No absence note yet.")
    camille.check("input[name=kind][value=late]")
    expect(camille.locator("#absence-last-box")).to_be_hidden()
    camille.fill("#absence-arrival", "10:30")
    camille.fill("#absence-text", "Rendez-vous chez l'orthophoniste")
    shoot(camille, "absences-guardian-form-phone")
    camille.click("#absence-form button[type=submit]")
    expect(camille.locator("#absences-status")).to_have_text("Your note was sent to the teacher.")
    camille.check("input[name=kind][value=absent]")
    camille.fill("#absence-first", tomorrow)
    camille.fill("#absence-text", "Mariage en famille")
    camille.click("#absence-form button[type=submit]")
    notes = camille.locator("#absence-list li.absence")
    expect(notes).to_have_count(2)
    expect(notes.nth(0)).to_contain_text("Expected at 10:30")
    expect(notes.nth(1)).to_contain_text("Mariage en famille")
    expect(notes.nth(1).get_by_role("button", name="Withdraw")).to_be_visible()
    expect(notes.nth(0).get_by_role("button", name="Withdraw")).to_have_count(0)  # started
    shoot(camille, "absences-guardian-list-phone")

    # The teacher's class page shows today's note, and tomorrow's with the date picker.
    teacher.goto(f"{node.url}/classes/{class_id}")
    ready(teacher)
    expect(teacher.locator("#absences-title")).to_have_text("Absence notes for today")
    today_notes = teacher.locator("#absence-list li.absence")
    expect(today_notes).to_have_count(1)
    expect(today_notes.first.locator(".absence-child")).to_have_text("Léa")
    expect(today_notes.first.locator(".absence-kind")).to_have_text("Late")
    expect(today_notes.first.locator(".absence-arrival")).to_have_text("Expected at 10:30")
    expect(today_notes.first.locator(".absence-text")).to_have_text(
        "Rendez-vous chez l'orthophoniste"
    )
    expect(today_notes.first.locator(".absence-problem")).to_be_hidden()
    shoot(teacher, "absences-teacher-today-desktop")
    today_notes.first.get_by_role("button", name="Mark as seen").click()
    expect(today_notes.first.locator(".absence-seen")).to_be_visible()
    expect(today_notes.first.get_by_role("button", name="Mark as seen")).to_have_count(0)
    teacher.fill("#absence-date", tomorrow)
    expect(teacher.locator("#absences-title")).to_contain_text("Absence notes for ")
    expect(teacher.locator("#absence-list li.absence")).to_have_count(1)
    expect(teacher.locator("#absence-list .absence-kind")).to_have_text("Absent")
    expect(teacher.locator("#absence-list .absence-text")).to_have_text("Mariage en famille")
    teacher.set_viewport_size({"width": 390, "height": 844})
    shoot(teacher, "absences-teacher-tomorrow-phone")

    # A server that shows other days than the family wrote is caught by the browser.
    with sqlite3.connect(node.data_dir / "carnet.sqlite3") as db:
        db.execute("UPDATE absence_note SET kind = 'absent' WHERE kind = 'late'")
    teacher.fill("#absence-date", today.isoformat())
    forged = teacher.locator("#absence-list li.absence").first
    expect(forged.locator(".absence-problem")).to_contain_text("does not match")
    with sqlite3.connect(node.data_dir / "carnet.sqlite3") as db:
        db.execute("UPDATE absence_note SET kind = 'late' WHERE first_day = last_day AND first_day = ?",
                   (today.isoformat(),))  # fmt: skip
    teacher.fill("#absence-date", tomorrow)

    # Léa's other guardian, on their own phone, reads both notes but cannot withdraw them.
    sam = new_page(chromium, **PHONE)
    log_in(sam, node, SAM[2], "/home")
    feed_ready(sam)
    sam.goto(f"{node.url}/classes/{class_id}/absences")
    ready(sam)
    sam_notes = sam.locator("#absence-list li.absence")
    expect(sam_notes).to_have_count(2)
    expect(sam_notes.nth(1).locator(".absence-text")).to_have_text("Mariage en famille")
    expect(sam.get_by_role("button", name="Withdraw")).to_have_count(0)

    # Léa's guardian chooses a daily digest for information posts on her account page.
    camille.goto(f"{node.url}/account")
    camille.check("input[name=mode][value=digest]")
    expect(camille.locator("#digest-time")).to_have_value("18:00")
    camille.fill("#digest-time", "19:30")
    camille.locator("form.digest-form button[type=submit]").click()
    camille.wait_for_url(f"{node.url}/account#notifications")
    expect(camille.locator("input[name=mode][value=digest]")).to_be_checked()
    expect(camille.locator("#digest-time")).to_have_value("19:30")
    shoot(camille, "absences-guardian-digest-setting-phone")
    camille.goto(f"{node.url}/classes/{class_id}/absences")
    ready(camille)

    # Léa's guardian withdraws tomorrow's absence: it leaves the teacher's list.
    camille.once("dialog", lambda dialog: dialog.accept())
    notes.nth(1).get_by_role("button", name="Withdraw").click()
    expect(notes).to_have_count(1)
    teacher.reload()
    ready(teacher)
    teacher.fill("#absence-date", tomorrow)
    expect(teacher.locator("#absences-status")).to_have_text("No absence note for this day.")

    for page in (teacher, camille, sam):
        assert page.js_errors == [], page.js_errors  # type: ignore[attr-defined]
