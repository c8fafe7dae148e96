"""An admin peers their school with a second real node, in Chromium, comparing fingerprints.

Two ``carnet serve`` processes (``tests/multinode/nodes.py``): school A's
admin types school B's address, reads the fingerprint Carnet fetched, and
checks it against what B's admin reads on B's own page and what B serves at
``/.well-known/carnet-node``, then confirms. Screenshots of each page at
desktop and phone sizes go to ``test-artifacts/peers-*.png``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect

from federation.nodedoc import verify_node_document
from tests.browser.conftest import new_page, screenshot
from tests.browser.test_onboarding_browser import set_passphrase
from tests.multinode.nodes import Node

pytestmark = pytest.mark.browser

DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}


@pytest.fixture
def schools(tmp_path: Path) -> Iterator[tuple[Node, Node]]:
    with Node("a", tmp_path) as a, Node("b", tmp_path) as b:
        a.start()
        b.start()
        yield a, b


def log_in_as_new_admin(page: Page, node: Node, passphrase: str) -> None:
    assert node.admin_setup_url is not None
    page.goto(node.admin_setup_url)
    set_passphrase(page, passphrase)
    page.wait_for_url(node.url("/admin"))


def shown_fingerprints(page: Page, where: str) -> list[str]:
    """What the person reads: each fingerprint's groups, in order."""
    blocks = page.locator(f"{where} .fingerprint-groups")
    return [" ".join(block.locator("span").all_inner_texts()) for block in blocks.all()]


def served_fingerprints(node: Node) -> list[str]:
    """The fingerprints of the keys in the node's verified document."""
    with httpx.Client(trust_env=False, timeout=10) as http:
        body = http.get(node.url("/.well-known/carnet-node")).content
    document = verify_node_document(body, origin=node.origin, now=int(time.time()))
    return [key.fingerprint for key in document.keys]


def fits_the_screen(page: Page) -> bool:
    """Nothing wider than the viewport: no sideways scrolling on a phone."""
    return bool(
        page.evaluate(
            "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
        )
    )


def capture(page: Page, name: str) -> None:
    """Screenshots at desktop and phone sizes; the phone one must not scroll sideways."""
    page.set_viewport_size(DESKTOP)
    screenshot(page, f"peers-{name}-desktop")
    page.set_viewport_size(PHONE)
    assert fits_the_screen(page), name
    screenshot(page, f"peers-{name}-phone")
    page.set_viewport_size(DESKTOP)


def test_an_admin_peers_with_a_second_node_after_comparing_fingerprints(
    schools: tuple[Node, Node], browser: Browser
) -> None:
    a, b = schools
    # School B's admin opens their Peer schools page: their own fingerprint, to read aloud.
    admin_b = new_page(browser, viewport=DESKTOP)
    log_in_as_new_admin(admin_b, b, "harbour lantern meadow")
    admin_b.goto(b.url("/admin/peers"))
    read_aloud = shown_fingerprints(admin_b, "#this-school")
    assert read_aloud == served_fingerprints(b)

    # School A's admin adds B from the admin area's navigation.
    admin_a = new_page(browser, viewport=DESKTOP)
    log_in_as_new_admin(admin_a, a, "orchard pebble lighthouse")
    admin_a.click("nav.subnav >> text=Peer schools")
    admin_a.wait_for_url(a.url("/admin/peers"))
    expect(admin_a.locator("main")).to_contain_text("No peer school yet.")
    admin_a.fill("#origin", b.origin)
    admin_a.click("form.add-peer button[type=submit]")
    admin_a.wait_for_url(re.compile(re.escape(a.url("/admin/peers/")) + r"\d+$"))
    confirm = admin_a.locator("#confirm")
    expect(confirm).to_contain_text("École B")
    expect(confirm).to_contain_text("compare these fingerprints, character by character")
    expect(admin_a.locator("h1")).to_contain_text(b.origin)
    shown = shown_fingerprints(admin_a, "#peer-fingerprints")
    assert shown == served_fingerprints(b) == read_aloud
    assert not admin_a.js_errors  # type: ignore[attr-defined]
    capture(admin_a, "confirm")

    admin_a.click("#confirm-peer")
    expect(admin_a.locator("#state-title + p [data-state]")).to_have_text("Active")
    expect(admin_a.locator("#peer-keys [data-key-state]")).to_have_text(["Pinned"])
    capture(admin_a, "detail")
    admin_a.goto(a.url("/admin/peers"))
    row = admin_a.locator("#peers tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator("[data-state]")).to_have_text("Active")
    expect(row).to_contain_text(b.origin)
    capture(admin_a, "list")

    # The list in French, on a phone.
    admin_a.context.add_cookies([{"name": "carnet_lang", "value": "fr", "url": a.origin}])
    french = admin_a.context.new_page()
    french.set_viewport_size(PHONE)
    french.goto(a.url("/admin/peers"))
    expect(french.locator("h1")).to_have_text("Écoles partenaires")
    expect(french.locator("#peers [data-state]")).to_have_text("Actif")
    assert fits_the_screen(french)
    screenshot(french, "peers-list-phone-fr")
