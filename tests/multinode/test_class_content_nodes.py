"""Class content across real nodes (research/federation.md §8): what the families and teachers see.

Every node is a real ``carnet serve`` on 127.0.0.1; every step goes through
the JSON API as a browser would (``tests/multinode/classes.py``). A
class's teacher is on one node, a guardian of one of its children on
another (their own school, where they also have a child); the guardian
joins the class from home, the teacher approves them, and the tests check
what people check: the guardian's one feed on their node, decrypted, and
the teacher's class feed on theirs. Nothing sleeps to let delivery happen:
every cross-node effect is polled with ``wait_until`` (a ceiling, not a
measurement).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from federation.httpsig import sign_request
from federation.keys import key_id
from federation.runtime.identity import key_name
from node.datafolder import load_keys
from node.e2e.groups import GroupLogError
from tests.multinode import classes as k
from tests.multinode.classes import (
    DELIVERY,
    Family,
    family_at_home,
    joined,
    set_up_schools,
    teacher_class,
)
from tests.multinode.cluster import Cluster
from tests.multinode.faultproxy import FaultProxy, Mode, SeenRequest
from tests.multinode.nodes import Node
from tests.multinode.waiting import wait_until

#: Retry delays ×0.01 (10 s → 0.1 s, 1 h → 36 s): a failed delivery is retried within the test.
FAST_RETRIES = {"federation_backoff_factor": 0.01}


def feed_of(family: Family, class_name: str) -> list[k.Shown]:
    """The posts of one class in the family's feed, decrypted, newest first."""
    return [s for s in k.read_feed(family.home) if s.class_name == class_name]


def purged(family: Family, class_name: str) -> bool:
    """The class is gone from the family's feed (a purge landing between reading the
    feed and reading its class's log reads as "not yet")."""
    try:
        return not feed_of(family, class_name)
    except GroupLogError:
        return False


def wait_feed(
    family: Family, class_name: str, count: int, *logs: Node, timeout: float = DELIVERY
) -> list[k.Shown]:
    """Wait until the family's feed shows ``count`` posts of the class; those posts, decrypted."""

    def arrived() -> bool:
        items = k.feed_items(family.home)  # counted before decrypting: cheap to poll
        return len([i for i in items if i["class_name"] == class_name]) >= count

    wait_until(
        arrived, timeout=timeout, interval=0.05 if count < 50 else 0.5,
        what=f"{count} posts of {class_name} in {family.name}'s feed",
        logs=[family.home.node, *logs],
    )  # fmt: skip
    return feed_of(family, class_name)


def texts(shown: list[k.Shown]) -> list[str]:
    """The posts' texts, oldest first (a feed lists the newest first)."""
    return [s.text for s in reversed(shown)]


def test_one_family_feed_across_three_schools(make_cluster: Callable[..., Cluster]) -> None:
    cluster = make_cluster(("a", "b", "c"), config=FAST_RETRIES)
    a, b, c = cluster
    admins = set_up_schools(cluster, ("a", "b"), ("c", "b"))
    camille = family_at_home(admins["b"], "Camille Martin", "+33639980001", "Léa")
    ce1, cm2 = teacher_class(admins["a"], "CE1 A"), teacher_class(admins["c"], "CM2 C")
    joined(camille, ce1, "Noé")
    joined(camille, cm2, "Jules")

    k.post(ce1, "Sortie au musée jeudi")
    k.post(cm2, "Piscine vendredi")
    k.post(camille.own_class, "Réunion de rentrée lundi")
    wait_feed(camille, "CE1 A", 1, a)
    wait_feed(camille, "CM2 C", 1, c)
    # one feed on B: her own school's class and the two others, each post labelled with its class
    shown = k.read_feed(camille.home)
    assert sorted((s.class_name, s.text) for s in shown) == [
        ("CE1 A", "Sortie au musée jeudi"),
        ("CM2 C", "Piscine vendredi"),
        ("Classe de Léa", "Réunion de rentrée lundi"),
    ]
    shown = [s for s in shown if s.class_name != "Classe de Léa"]

    # Camille comments on each from B; each teacher reads the comment on their own node
    for post in shown:
        k.comment(camille.home, post.class_id, post.id, f"Merci pour {post.text}")
    for school_class, text in ((ce1, "Sortie au musée jeudi"), (cm2, "Piscine vendredi")):
        wait_until(
            lambda sc=school_class, t=text: k.read_class(sc)[0].comments == (f"Merci pour {t}",),
            timeout=DELIVERY, what=f"Camille's comment in {school_class.name}", logs=[b, a, c],
        )  # fmt: skip
    # Camille reads A's post on B: A's teacher sees it read
    on_b = next(s for s in shown if s.class_name == "CE1 A")
    k.mark_read(camille.home, on_b.class_id, on_b.id)
    wait_until(
        lambda: k.receipts(ce1, on_b.id)["read"] == 1, timeout=DELIVERY,
        what="A counts Camille's read", logs=[b, a],
    )  # fmt: skip
    # and B shows each comment once, under its post
    assert sorted(s.comments for s in k.read_feed(camille.home)) == [
        (),
        ("Merci pour Piscine vendredi",),
        ("Merci pour Sortie au musée jeudi",),
    ]


