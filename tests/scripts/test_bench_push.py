"""Smoke test of scripts/bench/push.py: it imports, its helpers work, its push service answers.

The benchmark itself seeds 2,000 families and runs for minutes, so it is not
part of the suite; this keeps it from rotting silently.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from node.e2e.keys import generate_account_keys
from node.workers.push import PushWorker

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    path = ROOT / "scripts/bench/push.py"
    spec = importlib.util.spec_from_file_location("bench_push", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_push"] = module  # dataclasses look their module up while the file runs
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("bench_push", None)
        sys.modules.pop("feed", None)
        sys.modules.pop("common", None)


def test_the_seeded_school_survives_its_cache_file(bench: Any) -> None:
    feed = bench.feed
    family = feed.Family(
        "+33639980001", 7, generate_account_keys(), "7@127.0.0.1:1", 3, "/push/0001-aa",
        ec.generate_private_key(ec.SECP256R1()), b"a" * 16,
    )  # fmt: skip
    school = feed.School(
        1,
        generate_account_keys(),
        "1@127.0.0.1:1",
        [family],
        "salt",
        600_000,
        12.5,
        25,
        125,
        40_000,
    )
    back = bench.school_from_json(bench.school_to_json(school))
    assert back.teacher_keys == school.teacher_keys and back.class_id == 1
    (copy,) = back.families
    assert (copy.login, copy.account_id, copy.keys, copy.push_path, copy.push_auth) == (
        family.login, family.account_id, family.keys, family.push_path, family.push_auth,
    )  # fmt: skip
    assert copy.push_key.private_numbers() == family.push_key.private_numbers()


def test_cpu_seconds_count_a_process_and_its_children(bench: Any) -> None:
    """A parent that only waits is charged for its child's work, as the node for its helper."""
    script = (
        "import subprocess, sys\n"
        "child = subprocess.Popen([sys.executable, '-c', 'sum(range(3 * 10**7)); print(1, flush=True); input()'],"
        " stdin=subprocess.PIPE, stdout=subprocess.PIPE)\n"
        "child.stdout.readline(); print(child.pid, flush=True); input(); child.communicate(b'\\n')\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        child_pid = int(parent.stdout.readline())  # the child has done its work
        child = bench.cpu_seconds(child_pid)
        assert child > 0.2
        assert bench.cpu_seconds(parent.pid) >= child
    finally:
        parent.communicate("\n")
    assert bench.cpu_seconds(2**22 + 12345) == 0.0  # no such process


def test_latencies_and_medians(bench: Any) -> None:
    samples = [bench.Sample(0.0, s / 1000, True) for s in (10, 20, 30, 40)]
    samples.append(bench.Sample(0.0, 0.5, False))
    stats = bench.latencies(samples)
    assert stats["n"] == 5 and stats["errors"] == 1 and stats["max_ms"] == 500.0
    assert stats["p50_ms"] == 30.0
    assert bench.latencies([]) == {"n": 0}
    window = bench.Readers.between([bench.Sample(t, 0.01, True) for t in (1, 2, 3)], 1.5, 3)
    assert [s.start for s in window] == [2]

    def run(ms: float) -> dict[str, Any]:
        figures = dict.fromkeys(
            ("post_request_ms", "first_push_ms", "every_push_ms", "after_answer_ms",
             "outbox_settled_ms", "pushes_per_second", "node_cpu_s"), ms,
        )  # fmt: skip
        lat = {"n": 3, "p99_ms": ms}
        return {**figures, "feed_during": lat, "feed_quiet": lat, "healthz_during": lat}

    m = bench.medians([run(1), run(5), run(3)])
    assert m["every_push_ms"] == {"median": 3, "min": 1, "max": 5}
    assert m["feed_during_p99_ms"] == 3


def test_worker_settings_come_from_the_worker(bench: Any) -> None:
    settings = bench.worker_settings()
    defaults = PushWorker.__init__.__kwdefaults__
    assert settings["per_service"] == defaults["per_service"]
    assert settings["batch"] == defaults["batch"] and "client" not in settings


def test_the_push_service_process_accepts_after_its_delay_and_reports_when(bench: Any) -> None:
    service = bench.PushService().start()
    try:
        service.set_delay(0.05)
        service.expect(["/push/a", "/push/b"])
        with httpx.Client(base_url=service.url) as client:  # one kept-alive connection
            sent = bench.now()
            for path in ("/push/a", "/push/b"):
                answer = client.post(path, content=b"\x00body", headers={"TTL": "60"})
                assert answer.status_code == 201
        accepted = service.wait(timeout=10)
        # accepted = answered: after the delay, on the benchmark's clock
        assert sent + 0.05 <= accepted["first"] <= accepted["last"] <= bench.now()
        headers, body = service.last("/push/b")
        assert body == b"\x00body" and headers["ttl"] == "60"
        assert service.stats() == {"requests": 2, "connections": 1}
    finally:
        service.stop()


def test_report_renders_a_table(bench: Any) -> None:
    median = {
        k: {"median": 1000.0, "min": 900.0, "max": 1100.0}
        for k in ("post_request_ms", "first_push_ms", "every_push_ms", "after_answer_ms",
                  "outbox_settled_ms", "pushes_per_second", "node_cpu_s")
    }  # fmt: skip
    lat = {"n": 10, "errors": 0, "p50_ms": 20.0, "p99_ms": 90.0, "max_ms": 95.0}
    result = {
        "delay_ms": 100, "median": {**median, "feed_during_p99_ms": 90.0}, "feed_during_pooled": lat,
        "feed_quiet_pooled": lat, "healthz_during_pooled": lat, "push_connections_opened": 100,
        "notification_statuses": {"sent": 2000},
    }  # fmt: skip
    opts = bench.Options(2000, 3, [100], 4, 0.5, 2.0, None, None)
    load = {"before": (1.0, 1.0, 1.0), "after": (2.0, 2.0, 2.0)}
    text = bench.report({"delay_100ms": result}, opts, bench.worker_settings(), load)
    assert "| 100 ms | 1000 ms | 1000 ms (900–1100) | 1000 | 1000 ms | 1000.00 s |" in text
    assert "Load average (1 min) before 1.00, after 2.00" in text
