"""Parent chat in Chromium: the teacher opens it, two parents organize a carpool in a private
group, a third parent sees nothing of it, and a reported message reaches the teacher readable
while no other message is exposed.  A family thread with the teacher's holiday reply.

The school is the one ``test_feed_browser.py`` seeds (teacher, Léa with Camille and Sam, Tom
with Karim).  Screenshots (desktop and a 390 px phone) go to ``test-artifacts/``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import ServedNode, new_page, screenshot, seeded_node
from tests.browser.test_feed_browser import CAMILLE, KARIM, PHONE, SAM, TEACHER, feed_ready, log_in

pytestmark = pytest.mark.browser

DESKTOP = {"viewport": {"width": 1280, "height": 900}}


@pytest.fixture
def school(tmp_path: Path) -> Iterator[tuple[ServedNode, dict[str, Any]]]:
    with seeded_node(tmp_path, "tests.browser.test_feed_browser") as served:
        yield served


def chat_ready(page: Page) -> None:
    expect(page.locator("#chat")).to_have_attribute("aria-busy", "false", timeout=15_000)
    expect(page.locator("#chat-error")).to_be_hidden()


def parent(
    browser: Browser, node: ServedNode, who: tuple[str, str, str], url: str, **kw: Any
) -> Page:
    page = new_page(browser, **kw)
    log_in(page, node, who[2], "/home")
    page.goto(url)
    chat_ready(page)
    if page.locator("#accept-conduct").count():
        expect(page.locator("#conduct")).to_contain_text("Be kind and respectful")
        page.click("#accept-conduct")
        expect(page.locator("#conduct")).to_have_count(0)  # the page reloads without it
        chat_ready(page)
    return page


def teacher_approves_everyone(browser: Browser, node: ServedNode, class_id: int) -> Page:
    """The teacher's first visit to the class feed sets up its keys; they approve every parent."""
    teacher = new_page(browser, **DESKTOP)
    log_in(teacher, node, TEACHER, "/classes")
    teacher.goto(f"{node.url}/classes/{class_id}/feed")
    feed_ready(teacher)
    teacher.click("#approve-all")
    expect(teacher.locator("#feed-status")).to_contain_text("Approved")
    return teacher


def test_a_carpool_group_a_parent_outside_it_and_a_report(
    school: tuple[ServedNode, dict[str, Any]], browser: Browser
) -> None:
    node, ids = school
    chat_url = f"{node.url}/classes/{ids['class_id']}/chat"

    teacher = teacher_approves_everyone(browser, node, ids["class_id"])
    teacher.click("text=Conversations")
    chat_ready(teacher)
    teacher.check("input[name=parent_chat][value=open]")
    teacher.click("#chat-settings button[type=submit]")
    expect(teacher.locator("#chat-status")).to_have_text("Saved.")
    screenshot(teacher, "chat-teacher-settings-desktop")

    # Camille accepts the code of conduct and opens a carpool group with Karim
    camille = parent(browser, node, CAMILLE, chat_url, **DESKTOP)
    expect(camille.locator("#group-form")).to_be_visible()
    camille.fill("#group-name", "Covoiturage piscine")
    camille.check("#group-people label:has-text('Karim Bernard') input")
    expect(camille.locator("#group-people")).not_to_contain_text("Sam Martin (parent of Léa)x")
    camille.click("#group-form button[type=submit]")
    chat_ready(camille)
    expect(camille.locator("#conversation-title")).to_have_text("Covoiturage piscine")
    group_url = camille.url
    camille.fill("#chat-text", "Je peux emmener Tom mardi à 17 h.")
    camille.click("#chat-composer button[type=submit]")
    expect(camille.locator("#messages .message-text")).to_have_text(
        ["Je peux emmener Tom mardi à 17 h."]
    )

    # Karim reads it in the group, and answers
    karim = parent(browser, node, KARIM, chat_url, **PHONE)
    karim.click("#conversation-list a:has-text('Covoiturage piscine')")
    chat_ready(karim)
    expect(karim.locator("#messages .message-text")).to_have_text(
        ["Je peux emmener Tom mardi à 17 h."]
    )
    karim.fill("#chat-text", "Merci, parfait !")
    karim.press("#chat-text", "Enter")
    expect(karim.locator("#messages .message-text")).to_have_count(2)
    screenshot(karim, "chat-carpool-phone")

    # the teacher posts to the class; Camille shares the post into the group from her feed
    teacher.goto(f"{node.url}/classes/{ids['class_id']}/feed")
    feed_ready(teacher)
    teacher.fill("#post-text", "Sortie à la piscine mardi")
    teacher.click("#post-submit")
    expect(teacher.locator("#feed-status")).to_have_text("Up to date.", timeout=20_000)
    camille.goto(f"{node.url}/home")
    feed_ready(camille)
    post = camille.locator("#posts article.post", has_text="Sortie à la piscine mardi")
    post.get_by_role("button", name="Share in a conversation").click()
    form = post.locator(".chat-share-form")
    expect(form.locator("select option")).to_have_text(["Covoiturage piscine"])
    form.locator("textarea").fill("Pour s'organiser")
    form.get_by_role("button", name="Share").click()
    expect(camille.locator("#feed-status")).to_have_text("Shared in the conversation.")
    karim.reload()
    chat_ready(karim)
    shared = karim.locator("#messages li.message", has_text="Pour s'organiser")
    expect(shared.locator(".message-share a")).to_have_text(
        "Shared a post of the class feed: open it"
    )
    shared.locator(".message-share a").click()
    feed_ready(karim)
    expect(
        karim.locator("#posts article.post", has_text="Sortie à la piscine mardi")
    ).to_be_visible()
    karim.go_back()
    chat_ready(karim)
    camille.goto(group_url)
    chat_ready(camille)

    # Sam, a parent of the class outside the group, sees nothing of it
    sam = parent(browser, node, SAM, chat_url, **PHONE)
    expect(sam.locator("#conversation-list li")).to_have_count(0)
    response = sam.goto(group_url)
    assert response is not None and response.status == 404
    assert "Je peux emmener" not in sam.content()
    sam.js_errors.clear()  # type: ignore[attr-defined]  # the 404 was the point

    # an unkind message, reported by Karim: the teacher reads that one and no other
    camille.fill("#chat-text", "Message déplacé à signaler")
    camille.click("#chat-composer button[type=submit]")
    expect(camille.locator("#messages .message-text")).to_have_count(4)
    karim.reload()
    chat_ready(karim)
    bad = karim.locator("#messages li.message", has_text="Message déplacé à signaler")
    bad.get_by_role("button", name="Report").click()
    karim.fill("#report-note", "Pas gentil")
    karim.click("#report-form button[value=report]")
    expect(karim.locator("#conversation-notice")).to_contain_text("Reported to the teacher")

    teacher.goto(f"{chat_url}/reports")
    chat_ready(teacher)
    report = teacher.locator("#report-list li.report")
    expect(report).to_have_count(1)
    expect(report.locator(".reported-text")).to_have_text("Message déplacé à signaler")
    expect(report).to_contain_text("Written by Camille Martin")
    expect(report).to_contain_text("Reason given: Pas gentil")
    expect(report).to_contain_text("Reported by Karim Bernard")
    assert "Je peux emmener" not in teacher.content()
    assert "Merci, parfait" not in teacher.content()
    screenshot(teacher, "chat-teacher-report-desktop")
    response = teacher.goto(group_url)
    assert response is not None and response.status == 404  # not a member of the group
    teacher.js_errors.clear()  # type: ignore[attr-defined]
    teacher.goto(f"{chat_url}/reports")
    chat_ready(teacher)
    teacher.once("dialog", lambda dialog: dialog.accept())
    teacher.locator("#report-list li.report").get_by_role("button", name="Delete").click()
    chat_ready(teacher)
    karim.reload()
    chat_ready(karim)
    expect(karim.locator("#messages .message-text")).to_have_text(
        ["Je peux emmener Tom mardi à 17 h.", "Merci, parfait !", "Pour s'organiser"]
    )

    for page in (teacher, camille, karim, sam):
        assert page.js_errors == [], page.js_errors  # type: ignore[attr-defined]