@pytest.mark.transport
def test_posts_made_while_a_family_node_is_killed_arrive_once_and_in_order(
    make_cluster: Callable[..., Cluster],
) -> None:
    cluster = make_cluster(("a", "b"), config=FAST_RETRIES)
    a, b = cluster
    admins = set_up_schools(cluster, ("a", "b"))
    camille = family_at_home(admins["b"], "Camille Martin", "+33639980001", "Léa")
    ce1 = teacher_class(admins["a"], "CE1 A")
    joined(camille, ce1, "Noé")

    posted = [f"Message {n:03d}" for n in range(500)]
    ids = k.post_many(ce1, posted[:50])  # A is delivering these when B dies
    b.kill()  # SIGKILL: B's node crashes, whatever it was doing
    ids += k.post_many(ce1, posted[50:])
    b.start()
    shown = wait_feed(camille, "CE1 A", 500, a, timeout=180)
    assert len(shown) == 500
    assert len({s.id for s in shown}) == 500  # each post once
    assert texts(shown) == posted  # in the order the teacher posted them
    assert [s.id for s in reversed(shown)] == ids


class LosingProxy(FaultProxy):
    """A fault proxy that can also *lose* a transaction: answer ``200 {"results": {}}`` unforwarded.

    The sender takes the answer for an acknowledgement and moves its cursor
    on, so the receiver first hears of later activities: a gap it must pull.
    """

    def lose_next(self) -> None:
        """Acknowledge the next request without forwarding it, then pass again."""
        self.status(200, count=1)

    async def _answer(self, connection: Any, request: Any, record: SeenRequest, mode: Mode) -> None:
        if mode.code != 200:
            await super()._answer(connection, request, record, mode)
            return
        body = json.dumps({"results": {}}).encode()
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        self._update(record, action="status", status=200, answered=True)
        connection.writer.write(head.encode("latin-1") + body)
        await connection.writer.drain()


@pytest.fixture
def losing_link(request: pytest.FixtureRequest) -> Iterator[Callable[[Node, Node], LosingProxy]]:
    """``losing_link(src, dst)``: a :class:`LosingProxy` for src→dst, routed from src's next start."""
    proxies: list[LosingProxy] = []

    def make(src: Node, dst: Node) -> LosingProxy:
        proxy = LosingProxy(dst.port, name=f"{src.name}->{dst.name}").start()
        proxies.append(proxy)
        src.route(dst.origin, proxy.url)
        return proxy

    yield make
    for proxy in proxies:
        proxy.close()


def inbox_puts(proxy: FaultProxy) -> list[SeenRequest]:
    return [r for r in proxy.requests if r.method == "PUT" and r.path.startswith("/np/inbox/")]


def class_pulls(node: Node) -> int:
    """How many pages of class streams ``node`` has pulled (its log's outgoing requests)."""
    return node.log_text().count("/np/streams/classes/")


