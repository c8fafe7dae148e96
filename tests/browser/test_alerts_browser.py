"""Emergency alerts as people use them, each person in their own Chromium profile.

The school (an admin, a teacher, a class, two children, three guardians who
joined) is seeded as for the feed test.  Everything about alerts happens in
the browsers: the admin's first visit to /alerts sets up the school group
and adds the guardians, a lockdown alert goes out, a guardian sees the
banner (one live, one on load), reads the alert in the emergency style and
acknowledges it, and the admin's dashboard shows it without a reload.  A
drill is labelled as such; an alert altered on the way is not shown.

``CARNET_TEST_SCREENSHOTS=1`` saves screenshots under ``tests/browser/screenshots/``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Route, expect

from tests.browser.conftest import ServedNode, new_page, seeded_node
from tests.browser.test_feed_browser import CAMILLE, KARIM, PASSPHRASE

pytestmark = pytest.mark.browser

ADMIN = "direction2@ecole.test"
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
DESKTOP = {"viewport": {"width": 1280, "height": 900}}
LOCKDOWN_TEXT = "Intrusion signalée : les enfants sont à l'abri dans les classes."


@pytest.fixture
def school(tmp_path: Path) -> Iterator[tuple[ServedNode, dict[str, Any]]]:
    with seeded_node(tmp_path, "tests.browser.test_feed_browser") as served:
        yield served


def log_in(page: Page, node: ServedNode, login: str, landing: str) -> None:
    page.goto(f"{node.url}/login")
    page.fill("#login", login)
    page.fill("#passphrase", PASSPHRASE)
    page.click("#login-submit")
    page.wait_for_url(f"{node.url}{landing}")


def shoot(page: Page, name: str) -> None:
    if os.environ.get("CARNET_TEST_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def ready(page: Page) -> None:
    expect(page.locator("#alerts")).to_have_attribute("aria-busy", "false", timeout=20_000)
    expect(page.locator("#alerts-error")).to_be_hidden()


def record_live(page: Page) -> None:
    """Keep every live event this page receives in window.__live."""
    page.evaluate(
        "() => { window.__live = []; document.addEventListener('carnet:live', (e) => window.__live.push(e.detail)); }"
    )


def live_events(page: Page) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = page.evaluate("() => window.__live")
    return events


def send_alert(admin: Page, template: str, text: str, drill: bool = False) -> str:
    """From /alerts: compose, confirm, and land on the new alert's page → its id."""
    admin.select_option("#alert-template", template)
    admin.fill("#alert-text", text)
    admin.locator("#alert-drill").set_checked(drill)
    admin.click("#alert-send")
    question = (
        "Send this drill to 3 guardians now?" if drill else "Send this alert to 3 guardians now?"
    )
    expect(admin.locator("#confirm-text")).to_have_text(question)
    admin.click("#alert-confirm-send")
    admin.wait_for_url(re.compile(r"/alerts/[A-Za-z0-9_-]+$"), timeout=20_000)
    ready(admin)
    return admin.url.rsplit("/", 1)[1]


