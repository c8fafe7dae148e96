#!/usr/bin/env python3
"""Benchmark an emergency alert to a school of 2,000 guardians: commit, push fan-out, feed during it.

    .venv/bin/python scripts/bench/alert.py [--families 2000] [--runs 3] [--delays 0,100]
        [--readers 4] [--read-every 0.5] [--quiet 2] [--seed-cache DIR] [--json out.json]
        [--quick] [--database-url postgresql://user:pass@host/postgres]

One real ``carnet serve`` process on 127.0.0.1 with a class of
``--families`` families (seeded as ``scripts/bench/push.py`` does, each
guardian with one push subscription to the fake push service of
``push.py``, in a process of its own), an admin with keys, and the school's
alert group holding every guardian: the admin's "browser" (the reference
client, as ``web/static/js/pages/alerts.js`` does) sets the group up and
adds every guardian the node lists, through the services.

For each delay in ``--delays`` (milliseconds the push service waits before
answering each push) the admin logs in through the JSON API, reads
``GET /api/v1/school-group`` and opens the epoch key; then ``--runs`` drill
alerts (after one warm-up alert) are sent with ``POST /api/v1/alerts``, while
``--readers`` guardians read ``GET /api/v1/feed`` (each starting a read every
``--read-every`` seconds) and a probe asks ``/healthz`` every 50 ms:

- commit: the ``POST /api/v1/alerts`` request, sent to answered (the node
  answers after the transaction holding the alert, its recipients, children
  and one high-urgency push notice per guardian has committed);
- every push accepted: from sending the alert until the push service has
  accepted a push for every guardian; pushes/s = guardians ÷ that time;
- outbox settled: until no notification is pending in the node's database;
- node CPU: the CPU time of ``carnet serve`` and its children from the
  alert to the settled outbox;
- feed during the fan-out: the readers' latencies for reads started between
  sending the alert and the last push accepted (p50, p99, max), next to a
  quiet window of ``--quiet`` seconds before each alert; the probe's worst
  ``/healthz`` shows any stall of the node's event loop.

Each alert is then closed with an "all clear" follow-up (pushed to every
guardian too); its fan-out is waited for and not measured, so that the next
alert starts from an idle node.  Drill alerts send no SMS.

Reported: the median over the runs of each figure (min–max), the feed and
probe latencies pooled over the runs' fan-out windows, and PASS/MISS against
issue 5's targets: commit ≤ 250 ms, every push accepted ≤ 2 s with a 0 ms
push service and ≤ 5 s with 100 ms, feed p99 during the fan-out ≤ 250 ms
(the pooled p99).  The machine's other work skews everything: compare runs
on the same, otherwise idle, machine only.

``--seed-cache DIR`` keeps the seeded data folder (school, admin and alert
group: adding 2,000 guardians seals 2,000 envelopes) in ``DIR/alert-N`` and
reuses a copy on the next run.  Traffic stays on loopback; servers,
processes and temporary folders are removed on exit, Ctrl-C included.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (the seeded node, cached)
import feed  # noqa: E402  (nodes, browsers, seeding)
import push as push_bench  # noqa: E402  (the fake push service, the worker's settings)
from common import Options  # noqa: E402

from node import refclient_groups as rc  # noqa: E402
from node.refclient import new_account  # noqa: E402
from node.services import accounts, groups, school_group  # noqa: E402

ADMIN_LOGIN = "direction@bench.carnet.test"
#: issue 5's targets, in milliseconds: every push accepted, per push service delay
COMMIT_TARGET_MS = 250
EVERY_PUSH_TARGET_MS = {0: 2000, 100: 5000}
FEED_P99_TARGET_MS = 250

now = common.now


# --------------------------------------------------------------------------- seeding


def seed_alert_group(node: feed.Node, school: feed.School) -> dict[str, Any]:
    """An admin with keys, and the school's alert group holding every guardian.

    As the admin's first visit to the Alerts page does, through the services:
    the reference client sets the group up, then adds every guardian the node
    lists (``add``), the epoch key sealed to each.
    """
    assert node.ctx is not None and node.storage is not None
    ctx, call = node.ctx, node.storage.call
    started = time.perf_counter()
    _, token = call(accounts.create_staff, ctx, None, "admin", "Mme Direction", ADMIN_LOGIN)
    client = new_account(ADMIN_LOGIN, feed.PASSPHRASE, ctx.config.kdf_iterations)
    admin = call(accounts.complete_setup, ctx, token, client.credentials, "carnet bench").actor
    call(accounts.logout, ctx, admin)
    me = groups.member_id(ctx, admin.account_id)
    log, envelopes, epoch_key = rc.setup_school_group(client.keys, me)
    call(school_group.create, ctx, admin, log, envelopes)
    view = call(school_group.view, ctx, admin)
    candidates = [dataclasses.asdict(c) for c in view.add]
    step = school_group.MAX_ENTRIES_PER_CALL
    for start in range(0, len(candidates), step):
        new, sealed = rc.add_guardians(
            client.keys, log, candidates[start : start + step], epoch_key
        )
        call(school_group.append, ctx, admin, new, sealed)
        log = log + new
    missing = call(school_group.view, ctx, admin).add
    if missing or len(candidates) != len(school.families):
        raise RuntimeError(f"alert group: {len(candidates)} added, {len(missing)} still missing")
    seconds = time.perf_counter() - started
    feed.progress(f"  admin and alert group of {len(candidates)} guardians in {seconds:.1f} s")
    return {
        "admin_keys": common.keys_to_json(client.keys),
        "admin_me": me,
        "group_members": len(candidates) + 1,
        "group_seconds": round(seconds, 1),
    }


# --------------------------------------------------------------------------- measuring


async def send_alert(
    admin: feed.Browser, keys: Any, me: str, state: Any, epoch_keys: Any, template: str, text: str,
    parent: str | None = None,
) -> tuple[float, float, dict[str, Any]]:  # fmt: skip
    """A drill alert (or a follow-up in ``parent``'s thread): sent and answered times, the answer."""
    made = rc.encrypt_alert(keys, me, state, epoch_keys, template, text, True, parent)
    body: dict[str, Any] = {"message": made["message"], "template": template}
    if parent is None:
        path, body["drill"] = "/api/v1/alerts", True
    else:
        path = f"/api/v1/alerts/{parent}/messages"
    sent = now()
    response = await admin.client.post(path, json=body, headers={"X-CSRF-Token": admin.csrf})
    answered = now()
    if response.status_code != 201:
        raise RuntimeError(f"alert refused: {response.status_code} {response.text}")
    answer: dict[str, Any] = response.json()
    return sent, answered, answer


async def alert_runs(
    node: feed.Node,
    school: feed.School,
    more: dict[str, Any],
    service: push_bench.PushService,
    opts: Options,
    delay_ms: int,
) -> dict[str, Any]:
    secrets: dict[str, str] = {}
    keys, me = common.keys_from_json(more["admin_keys"]), more["admin_me"]
    admin = feed.Browser(node.url)
    try:
        await admin.login(ADMIN_LOGIN, await feed.prelogin_secret(node.url, ADMIN_LOGIN, secrets))
        # The admin's Alerts page: the group (nobody left to add), the epoch key.
        start = now()
        view = (await admin.client.get("/api/v1/school-group")).json()
        group_view_ms = (now() - start) * 1000
        if view["add"] or view["remove"]:
            raise RuntimeError(f"the alert group is not up to date: {len(view['add'])} to add")
        start = now()
        state, epoch_keys = await asyncio.to_thread(rc.open_epoch_keys, view, keys)
        open_keys_ms = (now() - start) * 1000

        async def fire(n: int) -> tuple[float, float, dict[str, Any]]:
            text = f"Exercice de confinement n° {n}."
            sent, answered, answer = await send_alert(
                admin, keys, me, state, epoch_keys, "lockdown", text
            )
            if answer["recipients"] != len(school.families) or answer["state"] != "active":
                raise RuntimeError(f"unexpected answer: {answer}")
            return sent, answered, {"alert": answer["alert"]}

        async def all_clear(run: dict[str, Any]) -> None:
            await send_alert(
                admin, keys, me, state, epoch_keys, "all_clear", "Fin de l'exercice.",
                parent=run["alert"],
            )  # fmt: skip

        result = await common.fan_outs(
            node, school, service, opts, delay_ms, "alert", fire, all_clear
        )
        start = now()
        last = result["runs"][-1]["alert"]
        reach = (await admin.client.get(f"/api/v1/alerts/{last}/reach")).json()
        reach_ms = (now() - start) * 1000
    finally:
        await admin.close()
    return {
        **result,
        "admin_group_view_ms": round(group_view_ms, 1),
        "admin_open_keys_ms": round(open_keys_ms, 1),
        "group_log_entries": len(view["entries"]),
        "reach_ms": round(reach_ms, 1),
        "reach_of_last_alert": {
            k: reach.get(k) for k in ("guardians", "delivered", "acknowledged", "children")
        },
    }


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 5's targets against the medians (feed: the p99 pooled over the runs' fan-outs)."""
    out = []
    for r in results.values():
        delay, m = r["delay_ms"], r["median"]
        checks = [("commit", m["post_request_ms"]["median"], COMMIT_TARGET_MS)]
        if delay in EVERY_PUSH_TARGET_MS:
            checks.append(
                ("every push accepted", m["every_push_ms"]["median"], EVERY_PUSH_TARGET_MS[delay])
            )
        checks.append(
            ("feed p99 during", r["feed_during_pooled"].get("p99_ms"), FEED_P99_TARGET_MS)
        )
        for name, value, limit in checks:
            met = None if value is None else value <= limit  # None: no reads in the window
            out.append(
                {"delay_ms": delay, "figure": name, "ms": value, "target_ms": limit, "met": met}
            )
    return out


# --------------------------------------------------------------------------- the run


def run(opts: Options) -> dict[str, Any]:
    def measure(node: feed.Node, school: feed.School, more: Any, service: Any, delay: int) -> Any:
        return alert_runs(node, school, more, service, opts, delay)

    results, school, more = common.run_delays(
        opts, "alert", lambda: push_bench.PushService().start(), measure, seed_alert_group
    )
    seeded = {
        "families": len(school.families),
        "group_members": more["group_members"],
        "seed_seconds": round(school.seed_seconds, 1),
        "group_seconds": more["group_seconds"],
    }
    return {"seeded": seeded, **results}


def report(results: dict[str, Any], checks: list[dict[str, Any]], opts: Options, load: Any) -> str:
    backend = "PostgreSQL" if opts.pg_server else "SQLite"
    seeded = results["seeded"]
    lines = [
        f"Carnet emergency alert benchmark — {os.cpu_count()} cores, {feed.cpu_name()}, {backend}, "
        f"code {feed.code_version()}",
        f"Load average (1 min) before {load['before'][0]:.2f}, after {load['after'][0]:.2f}",
        f"Push worker: {json.dumps(push_bench.worker_settings(), default=str)}",
        f"{seeded['families']} guardians in the alert group ({seeded['group_members']} members), "
        f"{opts.runs} drill alerts per delay after one warm-up, each closed by an all clear; "
        f"{opts.readers} feed readers each starting a read every {opts.read_every} s, "
        "/healthz probe every 50 ms; medians over the alerts (min–max)",
        "",
        "| push delay | commit (POST /alerts) | every push accepted | pushes/s | outbox settled "
        "| node CPU | feed p50 / p99 during | feed p99 quiet | feed max during | healthz max during |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def ms(value: Any) -> str:
        return "–" if value is None else f"{value} ms"

    def spread(m: dict[str, Any], key: str) -> str:
        f = m[key]
        return f"{f['median']:.0f} ms ({f['min']:.0f}–{f['max']:.0f})"

    deliveries = [r for k, r in results.items() if k.startswith("delay_")]
    for r in deliveries:
        m, during = r["median"], r["feed_during_pooled"]
        lines.append(
            f"| {r['delay_ms']} ms | {spread(m, 'post_request_ms')} | {spread(m, 'every_push_ms')} "
            f"| {m['pushes_per_second']['median']:.0f} | {m['outbox_settled_ms']['median']:.0f} ms "
            f"| {m['node_cpu_s']['median']:.2f} s "
            f"| {ms(during.get('p50_ms'))} / {ms(during.get('p99_ms'))} "
            f"| {ms(r['feed_quiet_pooled'].get('p99_ms'))} | {ms(during.get('max_ms'))} "
            f"| {ms(r['healthz_during_pooled'].get('max_ms'))} |"
        )
    lines.append("")
    for r in deliveries:
        lines.append(
            f"delay {r['delay_ms']} ms: feed reads during fan-outs {r['feed_during_pooled'].get('n')} "
            f"(errors {r['feed_during_pooled'].get('errors')}), quiet {r['feed_quiet_pooled'].get('n')}; "
            f"{r['push_connections_opened']} connections to the push service; "
            f"outbox {r['notification_statuses']}; admin's GET /school-group "
            f"{r['admin_group_view_ms']:.0f} ms ({r['group_log_entries']} entries), "
            f"GET /reach {r['reach_ms']:.0f} ms; push urgency {r['sample_push']['urgency']}"
        )
    lines += ["", "Targets (issue 5):"]
    verdict = {True: "PASS", False: "MISS", None: "N/A "}
    for c in checks:
        lines.append(
            f"  {verdict[c['met']]}  delay {c['delay_ms']} ms, {c['figure']}: "
            f"{ms(c['ms'])} (target ≤ {c['target_ms']} ms)"
        )
    return "\n".join(lines)


def main() -> int:
    opts, args = common.fan_out_options(__doc__.splitlines()[0], "alerts")

    def describe(results: dict[str, Any], load: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        checks = targets({k: v for k, v in results.items() if k.startswith("delay_")})
        extra = {"push_worker": push_bench.worker_settings(), "targets": checks}
        return report(results, checks, opts, load), extra

    return common.run_and_report("alert", opts, args.json, lambda: run(opts), describe)


if __name__ == "__main__":
    sys.exit(main())
