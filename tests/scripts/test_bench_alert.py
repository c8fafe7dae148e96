"""Smoke test of scripts/bench/alert.py: a tiny run end to end, and its verdicts.

The benchmark itself seeds 2,000 families and runs for minutes; here it runs
with 5 families and one alert per push service delay, and only the shape of
its JSON is checked (no timed assertions: the machine's load decides those).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts/bench/alert.py"


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location("bench_alert", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_alert"] = module  # dataclasses look their module up while the file runs
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        for name in ("bench_alert", "push", "common", "feed"):
            sys.modules.pop(name, None)


def _result(delay: int, commit: float, every: float, p99: float | None) -> dict[str, Any]:
    figure = {"median": commit, "min": commit, "max": commit}
    during = {"n": 0} if p99 is None else {"n": 9, "p99_ms": p99}
    return {
        "delay_ms": delay,
        "median": {"post_request_ms": figure, "every_push_ms": {**figure, "median": every}},
        "feed_during_pooled": during,
    }


def test_targets_are_issue_5s(bench: Any) -> None:
    checks = bench.targets(
        {
            "delay_0ms": _result(0, 120.0, 2100.0, 250.0),
            "delay_100ms": _result(100, 251.0, 4000.0, None),
            "delay_50ms": _result(50, 10.0, 9000.0, 10.0),
        }
    )
    verdicts = {(c["delay_ms"], c["figure"]): (c["target_ms"], c["met"]) for c in checks}
    assert verdicts == {
        (0, "commit"): (250, True),
        (0, "every push accepted"): (2000, False),
        (0, "feed p99 during"): (250, True),
        (100, "commit"): (250, False),
        (100, "every push accepted"): (5000, True),
        (100, "feed p99 during"): (250, None),  # no read in the window: no verdict
        (50, "commit"): (250, True),  # no push target for other delays
        (50, "feed p99 during"): (250, True),
    }


@pytest.mark.slow
def test_a_tiny_run_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "alert.json"
    command = [sys.executable, str(SCRIPT), "--families", "5", "--readers", "2", "--quick"]
    command += ["--delays", "0,100", "--quiet", "0.5", "--json", str(out)]
    done = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Targets (issue 5):" in done.stdout
    document = json.loads(out.read_text())
    assert document["benchmark"] == "alert" and document["options"]["runs"] == 1
    results = document["results"]
    assert results["seeded"]["families"] == 5 and results["seeded"]["group_members"] == 6
    for delay in (0, 100):
        r = results[f"delay_{delay}ms"]
        assert r["recipients"] == 5 and len(r["runs"]) == 1
        (run,) = r["runs"]
        for key in ("post_request_ms", "every_push_ms", "pushes_per_second", "outbox_settled_ms"):
            assert run[key] > 0
            assert r["median"][key]["median"] == run[key]
        assert {"n"} <= set(r["feed_during_pooled"]) and {"n"} <= set(r["healthz_during_pooled"])
        assert r["sample_push"]["urgency"] == "high"
        assert r["reach_of_last_alert"]["guardians"] == 5
        # each alert and its all clear reached every guardian; nothing is left pending
        assert r["notification_statuses"].get("pending", 0) == 0
    figures = {(c["delay_ms"], c["figure"]) for c in document["targets"]}
    assert figures == {
        (d, f) for d in (0, 100) for f in ("commit", "every push accepted", "feed p99 during")
    }
