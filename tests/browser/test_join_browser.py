"""A guardian of school H joins a class of school S, two real nodes, in Chromium.

Both admins peer their schools through the Peer schools pages (both ways, so
each node accepts the other's signed requests). S's teacher registers the
parent for a child and hands over the access code; the parent, on H's node,
opens "Join a class at another school", types S's address and the code,
then the code S texted (read from S's ``sms-outbox.jsonl``), and waits; S's
teacher approves them on the class page (the browser signs), and once S's
delivery worker has sent the Accept, H's page says so.  Screenshots of each
step at desktop and phone sizes go to ``test-artifacts/join-*.png``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import ServedNode, new_page, screenshot
from tests.browser.test_onboarding_browser import first_login, register_guardian, set_passphrase
from tests.browser.test_peers_browser import DESKTOP, PHONE, fits_the_screen, log_in_as_new_admin
from tests.multinode.nodes import Node
from tests.multinode.waiting import wait_until

pytestmark = pytest.mark.browser

PARENT_PHONE = "+33639980001"
PARENT_TYPED = "06 39 98 00 01"


@pytest.fixture
def schools(tmp_path: Path) -> Iterator[tuple[Node, Node]]:
    """S, the class's school, and H, the parent's own school."""
    with Node("s", tmp_path, school="École S") as s, Node("h", tmp_path, school="École H") as h:
        s.start()
        h.start()
        yield s, h


def served(node: Node) -> ServedNode:
    """The browser helpers' view of a node: its address and its data folder (texts)."""
    return ServedNode(node.origin, node.data_dir, node.admin_setup_url or "", None)  # type: ignore[arg-type]


def texted_codes(node: Node, phone: str) -> list[str]:
    """The 6-digit codes ``node`` texted to ``phone`` (its console SMS outbox)."""
    path = node.data_dir / "sms-outbox.jsonl"
    codes = []
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            text = json.loads(line)
        except json.JSONDecodeError:  # a line being written right now
            continue
        found = re.search(r"\b(\d{6})\b", text["text"])
        if text["to"] == phone and found:
            codes.append(found[1])
    return codes


def peer_with(admin: Page, node: Node, other: Node) -> None:
    """``node``'s admin adds ``other`` and confirms its fingerprints."""
    admin.goto(node.url("/admin/peers"))
    admin.fill("#origin", other.origin)
    admin.click("form.add-peer button[type=submit]")
    admin.wait_for_url(re.compile(re.escape(node.url("/admin/peers/")) + r"\d+$"))
    admin.click("#confirm-peer")
    expect(admin.locator("#state-title + p [data-state]")).to_have_text("Active")


def new_teacher(browser: Browser, admin: Page, node: Node, name: str, email: str) -> Page:
    admin.goto(node.url("/admin"))
    admin.fill("#display_name", name)
    admin.fill("#email", email)
    admin.click("form[action='/admin/staff'] button[type=submit]")
    link = admin.locator("#setup-url").inner_text()
    teacher = new_page(browser, viewport=DESKTOP)
    teacher.goto(link)
    set_passphrase(teacher, "teacher meadow lantern " + node.name)
    teacher.wait_for_url(node.url("/classes"))
    return teacher


def class_with_child(teacher: Page, class_name: str, first: str, last: str) -> str:
    teacher.fill("#name", class_name)
    teacher.click("form[action='/classes'] button[type=submit]")
    teacher.wait_for_url(re.compile(r"/classes/\d+$"))
    class_url = teacher.url
    teacher.fill("#first_name", first)
    teacher.fill("#last_name", last)
    teacher.locator("form[action$='/children'] button[type=submit]").click()
    expect(teacher.locator("article.child", has_text=first)).to_be_visible()
    return class_url


def capture(page: Page, name: str) -> None:
    """Screenshots at desktop and phone sizes; the phone one must not scroll sideways."""
    page.set_viewport_size(DESKTOP)
    screenshot(page, f"join-{name}-desktop")
    page.set_viewport_size(PHONE)
    assert fits_the_screen(page), name
    screenshot(page, f"join-{name}-phone")
    page.set_viewport_size(DESKTOP)


