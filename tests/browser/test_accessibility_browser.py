"""Every page passes axe-core's WCAG 2.2 A/AA rules, fits a phone and 200 % zoom, and the main
flows work with the keyboard alone.

One seeded node (the feed test's school, plus a partner school and a request
to join one of its classes), one Chromium, one browser context per person.
The list of pages comes from the node's URL map (``web`` blueprints): a new
page that this test does not visit makes it fail, so each page is checked as
the person who uses it, after its scripts finished (decrypted content shown),
at 1280 px and at 360 px wide, and at 640 px (a 1280 px screen at 200 % zoom)
with no horizontal scrolling.

Keyboard only (Tab, Enter, arrows; every control reached shows its focus):
logging in; a parent's first login up to the passphrase, with a wrong code
first; the teacher approving the families and posting a photo with its
description and a permission slip; a parent reading it (the description is the
photo's ``alt``), commenting, signing the slip and writing to the teacher.

Pages that only a one-way step shows are reached by doing it, at the end: a
guardian deleting their account ("account deleted") and the admin starting
the new school year ("school year started").

axe-core reaches the pages as a context init script (``tests/browser/axe.py``):
the node's Content-Security-Policy stays on, no ``bypass_csp``.

``CARNET_TEST_SCREENSHOTS=1`` saves screenshots under ``tests/browser/screenshots/``.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import pkgutil
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser import axe
from tests.browser.conftest import ServedNode, seeded_node
from tests.browser.test_feed_browser import CAMILLE, PASSPHRASE, TEACHER, photo_with_gps

pytestmark = pytest.mark.browser

ADMIN = "direction2@ecole.test"
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 360, "height": 740}
ZOOM_200 = {"width": 640, "height": 450}  # a 1280 × 900 window at 200 %
PARTNER = "http://127.0.0.1:9"  # a partner school on a closed loopback port: nothing leaves
NADIA = ("Nadia Bernard", "+33639980004")  # Tom's other guardian, who has not joined yet
PHOTO_ALT = "Les élèves devant le tableau de Monet au musée"

# Web GET routes that are not pages a person reads: what they serve instead.
NOT_PAGES = {
    "static": "static files",
    "pages.healthz": "the load balancer's health check (JSON)",
    "pages.favicon": "the icon",
    "push.service_worker": "the service worker (JavaScript)",
    "calendar.feed": "a calendar file (text/calendar)",
}


# --------------------------------------------------------------------------- seeding


def seed(data_dir: Path) -> dict[str, Any]:
    """The feed test's school, a partner school, and Camille's request to join a class there."""
    from node.cli import _context
    from node.services import directory
    from node.services.context import Actor
    from node.storage import accounts as account_store
    from node.storage import peers as peer_store
    from node.storage import remote_join as join_store
    from tests.browser.test_feed_browser import seed as feed_seed

    seeded = feed_seed(data_dir)
    ctx, storage = _context(data_dir)

    def more() -> dict[str, Any]:
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        camille = account_store.select_account_by_login(CAMILLE[1])
        assert camille is not None
        peer = peer_store.Peer.create(
            origin=PARTNER, name="École du Parc", state="pending", document="{}",
            document_until=now, added_at=now,
        )  # fmt: skip
        join = join_store.JoinRequest.create(
            account=camille.id, peer=peer.id, follow_id=f"{PARTNER}/follows/a11y",
            join_id="a11y", state="code_sent", masked_phone="06 •• •• •• 01",
            created_at=now, updated_at=now,
        )  # fmt: skip
        teacher = account_store.select_account_by_login(TEACHER)
        assert teacher is not None
        actor = Actor(teacher.id, teacher.role, teacher.display_name)
        slip = directory.register_guardian(ctx, actor, seeded["tom"], *NADIA)
        return {"peer": peer.id, "join": join.id, "nadia_code": slip.code}

    try:
        return {**seeded, **storage.call(more)}
    finally:
        storage.close()


@pytest.fixture
def school(tmp_path: Path) -> Iterator[tuple[ServedNode, dict[str, Any]]]:
    with seeded_node(tmp_path, "tests.browser.test_accessibility_browser") as served:
        yield served


# --------------------------------------------------------------------------- helpers


def web_pages(data_dir: Path) -> set[str]:
    """The endpoints of every GET route the ``web`` package serves (the JSON API is not in it)."""
    from quart import Quart

    import web
    import web.views
    from node.config import load_config
    from node.urlids import IdConverter, PublicIdConverter
    from web.i18n import Catalogues

    names = set()
    for info in pkgutil.iter_modules(web.views.__path__):
        blueprint = getattr(importlib.import_module(f"web.views.{info.name}"), "blueprint", None)
        if blueprint is not None:
            names.add(blueprint.name)
    app = Quart("routes")
    app.config.update(CARNET=load_config({"data_dir": data_dir}), CARNET_CATALOGUES=Catalogues())
    app.url_map.converters["id"] = IdConverter
    app.url_map.converters["pubid"] = PublicIdConverter
    web.register(app)
    return {
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if "GET" in (rule.methods or ()) and rule.endpoint.split(".")[0] in names | {"static"}
    }


def person(browser: Browser, node: ServedNode, login: str | None, landing: str) -> Page:
    context = browser.new_context(locale="en-GB", viewport=DESKTOP)
    axe.install(context)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors  # type: ignore[attr-defined]
    if login is not None:  # with the keyboard only, like every flow here
        page.goto(f"{node.url}/login")
        tab_to(page, "#login")
        page.keyboard.type(login)
        tab_to(page, "#passphrase")
        page.keyboard.type(PASSPHRASE)
        page.keyboard.press("Enter")
        page.wait_for_url(f"{node.url}{landing}")
    return page


def settled(page: Page) -> None:
    """The page's scripts are done: nothing is still loading (``aria-busy``) or fading in."""
    page.wait_for_function(
        "() => document.readyState === 'complete'"
        " && !document.querySelector('[aria-busy=\"true\"]')",
        timeout=20_000,
    )
    page.wait_for_timeout(150)


