"""Actionable posts in Chromium: a permission slip signed by one guardian, the teacher's list of
who has not answered, a sign-up with its places, the CSV export and "Add to my calendar".

The school is the one ``test_feed_browser.py`` seeds (teacher, Léa with two
guardians, Tom with one).  Screenshots (desktop and a 390 px phone) go to
``test-artifacts/``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import ServedNode, new_page, screenshot, seeded_node
from tests.browser.test_feed_browser import (
    CAMILLE,
    PHONE,
    TEACHER,
    downloaded,
    feed_ready,
    log_in,
    post_card,
)

pytestmark = pytest.mark.browser

DESKTOP = {"viewport": {"width": 1280, "height": 900}}


@pytest.fixture
def school(tmp_path: Path) -> Iterator[tuple[ServedNode, dict[str, Any]]]:
    with seeded_node(tmp_path, "tests.browser.test_feed_browser") as served:
        yield served


def compose(page: Page, kind: str, title: str, **fields: str) -> None:
    page.select_option("#action-type", kind)
    page.fill("#action-title", title)
    for selector, value in fields.items():
        page.fill(f"#{selector}", value)


def local_input(when: dt.datetime) -> str:
    """A value for <input type=datetime-local> (the browser's time zone is UTC here)."""
    return when.strftime("%Y-%m-%dT%H:%M")


def test_a_permission_slip_signed_by_one_guardian_and_the_teachers_list(
    school: tuple[ServedNode, dict[str, Any]], browser: Browser
) -> None:
    node, ids = school
    feed_url = f"{node.url}/classes/{ids['class_id']}/feed"
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=7)

    teacher = new_page(browser, accept_downloads=True, timezone_id="UTC", **DESKTOP)
    log_in(teacher, node, TEACHER, "/classes")
    teacher.goto(feed_url)
    feed_ready(teacher)
    teacher.click("#approve-all")
    expect(teacher.locator("#feed-status")).to_contain_text("Approved")

    # a permission slip with a deadline; its title and text are encrypted with the post
    teacher.fill("#post-text", "Sortie au musée d'Orsay")
    compose(
        teacher, "slip", "Autorisation de sortie",
        **{"action-slip-text": "J'autorise mon enfant à participer à la sortie du 12 décembre.",
           "action-deadline": local_input(soon)},
    )  # fmt: skip
    screenshot(teacher, "actions-composer-desktop")
    teacher.click("#post-submit")
    expect(teacher.locator("#feed-status")).to_have_text("Up to date.", timeout=20_000)
    slip = post_card(teacher, "Sortie au musée")
    expect(slip.locator(".action-title")).to_have_text(" Autorisation de sortie")
    expect(slip.locator(".answered-count")).to_have_text("Answered: 0 of 2")
    expect(slip.locator(".action-mismatch")).to_have_count(0)

    # a sign-up with one place in the first slot, and an event
    teacher.fill("#post-text", "Qui apporte quoi ?")
    compose(teacher, "signup", "Goûter de Noël")
    rows = teacher.locator("#action-choices .choice-row")
    rows.nth(0).locator(".choice-label").fill("Gâteau")
    rows.nth(0).locator(".choice-capacity").fill("1")
    rows.nth(1).locator(".choice-label").fill("Jus de fruits")
    teacher.click("#post-submit")
    expect(post_card(teacher, "Qui apporte quoi")).to_have_count(1, timeout=20_000)
    teacher.fill("#post-text", "Venez nombreux")
    compose(teacher, "event", "Kermesse", **{"action-place": "Cour de l'école"})
    teacher.fill("#action-start", local_input(soon.replace(hour=14, minute=0)))
    teacher.click("#post-submit")
    expect(post_card(teacher, "Venez nombreux")).to_have_count(1, timeout=20_000)

    # Camille signs the slip for Léa and takes the cake
    camille = new_page(browser, accept_downloads=True, timezone_id="UTC", **PHONE)
    log_in(camille, node, CAMILLE[2], "/home")
    feed_ready(camille)
    card = post_card(camille, "Sortie au musée")
    expect(card.locator(".slip-text")).to_contain_text("J'autorise mon enfant")
    expect(card.locator(".answer-for")).to_have_text("For Léa")
    card.get_by_role("button", name="I agree and sign").click()
    card = post_card(camille, "Sortie au musée")
    expect(card.locator(".answered")).to_contain_text("Agreed — answered by Camille Martin")
    cake = post_card(camille, "Qui apporte quoi")
    expect(cake.locator("ul.slots li").first).to_have_text("Gâteau — 1 of 1 places left")
    cake.get_by_role("button", name="Gâteau").click()
    cake = post_card(camille, "Qui apporte quoi")
    expect(cake.locator("ul.slots li").first).to_have_text("Gâteau — 0 of 1 places left")
    expect(cake.get_by_role("button", name="Withdraw")).to_be_visible()
    event = post_card(camille, "Venez nombreux")
    expect(event.locator(".action-place")).to_have_text("📍 Cour de l'école")
    name, ics = downloaded(camille, event.get_by_role("button", name="Add to my calendar"))
    assert name == "Kermesse.ics"
    text = ics.decode()
    assert "SUMMARY:Kermesse\r\n" in text and "LOCATION:Cour de l'école\r\n" in text
    assert "DTSTART:" in text and text.endswith("END:VCALENDAR\r\n")
    camille.set_viewport_size({"width": 390, "height": 844})
    screenshot(camille, "actions-guardian-phone")

    # her private calendar feed: generic titles (the real ones are encrypted)
    camille.goto(f"{node.url}/account")
    expect(camille.locator("#calendar-state")).to_have_text("You have no calendar link yet.")
    camille.click("#calendar-new")
    link = camille.locator("#calendar-link")
    expect(link).to_have_value(re.compile(r"/calendar/[A-Za-z0-9_-]{43}\.ics$"))
    expect(camille.locator("#calendar-new")).to_have_text("Create a new link")
    screenshot(camille, "actions-calendar-link-phone")
    assert link.input_value().startswith(f"{node.url}/calendar/")
    feed_text = httpx.get(
        link.input_value()
    ).text  # a calendar app: no session, the link is the key
    assert "SUMMARY:Class event — CE1 A\r\n" in feed_text and "Kermesse" not in feed_text

    # the teacher's open page showed the answers as they came (server-sent events)
    expect(post_card(teacher, "Sortie au musée").locator(".answered-count")).to_have_text(
        "Answered: 1 of 2"
    )
    expect(post_card(teacher, "Qui apporte quoi").locator(".answered-count")).to_have_text(
        "Answered: 1 of 2"
    )
    # the teacher sees who signed (verified against the class log) and who has not answered
    teacher.reload()
    feed_ready(teacher)
    slip = post_card(teacher, "Sortie au musée")
    expect(slip.locator(".answered-count")).to_have_text("Answered: 1 of 2")
    slip.get_by_role("button", name="See the answers").click()
    status = slip.locator(".action-status")
    expect(status.locator("ul.family-answers li")).to_have_count(1)
    expect(status.locator("ul.family-answers li")).to_contain_text("Léa Martin — Agreed")
    expect(status.locator(".signed.ok")).to_have_text(" ✓ signed by Camille Martin")
    expect(status.locator("ul.family-waiting li")).to_have_text(
        "Tom Bernard — no answer yet (Karim Bernard)"
    )
    screenshot(teacher, "actions-teacher-status-desktop")
    name, csv = downloaded(teacher, status.get_by_role("button", name="Export CSV"))
    assert name == "Autorisation-de-sortie.csv"
    lines = csv.decode("utf-8-sig").strip().split("\r\n")
    assert lines[0] == "Child,Answered by,Answer,Date"
    assert lines[1].startswith("Léa Martin,Camille Martin,Agreed,")
    assert lines[2] == "Tom Bernard,,,"
    status.get_by_role("button", name="Remind those who have not answered").click()
    expect(status.locator(".alert")).to_have_text("Reminder sent to 1 guardian.")
    teacher.set_viewport_size({"width": 390, "height": 844})
    screenshot(teacher, "actions-teacher-status-phone")

    # one more place for the cake: the post is re-encrypted with the new structure
    teacher.set_viewport_size({"width": 1280, "height": 900})
    cake = post_card(teacher, "Qui apporte quoi")
    cake.get_by_role("button", name="Change the deadline or places").click()
    cake.get_by_label("Gâteau — Places").fill("2")
    cake.get_by_role("button", name="Save the change").click()
    cake = post_card(teacher, "Qui apporte quoi")
    expect(cake.locator("ul.slots li").first).to_have_text("Gâteau — 1 of 2 places left")
    expect(cake.locator(".action-mismatch")).to_have_count(0)
    expect(cake.locator(".post-edited")).to_be_visible()
    cake.get_by_role("button", name="Change the deadline or places").click()
    cake.get_by_label("Gâteau — Places").fill("")  # no limit is fine too
    cake.get_by_label("Jus de fruits — Places").fill("1")
    cake.get_by_role("button", name="Save the change").click()
    expect(post_card(teacher, "Qui apporte quoi").locator("ul.slots li").last).to_have_text(
        "Jus de fruits — 1 of 1 places left"
    )

    # the same in French
    teacher.get_by_role("button", name="Français").click()
    teacher.goto(feed_url)
    feed_ready(teacher)
    slip = post_card(teacher, "Sortie au musée")
    expect(slip.locator(".answered-count")).to_have_text("Réponses : 1 sur 2")
    expect(slip.locator(".action-tag")).to_have_text("Autorisation")
    slip.get_by_role("button", name="Voir les réponses").click()
    expect(slip.locator(".signed.ok")).to_have_text(" ✓ signée par Camille Martin")
    expect(teacher.locator("#action-type option").nth(3)).to_have_text(
        "Une autorisation (signée par un parent)"
    )
    screenshot(teacher, "actions-teacher-fr-desktop")

    for page in (teacher, camille):
        assert page.js_errors == [], page.js_errors  # type: ignore[attr-defined]