@pytest.mark.transport
def test_a_lost_transaction_is_pulled_and_a_lost_answer_retried_in_order(
    make_cluster: Callable[..., Cluster], losing_link: Callable[[Node, Node], LosingProxy]
) -> None:
    cluster = make_cluster(("a", "b"), start=False, config=FAST_RETRIES)
    a, b = cluster
    a_to_b = losing_link(a, b)
    cluster.start()
    admins = set_up_schools(cluster, ("a", "b"))
    camille = family_at_home(admins["b"], "Camille Martin", "+33639980001", "Léa")
    ce1 = teacher_class(admins["a"], "CE1 A")
    joined(camille, ce1, "Noé")

    # the transaction carrying the first post is lost (acknowledged, never delivered):
    # B hears of the next ones first, pulls the missing range from A and applies it first
    sent, pulls = len(inbox_puts(a_to_b)), class_pulls(b)
    a_to_b.lose_next()
    posted = [f"Message {n}" for n in range(10)]
    k.post(ce1, posted[0])
    wait_until(lambda: len(inbox_puts(a_to_b)) > sent, what="A sends the first post", logs=[a])
    k.post_many(ce1, posted[1:])
    shown = wait_feed(camille, "CE1 A", 10, a, b)
    assert [r.action for r in inbox_puts(a_to_b)[sent:]][0] == "status"  # it was lost
    assert class_pulls(b) > pulls  # B pulled what it missed
    assert texts(shown) == posted

    # the answer to a transaction is lost (B applied it): A sends it again, B applies it once
    sent = len(inbox_puts(a_to_b))
    a_to_b.drop_response()
    k.post(ce1, "Message 10")
    wait_until(lambda: len(inbox_puts(a_to_b)) > sent, what="A sends Message 10", logs=[a])
    a_to_b.passthrough()
    k.post(ce1, "Message 11")
    shown = wait_feed(camille, "CE1 A", 12, a, b)
    puts = inbox_puts(a_to_b)[sent:]
    assert puts[0].action == "response_dropped"
    assert any(r.path == puts[0].path for r in puts[1:])  # the same transaction, sent again
    assert texts(shown) == [*posted, "Message 10", "Message 11"]
    assert len({s.id for s in shown}) == 12


@pytest.mark.transport
@pytest.mark.parametrize("fault", ["cut", "blackhole"])
def test_a_partition_of_one_link_leaves_the_other_school_unaffected(
    make_cluster: Callable[..., Cluster], link: Callable[..., FaultProxy], fault: str
) -> None:
    cluster = make_cluster(("a", "b", "c"), start=False, config=FAST_RETRIES)
    a, b, c = cluster
    a_to_b = link(a, b)
    cluster.start()
    admins = set_up_schools(cluster, ("a", "b"), ("a", "c"))
    camille = family_at_home(admins["b"], "Camille Martin", "+33639980001", "Léa")
    karim = family_at_home(admins["c"], "Karim Bernard", "+33639980003", "Tom")
    ce1 = teacher_class(admins["a"], "CE1 A")
    joined(camille, ce1, "Noé")
    joined(karim, ce1, "Jules")
    k.post(ce1, "Avant la coupure")
    wait_feed(camille, "CE1 A", 1, a)
    wait_feed(karim, "CE1 A", 1, a)

    getattr(a_to_b, fault)()  # A can no longer reach B (refused, or never answered)
    sent = len(a_to_b.requests)
    k.post(ce1, "Pendant la coupure 1")
    if fault == "blackhole":  # A's transaction to B now hangs unanswered
        wait_until(
            lambda: any(r.action == "blackholed" for r in a_to_b.requests[sent:]),
            what="A's transaction to B hangs", logs=[a],
        )  # fmt: skip
    k.post_many(ce1, ["Pendant la coupure 2", "Pendant la coupure 3"])
    during = [
        "Avant la coupure",
        "Pendant la coupure 1",
        "Pendant la coupure 2",
        "Pendant la coupure 3",
    ]
    assert texts(wait_feed(karim, "CE1 A", 4, a, c)) == during
    if fault == "blackhole":  # C had it all while A's request to B still hung: no head-of-line wait
        hung = [r for r in a_to_b.requests[sent:] if r.action == "blackholed"]
        assert hung[0].note == "", [r.describe() for r in a_to_b.requests[sent:]]
    assert texts(feed_of(camille, "CE1 A")) == ["Avant la coupure"]

    a_to_b.passthrough()  # healed: B catches up, in order
    assert texts(wait_feed(camille, "CE1 A", 4, a, b)) == during


