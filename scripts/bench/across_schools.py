#!/usr/bin/env python3
"""Benchmark class content across schools (NP/1 class streams) on this machine.

    .venv/bin/python scripts/bench/across_schools.py [--posts 1000] [--paced 100] [--json out.json]
        [--logs DIR]

Three real ``carnet serve`` processes on 127.0.0.1 (the multi-node test
harness, ``tests/multinode``), each with its own temporary data folder and
SQLite database, production settings (retry delays ×1) but no limit on messages per account. A teacher on A has
a class; a guardian whose own school is B and one whose own school is C
join it from their node (access code, then the code A texts) and the
teacher approves them, as in ``tests/multinode/test_class_content_nodes.py``.
Everything goes through the JSON APIs, as browsers do
(``tests/multinode/classes.py``).

1. Fan-out: the teacher posts ``--posts`` encrypted posts back to back
   (``POST /api/v1/classes/{id}/posts``, one after the other). Nobody reads
   a feed meanwhile (reading would take CPU from the nodes); once the last
   post is answered, each family's newest post is polled
   (``GET /api/v1/feed?limit=1``) until it is the last post: a class's
   stream is applied in order, so then all have been, which a full read of
   the feed confirms (each post shown, once). Measured: from sending the
   first post until the last one shows on B, on C, and on both.
   Latency: ``--paced`` posts at 5 per second, while a poller per family
   reads their feed every 50 ms (newest 5, more pages while all are new)
   and notes when each post first shows: p50, p95 and max from A's answer
   to the post (the polling adds up to one period).
2. Inbox throughput: B is stopped (SIGTERM) while the teacher posts another
   ``--posts``; C gets them live. B is started again: the time from B
   answering ``/healthz``, and from the answer to its first pull of the
   class stream (its log), until the last post shows in B's feed, and the
   activities per second B verified and applied while A's backlog drained
   (B pulls the missed range at start-up, page by page, and A's retried
   transaction lands too; duplicates are absorbed).

Figures depend on the machine and on what else runs on it (the three nodes
and this script share its cores): compare runs on the same, otherwise idle,
machine only. Servers and temporary folders are removed on exit, Ctrl-C
included.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from scripts.bench.feed import code_version, cpu_name, pct  # noqa: E402
from tests.multinode import classes as k  # noqa: E402
from tests.multinode.cluster import Cluster, start_nodes  # noqa: E402

CLASS = "CE1 A"
#: Seconds between two reads of a feed; size of the first page a latency poller reads.
POLL = 0.05
FIRST_PAGE = 5
#: Posts per second in the paced run (a teacher posts far less often).
PACE = 5.0
#: Seconds a phase may take at most before the benchmark gives up.
CEILING = 900.0


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def class_items(family: k.Family, query: str) -> list[dict[str, Any]]:
    page = family.home.get("/api/v1/feed" + query)
    return [i for i in page["items"] if i["class_name"] == CLASS]


def wait_newest(family: k.Family, last_id: str) -> float:
    """Poll the newest post of the family's feed until it is ``last_id``; when it showed.

    The node applies a class's stream in order, so the last post showing means
    all have; :func:`count_shown` checks it afterwards.
    """
    deadline = time.monotonic() + CEILING
    while True:
        items = class_items(family, "?limit=1")
        if items and items[0]["id"] == last_id:
            return time.perf_counter()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{last_id} never showed for {family.name}")
        time.sleep(POLL)


def count_shown(family: k.Family, ids: list[str]) -> dict[str, int]:
    """How many of ``ids`` the family's feed shows, and how many times in all."""
    wanted = set(ids)
    shown = [i["id"] for i in k.feed_items(family.home) if i["id"] in wanted]
    return {"shown": len(set(shown)), "rows": len(shown)}


