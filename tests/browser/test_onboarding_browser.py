"""The whole onboarding as people do it, in Chromium: admin → teacher → class → guardians."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import ServedNode, new_page, screenshot

pytestmark = pytest.mark.browser

PASS_ADMIN = "lighthouse pebble orchard"
PASS_TEACHER = "chalkboard river marble"
PASS_PARENT_1 = "sunflower kayak lantern"
PASS_PARENT_1_NEW = "kayak lantern at dawn"
PASS_PARENT_2 = "violin meadow compass"
PASS_PARENT_3 = "otter harbour saffron"
PHONE_1 = "+33639980001"
PHONE_2 = "+33639980002"
PHONE_3 = "+33639980003"


def set_passphrase(page: Page, passphrase: str) -> str:
    """Fill both passphrase fields, submit, acknowledge the recovery key; return it."""
    page.fill("#new-passphrase", passphrase)
    page.fill("#new-passphrase2", passphrase)
    page.locator("main form:visible button[type=submit]").click()
    recovery = page.locator("#recovery-key")
    expect(recovery).to_have_text(re.compile(r"^([A-Z2-7]{4}-){7}[A-Z2-7]{4}$"), timeout=20_000)
    continue_link = page.locator("#recovery-continue")
    expect(continue_link).to_have_attribute("aria-disabled", "true")
    page.check("#recovery-saved")
    expect(continue_link).to_have_attribute("aria-disabled", "false")
    key = recovery.inner_text()
    continue_link.click()
    return key


def first_login(
    page: Page,
    node: ServedNode,
    phone_typed: str,
    phone: str,
    code: str,
    passphrase: str,
    sms_index: int = 1,
) -> None:
    page.goto(f"{node.url}/welcome")
    page.fill("#phone", phone_typed)
    page.fill("#code", code)
    page.click("#step-code button[type=submit]")
    expect(page.locator("#sms-sent")).to_contain_text("•• •• •• •• " + phone[-2:])
    page.fill("#sms_code", node.wait_for_sms(phone, sms_index))
    page.click("#step-sms button[type=submit]")
    expect(page.locator("#verified-for")).to_be_visible()
    set_passphrase(page, passphrase)
    page.wait_for_url(f"{node.url}/home")


def register_guardian(page: Page, child: str, name: str, phone_typed: str) -> tuple[str, str]:
    """From the class page, register a guardian; return (code, fingerprint) from the slip."""
    article = page.locator("article.child", has_text=child)
    article.locator("summary").click()
    article.locator("input[name=display_name]").fill(name)
    article.locator("input[name=phone]").fill(phone_typed)
    article.locator("form[action$='/guardians'] button[type=submit]").click()
    code = page.locator("[data-code]").inner_text()
    fingerprint = page.locator("[data-fingerprint]").inner_text()
    return code, fingerprint


def test_onboarding_admin_teacher_class_guardians(
    served_node: ServedNode, browser: Browser
) -> None:
    node = served_node

    # The admin opens the one-time link printed by `carnet init` and sets up.
    admin = new_page(browser)
    admin.goto(node.admin_setup_url)
    expect(admin.locator("h1")).to_contain_text("Claire Directrice")
    screenshot(admin, "01-admin-setup")
    set_passphrase(admin, PASS_ADMIN)
    admin.wait_for_url(f"{node.url}/admin")

    # The admin creates a teacher account and hands over its setup link.
    admin.fill("#display_name", "M. Dubois")
    admin.fill("#email", "dubois@ecole.test")
    admin.click("form[action='/admin/staff'] button[type=submit]")
    teacher_link = admin.locator("#setup-url").inner_text()
    admin.goto(f"{node.url}/admin")
    expect(admin.locator("table.list")).to_contain_text("M. Dubois")
    expect(admin.locator("table.list")).not_to_contain_text("dubois@ecole.test")
    screenshot(admin, "02-admin-staff")

    # The teacher sets up on their own device, creates a class and adds children.
    teacher = new_page(browser)
    teacher.goto(teacher_link)
    set_passphrase(teacher, PASS_TEACHER)
    teacher.wait_for_url(f"{node.url}/classes")
    teacher.fill("#name", "CE1 A")
    teacher.click("form[action='/classes'] button[type=submit]")
    teacher.wait_for_url(re.compile(r"/classes/\d+$"))
    class_url = teacher.url
    for first, last in (("Léa", "Martin"), ("Tom", "Bernard")):
        teacher.fill("#first_name", first)
        teacher.fill("#last_name", last)
        teacher.locator("form[action$='/children'] button[type=submit]").click()
        expect(teacher.locator("article.child", has_text=first)).to_be_visible()

    # Two guardians of Léa (separated parents), one of Tom.
    code_1, fingerprint = register_guardian(teacher, "Léa", "Camille Martin", "06 39 98 00 01")
    assert re.fullmatch(r"([0-9A-F]{4} ){7}[0-9A-F]{4}", fingerprint)
    expect(teacher.locator(".slip")).to_contain_text("ending in 01")
    expect(teacher.locator(".slip")).not_to_contain_text("39 98 00 01")
    screenshot(teacher, "03-slip")
    teacher.emulate_media(media="print")
    screenshot(teacher, "04-slip-print")
    teacher.emulate_media(media="screen")
    teacher.goto(class_url)
    code_2, _ = register_guardian(teacher, "Léa", "Sam Martin", "+33 6 39 98 00 02")
    teacher.goto(class_url)
    code_3, _ = register_guardian(teacher, "Tom", "Karim Bernard", "0639980003")
    teacher.goto(class_url)
    expect(teacher.locator("article.child", has_text="Léa")).to_contain_text("Invited")
    screenshot(teacher, "05-class-roster")

    # Each guardian, on their own phone: access code → SMS code → passphrase → home.
    parent_1 = new_page(browser)
    first_login(parent_1, node, "06 39 98 00 01", PHONE_1, code_1, PASS_PARENT_1)
    expect(parent_1.locator(".child-card")).to_contain_text("Léa Martin")
    expect(parent_1.locator("#key-state")).to_have_text("Your keys are on this device.")
    screenshot(parent_1, "06-parent-home")

    parent_2 = new_page(browser)
    parent_2.goto(f"{node.url}/welcome")
    screenshot(parent_2, "07-welcome")
    first_login(parent_2, node, "06.39.98.00.02", PHONE_2, code_2, PASS_PARENT_2)
    expect(parent_2.locator(".child-card")).to_contain_text("Léa Martin")

    parent_3 = new_page(browser)
    first_login(parent_3, node, "06 39 98 00 03", PHONE_3, code_3, PASS_PARENT_3)
    expect(parent_3.locator(".child-card")).to_contain_text("Tom Bernard")
    expect(parent_3.locator("main")).not_to_contain_text("Léa")

    # Tom's guardian cannot open the class page nor the class through the API.
    assert parent_3.js_errors == []  # type: ignore[attr-defined]
    response = parent_3.goto(class_url)
    assert response is not None and response.status == 404
    api = parent_3.request.get(f"{node.url}/api/v1/classes/{class_url.rsplit('/', 1)[1]}")
    assert api.status == 404

    # The teacher now sees both of Léa's guardians as active, with masked numbers.
    teacher.goto(class_url)
    lea = teacher.locator("article.child", has_text="Léa")
    expect(lea.locator(".badge-active")).to_have_count(2)
    expect(lea).not_to_contain_text("39 98 00")

    # The access code is dead once used.
    again = new_page(browser)
    again.goto(f"{node.url}/welcome")
    again.fill("#phone", "06 39 98 00 01")
    again.fill("#code", code_1)
    again.click("#step-code button[type=submit]")
    expect(again.locator("#step-code .alert.error")).to_contain_text("already used")

    # A second child in another class: the same parent adds Hugo to their account.
    teacher.goto(f"{node.url}/classes")
    teacher.fill("#name", "CM2 B")
    teacher.click("form[action='/classes'] button[type=submit]")
    teacher.wait_for_url(re.compile(r"/classes/\d+$"))
    teacher.fill("#first_name", "Hugo")
    teacher.fill("#last_name", "Martin")
    teacher.locator("form[action$='/children'] button[type=submit]").click()
    code_4, _ = register_guardian(teacher, "Hugo", "Camille Martin", "06 39 98 00 01")
    parent_1.goto(f"{node.url}/welcome")
    parent_1.fill("#phone", "06 39 98 00 01")
    parent_1.fill("#code", code_4)
    parent_1.click("#step-code button[type=submit]")
    parent_1.fill("#sms_code", node.wait_for_sms(PHONE_1, 2))
    parent_1.click("#step-sms button[type=submit]")
    expect(parent_1.locator("#existing-account")).to_be_visible()
    parent_1.fill("#existing-passphrase", PASS_PARENT_1)
    parent_1.click("#step-passphrase button[type=submit]")
    parent_1.wait_for_url(f"{node.url}/home")
    cards = parent_1.locator(".child-card")
    expect(cards).to_have_count(2)
    expect(cards.filter(has_text="Hugo Martin")).to_contain_text("CM2 B")
    expect(cards.filter(has_text="Léa Martin")).to_contain_text("CE1 A")

    # Slips for everyone who has not joined yet, in one print run.
    teacher.goto(class_url)
    register_guardian(teacher, "Tom", "Nadia Bernard", "06 39 98 00 04")
    teacher.goto(class_url)
    teacher.once("dialog", lambda dialog: dialog.accept())
    teacher.click("form.print-all button")
    expect(teacher.locator(".slip")).to_have_count(1)
    expect(teacher.locator(".slip")).to_contain_text("Nadia Bernard")

    # Camille changes the passphrase from My account: same keys, new recovery key.
    parent_1.goto(f"{node.url}/account")
    fingerprint_before = parent_1.locator("dd.fingerprint").inner_text()
    parent_1.fill("#current-passphrase", PASS_PARENT_1)
    parent_1.fill("#new-passphrase", PASS_PARENT_1_NEW)
    parent_1.fill("#new-passphrase2", PASS_PARENT_1_NEW)
    parent_1.click("#change-passphrase button[type=submit]")
    expect(parent_1.locator("#recovery-key")).to_have_text(
        re.compile(r"^([A-Z2-7]{4}-){7}[A-Z2-7]{4}$"), timeout=20_000
    )
    parent_1.check("#recovery-saved")
    parent_1.click("#recovery-continue")
    expect(parent_1.locator("dd.fingerprint")).to_have_text(fingerprint_before)
    expect(parent_1.locator("#key-state")).to_have_text("Your keys are on this device.")

    # Log out wipes the keys; logging in again unlocks them from the vault.
    parent_1.click("form[data-logout] button")
    parent_1.wait_for_url(re.compile(r"/login\?bye=1$"))
    parent_1.fill("#login", "06 39 98 00 01")
    parent_1.fill("#passphrase", PASS_PARENT_1_NEW)
    parent_1.click("#login-submit")
    parent_1.wait_for_url(f"{node.url}/home")
    expect(parent_1.locator("#key-state")).to_have_text("Your keys are on this device.")

    # A wrong passphrase gets a clear message and no session.
    stranger = new_page(browser)
    stranger.goto(f"{node.url}/login")
    stranger.fill("#login", "06 39 98 00 02")
    stranger.fill("#passphrase", "not the right passphrase")
    stranger.click("#login-submit")
    expect(stranger.locator("#login-error")).to_contain_text("Wrong login or passphrase")

    # Sam forgot the passphrase: the teacher gives a reset slip, Sam starts over.
    teacher.goto(class_url)
    sam = teacher.locator("ul.guardians li", has_text="Sam Martin")
    teacher.once("dialog", lambda dialog: dialog.accept())
    sam.locator("form[action$='/code'] button").click()
    expect(teacher.locator(".slip")).to_contain_text("resets your access")
    reset_code = teacher.locator("[data-code]").inner_text()
    sam_phone = new_page(browser)
    sam_phone.goto(f"{node.url}/welcome")
    sam_phone.fill("#phone", "06 39 98 00 02")
    sam_phone.fill("#code", reset_code)
    sam_phone.click("#step-code button[type=submit]")
    sam_phone.fill("#sms_code", node.wait_for_sms(PHONE_2, 2))
    sam_phone.click("#step-sms button[type=submit]")
    sam_phone.click("#forgot-passphrase")
    expect(sam_phone.locator("#reset-explained")).to_be_visible()
    set_passphrase(sam_phone, "new dawn for sam")
    sam_phone.wait_for_url(f"{node.url}/home")
    expect(sam_phone.locator(".child-card")).to_have_count(1)
    parent_2.reload()  # the session opened with the old passphrase has ended
    expect(parent_2).to_have_url(re.compile(r"/login$"))
    parent_2.fill("#login", "06 39 98 00 02")
    parent_2.fill("#passphrase", PASS_PARENT_2)
    parent_2.click("#login-submit")
    expect(parent_2.locator("#login-error")).to_contain_text("Wrong login or passphrase")

    # A teacher who forgot theirs gets a new setup link from the admin.
    admin.goto(f"{node.url}/admin")
    dubois = admin.locator("table.list tr", has_text="M. Dubois")
    admin.once("dialog", lambda dialog: dialog.accept())
    dubois.locator("form[action$='/setup-link'] button").click()
    reset_link = admin.locator("#setup-url").inner_text()
    teacher_again = new_page(browser)
    teacher_again.goto(reset_link)
    set_passphrase(teacher_again, "fresh chalk and ink")
    teacher_again.wait_for_url(f"{node.url}/classes")
    expect(teacher_again.locator("main")).to_contain_text("CE1 A")
    teacher.goto(class_url)  # the old session ended with the reset
    expect(teacher).to_have_url(re.compile(r"/login$"))

    for page in (admin, parent_1, sam_phone, teacher_again):
        assert page.js_errors == [], page.js_errors  # type: ignore[attr-defined]
    assert httpx.get(f"{node.url}/healthz").status_code == 200
