"""Delivery pacing across real nodes (research/federation.md §8.2 #12 and #16, NP/1 §9.1).

A school's node delivers to each peer on its own: one transaction in flight
per peer, a peer that asks to wait (``429`` with ``Retry-After``) is left
alone that long, and a slow one holds up nobody else. Node A hosts the
class; a guardian on B and one on C follow it; A reaches each through a
fault proxy, whose record of requests (when each was read, when the proxy
was done with it) is what the timing assertions read. They are one-sided
and derived from the injected faults ("not before N s after the 429"), or
about order and counts, never "within x s": the machine may be loaded.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.multinode import classes as k
from tests.multinode.classes import Family, family_at_home, joined, set_up_schools, teacher_class
from tests.multinode.cluster import Cluster
from tests.multinode.faultproxy import FaultProxy, SeenRequest, peak_in_flight

#: network and process faults, not the database: the SQLite phase runs them (scripts/test)
pytestmark = pytest.mark.transport

#: Our own retry delays ×0.01 (10 s → 0.1 s): whatever A waits longer than that, a peer asked for.
FAST_RETRIES = {"federation_backoff_factor": 0.01}
#: What B's link answers in ``Retry-After`` (seconds): far above A's own first steps (0.1–0.3 s).
RETRY_AFTER = 3
#: How many of A's tries B's link refuses with 429 before it lets A through.
REFUSED = 2
#: Seconds B's link holds every request before forwarding it (a slow receiver).
SLOW = 3.0
#: A wall-clock (node) and monotonic (proxy) reading may differ by this much.
CLOCKS = 0.1


def inbox_puts(proxy: FaultProxy, since: int = 0) -> list[SeenRequest]:
    """The transactions (``PUT /np/inbox/txn/…``) the proxy saw, from request ``since`` on."""
    return [
        r for r in proxy.requests[since:] if r.method == "PUT" and r.path.startswith("/np/inbox/")
    ]


def class_texts(family: Family, class_name: str) -> list[str]:
    """The class's posts in the family's feed, decrypted, oldest first."""
    return [s.text for s in reversed(k.read_feed(family.home)) if s.class_name == class_name]


def count_in_feed(family: Family, class_name: str) -> int:
    """How many posts of the class the family's feed lists (not decrypted: cheap to poll)."""
    return len([i for i in k.feed_items(family.home) if i["class_name"] == class_name])


def wait_count(cluster: Cluster, family: Family, class_name: str, count: int, **kw: float) -> None:
    kw.setdefault("timeout", 90.0)
    cluster.wait_until(
        lambda: count_in_feed(family, class_name) >= count, interval=0.1,
        what=f"{count} posts of {class_name} in {family.name}'s feed", **kw,
    )  # fmt: skip


def three_schools(
    make_cluster: Callable[..., Cluster], link: Callable[..., FaultProxy]
) -> tuple[Cluster, FaultProxy, FaultProxy, k.SchoolClass, Family, Family]:
    """A's class CE1 A, followed by Camille (home B) and Karim (home C); A reaches both via proxies.

    One post has gone everywhere already, so the links are warm and nothing else is queued.
    """
    cluster = make_cluster(("a", "b", "c"), start=False, config=FAST_RETRIES)
    a, b, c = cluster
    a_to_b, a_to_c = link(a, b), link(a, c)
    cluster.start()
    admins = set_up_schools(cluster, ("a", "b"), ("a", "c"))
    camille = family_at_home(admins["b"], "Camille Martin", "+33639980001", "Léa")
    karim = family_at_home(admins["c"], "Karim Bernard", "+33639980003", "Tom")
    ce1 = teacher_class(admins["a"], "CE1 A")
    joined(camille, ce1, "Noé")
    joined(karim, ce1, "Jules")
    k.post(ce1, "Bienvenue")
    wait_count(cluster, camille, "CE1 A", 1)
    wait_count(cluster, karim, "CE1 A", 1)
    return cluster, a_to_b, a_to_c, ce1, camille, karim


