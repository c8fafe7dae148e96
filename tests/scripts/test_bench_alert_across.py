"""Smoke test of scripts/bench/alert_across.py: three real nodes, 6 families, one timed alert.

Correctness only (the machine's load decides the timings): every guardian,
on A, B and C, got the alert's push from their own node; B and C showed the
alert; every acknowledgement, sent on each guardian's own node, reached A's
dashboard; the JSON document has every figure.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts/bench/alert_across.py"
NODES = ("a", "b", "c")


@pytest.mark.slow
def test_a_tiny_run_reaches_everyone_and_every_ack_reaches_the_school(tmp_path: Path) -> None:
    out = tmp_path / "alert_across.json"
    command = [sys.executable, str(SCRIPT), "--families", "6", "--runs", "1", "--ackers", "0"]
    command += ["--json", str(out)]
    done = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=150, stdin=subprocess.DEVNULL
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "commit on A" in done.stdout
    document = json.loads(out.read_text())
    assert document["benchmark"] == "alert_across" and document["options"]["runs"] == 1
    results = document["results"]
    seeded = results["seeded"]
    assert seeded["families"] == 6 and seeded["per_node"] == {"a": 4, "b": 1, "c": 1}
    assert seeded["group_members"] == 7  # every guardian, local and remote, and the admin
    assert seeded["ackers_per_node"] == seeded["per_node"]  # --ackers 0: everyone acknowledges
    (run,) = results["runs"]
    # every guardian got the push from their own node (the run waits for each one's push)
    assert run["recipients"] == 6  # 4 on A, 1 on B, 1 on C
    assert set(run["every_push_ms"]) == {*NODES, "all"}
    assert all(run["every_push_ms"][n] > 0 for n in NODES)
    assert set(run["federation_lag_ms"]) == {"b", "c"}
    # every acknowledgement, from every node, shows on A's dashboard
    assert run["acks_sent"] == 6
    assert run["dashboard"]["guardians"] == 6 and run["dashboard"]["acknowledged"] == 6
    assert set(run["acks_on_dashboard_ms"]) == {*NODES, "all"}
    assert run["commit_ms"] > 0 and run["alert_to_all_acks_on_dashboard_ms"] > 0
    median = results["median"]
    for key in ("commit_ms", "acks_sent_ms", "alert_to_all_acks_on_dashboard_ms"):
        assert median[key]["median"] == run[key]
    for key in ("every_push_ms", "first_push_ms", "federation_lag_ms", "acks_on_dashboard_ms"):
        assert {k: v["median"] for k, v in median[key].items()} == run[key]