def test_a_parent_joins_a_class_at_another_school(
    schools: tuple[Node, Node], browser: Browser
) -> None:
    s, h = schools
    admin_s = new_page(browser, viewport=DESKTOP)
    log_in_as_new_admin(admin_s, s, "orchard pebble lighthouse")
    admin_h = new_page(browser, viewport=DESKTOP)
    log_in_as_new_admin(admin_h, h, "harbour lantern meadow")
    peer_with(admin_s, s, h)
    peer_with(admin_h, h, s)

    # On S, the class's teacher registers the parent for Noé and gives them the slip.
    teacher_s = new_teacher(browser, admin_s, s, "Mme Roux", "roux@s.carnet.test")
    class_s = class_with_child(teacher_s, "CM2", "Noé", "Martin")
    code_s, _ = register_guardian(teacher_s, "Noé", "Camille Martin", PARENT_TYPED)

    # On H, the same parent is already a guardian of Léa (the usual first login).
    teacher_h = new_teacher(browser, admin_h, h, "M. Dubois", "dubois@h.carnet.test")
    class_with_child(teacher_h, "CE1", "Léa", "Martin")
    code_h, _ = register_guardian(teacher_h, "Léa", "Camille Martin", PARENT_TYPED)
    parent = new_page(browser, viewport=DESKTOP)
    first_login(parent, served(h), PARENT_TYPED, PARENT_PHONE, code_h, "otter saffron harbour")
    expect(parent.locator("#joins-summary")).to_have_count(0)

    # The parent asks to join S's class from their own school's Carnet.
    parent.click("#join-link")
    parent.wait_for_url(h.url("/joins"))
    expect(parent.locator("h1")).to_have_text("Join a class at another school")
    capture(parent, "1-form")
    parent.fill("#school", s.origin)
    parent.fill("#code", "WRONG-CODE-1234")
    parent.click("form.join-form button[type=submit]")
    expect(parent.locator("#form-error")).to_contain_text("does not recognize this access code")
    expect(parent.locator("#school")).to_have_value(s.origin)
    # the page came with its status (401: the code is not recognized), which Chromium logs
    assert parent.js_errors == [  # type: ignore[attr-defined]
        "Failed to load resource: the server responded with a status of 401 ()"
    ]
    parent.js_errors.clear()  # type: ignore[attr-defined]
    capture(parent, "2-form-error")
    parent.fill("#code", code_s)
    parent.click("form.join-form button[type=submit]")
    parent.wait_for_url(re.compile(re.escape(h.url("/joins/")) + r"\d+$"))
    request_url = parent.url
    expect(parent.locator("main")).to_contain_text("Enter the code texted to you")
    expect(parent.locator("main")).to_contain_text("01")
    capture(parent, "3-sms-code")
    texted = wait_until(
        lambda: texted_codes(s, PARENT_PHONE), what="S texts the parent a code", logs=[s, h]
    )
    parent.fill("#sms_code", texted[-1])
    parent.click("form.join-form button[type=submit]")
    status = parent.locator(".join-request .status")
    expect(status).to_have_text(
        "Waiting for the teacher of CM2 at École S to approve you (child: Noé)."
    )
    capture(parent, "4-waiting")
    parent.goto(h.url("/home"))
    summary = parent.locator("#joins-summary")
    expect(summary).to_contain_text("Class CM2 at École S (child: Noé)")
    expect(summary.locator("[data-state]")).to_have_text("Waiting for the teacher")
    capture(parent, "5-home")

    # On S, the teacher sees where the parent comes from, and approves them.
    teacher_s.goto(class_s)
    guardian = teacher_s.locator("article.child", has_text="Noé").locator("li", has_text="Camille")
    expect(guardian).to_contain_text("parent at École H, another school")
    capture(teacher_s, "6-roster")
    teacher_s.goto(class_s + "/feed")
    approvals = teacher_s.locator("#approvals")
    expect(approvals).to_be_visible(timeout=15_000)
    waiting = approvals.locator("#approval-list li")
    expect(waiting).to_have_count(1)
    expect(waiting).to_contain_text("Camille Martin")
    expect(waiting).to_contain_text("parent at École H, another school")
    capture(teacher_s, "7-approvals")
    teacher_s.click("#approve-all")
    expect(teacher_s.locator("#feed-status")).to_contain_text("Approved")

    # S's delivery worker sends the Accept to H: the parent's page says so.
    def accepted() -> bool:
        parent.goto(request_url)
        return (
            parent.locator(".join-request [data-state]").get_attribute("data-state") == "accepted"
        )

    wait_until(accepted, timeout=60, what="H receives S's Accept", logs=[s, h])
    expect(status).to_have_text("The teacher of CM2 at École S accepted you (child: Noé).")
    capture(parent, "8-accepted")
    assert not parent.js_errors  # type: ignore[attr-defined]
    assert not teacher_s.js_errors  # type: ignore[attr-defined]

    # The same pages in French, on a phone.
    parent.context.add_cookies([{"name": "carnet_lang", "value": "fr", "url": h.origin}])
    french = parent.context.new_page()
    french.set_viewport_size(PHONE)
    french.goto(h.url("/joins"))
    expect(french.locator("h1")).to_have_text("Rejoindre une classe d’une autre école")
    expect(french.locator(".joins [data-state]")).to_have_text("Acceptée")
    assert fits_the_screen(french)
    screenshot(french, "join-list-phone-fr")
    french.goto(request_url)
    screenshot(french, "join-accepted-phone-fr")
    french.goto(h.url("/home"))
    screenshot(french, "join-home-phone-fr")
