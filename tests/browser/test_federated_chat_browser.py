"""A carpool group between two schools' parents, in Chromium, on two real nodes.

School A hosts the class; Karim is a parent at A, Camille's home is school B.  The
school is set up through the JSON API (as ``tests/multinode`` does); everything about the
conversation happens in the two parents' browsers, each on their own node: Camille opens a
group with Karim from B, Karim reads and answers on A, Camille reads the answer on B.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import new_page, screenshot
from tests.factories import PASSPHRASE
from tests.multinode import classes as k
from tests.multinode.classes import family_at_home, joined, set_up_schools, teacher_class
from tests.multinode.cluster import Cluster, start_nodes
from tests.multinode.nodes import Node
from tests.multinode.waiting import wait_until

pytestmark = pytest.mark.browser

DESKTOP = {"viewport": {"width": 1280, "height": 900}}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
DELIVERY = 30.0


@pytest.fixture
def schools(tmp_path: Path) -> Iterator[Cluster]:
    with start_nodes(tmp_path, ("a", "b"), config={"federation_backoff_factor": 0.01}) as cluster:
        yield cluster


def log_in(page: Page, node: Node, login: str) -> None:
    page.goto(node.url("/login"))
    page.fill("#login", login)
    page.fill("#passphrase", PASSPHRASE)
    page.click("#login-submit")
    page.wait_for_url(node.url("/home"))


def chat_ready(page: Page) -> None:
    expect(page.locator("#chat")).to_have_attribute("aria-busy", "false", timeout=15_000)
    expect(page.locator("#chat-error")).to_be_hidden()


def test_two_parents_of_two_schools_organize_a_carpool(schools: Cluster, browser: Browser) -> None:
    a, b = schools.a, schools.b
    admins = set_up_schools(schools, ("a", "b"))
    ce1 = teacher_class(admins["a"], "CE1 A")
    slip = k.register_guardian(
        ce1, k.add_child(ce1, "Tom", "Bernard"), "Karim Bernard", "+33639980003"
    )
    k.onboard_guardian(a, slip)
    k.approve_waiting(ce1)
    camille = family_at_home(admins["b"], "Camille Martin", "+33639980001", "Léa")
    joined(camille, ce1, "Noé")
    ce1.teacher.send(
        "PUT", f"/api/v1/classes/{ce1.class_id}/chat/settings", {"parent_chat": "open"}
    )
    k.post(ce1, "Bienvenue dans la classe")
    wait_until(
        lambda: any(i["class_name"] == "CE1 A" for i in k.feed_items(camille.home)),
        timeout=DELIVERY, what="CE1 A on B", logs=[a, b],
    )  # fmt: skip
    on_b = next(i["class_id"] for i in k.feed_items(camille.home) if i["class_name"] == "CE1 A")
    wait_until(
        lambda: camille.home.get(f"/api/v1/classes/{on_b}/chat")["settings"]["parent_chat"] == "open",
        timeout=DELIVERY, what="B hears that parent chat is open", logs=[a, b],
    )  # fmt: skip

    # Camille, on her own school's node, opens a group with Karim of school A
    parent_b = new_page(browser, **DESKTOP)
    log_in(parent_b, b, "+33639980001")
    parent_b.goto(b.url(f"/classes/{on_b}/chat"))
    chat_ready(parent_b)
    parent_b.click("#accept-conduct")
    expect(parent_b.locator("#conduct")).to_have_count(0)
    chat_ready(parent_b)
    parent_b.fill("#group-name", "Covoiturage piscine")
    parent_b.check("#group-people label:has-text('Karim Bernard') input")
    parent_b.click("#group-form button[type=submit]")
    # the page moves to the new group: wait for it, not for the page it leaves
    expect(parent_b.locator("#conversation-title")).to_have_text("Covoiturage piscine")
    chat_ready(parent_b)
    parent_b.fill("#chat-text", "Je peux emmener Tom et Noé mardi.")
    parent_b.click("#chat-composer button[type=submit]")
    expect(parent_b.locator("#messages .message-text")).to_have_text(
        ["Je peux emmener Tom et Noé mardi."]
    )

    # Karim, on A, finds the group and reads it
    parent_a = new_page(browser, **PHONE)
    log_in(parent_a, a, "+33639980003")
    chat_url = a.url(f"/classes/{ce1.class_id}/chat")

    def group_on_a() -> bool:
        parent_a.goto(chat_url)
        chat_ready(parent_a)
        if parent_a.locator("#accept-conduct").count():
            parent_a.click("#accept-conduct")
            expect(parent_a.locator("#conduct")).to_have_count(0)
            chat_ready(parent_a)
        return parent_a.locator("#conversation-list a:has-text('Covoiturage piscine')").count() == 1

    wait_until(group_on_a, timeout=DELIVERY, interval=0.5, what="the group on A", logs=[b, a])
    parent_a.click("#conversation-list a:has-text('Covoiturage piscine')")
    chat_ready(parent_a)
    expect(parent_a.locator("#messages .message-text")).to_have_text(
        ["Je peux emmener Tom et Noé mardi."]
    )
    expect(parent_a.locator("#messages .message-head strong")).to_have_text(["Camille Martin"])
    parent_a.fill("#chat-text", "Super, je fais le retour.")
    parent_a.click("#chat-composer button[type=submit]")
    expect(parent_a.locator("#messages .message-text")).to_have_count(2)
    screenshot(parent_a, "chat-federated-karim-phone")

    # Camille reads the answer on B
    def answered() -> bool:
        parent_b.reload()
        chat_ready(parent_b)
        return parent_b.locator("#messages .message-text").count() == 2

    wait_until(answered, timeout=DELIVERY, interval=0.5, what="Karim's answer on B", logs=[a, b])
    expect(parent_b.locator("#messages .message-text").nth(1)).to_have_text(
        "Super, je fais le retour."
    )
    screenshot(parent_b, "chat-federated-camille-desktop")
    for page in (parent_a, parent_b):
        assert page.js_errors == [], page.js_errors  # type: ignore[attr-defined]
