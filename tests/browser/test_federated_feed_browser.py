"""One feed across three schools, in Chromium: the acceptance test of federated class content.

Three real nodes: A and C each host a class, B is the parent's own school
(where the parent also has a child, in a class of B). The admins peer A↔B
and C↔B through the Peer schools pages. The parent joins A's and C's
classes from B's "Join a class at another school" pages (each teacher's
access code, then the code each class's node texts), and each teacher
approves them on the class page (the browser signs). Each teacher posts
from the browser (A's post carries a photo). On B, the parent's home shows
B's, A's and C's posts in one timeline, each labelled with its class and
decrypted in the browser; the parent comments on A's and C's posts from B,
B forwards the comments, and each teacher reads theirs on their own node.
Screenshots of B's feed at desktop and phone sizes go to
``test-artifacts/federated-feed-*.png``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.browser.conftest import new_page, screenshot
from tests.browser.test_feed_browser import feed_ready, photo_with_gps
from tests.browser.test_join_browser import (
    class_with_child,
    new_teacher,
    peer_with,
    served,
    texted_codes,
)
from tests.browser.test_onboarding_browser import first_login, register_guardian
from tests.browser.test_peers_browser import DESKTOP, PHONE, fits_the_screen, log_in_as_new_admin
from tests.multinode.cluster import Cluster, start_nodes
from tests.multinode.nodes import Node
from tests.multinode.waiting import wait_until

pytestmark = pytest.mark.browser

PARENT = "Camille Martin"
PARENT_PHONE = "+33639980001"
PARENT_TYPED = "06 39 98 00 01"
#: Federation delivery is asynchronous: how long each cross-node step may take.
DELIVERY = 30.0

POST_A = "Sortie au musée jeudi : prévoir un goûter et une casquette."
POST_B = "Réunion de rentrée lundi à 17 h dans la classe."
POST_C = "Piscine vendredi : bonnet de bain obligatoire."
COMMENT_A = "Merci, Noé a hâte d’aller au musée !"
COMMENT_C = "Bien noté pour le bonnet de Jules."


@pytest.fixture
def schools(tmp_path: Path) -> Iterator[Cluster]:
    """A and C host a class each; B is the parent's own school. Started in parallel."""
    with start_nodes(tmp_path, ("a", "b", "c")) as cluster:
        yield cluster


def post_card(page: Page, text: str) -> Locator:
    return page.locator("#posts article.post", has_text=text)


def approve_and_post(teacher: Page, class_url: str, text: str, files: list[Path]) -> None:
    """On the class feed: approve the waiting guardian (the page signs), then post."""
    teacher.goto(class_url + "/feed")
    approvals = teacher.locator("#approvals")
    expect(approvals).to_be_visible(timeout=15_000)
    expect(approvals.locator("#approval-list li")).to_have_count(1)
    expect(approvals.locator("#approval-list li")).to_contain_text(PARENT)
    teacher.click("#approve-all")
    expect(teacher.locator("#feed-status")).to_contain_text("Approved")
    expect(approvals).to_be_hidden()
    teacher.fill("#post-text", text)
    if files:
        teacher.set_input_files("#post-files", files)
    teacher.click("#post-submit")
    expect(teacher.locator("#feed-status")).to_have_text("Up to date.", timeout=20_000)
    expect(post_card(teacher, text).locator(".post-text")).to_have_text(text)


def ask_to_join(parent: Page, home: Node, host: Node, code: str) -> str:
    """From ``home``'s join pages: ``host``'s address and code, then the code ``host`` texts."""
    already = len(texted_codes(host, PARENT_PHONE))
    parent.goto(home.url("/joins"))
    parent.fill("#school", host.origin)
    parent.fill("#code", code)
    parent.click("form.join-form button[type=submit]")
    parent.wait_for_url(re.compile(re.escape(home.url("/joins/")) + r"\d+$"))
    request_url = parent.url
    texted = wait_until(
        lambda: texted_codes(host, PARENT_PHONE)[already:],
        what=f"{host.name} texts the parent a code",
        logs=[host, home],
    )
    parent.fill("#sms_code", texted[-1])
    parent.click("form.join-form button[type=submit]")
    expect(parent.locator(".join-request [data-state]")).to_have_attribute("data-state", "linked")
    return request_url