@dataclass
class Arrivals:
    """When each post of the class first showed in one family's feed (a poller thread)."""

    family: k.Family
    seen: dict[str, float] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def poll(self) -> None:
        """Read the newest pages until one holds a post already seen."""
        before: int | None = None
        while True:
            # a small first page keeps the polling light; more pages while all are new
            size = k.PAGE if before else FIRST_PAGE
            page = self.family.home.get(
                f"/api/v1/feed?limit={size}" + (f"&before={before}" if before else "")
            )
            now = time.perf_counter()
            known = False
            for item in page["items"]:
                if item["id"] in self.seen:
                    known = True
                elif item["class_name"] == CLASS:
                    self.seen[item["id"]] = now
            before = page["next_before"]
            if known or not before:
                return

    def run(self) -> None:
        while not self.stop.is_set():
            self.poll()
            time.sleep(POLL)

    def start(self) -> Arrivals:
        self.poll()  # what is there already is not an arrival
        self.thread = threading.Thread(target=self.run, name=f"poll-{self.family.name}")
        self.thread.daemon = True
        self.thread.start()
        return self

    def wait_for(self, ids: list[str]) -> None:
        deadline = time.monotonic() + CEILING
        while not all(i in self.seen for i in ids):
            if self.thread is not None and not self.thread.is_alive():
                raise RuntimeError(f"the poller of {self.family.name} died")
            if time.monotonic() > deadline:
                raise TimeoutError(f"posts never showed for {self.family.name}")
            time.sleep(POLL)

    def close(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(10)


def latency_summary(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {
        "p50_ms": round(pct(ms, 0.5), 1),
        "p95_ms": round(pct(ms, 0.95), 1),
        "max_ms": round(max(ms), 1),
    }


def set_up(cluster: Cluster) -> tuple[k.SchoolClass, dict[str, k.Family]]:
    admins = k.set_up_schools(cluster, ("a", "b"), ("a", "c"))
    families = {
        "b": k.family_at_home(admins["b"], "Camille Martin", "+33639980001", "Léa"),
        "c": k.family_at_home(admins["c"], "Karim Bernard", "+33639980003", "Tom"),
    }
    ce1 = k.teacher_class(admins["a"], CLASS)
    k.joined(families["b"], ce1, "Noé")
    k.joined(families["c"], ce1, "Jules")
    return ce1, families


def fan_out(ce1: k.SchoolClass, families: dict[str, k.Family], posts: int) -> dict[str, Any]:
    """``posts`` back to back; nobody reads a feed until the last one is answered."""
    texts = [f"Message {n:04d}" for n in range(posts)]
    first_sent = time.perf_counter()
    ids = k.post_many(ce1, texts)
    posted = time.perf_counter()
    progress(f"  {posts} posts answered by A in {posted - first_sent:.1f} s")
    result: dict[str, Any] = {
        "posts": posts,
        "posting_seconds": round(posted - first_sent, 2),
        "posts_per_second_accepted_by_a": round(posts / (posted - first_sent), 1),
    }
    last = {}
    for name, family in families.items():
        last[name] = wait_newest(family, ids[-1])
    for name, family in families.items():
        result[name] = {
            "first_post_to_last_shown_s": round(last[name] - first_sent, 2),
            "after_last_post_answered_s": round(last[name] - posted, 2),
            **count_shown(family, ids),
        }
    result["first_post_to_last_shown_on_both_s"] = round(max(last.values()) - first_sent, 2)
    return result


def paced(ce1: k.SchoolClass, families: dict[str, k.Family], posts: int) -> dict[str, Any]:
    """``posts`` at ``PACE`` per second while a poller per family notes when each shows."""
    pollers = {name: Arrivals(f).start() for name, f in families.items()}
    try:
        answered: list[float] = []
        ids: list[str] = []
        start = time.perf_counter()
        for n in range(posts):
            time.sleep(max(0.0, start + n / PACE - time.perf_counter()))
            ids += k.post_many(ce1, [f"Paced {n:03d}"], answered)
        result: dict[str, Any] = {"posts": posts, "posts_per_second": PACE}
        for name, poller in pollers.items():
            poller.wait_for(ids)
            lat = [poller.seen[i] - t for i, t in zip(ids, answered, strict=True)]
            result[name] = latency_summary(lat)
        return result
    finally:
        for poller in pollers.values():
            poller.close()


def drain(
    cluster: Cluster, ce1: k.SchoolClass, families: dict[str, k.Family], posts: int
) -> dict[str, Any]:
    """B is stopped while A takes ``posts``; B starts again and catches up."""
    b = cluster.b
    b.stop()
    ids = k.post_many(ce1, [f"Backlog {n:04d}" for n in range(posts)])
    wait_newest(families["c"], ids[-1])  # C has them all: only B's catch-up runs from now on
    progress(f"  {posts} posts made while B was down; C has them; starting B")
    started = time.perf_counter()
    b.start()
    healthy = time.perf_counter()
    last = wait_newest(families["b"], ids[-1])
    last_wall = time.time() - (time.perf_counter() - last)
    healthy_wall = last_wall - (last - healthy)
    first_pull = first_pull_after_start(b.log_text(), cluster.a.origin)
    result: dict[str, Any] = {
        "posts": posts,
        "start_to_healthy_s": round(healthy - started, 2),
        "healthy_to_last_shown_s": round(last - healthy, 2),
        "activities_per_second_from_healthy": round(posts / (last - healthy), 1),
        "healthy_to_first_pull_answered_s": None,
        "first_pull_answered_to_last_shown_s": None,
        "activities_per_second_from_first_pull": None,
        **count_shown(families["b"], ids),
        "pulls_in_b_log": b.log_text().count("GET " + cluster.a.origin + "/np/streams/"),
    }
    if first_pull is not None:
        result["healthy_to_first_pull_answered_s"] = round(first_pull - healthy_wall, 2)
        result["first_pull_answered_to_last_shown_s"] = round(last_wall - first_pull, 2)
        result["activities_per_second_from_first_pull"] = round(posts / (last_wall - first_pull), 1)
    return result


def first_pull_after_start(log: str, origin: str) -> float | None:
    """When B's log shows the answer to its first pull of a class stream since its last start."""
    since = log.rsplit("==== harness: carnet serve, start", 1)[-1]
    match = re.search(
        r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) .*GET "
        + re.escape(origin)
        + "/np/streams/classes/",
        since,
        re.M,
    )
    if not match:
        return None
    # the node logs its local time
    stamp = dt.datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S").astimezone()
    return stamp.timestamp() + int(match[2]) / 1000


def run(posts: int, paced_posts: int, logs: Path | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="carnet-bench-federation-") as root:
        progress("starting nodes a, b, c")
        # The teacher posts thousands of posts back to back, far past the
        # messages one account may write per hour (600 by default).
        unlimited = {"messages_per_account_per_hour": 1_000_000}
        with start_nodes(Path(root), ("a", "b", "c"), config=unlimited) as cluster:
            try:
                progress("setting up: schools peered, a class on A, a family on B and one on C")
                ce1, families = set_up(cluster)
                progress(f"1. fan-out of {posts} posts from A to B and C")
                fan = fan_out(ce1, families, posts)
                progress(f"   latency: {paced_posts} posts at {PACE:g}/s")
                latency = paced(ce1, families, paced_posts)
                progress(f"2. inbox throughput: B catches up on {posts} posts")
                inbox = drain(cluster, ce1, families, posts)
            finally:
                if logs:
                    logs.mkdir(parents=True, exist_ok=True)
                    for node in cluster:
                        shutil.copy(node.log_path, logs / node.log_path.name)
    return {"fan_out": fan, "paced": latency, "inbox": inbox}


def report(results: dict[str, Any], load: dict[str, tuple[float, ...]]) -> str:
    fan, latency, inbox = results["fan_out"], results["paced"], results["inbox"]
    lines = [
        f"Carnet federation benchmark — {os.cpu_count()} cores, {cpu_name()}, SQLite, code {code_version()}",
        f"Load average (1 min) before {load['before'][0]:.2f}, after {load['after'][0]:.2f}",
        "",
        f"1. Fan-out: {fan['posts']} posts on A, back to back; a guardian on B and one on C",
        f"   A answered them in {fan['posting_seconds']} s ({fan['posts_per_second_accepted_by_a']} posts/s)",
        "| node | first post → last shown | after the last post answered | shown | rows |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in ("b", "c"):
        r = fan[name]
        lines.append(
            f"| {name} | {r['first_post_to_last_shown_s']} s | {r['after_last_post_answered_s']} s "
            f"| {r['shown']} | {r['rows']} |"
        )
    lines += [
        f"   first post → last shown on both B and C: {fan['first_post_to_last_shown_on_both_s']} s",
        "",
        f"   Latency, {latency['posts']} posts at {latency['posts_per_second']:g}/s "
        f"(A's answer → the family's feed shows it; feeds read every {POLL * 1000:.0f} ms):",
        "| node | p50 ms | p95 ms | max ms |",
        "|---|---:|---:|---:|",
    ]
    for name in ("b", "c"):
        r = latency[name]
        lines.append(f"| {name} | {r['p50_ms']} | {r['p95_ms']} | {r['max_ms']} |")
    lines += [
        "",
        f"2. Inbox: B down while A took {inbox['posts']} posts; B started again",
        f"   B answered /healthz {inbox['start_to_healthy_s']} s after start; the backlog "
        f"showed in {inbox['healthy_to_last_shown_s']} s: {inbox['activities_per_second_from_healthy']} "
        "activities/s verified and applied",
        f"   B's start-up pull was answered {inbox['healthy_to_first_pull_answered_s']} s after /healthz; "
        f"from there to the last post shown {inbox['first_pull_answered_to_last_shown_s']} s: "
        f"{inbox['activities_per_second_from_first_pull']} activities/s",
        f"   B's feed shows {inbox['shown']} of the {inbox['posts']} posts ({inbox['rows']} rows); "
        f"{inbox['pulls_in_b_log']} stream pages pulled from A",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=1000, help="posts per phase (default 1000)")
    parser.add_argument(
        "--paced", type=int, default=100, help=f"posts at {PACE:g}/s for the latency (default 100)"
    )
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--logs", type=Path, help="copy the nodes' logs into this folder")
    args = parser.parse_args()

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # unwinds through the clean-up in run()

    signal.signal(signal.SIGTERM, stop)
    load_before = os.getloadavg()
    try:
        results = run(args.posts, args.paced, args.logs)
    except KeyboardInterrupt:
        print("interrupted: servers stopped, temporary folders removed", file=sys.stderr)
        return 130
    load = {"before": load_before, "after": os.getloadavg()}
    print(report(results, load))
    if args.json:
        document = {
            "benchmark": "federation",
            "machine": {"cores": os.cpu_count(), "cpu": cpu_name()},
            "code": code_version(),
            "database": "sqlite",
            "load_average_1_5_15_min": load,
            "results": results,
        }
        args.json.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