def test_a_429_retry_after_is_waited_out_for_that_peer_only(
    make_cluster: Callable[..., Cluster], link: Callable[..., FaultProxy]
) -> None:
    """§8.2 #12: B's link answers 429 ``Retry-After: 3``; A waits 3 s each time, C is not held up."""
    cluster, a_to_b, a_to_c, ce1, camille, karim = three_schools(make_cluster, link)
    since_b, since_c = len(a_to_b.requests), len(a_to_c.requests)
    posted = [f"Message {n}" for n in range(5)]

    a_to_b.status(429, retry_after=RETRY_AFTER)  # until B has refused REFUSED tries
    k.post_many(ce1, posted)
    # C has every post while B's link still answers nothing but 429: no global stall
    wait_count(cluster, karim, "CE1 A", 1 + len(posted))
    assert class_texts(karim, "CE1 A") == ["Bienvenue", *posted]
    cluster.wait_until(
        lambda: len([r for r in inbox_puts(a_to_b, since_b) if r.status == 429]) >= REFUSED,
        timeout=60, what=f"B's link to refuse {REFUSED} tries", logs=[cluster.a, a_to_b],
    )  # fmt: skip
    assert count_in_feed(camille, "CE1 A") == 1
    a_to_b.passthrough()

    wait_count(cluster, camille, "CE1 A", 1 + len(posted))
    shown = [s for s in k.read_feed(camille.home) if s.class_name == "CE1 A"]
    assert [s.text for s in reversed(shown)] == ["Bienvenue", *posted]  # each once, in order
    assert len({s.id for s in shown}) == len(shown)

    puts = inbox_puts(a_to_b, since_b)
    trace = [r.describe() for r in puts]
    refused = [i for i, r in enumerate(puts) if r.status == 429]
    assert len(refused) >= REFUSED and refused == list(range(len(refused))), trace
    for i in refused:  # after each 429, A's next try came no earlier than Retry-After
        answered, retry = puts[i], puts[i + 1]
        assert answered.done_at is not None
        waited = retry.seen_at - answered.done_at
        assert waited >= RETRY_AFTER - CLOCKS, (i, waited, trace)
        assert retry.path == puts[0].path, trace  # the same transaction, tried again
    assert puts[len(refused)].status == 200, trace
    assert peak_in_flight(puts) == 1, trace
    # and C's transactions for these posts went through while B was still refusing (they
    # may even leave before B's first try: the posts are one batch for each school)
    first_through = puts[len(refused)].seen_at
    to_c = inbox_puts(a_to_c, since_c)
    assert to_c and all(r.status == 200 for r in to_c), [r.describe() for r in to_c]
    assert any(r.seen_at < first_through for r in to_c), [r.describe() for r in to_c]


def test_a_slow_receiver_holds_up_no_other_peer(
    make_cluster: Callable[..., Cluster], link: Callable[..., FaultProxy]
) -> None:
    """§8.2 #16: every request to B takes 3 s more; C keeps pace, B gets all once, in order,
    never more than one transaction at a time, batched (A's queue to B drains by batches)."""
    cluster, a_to_b, a_to_c, ce1, camille, karim = three_schools(make_cluster, link)
    since_b, since_c = len(a_to_b.requests), len(a_to_c.requests)
    posted = [f"Message {n:02d}" for n in range(30)]
    total = 1 + len(posted)

    a_to_b.delay(SLOW)
    started = time.monotonic()
    k.post_many(ce1, posted)
    posting = time.monotonic() - started
    wait_count(cluster, karim, "CE1 A", total)
    c_done = time.monotonic()
    on_b = count_in_feed(camille, "CE1 A")
    b_puts = inbox_puts(a_to_b, since_b)
    # C is complete while B is not: the post written last reaches B only after the
    # transaction then in flight to B and then its own, each held SLOW s by the link
    assert on_b < total, [r.describe() for r in b_puts]

    wait_count(cluster, camille, "CE1 A", total, timeout=120)
    b_done = time.monotonic()
    assert class_texts(camille, "CE1 A") == ["Bienvenue", *posted]
    ids = [s.id for s in k.read_feed(camille.home) if s.class_name == "CE1 A"]
    assert len(set(ids)) == total  # each once
    assert class_texts(karim, "CE1 A") == ["Bienvenue", *posted]

    b_puts = inbox_puts(a_to_b, since_b)
    c_puts = inbox_puts(a_to_c, since_c)
    trace = [r.describe() for r in b_puts]
    assert all(r.status == 200 and r.mode == "delay" for r in b_puts), trace
    assert peak_in_flight(b_puts) == 1, trace  # one transaction in flight to B, ever
    for earlier, later in zip(b_puts, b_puts[1:], strict=False):
        assert earlier.done_at is not None and later.seen_at >= earlier.done_at, trace
    # batched, not one per post: each transaction to B takes ≥ SLOW s, so while the
    # teacher posted at most posting/SLOW + 1 started, then the one in flight and the rest
    assert len(b_puts) <= posting / SLOW + 3, (posting, trace)
    # C's transactions went while one to B was held: C never queued behind B
    held = [(r.seen_at, r.done_at) for r in b_puts if r.done_at is not None]
    during = [r for r in c_puts if any(s <= r.seen_at < d for s, d in held)]
    assert during, ([r.describe() for r in c_puts], trace)
    assert c_done < b_done