def test_a_removed_guardian_loses_the_class_on_their_own_node(
    make_cluster: Callable[..., Cluster],
) -> None:
    cluster = make_cluster(("a", "b"), config=FAST_RETRIES)
    a, b = cluster
    admins = set_up_schools(cluster, ("a", "b"))
    camille = family_at_home(admins["b"], "Camille Martin", "+33639980001", "Léa")
    ce1 = teacher_class(admins["a"], "CE1 A")
    slip = joined(camille, ce1, "Noé")
    k.post_many(ce1, ["Sortie au musée jeudi", "Piscine vendredi"])
    k.post(camille.own_class, "Réunion de rentrée lundi")
    wait_feed(camille, "CE1 A", 2, a)

    # A's teacher unlinks Camille from Noé; their page removes her from the group (new key)
    k.unlink_guardian(ce1, slip)
    assert k.remove_unlinked(ce1)
    wait_until(
        lambda: purged(camille, "CE1 A"), timeout=DELIVERY,
        what="B purges CE1 A from Camille's feed", logs=[b, a],
    )  # fmt: skip
    assert [s.text for s in k.read_feed(camille.home)] == ["Réunion de rentrée lundi"]
    assert [j["state"] for j in k.my_joins(camille.home)] == ["removed"]
    # the teacher's class goes on without her
    k.post(ce1, "Après")
    assert [s.text for s in k.read_class(ce1)][0] == "Après"


@pytest.mark.transport
def test_the_class_node_killed_mid_transaction_loses_nothing_and_keeps_order(
    make_cluster: Callable[..., Cluster], link: Callable[..., FaultProxy]
) -> None:
    """§8.2 #9: A (the class's node, the sender) SIGKILLed while a transaction is in flight."""
    cluster = make_cluster(("a", "b"), start=False, config=FAST_RETRIES)
    a, b = cluster
    a_to_b = link(a, b)
    cluster.start()
    admins = set_up_schools(cluster, ("a", "b"))
    camille = family_at_home(admins["b"], "Camille Martin", "+33639980001", "Léa")
    ce1 = teacher_class(admins["a"], "CE1 A")
    joined(camille, ce1, "Noé")

    posted = [f"Message {n:02d}" for n in range(30)]
    accepted: list[str] = []  # the posts A's API answered 201 before it died
    sent = len(inbox_puts(a_to_b))
    a_to_b.delay(2.5)  # a slow link: every transaction to B is in flight for 2.5 s

    def teacher_posts() -> None:
        for text in posted:
            try:
                k.post(ce1, text)
            except Exception:  # A died under the request: it may or may not have the post
                return
            accepted.append(text)

    poster = threading.Thread(target=teacher_posts, name="teacher-posts", daemon=True)
    poster.start()

    def in_flight() -> bool:
        held = [r for r in inbox_puts(a_to_b)[sent:] if r.forwarded_at is None]
        return len(accepted) >= 10 and bool(held)

    wait_until(in_flight, timeout=DELIVERY, what="A posting with a transaction in flight", logs=[a])
    held = next(r for r in inbox_puts(a_to_b)[sent:] if r.forwarded_at is None)
    a.kill()  # SIGKILL mid-transaction, A's teacher still posting
    poster.join(timeout=30)
    assert not poster.is_alive()
    assert len(accepted) < len(posted), "A was killed after the teacher had posted everything"
    a.start()  # on the same data
    a_to_b.passthrough()

    # what A kept: every post its API accepted (and perhaps the one it died answering), in order
    kept = texts(k.read_class(ce1))
    assert kept[: len(accepted)] == accepted
    assert kept == posted[: len(kept)] and len(kept) - len(accepted) in (0, 1)
    k.post_many(ce1, posted[len(kept) :])  # the teacher posts the rest after the restart
    ids = [s.id for s in reversed(k.read_class(ce1))]

    shown = wait_feed(camille, "CE1 A", len(posted), a, b)
    # the transaction held when A died reached B late; anything A sent again was absorbed
    wait_until(
        lambda: all(r.forwarded_at is not None for r in inbox_puts(a_to_b)[sent:]),
        timeout=DELIVERY, what="every transaction A sent has reached B", logs=[a_to_b, a, b],
    )  # fmt: skip
    puts = inbox_puts(a_to_b)[sent:]
    again = [r for r in puts if r.path == held.path and r.index != held.index]
    assert again, [r.describe() for r in puts]  # A, unanswered when it died, sent it again
    shown = feed_of(camille, "CE1 A")
    assert len({s.id for s in shown}) == len(shown) == len(posted)  # each post once
    assert texts(shown) == posted  # in the order the teacher posted them
    assert [s.id for s in reversed(shown)] == ids


