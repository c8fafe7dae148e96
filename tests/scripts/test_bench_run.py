"""Smoke tests of scripts/bench/run (one command, one table) and the live-delivery comparison.

The benchmarks themselves start servers and run for minutes, and the
Synapse comparison installs Matrix Synapse from PyPI: none of that runs
here.  What runs: the table from documents shaped as each benchmark writes
them, the command's plumbing with stand-in benchmark scripts (a failure
shows in the table and in the exit status), the live measuring loop on fake
streams, and Synapse's configuration and shared-secret registration against
a stand-in server.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import importlib.machinery
import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "scripts/bench"


def _load(name: str, path: Path) -> ModuleType:
    loader = importlib.machinery.SourceFileLoader(name, str(path))
    spec = importlib.util.spec_from_loader(name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file runs
    loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def run() -> Iterator[ModuleType]:
    try:
        yield _load("bench_run", BENCH / "run")
    finally:
        sys.modules.pop("bench_run", None)


@pytest.fixture(scope="module")
def synapse() -> Iterator[ModuleType]:
    try:
        yield _load("bench_synapse", BENCH / "synapse.py")
    finally:
        for name in ("bench_synapse", "homeserver", "live", "alert", "push", "common", "feed"):
            sys.modules.pop(name, None)


# --------------------------------------------------------------------------- documents


def _reads(rps: float, p99: float) -> dict[str, Any]:
    return {"clients": 32, "requests_per_second": rps, "p99_ms": p99}


def feed_results() -> dict[str, Any]:
    def one(n: int) -> dict[str, Any]:
        return {
            "families": n,
            "reads": {
                "guardian_timeline": _reads(410.5, 120.25),
                "teacher_class_posts": _reads(300.0, 150.0),
            },
            "fan_out": {"post_request": {"median_ms": 40.0}, "every_push": {"median_ms": 900.0}},
        }

    return {"class-60": one(60), "class-2000": one(2000)}


def alert_results() -> dict[str, Any]:
    figure = {"median": 120.0, "min": 100.0, "max": 130.0}
    return {
        "seeded": {"families": 2000},
        "delay_0ms": {
            "delay_ms": 0,
            "recipients": 2000,
            "median": {
                "post_request_ms": figure,
                "every_push_ms": {**figure, "median": 1800.0},
                "pushes_per_second": {**figure, "median": 1111.1},
            },
            "feed_during_pooled": {"n": 0},  # no read in the window: no p99
        },
    }


def inbox_results() -> dict[str, Any]:
    return {
        "inbox": {
            "posts": 1000,
            "activities_per_second_from_healthy": 250.0,
            "activities_per_second_from_first_pull": None,
        }
    }


def live_results(with_synapse: bool) -> dict[str, Any]:
    def side(every: float) -> dict[str, Any]:
        return {
            "median": {
                "send_answered_ms": every / 2,
                "first_member_ms": every / 2,
                "median_member_ms": every / 2,
                "every_member_ms": every,
            }
        }

    return {
        "synapse_version": "1.163.2" if with_synapse else None,
        "sizes": {
            "60": {
                "carnet": side(20.0),
                "synapse": side(300.0) if with_synapse else None,
                "ratio": 15.0 if with_synapse else None,
            }
        },
    }


def _ok(results: dict[str, Any]) -> dict[str, Any]:
    return {"ok": True, "seconds": 1.0, "report": "", "document": {"results": results}}


def test_the_table_has_every_figure(run: Any) -> None:
    text = run.table(
        {
            "feed": _ok(feed_results()),
            "alert": _ok(alert_results()),
            "inbox": _ok(inbox_results()),
            "live": _ok(live_results(with_synapse=True)),
        }
    )
    lines = text.splitlines()
    assert lines[:2] == ["| benchmark | figure | value |", "|---|---|---:|"]
    assert all(line.count("|") == 4 for line in lines)
    assert "| Feed reads, 32 clients, class of 2,000 | GET /api/v1/feed | 410.5 req/s |" in lines
    assert "| Feed reads, 32 clients, class of 60 | GET /api/v1/feed p99 | 120.2 ms |" in lines
    alert = "Alert to 2,000 guardians, push service +0 ms"
    assert f"| {alert} | every push accepted (median) | 1,800.0 ms |" in lines
    assert f"| {alert} | pushes | 1,111.1 push/s |" in lines
    assert f"| {alert} | feed p99 during the fan-out | – |" in lines
    inbox = "Inbox: a node catching up on 1,000 missed posts"
    assert f"| {inbox} | from /healthz | 250.0 activity/s |" in lines
    assert f"| {inbox} | from its first pull answered | – |" in lines
    live = "Live: one message to 60 members, until every stream has it"
    assert f"| {live} | Carnet, SSE (median) | 20.0 ms |" in lines
    assert f"| {live} | Matrix Synapse 1.163.2, /sync (median) | 300.0 ms |" in lines
    assert f"| {live} | Synapse ÷ Carnet | ×15.0 |" in lines


def test_without_synapse_the_comparison_says_skipped(run: Any) -> None:
    text = run.table({"live": _ok(live_results(with_synapse=False))})
    assert "| Matrix Synapse, /sync | skipped |" in text
    assert "÷" not in text


def test_a_side_that_failed_says_why_and_gives_no_ratio(run: Any, synapse: Any) -> None:
    results = live_results(with_synapse=True)
    entry = results["sizes"]["60"]
    entry["synapse"], entry["ratio"] = {"error": "TimeoutError: m: 3 of 60 streams"}, None
    text = run.table({"live": _ok(results)})
    assert "| Matrix Synapse, /sync | failed: TimeoutError: m: 3 of 60 streams |" in text
    assert "÷" not in text
    assert synapse.failed(results)
    opts = synapse.Options([60], 3, 1.0, False, Path("venv"), 25, None)
    assert "| 60 | synapse | failed: TimeoutError: m: 3 of 60 streams | | | |" in synapse.report(
        results, opts
    )
    assert not synapse.failed(live_results(with_synapse=False))


STAND_IN = """
import json, sys
target = sys.argv[sys.argv.index("--json") + 1]
if {fail}:
    print("it broke", file=sys.stderr)
    sys.exit(3)
