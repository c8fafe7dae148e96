"""A teacher who forgot their passphrase keeps their class with the recovery key, in Chromium."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import ServedNode, new_page
from tests.browser.test_onboarding_browser import set_passphrase

pytestmark = pytest.mark.browser

PASS_ADMIN = "lighthouse pebble orchard"
PASS_TEACHER = "chalkboard river marble"
PASS_TEACHER_NEW = "marble river at dusk"


def test_teacher_reset_with_the_recovery_key_keeps_the_class_feed(
    served_node: ServedNode, browser: Browser
) -> None:
    node = served_node
    admin = new_page(browser)
    admin.goto(node.admin_setup_url)
    set_passphrase(admin, PASS_ADMIN)
    admin.wait_for_url(f"{node.url}/admin")
    admin.fill("#display_name", "M. Dubois")
    admin.fill("#email", "dubois@ecole.test")
    admin.click("form[action='/admin/staff'] button[type=submit]")
    first_link = admin.locator("#setup-url").inner_text()

    # The teacher sets up, keeps the recovery key, opens a class feed and posts.
    teacher = new_page(browser)
    teacher.goto(first_link)
    recovery_key = set_passphrase(teacher, PASS_TEACHER)
    teacher.wait_for_url(f"{node.url}/classes")
    teacher.fill("#name", "CE1 A")
    teacher.click("form[action='/classes'] button[type=submit]")
    teacher.wait_for_url(re.compile(r"/classes/\d+$"))
    feed_url = teacher.url + "/feed"
    teacher.goto(feed_url)
    expect(teacher.locator("#composer")).to_be_visible(timeout=20_000)
    teacher.fill("#post-text", "Rentrée lundi à 8 h 30")
    teacher.click("#post-submit")
    expect(teacher.locator("article.post")).to_contain_text("Rentrée lundi", timeout=20_000)

    # They forget the passphrase: the admin hands over a new link.
    admin.goto(f"{node.url}/admin")
    admin.on("dialog", lambda dialog: dialog.accept())
    admin.locator("tr", has_text="M. Dubois").locator("button", has_text="new link").click()
    reset_link = admin.locator("#setup-url").inner_text()

    # On a new device: a wrong recovery key is refused with a clear message, the right one keeps the keys.
    device = new_page(browser)
    device.goto(reset_link)
    expect(device.locator("#recovery-key-input")).to_be_visible()
    device.fill("#recovery-key-input", "AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA")
    device.fill("#new-passphrase", PASS_TEACHER_NEW)
    device.fill("#new-passphrase2", PASS_TEACHER_NEW)
    device.locator("#setup-form button[type=submit]").click()
    expect(device.locator("#setup-form .alert.error")).to_contain_text(
        "does not open your keys", timeout=20_000
    )
    device.fill("#recovery-key-input", recovery_key.lower())
    new_key = set_passphrase(device, PASS_TEACHER_NEW)
    assert new_key != recovery_key  # the vault is sealed again, with a new recovery key
    device.wait_for_url(f"{node.url}/classes")
    device.goto(feed_url)
    expect(device.locator("#composer")).to_be_visible(timeout=20_000)
    expect(device.locator("article.post")).to_contain_text("Rentrée lundi à 8 h 30", timeout=20_000)
    expect(device.locator("#feed-error")).to_be_hidden()