def test_alerts_end_to_end(school: tuple[ServedNode, dict[str, Any]], browser: Browser) -> None:
    node, _ = school

    # The admin's first visit sets up the school group and adds the three guardians.
    admin = new_page(browser, **DESKTOP)
    log_in(admin, node, ADMIN, "/admin")
    admin.click("nav >> text=Alerts")
    admin.wait_for_url(f"{node.url}/alerts")
    ready(admin)
    expect(admin.locator("#group-count")).to_have_text("3 guardians can receive alerts.")
    expect(admin.locator("#group-keys .fingerprint")).to_have_count(1)
    expect(admin.locator("#group-keys .fingerprint")).to_have_text(re.compile(r"^[0-9A-F ]{39}$"))
    expect(admin.locator("#group-status")).to_have_text("Up to date.")
    admin_print = admin.locator("#group-keys .fingerprint").text_content()
    # the node agrees: the group exists, nobody left to add
    view = admin.evaluate("async () => (await fetch('/api/v1/school-group')).json()")
    assert view["group_id"] and view["add"] == [] and view["remove"] == []
    # templates prefill a suggestion the admin can edit; the SMS field only with the policy
    expect(admin.locator("#alert-text")).to_have_value(
        "The children are safe inside with their teachers."
    )
    admin.select_option("#alert-template", "do_not_come")
    expect(admin.locator("#alert-text")).to_have_value("The school is closed today because of …")
    expect(admin.locator("#sms-box")).to_be_hidden()
    admin.check("#policy-sms-text")
    admin.fill("#policy-delay", "300")
    admin.click("#policy-save")
    expect(admin.locator("#policy-status")).to_have_text("Saved.")
    expect(admin.locator("#sms-box")).to_be_visible()
    expect(admin.locator("#sms-warning")).to_contain_text("SMS copies are not end-to-end encrypted")
    admin.fill("#policy-delay", "5")
    admin.click("#policy-save")
    expect(admin.locator("#policy-form .alert.error")).to_have_text(
        "The SMS delay is a whole number of seconds from 30 to 3600."
    )
    admin.fill("#policy-delay", "300")
    admin.click("#policy-save")
    expect(admin.locator("#policy-form .alert.error")).to_be_hidden()
    shoot(admin, "alerts-admin-desktop")
    admin.set_viewport_size({"width": 390, "height": 844})
    shoot(admin, "alerts-admin-phone")
    admin.set_viewport_size(DESKTOP["viewport"])

    # Karim is on his home page when the alert goes out: the banner appears live.
    karim = new_page(browser, **PHONE)
    log_in(karim, node, KARIM[1], "/home")
    expect(karim.locator("#alert-banner")).to_be_hidden()
    karim.wait_for_timeout(500)  # the live stream is open

    alert_id = send_alert(admin, "lockdown", LOCKDOWN_TEXT)
    record_live(admin)
    thread = admin.locator("#thread .alert-message")
    expect(thread).to_have_count(1)
    expect(thread.locator(".alert-title")).to_have_text("Lockdown")
    expect(thread.locator(".alert-text")).to_have_text(LOCKDOWN_TEXT)
    expect(admin.locator("#reach-acknowledged")).to_have_text("0 of 3")
    expect(admin.locator("#reach-children")).to_have_text("0 of 2")

    banner = karim.locator("#alert-banner")
    expect(banner).to_be_visible(timeout=10_000)
    expect(banner).to_have_attribute("role", "alert")
    expect(banner.locator("a")).to_have_attribute("href", f"/alerts/{alert_id}")
    expect(banner).to_contain_text("Emergency alert from the school")
    expect(banner.locator(".drill-label")).to_have_count(0)

    # Camille logs in afterwards: the banner is there on load, and leads to the alert.
    camille = new_page(browser, **PHONE)
    log_in(camille, node, CAMILLE[1], "/home")
    expect(camille.locator("#alert-banner")).to_be_visible(timeout=10_000)
    shoot(camille, "alerts-guardian-banner")
    group_requests: list[str] = []
    camille.on(
        "request", lambda r: group_requests.append(r.url) if "/school-group" in r.url else None
    )
    camille.click("#alert-banner a")
    camille.wait_for_url(f"{node.url}/alerts/{alert_id}")
    ready(camille)
    # the page opens the group the alert names, and pins it under that group's id
    assert group_requests == [f"{node.url}/api/v1/school-group?group={view['group_id']}"]
    pins = camille.evaluate(
        "() => Object.keys(localStorage).filter((k) => k.startsWith('carnet-pin|'))"
    )
    assert any(k.endswith(f"|school-group|{view['group_id']}") for k in pins), pins
    # the key that signed it, as the admin's page shows it
    expect(camille.locator("#alert-signer .fingerprint")).to_have_text(admin_print or "")
    expect(camille.locator("#alert-banner")).to_have_count(0)  # not on the alert's own page
    message = camille.locator("#thread .alert-message")
    expect(camille.locator("#thread")).to_have_attribute("role", "alert")
    expect(message.locator(".alert-title")).to_have_text("Lockdown")
    expect(message.locator(".alert-wording")).to_contain_text("The school is in lockdown.")
    expect(message.locator(".alert-text")).to_have_text(LOCKDOWN_TEXT)
    expect(camille.locator(".drill-label")).to_have_count(0)
    colour = message.evaluate("(n) => getComputedStyle(n).backgroundColor")
    assert colour == "rgb(176, 0, 32)", colour
    shoot(camille, "alerts-guardian-alert")
    # opening the page counts as delivered: the dashboard's 10-second refresh shows it
    expect(admin.locator("#reach-classes li", has_text="Camille Martin")).to_contain_text(
        "Delivered", timeout=15_000
    )
    camille.click("#ack")
    expect(camille.locator("#ack-done")).to_be_visible()
    expect(camille.locator("#ack-done")).to_have_text("✓ Acknowledged")
    expect(camille.locator("#ack")).to_be_hidden()

    # The admin's dashboard shows it without a reload, from the live event.
    expect(admin.locator("#reach-acknowledged")).to_have_text("1 of 3", timeout=5_000)
    expect(admin.locator("#reach-children")).to_have_text("1 of 2")
    lea_row = admin.locator("#reach-classes tr", has_text="Léa Martin")
    expect(lea_row).to_have_class("reached")
    expect(lea_row.locator("li", has_text="Camille Martin")).to_contain_text("Acknowledged")
    expect(admin.locator("#reach-classes tr", has_text="Tom Bernard")).to_have_class("not-reached")
    assert {"type": "alert_update", "alert": alert_id} in live_events(admin)
    shoot(admin, "alerts-dashboard-desktop")
    admin.set_viewport_size({"width": 390, "height": 844})
    shoot(admin, "alerts-dashboard-phone")
    admin.set_viewport_size(DESKTOP["viewport"])

    # Back home, Camille has no banner left; the acknowledgement holds on reload.
    camille.goto(f"{node.url}/home")
    camille.wait_for_timeout(800)
    expect(camille.locator("#alert-banner")).to_be_hidden()
    camille.goto(f"{node.url}/alerts/{alert_id}")
    ready(camille)
    expect(camille.locator("#ack-done")).to_be_visible()

    # The own school's group keeps its per-account pin (saved before pins were per group):
    # a node that swaps the school's group for another one is refused.
    own_pin = f"carnet-pin|{node.url}|{camille.evaluate('() => document.getElementById(`alerts`).dataset.accountId')}|school-group"
    saved = camille.evaluate(f"() => localStorage.getItem('{own_pin}')")
    assert saved and json.loads(saved)["group"] == view["group_id"]
    camille.evaluate(
        f"() => localStorage.setItem('{own_pin}', JSON.stringify({{...JSON.parse(localStorage.getItem('{own_pin}')), group: 'another-group'}}))"
    )
    camille.reload()
    expect(camille.locator("#alerts")).to_have_attribute("aria-busy", "false", timeout=20_000)
    expect(camille.locator("#alerts-error")).to_have_text(
        "The school's alert keys could not be verified. Tell the school."
    )
    expect(camille.locator("#thread")).not_to_contain_text(LOCKDOWN_TEXT)
    camille.evaluate(f"() => localStorage.setItem('{own_pin}', {json.dumps(saved)})")

    # An alert of a child's other school names that school: on the page and in the banner.
    def other_school(route: Route) -> None:
        body = route.fetch().json()
        for alert in body.get("alerts", [body]):
            alert["school"] = "École B"
        route.fulfill(json=body)

    camille.route(f"**/api/v1/alerts/{alert_id}", other_school)
    camille.reload()
    ready(camille)
    expect(camille.locator("#thread .alert-title")).to_have_text("École B — Lockdown")
    expect(camille.locator("#thread .alert-text")).to_have_text(LOCKDOWN_TEXT)
    camille.unroute(f"**/api/v1/alerts/{alert_id}")
    karim.route("**/api/v1/alerts", other_school)
    karim.reload()
    expect(karim.locator("#alert-banner .alert-banner-school")).to_have_text(
        "— École B", timeout=10_000
    )
    karim.unroute("**/api/v1/alerts")

    # An alert altered on the way (one byte of ciphertext) is refused, and its text never shown.
    def tamper(route: Route) -> None:
        body = route.fetch().json()
        ct = body["messages"][0]["message"]["ct"]
        body["messages"][0]["message"]["ct"] = ("B" if ct[0] == "A" else "A") + ct[1:]
        route.fulfill(json=body)

    camille.route(f"**/api/v1/alerts/{alert_id}", tamper)
    camille.reload()
    ready(camille)
    expect(camille.locator("#thread .alert-message.unverified")).to_have_text(
        "This alert could not be verified; it is not shown."
    )
    expect(camille.locator("#thread")).not_to_contain_text(LOCKDOWN_TEXT)
    expect(camille.locator("#ack-box")).to_be_hidden()
    camille.unroute(f"**/api/v1/alerts/{alert_id}")

    # A drill: labelled "EXERCICE / DRILL" on the banner and the guardian's page.
    admin.goto(f"{node.url}/alerts")
    ready(admin)
    drill_id = send_alert(admin, "evacuation", "Exercice d'évacuation : rien à faire.", drill=True)
    expect(admin.locator("#thread .alert-message .drill-label")).to_have_text("EXERCICE / DRILL")
    camille.goto(f"{node.url}/home")
    expect(camille.locator("#alert-banner .drill-label")).to_have_text(
        "EXERCICE / DRILL", timeout=10_000
    )
    camille.click("#alert-banner a")
    camille.wait_for_url(f"{node.url}/alerts/{drill_id}")
    ready(camille)
    expect(camille.locator("h1 .drill-label")).to_have_text("EXERCICE / DRILL")
    drill = camille.locator("#thread .alert-message")
    expect(drill).to_have_class(re.compile(r"\bdrill\b"))
    expect(drill.locator(".drill-label")).to_have_text("EXERCICE / DRILL")
    expect(drill.locator(".alert-title")).to_have_text("Evacuation")
    shoot(camille, "alerts-guardian-drill")

    # All clear on the lockdown: Karim's open alert page shows it live, and the alert ends.
    karim.goto(f"{node.url}/alerts/{alert_id}")
    ready(karim)
    admin.goto(f"{node.url}/alerts/{alert_id}")
    ready(admin)
    admin.on("dialog", lambda dialog: dialog.accept())
    admin.click("#all-clear")
    expect(admin.locator("#follow-up")).to_be_hidden(timeout=20_000)
    first = karim.locator("#thread .alert-message").first
    expect(first).to_have_class(re.compile(r"\ball-clear\b"), timeout=10_000)
    expect(first.locator(".alert-title")).to_have_text("All clear")
    expect(karim.locator("#thread .alert-message")).to_have_count(2)
    shoot(karim, "alerts-guardian-all-clear")

    for page in (admin, camille, karim):
        assert page.js_errors == [], page.js_errors  # type: ignore[attr-defined]
