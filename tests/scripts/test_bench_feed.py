"""Smoke test of scripts/bench/feed.py: it imports, and its pure helpers work.

The benchmark itself starts servers and runs for minutes, so it is not part
of the suite; this keeps it from rotting silently.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from node.services.credentials import check_credentials
from node.workers.push import PushWorker

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location("bench_feed", ROOT / "scripts/bench/feed.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_feed"] = module  # dataclasses look their module up while the file runs
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("bench_feed", None)


def test_percentiles_interpolate_between_ranks(bench: Any) -> None:
    assert bench.pct([4, 1, 3, 2], 0.5) == 2.5
    assert bench.pct([7], 0.99) == 7
    assert bench.pct(range(1, 101), 0.99) == pytest.approx(99.01)
    assert bench.pct([1, 2, 3], 0) == 1 and bench.pct([1, 2, 3], 1) == 3
    with pytest.raises(ValueError):
        bench.pct([], 0.5)
    stats = bench.summary([0.001, 0.003, 0.002])
    assert stats == {
        "n": 3,
        "median_ms": 2.0,
        "min_ms": 1.0,
        "max_ms": 3.0,
        "p50_ms": 2.0,
        "p99_ms": pytest.approx(2.98),
    }


def test_push_worker_settings_are_read_from_the_worker(bench: Any) -> None:
    settings = bench.push_worker_settings()
    defaults = PushWorker.__init__.__kwdefaults__
    for name in ("batch", "per_service", "concurrency", "backlog", "timeout"):
        assert settings[name] == defaults[name]
    assert "client" not in settings


def test_fake_push_service_answers_201_and_records_every_arrival(bench: Any) -> None:
    push = bench.FakePushService().start()
    try:
        waiter = push.expect(["/push/a", "/push/b"])
        with httpx.Client(base_url=push.url) as client:  # one kept-alive connection
            for path in ("/push/a", "/push/other", "/push/b"):
                response = client.post(path, content=b"\x00ciphertext", headers={"TTL": "60"})
                assert response.status_code == 201
            assert client.post("/push/c", headers={"Connection": "close"}).status_code == 201
        assert waiter.done.wait(5)
        assert waiter.outstanding == set()
        assert waiter.first is not None and waiter.last is not None
        assert waiter.first <= waiter.last
        assert push.requests == 4
        assert push.connections == 1
        headers, body = push.last["/push/b"]
        assert body == b"\x00ciphertext" and headers["ttl"] == "60"
        assert push.expect([]).done.is_set()
        push.forget(waiter)
    finally:
        push.stop()


def test_seeding_shortcut_makes_credentials_the_node_accepts(bench: Any) -> None:
    shared = bench.SharedPassphrase(600_000)
    creds, keys = shared.credentials("+33639980001")
    assert check_credentials(creds, "+33639980001", 600_000) == shared.derived.login_secret
    assert creds.sign_pk == bench.b64url_encode(keys.sign_pk)


def test_report_renders_a_table(bench: Any) -> None:
    def timing(ms: float) -> dict[str, float]:
        return {"n": 5, "median_ms": ms, "min_ms": ms, "max_ms": ms, "p50_ms": ms, "p99_ms": ms}

    def result(families: int) -> dict[str, Any]:
        fan = {
            key: timing(families)
            for key in ("post_request", "first_push", "every_push", "outbox_settled")
        }
        fan.update(
            pushes_per_second=1.0, ms_per_push=1.0, teacher_group_view_ms=1.0, group_log_entries=3
        )
        read = {
            "requests": 10,
            "errors": 0,
            "requests_per_second": 5.0,
            "response_bytes": 100,
            **timing(families),
        }
        reads = {"guardian_timeline": read, "teacher_class_posts": read}
        return {"families": families, "seed_seconds": 1.0, "fan_out": fan, "reads": reads}

    opts = bench.Options([60, 2000], 5, 32, 10.0, 25, None, None)
    worker = bench.push_worker_settings()
    text = bench.report({"class-60": result(60), "class-2000": result(2000)}, opts, worker)
    assert "post sent → every push received" in text
    assert "every push ×33.33" in text
    assert f"per_service {worker['per_service']}" in text
