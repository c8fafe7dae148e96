"""A new school year in Chromium: the admin turns the demo school over, the new teacher approves
the parents who followed their child, and a parent finds the new class.

The demo school (``carnet demo``): CE1 A of M. Dubois (Léa and Tom, whose parents
Camille and Karim joined; Inès) and CM2 B of Mme Nguyen (Hugo, Camille's, and Jade).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from node.demo import DEMO_PASSPHRASE
from tests.browser.conftest import _carnet, new_page, screenshot, start_node

pytestmark = pytest.mark.browser

DESKTOP = {"viewport": {"width": 1280, "height": 900}}


def log_in(page: Page, url: str, login: str, landing: str) -> None:
    page.goto(f"{url}/login")
    page.fill("#login", login)
    page.fill("#passphrase", DEMO_PASSPHRASE)
    page.click("#login-submit")
    page.wait_for_url(f"{url}{landing}")


def test_the_admin_starts_a_new_year_and_the_parents_follow_their_child(
    browser: Browser, tmp_path: Path
) -> None:
    with start_node(tmp_path, lambda data: _carnet("demo", "--data", str(data)) and None) as node:
        admin = new_page(browser, **DESKTOP)
        log_in(admin, node.url, "direction@demo.carnet.test", "/admin")
        admin.get_by_role("link", name="New school year").click()
        expect(admin.get_by_role("heading", level=1)).to_have_text("New school year")
        ce1 = admin.locator("fieldset.year-class", has_text="CE1 A")
        cm2 = admin.locator("fieldset.year-class", has_text="CM2 B")
        expect(admin.locator("#school_year")).to_have_value("2027-2028")
        expect(ce1.get_by_label("Next year's class")).to_have_value("CE2 A")
        expect(cm2.get_by_label("Next year's class")).to_have_value("")  # off to secondary school
        expect(cm2.get_by_label("Hugo Martin")).not_to_be_checked()
        ce1.get_by_label("Teacher next year").select_option(label="Mme Nguyen")
        ce1.get_by_label("Inès Petit").uncheck()  # she changes school
        screenshot(admin, "school-year-plan-desktop")
        admin.once("dialog", lambda dialog: dialog.accept())
        admin.get_by_role("button", name="Start the new school year").click()
        expect(admin.get_by_role("heading", level=1)).to_have_text("School year 2027-2028 started")
        status = admin.get_by_role("status")
        expect(status).to_contain_text("2 children went up.")
        expect(status).to_contain_text("2 parents follow them.")  # Camille and Karim
        expect(status).to_contain_text("2 classes of last year archived.")
        row = admin.locator("tr", has_text="CE2 A")
        expect(row).to_contain_text("Mme Nguyen")
        expect(row.locator("td").nth(3)).to_have_text("2")  # Sam's and Nadia's new slips
        screenshot(admin, "school-year-done-desktop")

        # Mme Nguyen opens her new class: its first key, then the parents who followed
        teacher = new_page(browser)
        log_in(teacher, node.url, "nguyen@demo.carnet.test", "/classes")
        expect(teacher.get_by_role("link", name="CM2 B")).to_have_count(0)
        teacher.get_by_role("link", name="CE2 A").click()
        teacher.get_by_role("link", name="Class feed").first.click()
        expect(teacher.locator("#feed")).to_have_attribute("aria-busy", "false", timeout=15_000)
        waiting = teacher.locator("#approvals #approval-list li")
        expect(waiting).to_have_count(2)
        expect(waiting.filter(has_text="Camille Martin")).to_contain_text("(Léa)")
        teacher.click("#approve-all")
        expect(teacher.locator("#feed-status")).to_contain_text("Approved")
        screenshot(teacher, "school-year-new-class-phone")

        # Camille finds Léa's new class; last year's classes are gone from her home
        parent = new_page(browser)
        log_in(parent, node.url, "06 39 98 00 01", "/home")
        expect(parent.locator("main")).to_contain_text("CE2 A")
        expect(parent.locator("main")).not_to_contain_text("CE1 A")
        expect(parent.locator("main")).not_to_contain_text("CM2 B")
        assert not [e for e in parent.js_errors if "favicon" not in e]  # type: ignore[attr-defined]