def signed_get_as(node: Node, target: Node, path: str) -> httpx.Response:
    """A GET from ``node`` to ``target``, signed with ``node``'s key as its federation client signs."""
    key = load_keys(node.data_dir).signing_key
    headers = sign_request(
        method="GET", target_uri=target.url(path), body=None, signing_key=key,
        keyid=key_id(node.origin, key_name(key.verify_key)), created=int(time.time()),
    )  # fmt: skip
    with httpx.Client(trust_env=False, timeout=10.0) as http:
        return http.get(target.url(path), headers=headers)


def test_a_guardian_unlinked_before_approval_is_rejected_and_sees_nothing(
    make_cluster: Callable[..., Cluster],
) -> None:
    """§8.2 #3: the reject path, across two real nodes."""
    cluster = make_cluster(("a", "b"), config=FAST_RETRIES)
    a, b = cluster
    admins = set_up_schools(cluster, ("a", "b"))
    camille = family_at_home(admins["b"], "Camille Martin", "+33639980001", "Léa")
    ce1 = teacher_class(admins["a"], "CE1 A")
    k.post(ce1, "Avant la demande")

    # Camille asks to join from B; the teacher sees the request, then unlinks her instead
    slip = k.register_guardian(ce1, k.add_child(ce1, "Noé", "Martin"), camille.name, camille.phone)
    k.join_class(camille.home, ce1, slip)
    wait_until(
        lambda: len(k.waiting_for_approval(ce1)) == 1, timeout=DELIVERY,
        what="the teacher sees Camille's request", logs=[a, b],
    )  # fmt: skip
    k.unlink_guardian(ce1, slip)
    assert k.waiting_for_approval(ce1) == []

    def state_on_b() -> list[str]:
        return [j["state"] for j in k.my_joins(camille.home) if j["school"] == a.origin]

    wait_until(
        lambda: state_on_b() == ["rejected"], timeout=DELIVERY,
        what="B shows Camille's request rejected", logs=[b, a],
    )  # fmt: skip

    # A serves B nothing of the class: a pull signed with B's key is refused
    refused = signed_get_as(b, a, f"/np/streams/classes/{ce1.class_id}?after=0&limit=100")
    assert refused.status_code == 403, refused.text
    assert "not_member" in refused.text

    # a post after the reject: another family of B (a member) gets it, Camille never does
    own = camille.own_class
    tom = k.register_guardian(own, k.add_child(own, "Tom", "Bernard"), "Karim", "+33639980003")
    karim = Family("Karim Bernard", tom.phone, k.onboard_guardian(b, tom), own)
    k.approve_waiting(own)
    joined(karim, ce1, "Jules")
    k.post(ce1, "Après le refus")
    assert texts(wait_feed(karim, "CE1 A", 2, a)) == ["Avant la demande", "Après le refus"]
    assert feed_of(camille, "CE1 A") == []
    assert k.feed_items(camille.home) == []  # nothing at all: her own class has no post yet
    assert state_on_b() == ["rejected"]
