"""The admins' worklist of families no alert reaches in the app, and a drill's timing report.

The school is the feed test's (three guardians who joined, none with
notifications turned on) plus Zoé, whose only guardian never used her
access code.  The admin opens the worklist from /alerts, prints a new slip
for Zoé's mother with one click, then runs a drill: once a guardian said
"I have read this", the drill report shows the times.

``CARNET_TEST_SCREENSHOTS=1`` saves screenshots under ``tests/browser/screenshots/``.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import ServedNode, new_page, seeded_node
from tests.browser.test_alerts_browser import (
    ADMIN,
    DESKTOP,
    PHONE,
    log_in,
    ready,
    send_alert,
    shoot,
)
from tests.browser.test_feed_browser import CAMILLE, TEACHER

pytestmark = pytest.mark.browser

ZOE_MOTHER = ("Nadia Seule", "+33639980009")


def seed(data_dir: Path) -> dict[str, Any]:
    """The feed test's school, and a child whose only guardian has not joined."""
    from node.cli import _context
    from node.services import directory
    from node.storage import accounts as account_store
    from tests.browser.test_feed_browser import seed as feed_seed

    seeded = feed_seed(data_dir)
    ctx, storage = _context(data_dir)

    def more() -> dict[str, Any]:
        teacher = account_store.select_account_by_login(TEACHER)
        assert teacher is not None
        actor = directory_actor(teacher)
        zoe = directory.add_child(ctx, actor, seeded["class_id"], "Zoé", "Seule")
        directory.register_guardian(ctx, actor, zoe.id, *ZOE_MOTHER)
        return {"zoe": zoe.id}

    try:
        return {**seeded, **storage.call(more)}
    finally:
        storage.close()


def directory_actor(account: Any) -> Any:
    from node.services.context import Actor

    return Actor(account.id, account.role, account.display_name)


@pytest.fixture
def school(tmp_path: Path) -> Iterator[tuple[ServedNode, dict[str, Any]]]:
    with seeded_node(tmp_path, "tests.browser.test_alert_worklist_browser") as served:
        yield served


def test_worklist_and_drill_report(
    school: tuple[ServedNode, dict[str, Any]], browser: Browser
) -> None:
    node, seeded = school
    admin = new_page(browser, **DESKTOP)
    log_in(admin, node, ADMIN, "/admin")
    admin.goto(f"{node.url}/alerts")
    ready(admin)
    expect(admin.locator("#group-count")).to_have_text("3 guardians can receive alerts.")

    # The worklist, from the alerts page: every family, since nobody turned notifications on.
    admin.click("#worklist-link")
    admin.wait_for_url(f"{node.url}/alerts/reach")
    expect(admin.locator("h1")).to_have_text("Families alerts cannot reach in the app")
    expect(admin.locator("#worklist-count")).to_have_text("3 families to help")
    klass = admin.locator(f"#worklist-class-{seeded['class_id']}")
    expect(klass.locator("h2")).to_have_text("CE1 A")
    zoe = klass.locator(f"li.worklist-family[data-child-id='{seeded['zoe']}']")
    expect(zoe.locator("h3")).to_have_text("Zoé Seule")
    expect(zoe.locator(".badge")).to_have_text("Cannot be reached")
    expect(zoe.locator(".problem-not_joined .guardian-name")).to_have_text(ZOE_MOTHER[0])
    expect(zoe.locator(".problem-not_joined .problem")).to_contain_text("Has not joined Carnet yet")
    lea = klass.locator(f"li.worklist-family[data-child-id='{seeded['lea']}']")
    expect(lea.locator(".badge")).to_have_text("SMS only")
    expect(lea.locator(".problem-no_device")).to_have_count(2)
    expect(lea.locator(".problem-no_device").first).to_contain_text(
        "Ask them to turn notifications on in My account"
    )
    expect(lea.locator("button")).to_have_count(0)  # nothing to reissue for who joined
    expect(
        klass.locator("button", has_text="Print slips for everyone who has not joined")
    ).to_be_visible()
    expect(admin.locator("body")).not_to_contain_text("+3363998")
    shoot(admin, "alerts-worklist-desktop")
    admin.set_viewport_size(PHONE["viewport"])
    shoot(admin, "alerts-worklist-phone")
    admin.set_viewport_size(DESKTOP["viewport"])

    # One click: a new access code and the printable slip for Zoé's mother.
    zoe.locator("button", has_text="New access code and slip").click()
    admin.wait_for_url(re.compile(r"/guardians/\d+/code$"))
    expect(admin.locator("article.slip")).to_have_count(1)
    expect(admin.locator("article.slip")).to_contain_text(f"Hello {ZOE_MOTHER[0]},")
    expect(admin.locator("article.slip [data-code]")).to_have_text(re.compile(r"\S{6,}"))
    expect(admin.locator("#print-slip")).to_be_visible()

    # A drill; Camille reads it and says so; the drill report shows the times.
    admin.goto(f"{node.url}/alerts")
    ready(admin)
    drill_id = send_alert(admin, "evacuation", "Exercice d'évacuation.", drill=True)
    timing = admin.locator("#timing")
    expect(timing).to_be_visible(timeout=15_000)
    expect(timing.locator("h3")).to_have_text("Drill report")
    expect(admin.locator("#timing-recipients")).to_have_text("3")
    expect(admin.locator("#timing-first-ack")).to_have_text("not yet")
    expect(timing).to_contain_text("SMS a real alert would have sent")

    camille = new_page(browser, **PHONE)
    log_in(camille, node, CAMILLE[1], "/home")
    camille.goto(f"{node.url}/alerts/{drill_id}")
    ready(camille)
    camille.click("#ack")
    expect(camille.locator("#ack-done")).to_be_visible()

    expect(admin.locator("#timing-acknowledged")).to_have_text("1 of 3", timeout=10_000)
    expect(admin.locator("#timing-first-ack")).to_have_text(re.compile(r"^\d+ s$|^\d+ min \d\d s$"))
    expect(admin.locator("#timing-last-ack")).to_have_text("not yet")  # two still to read it
    expect(admin.locator("#timing-median-ack")).to_have_text("not yet")
    expect(admin.locator("#timing-first-ack")).not_to_have_class(re.compile("not-yet"))
    report = admin.evaluate(f"async () => (await fetch('/api/v1/alerts/{drill_id}/reach')).json()")
    expect(admin.locator("#timing-texts")).to_have_text(str(report["timing"]["texts"]))
    expect(admin.locator("#timing-delivered")).to_have_text(f"{report['timing']['delivered']} of 3")
    shoot(admin, "alerts-timing-desktop")
    admin.set_viewport_size(PHONE["viewport"])
    shoot(admin, "alerts-timing-phone")

    for page in (admin, camille):
        assert page.js_errors == [], page.js_errors  # type: ignore[attr-defined]


if __name__ == "__main__":
    print(json.dumps(seed(Path(sys.argv[1]))))