def test_a_family_thread_with_the_teachers_holiday_reply(
    school: tuple[ServedNode, dict[str, Any]], browser: Browser
) -> None:
    node, ids = school
    chat_url = f"{node.url}/classes/{ids['class_id']}/chat"
    teacher = teacher_approves_everyone(browser, node, ids["class_id"])
    teacher.goto(chat_url)
    chat_ready(teacher)
    back = (dt.date.today() + dt.timedelta(days=5)).isoformat()
    teacher.fill("#office-hours", "Lundi au vendredi, 8 h – 17 h")
    teacher.fill("#away-until", back)
    teacher.click("#chat-settings button[type=submit]")
    expect(teacher.locator("#chat-status")).to_have_text("Saved.")

    # parent chat is off: Camille writes to the teacher about Léa; Sam (Léa's other parent) reads it
    camille = new_page(browser, **PHONE)
    log_in(camille, node, CAMILLE[2], "/home")
    camille.goto(chat_url)
    chat_ready(camille)
    expect(camille.locator("#conduct")).to_have_count(0)
    expect(camille.locator("#group-form")).to_be_hidden()
    camille.click("#family-form button[type=submit]")
    chat_ready(camille)
    expect(camille.locator("#conversation-title")).to_have_text("Family of Léa")
    expect(camille.locator("#conversation-notice")).to_contain_text(
        "Office hours: Lundi au vendredi"
    )
    camille.fill("#chat-text", "Léa sera absente vendredi matin.")
    camille.click("#chat-composer button[type=submit]")
    expect(camille.locator("#conversation-notice")).to_contain_text("The teacher is away until")
    screenshot(camille, "chat-family-thread-phone")

    sam = new_page(browser, **PHONE)
    log_in(sam, node, SAM[2], "/home")
    sam.goto(chat_url)
    chat_ready(sam)
    sam.click("#conversation-list a:has-text('Family of Léa')")
    chat_ready(sam)
    expect(sam.locator("#messages .message-text")).to_have_text(
        ["Léa sera absente vendredi matin."]
    )

    teacher.goto(chat_url)
    chat_ready(teacher)
    teacher.click("#conversation-list a:has-text('Family of Léa')")
    chat_ready(teacher)
    teacher.fill("#chat-text", "Bien noté, merci.")
    teacher.click("#chat-composer button[type=submit]")
    expect(teacher.locator("#messages .message-text")).to_have_count(2)

    karim = new_page(browser, **PHONE)
    log_in(karim, node, KARIM[2], "/home")
    response = karim.goto(teacher.url)
    assert response is not None and response.status == 404
    karim.js_errors.clear()  # type: ignore[attr-defined]

    for page in (teacher, camille, sam, karim):
        assert page.js_errors == [], page.js_errors  # type: ignore[attr-defined]
