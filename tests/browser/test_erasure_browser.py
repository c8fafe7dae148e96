"""Issue 8 in Chromium: the admin's audit log, and a guardian deleting their account.

The school is seeded through the real services before the node starts (an
admin, a teacher, a class, Camille who joined with her slip). The admin
reads the audit log (pseudonyms, no names) on a desktop and on a 390 px
phone; Camille opens "Delete my account…" from her account page, is told
what the confirmation word is when she types another, types it, and is
logged out with her account gone.

``CARNET_TEST_SCREENSHOTS=1`` saves screenshots under
``tests/browser/screenshots/`` (not committed).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import ServedNode, new_page, seeded_node

pytestmark = pytest.mark.browser

PASSPHRASE = "chalk river marble lantern"
CAMILLE = "+33639980001"
ADMIN = "direction2@ecole.test"
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
DESKTOP = {"viewport": {"width": 1280, "height": 900}}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


def seed(data_dir: Path) -> dict[str, Any]:
    """The school; run in its own process (one database per process)."""
    from node.cli import _context
    from node.refclient import new_account
    from node.services import accounts, directory, onboarding
    from node.services.sms_outbox import record_result
    from node.storage import onboarding as sms_store

    ctx, storage = _context(data_dir)
    iterations = ctx.config.kdf_iterations

    def school() -> dict[str, Any]:
        _, token = accounts.create_staff(ctx, None, "admin", "Claire Directrice", ADMIN)
        admin = accounts.complete_setup(
            ctx, token, new_account(ADMIN, PASSPHRASE, iterations).credentials, "seed"
        ).actor
        _, token = accounts.create_staff(ctx, admin, "teacher", "M. Dubois", "dubois@ecole.test")
        teacher = accounts.complete_setup(
            ctx, token, new_account("dubois@ecole.test", PASSPHRASE, iterations).credentials
        ).actor
        ce1 = directory.create_class(ctx, teacher, "CE1 A")
        lea = directory.add_child(ctx, teacher, ce1.id, "Léa", "Martin")
        code = directory.register_guardian(ctx, teacher, lea.id, "Camille Martin", CAMILLE).code
        attempt = onboarding.start(ctx, CAMILLE, code, "127.0.0.1", "en")
        texts = sms_store.select_queued_sms_to(CAMILLE)
        sms_code = re.search(r"\b(\d{6})\b", texts[-1].body or "")
        assert sms_code is not None
        for text in texts:
            record_result(ctx, text.id, "sent", "seed", None, False)
        verified = onboarding.verify_sms(ctx, attempt.attempt_id, sms_code[1], "127.0.0.1")
        client = new_account(verified.login, PASSPHRASE, iterations)
        onboarding.complete_new(ctx, attempt.attempt_id, client.credentials, "seed")
        return {"class_id": ce1.id}

    try:
        return storage.call(school)
    finally:
        storage.close()


@pytest.fixture
def school(tmp_path: Path) -> Iterator[tuple[ServedNode, dict[str, Any]]]:
    with seeded_node(tmp_path, "tests.browser.test_erasure_browser") as served:
        yield served


def shot(page: Page, name: str) -> None:
    if os.environ.get("CARNET_TEST_SCREENSHOTS"):
        SCREENSHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def log_in(page: Page, node: ServedNode, login: str) -> None:
    page.goto(f"{node.url}/login")
    page.fill("#login", login)
    page.fill("#passphrase", PASSPHRASE)
    page.click("#login-submit")
    page.wait_for_url(re.compile(r".*/(home|admin|classes)$"))


def test_the_admin_reads_the_log_and_a_guardian_deletes_her_account(
    browser: Browser, school: tuple[ServedNode, dict[str, Any]]
) -> None:
    node, _ = school
    admin = new_page(browser, **DESKTOP)
    log_in(admin, node, ADMIN)
    admin.goto(f"{node.url}/admin")
    admin.get_by_role("link", name="Audit log").click()
    admin.wait_for_url(f"{node.url}/admin/audit")
    table = admin.locator("#audit-events")
    expect(table).to_contain_text("Access code issued")
    expect(table).to_contain_text("Staff account created")
    assert "Camille" not in table.inner_text() and CAMILLE not in table.inner_text()
    shot(admin, "audit-desktop")
    admin.select_option("#audit-action", "login")
    admin.get_by_role("button", name="Show", exact=True).click()
    expect(admin.locator("#audit-events tbody tr").first).to_contain_text("Login")
    phone = new_page(browser, **PHONE)
    phone.context.add_cookies(admin.context.cookies())
    phone.goto(f"{node.url}/admin/audit")
    expect(phone.locator("#audit-events")).to_be_visible()
    shot(phone, "audit-phone")

    camille = new_page(browser, **PHONE)
    log_in(camille, node, CAMILLE)
    camille.goto(f"{node.url}/account")
    camille.get_by_role("button", name="Delete my account…").click()
    camille.wait_for_url(re.compile(r".*/account/erase\??$"))
    shot(camille, "erase-phone")
    camille.fill("#erase-confirm", "oui")
    camille.get_by_role("button", name="Delete my account now").click()
    expect(camille.locator("#erase-error")).to_contain_text("Type DELETE")
    expect(camille.locator("#erase-confirm")).to_have_attribute("aria-invalid", "true")
    camille.fill("#erase-confirm", "DELETE")
    camille.get_by_role("button", name="Delete my account now").click()
    expect(camille.get_by_role("heading", name="Your account is deleted")).to_be_visible()
    shot(camille, "erased-phone")
    camille.goto(f"{node.url}/home")
    camille.wait_for_url(f"{node.url}/login")
    # the refused word was answered 400, which Chromium logs; nothing else went wrong
    errors = camille.js_errors  # type: ignore[attr-defined]
    assert [e for e in errors if "status of 400" not in e] == []
    admin.goto(f"{node.url}/admin/audit?action=erasure_requested")
    expect(admin.locator("#audit-events")).to_contain_text("Account deleted on request")


if __name__ == "__main__":  # seeded_node runs this module in its own process
    import json

    print(json.dumps(seed(Path(sys.argv[1]))))
