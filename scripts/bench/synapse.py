#!/usr/bin/env python3
"""Carnet against Matrix Synapse: one message to N members, until every member's live stream has it.

    .venv/bin/python scripts/bench/synapse.py [--sizes 60,2000] [--messages 5] [--quiet 1]
        [--skip-synapse] [--venv DIR] [--history 25] [--seed-cache DIR] [--budget 1800]
        [--json out.json] [--quick]

The same work on both servers, on this machine, in the same run, with the
same client code (one ``httpx.AsyncClient`` per server, one stream per
member, every timestamp taken by this process's monotonic clock):

- Carnet: a real ``carnet serve`` on 127.0.0.1 with a class of N families
  seeded as ``scripts/bench/feed.py`` does (each guardian with a push
  subscription to the fake push service of ``push.py``, so a post also
  fans out to Web Push, as in production; ``--history`` posts already
  there; with ``--seed-cache``, ``alert.py``'s cached school of that size).
  Every guardian has a session (opened in-process: a login's Argon2id
  check, 50 ms of a core each, is not what is measured) and opens
  ``GET /api/v1/events`` (Server-Sent Events, what the browser's
  ``EventSource`` opens); the teacher logs in through the JSON API, encrypts
  a post with the reference client and sends
  ``POST /api/v1/classes/{id}/posts``.
  Measured until every guardian's stream delivered the post's event.
- Synapse: ``matrix-synapse`` (pinned, ``PIN``) installed from PyPI by this
  script only, in its own virtualenv (``--venv``, default
  ``.bench-venv/synapse``, git-ignored; the product never depends on it),
  started on 127.0.0.1 with a generated configuration.  N members are
  registered through the shared-secret admin API, a sender creates an
  encrypted room and every member joins it; each member does an initial
  ``/sync`` and then long-polls ``/sync?since=…&timeout=30000``.  The sender
  sends one ``m.room.encrypted`` event whose ciphertext is as long as the
  Carnet post's sealed message (``PUT /rooms/{id}/send/…``).  Measured
  until every member's ``/sync`` returned it.

Per message: the send request answered, the first member's stream and
every member's stream (from sending the request); the median over
``--messages`` messages after one warm-up message, with a ``--quiet`` pause
and every stream parked again before each.  The ratio is Synapse ÷ Carnet of
the "every member" medians.

Fairness choices (written in ``docs/benchmarks.md`` too):

- both on SQLite (Synapse recommends PostgreSQL in production, and so does
  Carnet for large schools; neither gets it here);
- Synapse's rate limits are raised out of reach (messages, joins,
  registrations, logins): Carnet has no rate limit on posting, reading or
  its event stream (its limits count failed logins and texts sent);
  presence, the user directory and URL previews are off, and registration
  uses 4 bcrypt rounds: setup only, none of them is on the measured path;
- the sync filter asks for the room's ``m.room.encrypted`` timeline only
  (no presence, receipts, typing, account data), what a client that wants
  just the message would ask; Carnet's stream carries ids and kinds only;
- a member whose ``/sync`` has returned the message waits for the round to
  end before polling again, so that the client's own re-polling does not
  delay other members' arrivals (a Synapse stream has to re-poll, an SSE
  stream does not: that difference is in the protocols and stays);
- registering, joining, logging in and opening streams are not timed;
- the post's Web Push fan-out (one encrypted push per guardian, to a local
  fake push service) runs while Carnet's streams deliver, taking CPU from them:
  Synapse sends no push here (no pusher is registered).

One Python process holds every stream: with N = 2,000 on a 2-core machine
the client takes CPU from the server it measures, on both sides alike, so
the absolute figures are pessimistic and the ratio is the figure to read.
Traffic stays on loopback; servers and temporary folders are removed on
exit, Ctrl-C included; the virtualenv is kept for the next run.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (the run and its JSON document)
import feed  # noqa: E402  (machine and code descriptions)
import live  # noqa: E402  (the measuring loop, Carnet's side)
from homeserver import DEFAULT_VENV, PIN, Synapse, bearer, ensure_synapse, register  # noqa: E402
from live import Arrivals, bounded, now, rounds, stop_tasks, stream_client  # noqa: E402

#: What a member's /sync asks for: the room's encrypted messages, nothing else.
SYNC_FILTER = json.dumps(
    {
        "presence": {"types": []},
        "account_data": {"types": []},
        "room": {
            "timeline": {"limit": 20, "types": ["m.room.encrypted"]},
            "state": {"lazy_load_members": True, "types": []},
            "ephemeral": {"types": []},
            "account_data": {"types": []},
        },
    },
    separators=(",", ":"),
)

# --------------------------------------------------------------------------- Synapse's side


async def sync_stream(
    client: httpx.AsyncClient, token: str, since: str, room: str, member: int, arrivals: Arrivals
) -> None:
    """One member's sync loop: long-poll, note when each message arrives, poll again."""
    while True:
        params = {"since": since, "timeout": "30000", "filter": SYNC_FILTER}
        arrivals.parked += 1
        try:
            response = await client.get(
                "/_matrix/client/v3/sync", params=params, headers=bearer(token)
            )
        finally:
            arrivals.parked -= 1
        at = now()
        response.raise_for_status()
        body = response.json()
        since = body["next_batch"]
        timeline = body.get("rooms", {}).get("join", {}).get(room, {}).get("timeline", {})
        got = False
        for event in timeline.get("events", []):
            if event.get("type") == "m.room.encrypted":
                arrivals.arrived(event["event_id"], member, at)
                got = True
        if got:
            await arrivals.settled.wait()  # let the other members' answers in first