def wait_for_accept(parent: Page, request_url: str, nodes: list[Node]) -> None:
    def accepted() -> bool:
        parent.goto(request_url)
        state = parent.locator(".join-request [data-state]").get_attribute("data-state")
        return state == "accepted"

    wait_until(accepted, timeout=DELIVERY, interval=0.5, what="the Accept", logs=nodes)


def wait_for_comment(teacher: Page, text: str, comment: str, nodes: list[Node]) -> Locator:
    """Reload the teacher's class feed until the parent's comment is under the post."""
    comments = post_card(teacher, text).locator(".comment-list li")

    def arrived() -> bool:
        teacher.reload()
        feed_ready(teacher)
        return comments.filter(has_text=comment).count() == 1

    wait_until(arrived, timeout=DELIVERY, interval=0.5, what="the parent's comment", logs=nodes)
    return comments.filter(has_text=comment)


def test_a_parent_reads_and_comments_classes_of_two_other_schools_in_one_feed(
    schools: Cluster, browser: Browser, tmp_path: Path
) -> None:
    a, b, c = schools.a, schools.b, schools.c
    nodes = [a, b, c]
    admins = {}
    for node in nodes:
        admins[node.name] = new_page(browser, viewport=DESKTOP)
        log_in_as_new_admin(admins[node.name], node, f"admin meadow lantern {node.name}")
    for one, other in ((a, b), (b, a), (c, b), (b, c)):
        peer_with(admins[one.name], one, other)

    # A's and C's teachers register the parent for a child and hand over the slips.
    teacher_a = new_teacher(browser, admins["a"], a, "Mme Roux", "roux@a.carnet.test")
    class_a = class_with_child(teacher_a, "CM2 Roux", "Noé", "Martin")
    code_a, _ = register_guardian(teacher_a, "Noé", PARENT, PARENT_TYPED)
    teacher_c = new_teacher(browser, admins["c"], c, "M. Petit", "petit@c.carnet.test")
    class_c = class_with_child(teacher_c, "CE2 Petit", "Jules", "Martin")
    code_c, _ = register_guardian(teacher_c, "Jules", PARENT, PARENT_TYPED)

    # On B, the parent is a guardian of Léa, in a class of B with a post of its own.
    teacher_b = new_teacher(browser, admins["b"], b, "M. Dubois", "dubois@b.carnet.test")
    class_b = class_with_child(teacher_b, "CE1 Dubois", "Léa", "Martin")
    code_b, _ = register_guardian(teacher_b, "Léa", PARENT, PARENT_TYPED)
    parent = new_page(browser, viewport=DESKTOP)
    first_login(parent, served(b), PARENT_TYPED, PARENT_PHONE, code_b, "otter saffron harbour")
    approve_and_post(teacher_b, class_b, POST_B, [])

    # From B, the parent asks to join A's class and C's class.
    request_a = ask_to_join(parent, b, a, code_a)
    request_c = ask_to_join(parent, b, c, code_c)

    # Each teacher approves them and posts; A's post carries a photo.
    photo = tmp_path / "sortie-musee.jpg"
    photo_with_gps(teacher_a, photo)
    approve_and_post(teacher_a, class_a, POST_A, [photo])
    expect(post_card(teacher_a, POST_A).locator(".attachment.image img")).to_have_attribute(
        "src", re.compile(r"^blob:")
    )
    approve_and_post(teacher_c, class_c, POST_C, [])
    wait_for_accept(parent, request_a, [a, b])
    wait_for_accept(parent, request_c, [c, b])

    # On B, the parent's home: the three classes' posts in one timeline, decrypted here.
    parent.goto(b.url("/home"))
    feed_ready(parent)
    expect(post_card(parent, POST_B).locator(".post-text")).to_have_text(POST_B)
    cards = parent.locator("#posts article.post")

    def all_three() -> bool:
        parent.reload()
        feed_ready(parent)
        return all(post_card(parent, text).count() == 1 for text in (POST_A, POST_B, POST_C))

    wait_until(all_three, timeout=DELIVERY, interval=0.5, what="A's and C's posts on B", logs=nodes)
    expect(cards).to_have_count(3)
    for text, class_name, author in (
        (POST_A, "CM2 Roux", "Mme Roux"),
        (POST_B, "CE1 Dubois", "M. Dubois"),
        (POST_C, "CE2 Petit", "M. Petit"),
    ):
        card = post_card(parent, text)
        expect(card.locator(".post-text")).to_have_text(text)
        expect(card.locator(".class-tag")).to_contain_text(class_name)
        expect(card.locator(".post-author")).to_have_text(author)
        expect(card.locator(".post-problem")).to_be_hidden()
    expect(post_card(parent, POST_A).locator(".child-tag")).to_have_text("Noé")
    expect(post_card(parent, POST_C).locator(".child-tag")).to_have_text("Jules")
    thumb = post_card(parent, POST_A).locator(".attachment.image img")
    expect(thumb).to_have_attribute("src", re.compile(r"^blob:"), timeout=15_000)
    assert thumb.evaluate("img => img.decode().then(() => img.naturalWidth)") == 480
    # one timeline, newest first, whatever school each post comes from
    times = [t.get_attribute("datetime") or "" for t in cards.locator(".post-time").all()]
    assert times == sorted(times, reverse=True), times

    # The parent comments on A's and C's posts from B.
    for text, comment in ((POST_A, COMMENT_A), (POST_C, COMMENT_C)):
        card = post_card(parent, text)
        card.locator(".comment-form textarea").fill(comment)
        card.locator(".comment-form").get_by_role("button", name="Send").click()
        expect(post_card(parent, text).locator(".comment-list")).to_contain_text(comment)
    parent.reload()
    feed_ready(parent)
    for text, comment in ((POST_A, COMMENT_A), (POST_C, COMMENT_C)):
        mine = post_card(parent, text).locator(".comment-list li", has_text=comment)
        expect(mine).to_have_count(1)
        expect(mine).to_contain_text(PARENT)

    parent.set_viewport_size(DESKTOP)
    screenshot(parent, "federated-feed-desktop")
    parent.set_viewport_size(PHONE)
    assert fits_the_screen(parent)
    screenshot(parent, "federated-feed-phone")
    parent.set_viewport_size(DESKTOP)

    # Each teacher reads the parent's comment on their own node.
    seen_a = wait_for_comment(teacher_a, POST_A, COMMENT_A, [a, b])
    expect(seen_a).to_contain_text(PARENT)
    seen_c = wait_for_comment(teacher_c, POST_C, COMMENT_C, [c, b])
    expect(seen_c).to_contain_text(PARENT)
    # the parent's reads travelled back too
    expect(post_card(teacher_a, POST_A).locator(".receipts")).to_have_text("Read by 1 of 1")
    expect(post_card(teacher_c, POST_C).locator(".receipts")).to_have_text("Read by 1 of 1")
    screenshot(teacher_a, "federated-feed-teacher-a-desktop")
    # the other school's comment stays with its class
    assert post_card(teacher_a, POST_A).locator(".comment-list").inner_text().count(PARENT) == 1
    expect(teacher_c.locator("#posts")).not_to_contain_text(COMMENT_A)
    expect(teacher_a.locator("#posts")).not_to_contain_text(COMMENT_C)

    for page in (parent, teacher_a, teacher_b, teacher_c):
        assert page.js_errors == [], page.js_errors  # type: ignore[attr-defined]