print("own report")
document = {{"machine": {{"cores": 2, "cpu": "test"}}, "code": "abc", "results": {results}}}
open(target, "w").write(json.dumps(document))
"""


def test_a_failed_benchmark_shows_failed_and_the_others_still_run(
    run: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "feed.py").write_text(STAND_IN.format(fail=True, results="{}"))
    live = json.dumps(live_results(with_synapse=False)).replace("null", "None")
    (scripts / "synapse.py").write_text(STAND_IN.format(fail=False, results=live))
    monkeypatch.setattr(run, "HERE", scripts)
    out = tmp_path / "all.json"
    argv = ["run", "--smoke", "--skip-synapse", "--only", "live,feed", "--json", str(out)]
    monkeypatch.setattr(sys, "argv", argv)

    assert run.main() == 1  # one benchmark failed

    printed = capsys.readouterr()
    assert "| feed | failed (exit 3): see its output above | |" in printed.out
    assert "| Carnet, SSE (median) | 20.0 ms |" in printed.out
    assert "Carnet benchmarks (smoke) — 2 cores, test, SQLite, code abc" in printed.out
    assert "it broke" not in printed.out  # a benchmark's stderr is its own
    document = json.loads(out.read_text())
    assert document["preset"] == "smoke" and document["table"] in printed.out
    assert document["parts"]["feed"] == {
        "ok": False,
        "exit": 3,
        "seconds": document["parts"]["feed"]["seconds"],
        "report": "",
    }
    live_part = document["parts"]["live"]
    assert live_part["ok"] and live_part["report"] == "own report\n"
    assert live_part["document"]["results"]["sizes"]["60"]["synapse"] is None


def test_from_prints_the_table_of_an_earlier_run(
    run: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    document = {"machine": {"cores": 2, "cpu": "test"}, "code": "abc"}
    (tmp_path / "inbox.json").write_text(json.dumps({**document, "results": inbox_results()}))
    monkeypatch.setattr(sys, "argv", ["run", "--from", str(tmp_path)])
    assert run.main() == 0
    out = capsys.readouterr().out
    assert "Carnet benchmarks (full) — 2 cores, test, SQLite, code abc" in out
    assert "| from /healthz | 250.0 activity/s |" in out and "Feed" not in out

    monkeypatch.setattr(sys, "argv", ["run", "--from", str(tmp_path), "--only", "feed"])
    with pytest.raises(SystemExit):
        run.main()
    assert "holds no benchmark's JSON file" in capsys.readouterr().err


def test_only_names_known_benchmarks(
    run: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["run", "--only", "feed,matrix"])
    with pytest.raises(SystemExit) as stopped:
        run.main()
    assert stopped.value.code == 2
    assert "--only takes some of feed,alert,inbox,live (not matrix)" in capsys.readouterr().err


# --------------------------------------------------------------------------- live delivery


def test_a_round_waits_for_every_member_and_skips_the_warm_up(synapse: Any) -> None:
    live = sys.modules["live"]

    async def scenario() -> dict[str, Any]:
        arrivals = live.Arrivals()
        arrivals.parked = 3

        async def send(key: str) -> str:
            arrivals.arrived(key, 0, live.now())  # a stream may beat the send's answer

            async def later() -> None:
                for member in (1, 2):
                    await asyncio.sleep(0.02)
                    arrivals.arrived(key, member, live.now())
                    arrivals.arrived(key, member, live.now() + 5)  # a repeat keeps the first

            asyncio.get_running_loop().create_task(later())
            return key

        return dict(await live.rounds(arrivals, 3, 2, 0.0, lambda n: f"m{n}", send, "test"))

    result = asyncio.run(scenario())
    assert len(result["runs"]) == 2  # the warm-up is not counted
    for r in result["runs"]:
        assert r["first_member_ms"] <= r["median_member_ms"] <= r["every_member_ms"]
        assert 30 <= r["every_member_ms"] < 1000
    assert result["median"]["every_member_ms"] >= 30


def test_a_stream_that_never_delivers_ends_the_round(
    synapse: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    live = sys.modules["live"]
    monkeypatch.setattr(live, "CEILING", 0.2)

    async def scenario() -> None:
        arrivals = live.Arrivals()
        arrivals.arrived("m", 0, live.now())
        await arrivals.every("m", 2)

    with pytest.raises(TimeoutError, match="m: 1 of 2 streams delivered it"):
        asyncio.run(scenario())


def test_a_stream_that_failed_ends_the_wait_at_once(synapse: Any) -> None:
    live = sys.modules["live"]

    async def scenario() -> None:
        async def refused() -> None:
            raise ValueError("401 Unauthorized")

        arrivals = live.Arrivals()
        arrivals.streams = [asyncio.get_running_loop().create_task(refused())]
        await asyncio.sleep(0)
        await arrivals.all_parked(1)

    with pytest.raises(RuntimeError, match="a stream failed: ValueError"):
        asyncio.run(scenario())


def test_synapse_listens_on_loopback_without_rate_limits(synapse: Any, tmp_path: Path) -> None:
    homeserver = sys.modules["homeserver"]
    server = homeserver.Synapse(Path(sys.executable), tmp_path / "hs")
    config = json.loads(server.configure().read_text())
    (listener,) = config["listeners"]
    assert listener["bind_addresses"] == ["127.0.0.1"] and listener["port"] == server.port
    assert config["database"]["name"] == "sqlite3"
    assert config["trusted_key_servers"] == [] and config["federation_domain_whitelist"] == []
    assert config["registration_shared_secret"] == server.secret
    limits = [v for k, v in config.items() if k.startswith("rc_")]
    flat = [x for limit in limits for x in ([limit] if "per_second" in limit else limit.values())]
    assert flat and all(x == homeserver.UNLIMITED for x in flat)
    logging = json.loads((tmp_path / "hs/log.yaml").read_text())
    assert logging["handlers"]["file"]["filename"] == str(server.log)


def test_registration_signs_as_synapse_checks(synapse: Any) -> None:
    secret = "s3cret"

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json={"nonce": "n0nce"})
        body = json.loads(request.content)
        # synapse/rest/admin/users.py: HMAC-SHA1 over nonce, user, password, admin flag
        mac = hmac.new(secret.encode(), digestmod=hashlib.sha1)
        mac.update(b"\x00".join(body[k].encode() for k in ("nonce", "username", "password")))
        mac.update(b"\x00notadmin")
        if not hmac.compare_digest(mac.hexdigest(), body["mac"]) or body["admin"]:
            return httpx.Response(403, json={"errcode": "M_FORBIDDEN"})
        return httpx.Response(200, json={"access_token": f"token-{body['username']}"})

    async def scenario() -> str:
        transport = httpx.MockTransport(handler)
        async with httpx.AsyncClient(transport=transport, base_url="http://hs") as client:
            return str(await sys.modules["homeserver"].register(client, secret, "member1"))

    assert asyncio.run(scenario()) == "token-member1"