async def measure_synapse(
    synapse: Synapse, members: int, messages: int, quiet: float, message_bytes: int
) -> dict[str, Any]:
    started = time.perf_counter()
    setup = httpx.AsyncClient(base_url=synapse.url, timeout=300)
    client = stream_client(members, synapse.url)
    arrivals = Arrivals()
    tasks: list[asyncio.Task[None]] = []
    try:
        prefix = f"n{members}x{secrets.token_hex(3)}"
        sender = await register(setup, synapse.secret, f"{prefix}teacher")
        tokens = await bounded(
            [partial(register, setup, synapse.secret, f"{prefix}m{i}") for i in range(members)]
        )
        room_request = {
            "preset": "public_chat",
            "name": "Classe",
            "initial_state": [
                {
                    "type": "m.room.encryption",
                    "state_key": "",
                    "content": {"algorithm": "m.megolm.v1.aes-sha2"},
                }
            ],
        }
        feed.progress(
            f"  synapse: {members} members registered ({time.perf_counter() - started:.0f} s)"
        )
        made = await setup.post(
            "/_matrix/client/v3/createRoom", json=room_request, headers=bearer(sender)
        )
        made.raise_for_status()
        room = str(made.json()["room_id"])

        async def join(token: str) -> None:
            joined = await setup.post(
                f"/_matrix/client/v3/join/{room}", json={}, headers=bearer(token)
            )
            joined.raise_for_status()

        await bounded([partial(join, t) for t in tokens])

        async def first_sync(token: str) -> str:
            params = {"timeout": "0", "filter": SYNC_FILTER}
            response = await setup.get(
                "/_matrix/client/v3/sync", params=params, headers=bearer(token)
            )
            response.raise_for_status()
            return str(response.json()["next_batch"])

        feed.progress(
            f"  synapse: {members} members joined ({time.perf_counter() - started:.0f} s)"
        )
        since = await bounded([partial(first_sync, t) for t in tokens])
        tasks = arrivals.streams = [
            asyncio.create_task(sync_stream(client, token, since[i], room, i, arrivals))
            for i, token in enumerate(tokens)
        ]
        await arrivals.all_parked(members)
        seconds = time.perf_counter() - started
        feed.progress(
            f"  synapse: {members} members registered, joined, syncing in {seconds:.1f} s"
        )

        def encrypted(n: int) -> tuple[str, dict[str, str]]:
            """Megolm-shaped: opaque base64 as long as Carnet's sealed post."""
            ciphertext = base64.b64encode(os.urandom(max(16, message_bytes * 3 // 4))).decode()
            content = {
                "algorithm": "m.megolm.v1.aes-sha2",
                "ciphertext": ciphertext[:message_bytes],
                "sender_key": base64.b64encode(os.urandom(32)).decode().rstrip("="),
                "session_id": base64.b64encode(os.urandom(32)).decode().rstrip("="),
                "device_id": "BENCH",
            }
            return f"bench{n}{secrets.token_hex(4)}", content  # a transaction id, the event

        async def send(message: tuple[str, dict[str, str]]) -> str:
            txn, content = message
            path = f"/_matrix/client/v3/rooms/{room}/send/m.room.encrypted/{txn}"
            response = await setup.put(path, json=content, headers=bearer(sender))
            response.raise_for_status()
            return str(response.json()["event_id"])

        result = await rounds(arrivals, members, messages, quiet, encrypted, send, "synapse")
        result["setup_seconds"] = round(seconds, 1)
        return result
    finally:
        await stop_tasks(tasks)
        await client.aclose()
        await setup.aclose()


def run_synapse(
    python: Path,
    root: Path,
    members: int,
    messages: int,
    quiet: float,
    message_bytes: int,
    budget: float,
    pg_server: str | None,
) -> dict[str, Any]:
    synapse = Synapse(python, root / f"synapse-{members}", pg_server)
    try:
        synapse.start()
        feed.progress(
            f"  synapse pid {synapse.server.pid if synapse.server else '?'} on {synapse.url}"
        )
        try:
            return live.within(
                budget, measure_synapse(synapse, members, messages, quiet, message_bytes)
            )
        except Exception:
            feed.progress(f"synapse failed; the end of its log:\n{synapse.log_tail()}")
            raise
    finally:
        synapse.stop()


# --------------------------------------------------------------------------- the run


@dataclass
class Options:
    sizes: list[int]
    messages: int
    quiet: float
    skip_synapse: bool
    venv: Path
    history: int
    seed_cache: Path | None
    budget: float = 1800.0
    #: a PostgreSQL server where each side gets a temporary database; None: SQLite both
    pg_server: str | None = None


def attempt(label: str, measure: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """One side's figures, or what went wrong: the other sizes and sides still run."""
    try:
        return measure()
    except Exception as error:  # reported in the table and the JSON, and by the exit status
        feed.progress(f"{label} failed: {error!r}")
        return {"error": f"{type(error).__name__}: {error}"[:300]}


def run(opts: Options) -> dict[str, Any]:
    live.raise_nofile()
    python = None if opts.skip_synapse else ensure_synapse(opts.venv, bool(opts.pg_server))
    results: dict[str, Any] = {"synapse_version": None if python is None else PIN, "sizes": {}}
    with tempfile.TemporaryDirectory(prefix="carnet-bench-synapse-") as folder:
        root = Path(folder)
        for members in opts.sizes:
            feed.progress(f"N = {members}: Carnet, a class of {members} guardians")
            carnet = attempt(
                f"carnet, N = {members}",
                partial(
                    live.run_carnet,
                    root,
                    members,
                    opts.messages,
                    opts.quiet,
                    opts.history,
                    opts.seed_cache,
                    opts.budget,
                    opts.pg_server,
                ),
            )
            entry: dict[str, Any] = {"carnet": carnet, "synapse": None, "ratio": None}
            if python is not None:
                feed.progress(f"N = {members}: Synapse, a room of {members} members")
                # as long as Carnet's sealed post (about that long if Carnet's side failed)
                size = carnet.get("message_bytes", 1500)
                synapse = attempt(
                    f"synapse, N = {members}",
                    partial(
                        run_synapse,
                        python,
                        root,
                        members,
                        opts.messages,
                        opts.quiet,
                        size,
                        opts.budget,
                        opts.pg_server,
                    ),
                )
                entry["synapse"] = synapse
                if "median" in synapse and "median" in carnet:
                    entry["ratio"] = feed.ratio(
                        synapse["median"]["every_member_ms"], carnet["median"]["every_member_ms"]
                    )
            results["sizes"][str(members)] = entry
    return results


def failed(results: dict[str, Any]) -> bool:
    return any(
        side is not None and "error" in side
        for entry in results["sizes"].values()
        for side in (entry["carnet"], entry["synapse"])
    )


def report(results: dict[str, Any], opts: Options) -> str:
    version = results["synapse_version"] or "skipped"
    lines = [
        f"Live delivery, Carnet (SSE) against Matrix Synapse {version} (/sync) — "
        f"{os.cpu_count()} cores, {feed.cpu_name()}, {'PostgreSQL' if opts.pg_server else 'SQLite'} "
        f"both, code {feed.code_version()}",
        f"One message to N members, median of {opts.messages} after a warm-up (ms from sending)",
        "| N | server | send answered | first member | every member | Synapse ÷ Carnet |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for members, entry in results["sizes"].items():
        for name in ("carnet", "synapse"):
            side = entry[name]
            if side is None or "error" in side:
                what = "skipped" if side is None else f"failed: {side['error']}"
                lines.append(f"| {members} | {name} | {what} | | | |")
                continue
            m = side["median"]
            ratio = f"×{entry['ratio']}" if name == "synapse" and entry["ratio"] else ""
            lines.append(
                f"| {members} | {name} | {m['send_answered_ms']} | {m['first_member_ms']} "
                f"| {m['every_member_ms']} | {ratio} |"
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="60,2000", help="members per class/room (60,2000)")
    parser.add_argument("--messages", type=int, help="messages timed per size (default 5, quick 2)")
    parser.add_argument("--quiet", type=float, default=1.0, help="seconds before each message (1)")
    parser.add_argument("--quick", action="store_true", help="N = 60 only, 2 messages")
    parser.add_argument(
        "--skip-synapse", action="store_true", help="measure Carnet only (no PyPI here)"
    )
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="Synapse's virtualenv")
    parser.add_argument(
        "--history", type=int, default=25, help="posts (with replies) the class has already (25)"
    )
    parser.add_argument(
        "--seed-cache",
        type=Path,
        help="reuse (or keep) alert.py's seeded school of each size from this folder",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=1800.0,
        help="seconds each side's streams and messages may take per size (registering and "
        "joining included, Carnet's seeding not) before it counts as failed (1800)",
    )
    parser.add_argument(
        "--database-url",
        default="",
        help="both servers on PostgreSQL: a server (postgresql://user:pass@host:port/postgres) "
        "where each gets a temporary database (needs CREATEDB); default: SQLite both",
    )
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args()
    sizes = [
        int(s) for s in ("60" if args.quick and args.sizes == "60,2000" else args.sizes).split(",")
    ]
    if args.database_url and not args.database_url.startswith(("postgresql://", "postgres://")):
        parser.error("--database-url must be a postgresql:// URL")
    if args.database_url and args.seed_cache:
        parser.error("--seed-cache keeps SQLite folders only")
    if min(sizes) < 1:
        parser.error("--sizes are positive numbers of members")
    opts = Options(
        sizes=sizes,
        messages=args.messages or (2 if args.quick else 5),
        quiet=args.quiet,
        skip_synapse=args.skip_synapse,
        venv=args.venv,
        history=args.history,
        seed_cache=args.seed_cache,
        budget=args.budget,
        pg_server=args.database_url or None,
    )

    def describe(results: dict[str, Any], load: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        text = report(results, opts)
        text += (
            f"\nLoad average (1 min) before {load['before'][0]:.2f}, after {load['after'][0]:.2f}"
        )
        return text, {}

    outcome: dict[str, Any] = {}

    def measured() -> dict[str, Any]:
        outcome.update(run(opts))
        return outcome

    status = common.run_and_report("live", opts, args.json, measured, describe)
    return 1 if status == 0 and outcome and failed(outcome) else status


if __name__ == "__main__":
    sys.exit(main())