def shoot(page: Page, name: str) -> None:
    if os.environ.get("CARNET_TEST_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"a11y-{name}.png"), full_page=True)


def overflow(page: Page) -> str | None:
    """Why the page scrolls sideways (its widest elements), or None when it fits."""
    wide: str | None = page.evaluate(
        """() => {
          const width = window.innerWidth;
          if (document.documentElement.scrollWidth <= width) return null;
          const culprits = [...document.querySelectorAll('body *')]
            .filter((e) => e.getBoundingClientRect().right > width + 1)
            .slice(0, 5)
            .map((e) => `${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''}.${[...e.classList].join('.')}`);
          return `${document.documentElement.scrollWidth}px wide for ${width}px: ${culprits.join(', ')}`;
        }"""
    )
    return wide


class Audit:
    """Runs the checks on each page and keeps every problem, so one run lists them all."""

    def __init__(self, pages: set[str]) -> None:
        self.pages = pages
        self.problems: list[str] = []
        self.seen: set[str] = set()

    def page(self, page: Page, endpoint: str, url: str, name: str) -> None:
        self.seen.add(endpoint)
        response = page.goto(url)
        assert response is not None and response.ok, f"{url}: {response and response.status}"
        settled(page)
        self.check(page, name)

    def answer(self, page: Page, name: str) -> None:
        """A page a form's POST answered with (a printable slip, a setup link)."""
        settled(page)
        self.check(page, name)

    def error_page(self, page: Page, url: str, status: int, name: str) -> None:
        """The page people see instead, when they may not see or there is nothing there."""
        response = page.goto(url)
        assert response is not None and response.status == status, url
        settled(page)
        self.check(page, name)

    def check(self, page: Page, name: str) -> None:
        """axe at desktop and phone width; no sideways scrolling on a phone or at 200 % zoom."""
        for label, size in (("desktop", DESKTOP), ("360px", PHONE), ("200%", ZOOM_200)):
            page.set_viewport_size(size)  # axe and scrollWidth read the new layout
            if label != "200%":
                found = axe.violations(page)
                if found:
                    self.problems.append(axe.describe(f"{name} ({label})", found))
            if label != "desktop":
                wide = overflow(page)
                if wide:
                    self.problems.append(f"{name} ({label}) scrolls sideways: {wide}")
            if label != "desktop":
                shoot(page, f"{name}-{'phone' if label == '360px' else 'zoom200'}")
        page.set_viewport_size(DESKTOP)
        shoot(page, f"{name}-desktop")

    def check_axe_sees(self, page: Page) -> None:
        """axe-core really runs the WCAG rules here: an image without alt text and pale grey
        text on white are caught."""
        page.evaluate(
            """() => {
              const box = document.createElement('div'); box.id = 'axe-probe';
              const img = document.createElement('img'); img.src = '/static/favicon.svg';
              const pale = document.createElement('p'); pale.textContent = 'pale';
              pale.style.color = '#ccc'; pale.style.background = '#fff';  // CSSOM: CSP allows it
              box.append(img, pale);
              document.querySelector('main').append(box);
            }"""
        )
        found = {v["id"] for v in axe.violations(page)}
        page.evaluate("() => document.getElementById('axe-probe').remove()")
        assert {"image-alt", "color-contrast"} <= found, found

    def done(self) -> None:
        assert set(NOT_PAGES) <= self.pages, "NOT_PAGES names a route that no longer exists"
        missing = self.pages - self.seen - set(NOT_PAGES)
        assert not missing, f"pages without an accessibility check: {sorted(missing)}"
        assert not self.problems, "\n\n".join(self.problems)


_FOCUS = """(wanted) => {
  const focused = document.activeElement;
  let e = focused;
  // a visually hidden file input shows its focus on the label drawn as a button
  if (e.classList.contains('visually-hidden') && e.labels?.length) e = e.labels[0];
  const s = getComputedStyle(e);
  // past the last control, the focus leaves the page (to the browser's own toolbar) for one Tab
  const seen = focused === document.body
    || (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== 'none';
  const name = `${focused.tagName.toLowerCase()}${focused.id ? '#' + focused.id : ''}`
    + ` "${(focused.textContent || focused.getAttribute('aria-label') || '').trim().slice(0, 40)}"`
    + ` (outline: ${s.outlineStyle} ${s.outlineWidth}, box-shadow: ${s.boxShadow})`;
  return {reached: focused.matches(wanted), seen, name};
}"""


def tab_to(page: Page, selector: str, limit: int = 80) -> None:
    """Press Tab until ``selector`` has the focus; every control on the way shows its focus.

    Nothing to press when the page already put the focus there (a form's next step)."""
    if page.evaluate("(s) => document.activeElement?.matches(s)", selector):
        return
    for _ in range(limit):
        page.keyboard.press("Tab")
        focus = page.evaluate(_FOCUS, selector)
        assert focus["seen"], f"{focus['name']} has the focus but shows no focus indicator"
        if focus["reached"]:
            return
    raise AssertionError(f"{limit} presses of Tab never reached {selector}")


# --------------------------------------------------------------------------- the walk


def test_every_page_is_accessible(
    school: tuple[ServedNode, dict[str, Any]], browser: Browser, tmp_path: Path
) -> None:
    node, ids = school
    audit = Audit(web_pages(node.data_dir))
    class_id = ids["class_id"]
    feed = f"{node.url}/classes/{class_id}/feed"

    # Anonymous: the login pages, and a staff member's setup link.
    anonymous = person(browser, node, None, "")
    anonymous.goto(f"{node.url}/login")
    audit.check_axe_sees(anonymous)
    audit.page(anonymous, "pages.index", f"{node.url}/", "login")
    audit.seen.add("auth.login")
    audit.page(anonymous, "auth.welcome", f"{node.url}/welcome", "welcome")
    # A parent's first login, keyboard only, up to choosing a passphrase: each step is checked.
    tab_to(anonymous, "#phone")
    anonymous.keyboard.type("06 39 98 00 04")
    tab_to(anonymous, "#code")
    anonymous.keyboard.type("WRONG-CODE")
    anonymous.keyboard.press("Enter")
    expect(anonymous.locator("#step-code .alert.error")).to_be_visible()
    audit.check(anonymous, "welcome-wrong-code")
    tab_to(anonymous, "#code")
    anonymous.keyboard.press("Control+A")
    anonymous.keyboard.type(ids["nadia_code"])
    anonymous.keyboard.press("Enter")
    expect(anonymous.locator("#step-sms")).to_be_visible()
    audit.check(anonymous, "welcome-sms")
    tab_to(anonymous, "#sms_code")
    anonymous.keyboard.type(node.wait_for_sms(NADIA[1], 1))
    anonymous.keyboard.press("Enter")
    expect(anonymous.locator("#step-passphrase")).to_be_visible()
    audit.check(anonymous, "welcome-passphrase")
    audit.page(anonymous, "auth.setup", node.admin_setup_url, "setup")
    audit.error_page(anonymous, f"{node.url}/no-such-page", 404, "not-found")

    # The teacher, keyboard only: approve the families, then a post with a photo and its description.
    teacher = person(browser, node, TEACHER, "/classes")
    # Playwright intercepts file choosers once a listener exists; set it before the first
    # one opens (expect_file_chooser alone turns interception on too late, now and then)
    teacher.on("filechooser", lambda _: None)
    teacher.goto(feed)
    settled(teacher)
    tab_to(teacher, "#approve-all")
    teacher.keyboard.press("Enter")
    expect(teacher.locator("#feed-status")).to_contain_text("Approved")
    teacher.reload()
    settled(teacher)
    photo_with_gps(teacher, tmp_path / "musee.jpg")
    tab_to(teacher, "#post-text")
    teacher.keyboard.type("Sortie au musée : merci à tous les accompagnateurs.")
    # with a permission slip, so that its answer buttons are checked on the parent's side too
    tab_to(teacher, "#action-type")
    for _ in range(3):  # a closed <select> changes with the arrow keys
        teacher.keyboard.press("ArrowDown")
    expect(teacher.locator("#action-type")).to_have_value("slip")
    tab_to(teacher, "#action-title")
    teacher.keyboard.type("Autorisation de sortie")
    tab_to(teacher, "#action-slip-text")
    teacher.keyboard.type("J'autorise mon enfant à participer à la sortie.")
    tab_to(teacher, "#post-files")
    with teacher.expect_file_chooser() as chooser:
        teacher.keyboard.press("Enter")
    chooser.value.set_files(tmp_path / "musee.jpg")
    alt = teacher.locator("#picked input.photo-alt")
    expect(alt).to_have_accessible_name(re.compile("Describe this photo"))
    tab_to(teacher, "#picked input.photo-alt")
    teacher.keyboard.type(PHOTO_ALT)
    shoot(teacher, "composer-photo-described")
    tab_to(teacher, "#post-submit")
    teacher.keyboard.press("Enter")
    expect(teacher.locator("#feed-status")).to_have_text("Up to date.", timeout=20_000)
    photo = teacher.locator("#posts article.post .attachment.image img")
    expect(photo).to_have_attribute("alt", PHOTO_ALT)
    audit.check(teacher, "feed-teacher")
    audit.seen.add("feed.class_feed")
    audit.page(teacher, "teacher.classes", f"{node.url}/classes", "classes")
    audit.page(teacher, "teacher.class_page", f"{node.url}/classes/{class_id}", "class")
    audit.page(teacher, "absences.class_absences", f"{node.url}/classes/{class_id}/absences",
               "absences-teacher")  # fmt: skip
    # pages that answer a form: the printable slip of a parent who has not joined
    teacher.goto(f"{node.url}/classes/{class_id}")
    teacher.locator("ul.guardians li", has_text=NADIA[0]).get_by_role(
        "button", name="New code and slip"
    ).click()
    teacher.wait_for_url(re.compile(r"/guardians/\d+/code$"))
    audit.answer(teacher, "slip")
    audit.error_page(teacher, f"{node.url}/admin", 403, "forbidden")
    audit.page(teacher, "chat.chat_reports", f"{node.url}/classes/{class_id}/chat/reports",
               "chat-reports")  # fmt: skip

    # A guardian, keyboard only: the feed with the photo's description, then a comment.
    camille = person(browser, node, CAMILLE[2], "/home")
    audit.page(camille, "guardian.home", f"{node.url}/home", "home")
    camille.goto(feed)
    settled(camille)
    expect(camille.locator("#posts .attachment.image img")).to_have_attribute("alt", PHOTO_ALT)
    tab_to(camille, "#posts article.post textarea")
    camille.keyboard.type("Merci pour cette belle sortie !")
    camille.keyboard.press("Tab")
    camille.keyboard.press("Enter")
    expect(camille.locator("#posts li.comment").first).to_contain_text(
        "Merci pour cette belle sortie !", timeout=15_000
    )
    tab_to(camille, "#posts .my-answer .answer-buttons button:first-child")  # "I agree and sign"
    camille.keyboard.press("Enter")
    expect(camille.locator("#posts .answered").first).to_contain_text("Agreed", timeout=15_000)
    audit.check(camille, "feed-guardian")
    audit.page(camille, "account.index", f"{node.url}/account", "account")
    audit.page(camille, "audit.erase_form", f"{node.url}/account/erase", "account-erase")
    audit.page(camille, "export.page", f"{node.url}/me/export", "export")
    audit.page(camille, "joins.index", f"{node.url}/joins", "joins")
    audit.page(camille, "joins.detail", f"{node.url}/joins/{ids['join']}", "join")
    audit.page(camille, "chat.chat_index", f"{node.url}/classes/{class_id}/chat", "chat")
    tab_to(camille, "#family-form button[type=submit]")  # a thread with Léa's teacher
    camille.keyboard.press("Enter")
    expect(camille.locator("#chat-composer")).to_be_visible()
    settled(camille)
    tab_to(camille, "#chat-text")
    camille.keyboard.type("Léa sera absente vendredi matin.")
    tab_to(camille, "#chat-composer button[type=submit]")
    camille.keyboard.press("Enter")
    expect(camille.locator("#messages .message-text")).to_have_count(1)
    # a notification's link to the message opens its conversation: one page, checked once
    conversation = camille.url
    message = str(camille.locator("#messages li.message").first.get_attribute("id"))[2:]
    audit.page(camille, "chat.chat_message", f"{conversation.rsplit('/', 1)[0]}/m/{message}",
               "conversation")  # fmt: skip
    assert camille.url == conversation
    audit.seen.add("chat.chat_conversation")

    # The admin: the school, partner schools, alerts (a drill, to have one to open).
    admin = person(browser, node, ADMIN, "/admin")
    audit.page(admin, "admin.index", f"{node.url}/admin", "admin")
    admin.get_by_role("button", name="New setup link").click()  # the admin made by carnet init
    admin.wait_for_url(re.compile(r"/admin/staff/\d+/setup-link$"))
    audit.answer(admin, "setup-link")
    audit.page(admin, "audit.index", f"{node.url}/admin/audit", "audit")
    audit.page(admin, "school_year.index", f"{node.url}/admin/year", "school-year")
    audit.page(admin, "peers.index", f"{node.url}/admin/peers", "peers")
    audit.page(admin, "peers.detail", f"{node.url}/admin/peers/{ids['peer']}", "peer")
    audit.page(admin, "peers.stop_page", f"{node.url}/admin/peers/{ids['peer']}/stop", "peer-stop")
    audit.page(admin, "alerts.index", f"{node.url}/alerts", "alerts")
    admin.select_option("#alert-template", "lockdown")
    admin.fill("#alert-text", "Exercice de confinement.")
    admin.locator("#alert-drill").set_checked(True)
    admin.click("#alert-send")
    admin.click("#alert-confirm-send")
    admin.wait_for_url(re.compile(r"/alerts/[A-Za-z0-9_-]+$"), timeout=20_000)
    audit.page(admin, "alerts.alert", admin.url, "alert")
    audit.page(admin, "alerts.worklist", f"{node.url}/alerts/reach", "alerts-reach")

    # Pages that answer a one-way step, done for real, last. Camille, whose pages are all
    # checked, deletes her account, keyboard only: the "account deleted" page.
    camille.goto(f"{node.url}/account/erase")
    settled(camille)
    tab_to(camille, "#erase-confirm")
    camille.keyboard.type("DELETE")
    camille.keyboard.press("Enter")
    expect(camille.get_by_role("heading", level=1)).to_have_text("Your account is deleted")
    audit.answer(camille, "account-erased")
    # The admin starts the new school year as the page plans it (CE1 A archived).
    admin.goto(f"{node.url}/admin/year")
    settled(admin)
    admin.once("dialog", lambda dialog: dialog.accept())
    admin.get_by_role("button", name="Start the new school year").click()
    expect(admin.get_by_role("heading", level=1)).to_have_text(
        re.compile(r"^School year \d{4}-\d{4} started$")
    )
    audit.answer(admin, "year-done")

    for page in (anonymous, teacher, camille, admin):
        assert not page.js_errors, page.js_errors  # type: ignore[attr-defined]
    audit.done()


if __name__ == "__main__":  # the seeding, in its own process: python -m <this module> DIR
    print(json.dumps(seed(Path(sys.argv[1]))))
