"""What the fan-out benchmarks (``push.py``, ``alert.py``) share.

- ``seeded_node``: a node with a class of N families seeded by
  ``feed.seed_school`` (and whatever a benchmark adds on top, e.g. the
  school's alert group); with ``--seed-cache`` the seeded data folder
  (SQLite) is kept and a copy reused on the next run: every run starts from
  the same pristine copy, the push endpoints are rewritten to this run's
  push service, and the node serves on the port it was seeded on, which
  member ids name;
- ``fan_outs``: the measuring loop: guardians reading their feed and a
  ``/healthz`` probe while a post or an alert fans out to every family, per
  push service delay; the figures and their medians;
- ``fan_out_options``, ``run_delays``, ``run_and_report``: the command line,
  the run, the printed report and the JSON document.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import dataclasses
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import http_ece
import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from peewee import fn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import feed  # noqa: E402  (the feed benchmark's seeding, nodes and browsers)

from node.config import load_config  # noqa: E402
from node.datafolder import load_keys  # noqa: E402
from node.e2e.keys import AccountKeys  # noqa: E402
from node.services.context import ServiceContext  # noqa: E402
from node.storage import migrations as migrations_package  # noqa: E402
from node.storage import notifications as notification_store  # noqa: E402
from node.storage.db import Storage, open_database, write_transaction  # noqa: E402
from node.storage.migrations import migrate  # noqa: E402


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text)


def keys_to_json(k: AccountKeys) -> dict[str, str]:
    """An account's key pairs as the cache file keeps them."""
    return {name: _b64(getattr(k, name)) for name in ("sign_sk", "sign_pk", "enc_sk", "enc_pk")}


def keys_from_json(d: dict[str, str]) -> AccountKeys:
    return AccountKeys(**{name: _unb64(value) for name, value in d.items()})


def school_to_json(school: feed.School) -> dict[str, Any]:
    keys = keys_to_json
    return {
        "class_id": school.class_id,
        "teacher_keys": keys(school.teacher_keys),
        "teacher_me": school.teacher_me,
        "salt": school.salt,
        "iterations": school.iterations,
        "seed_seconds": school.seed_seconds,
        "seeded": [school.seeded_posts, school.seeded_replies, school.seeded_receipts],
        "families": [
            {
                "login": f.login,
                "account_id": f.account_id,
                "keys": keys(f.keys),
                "me": f.me,
                "child_id": f.child_id,
                "push_path": f.push_path,
                "push_key": _b64(
                    f.push_key.private_bytes(
                        serialization.Encoding.DER,
                        serialization.PrivateFormat.PKCS8,
                        serialization.NoEncryption(),
                    )
                ),
                "push_auth": _b64(f.push_auth),
            }
            for f in school.families
        ],
    }


def school_from_json(data: dict[str, Any]) -> feed.School:
    keys = keys_from_json

    families = []
    for f in data["families"]:
        key = serialization.load_der_private_key(_unb64(f["push_key"]), None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        families.append(
            feed.Family(
                f["login"],
                f["account_id"],
                keys(f["keys"]),
                f["me"],
                f["child_id"],
                f["push_path"],
                key,
                _unb64(f["push_auth"]),
            )  # fmt: skip
        )
    posts, replies, receipts = data["seeded"]
    return feed.School(
        data["class_id"], keys(data["teacher_keys"]), data["teacher_me"], families,
        data["salt"], data["iterations"], data["seed_seconds"], posts, replies, receipts,
    )  # fmt: skip


def point_at(node: feed.Node, push_url: str) -> None:
    """A copied data folder: every endpoint on this run's push service.

    The node keeps the port it was seeded on: member ids name the node's
    host and port, and the seeded keys and envelopes are bound to them.
    """
    match = re.search(r"127\.0\.0\.1:(\d+)", (node.data / "carnet.toml").read_text())
    assert match, "the seeded carnet.toml names the node's address"
    node.port = int(match[1])
    node.url = f"http://127.0.0.1:{node.port}"
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds
        try:
            probe.bind(("127.0.0.1", node.port))
        except OSError:
            raise RuntimeError(
                f"port {node.port}, which the cached node was seeded on, is busy: "
                "free it or remove the --seed-cache folder"
            ) from None
    assert node.storage is not None
    model = notification_store.PushSubscription

    def rewrite() -> None:
        with write_transaction():
            for sub in model.select():
                path = "/" + sub.endpoint.split("/", 3)[3]
                sub.endpoint = push_url + path
                sub.endpoint_hash = hashlib.sha256(sub.endpoint.encode()).hexdigest()
                sub.save()

    node.storage.call(rewrite)


def wired(ctx: ServiceContext, data: Path) -> ServiceContext:
    """The context as ``carnet`` commands make it: the node's signing key and the federation
    publisher, which every post now needs (``feed.Node.init`` leaves them out)."""
    from federation.runtime import events as federation_events

    return dataclasses.replace(
        ctx, signing_key=load_keys(data).signing_key, publisher=federation_events.publish
    )


def open_copy(node: feed.Node) -> None:
    """Open a node whose data folder was copied in, as ``Node.init`` does after ``carnet init``."""
    config = load_config({"data_dir": str(node.data)})
    db = open_database(config.resolved_database_url)
    with db.connection_context():
        migrate(db)
    ctx = ServiceContext(config=config, node_secret=load_keys(node.data).node_secret)
    node.ctx = wired(ctx, node.data)
    node.storage = Storage(db, 1)


def schema_fingerprint() -> str:
    """The node's migrations, hashed: a cached folder seeded with other ones is seeded again
    (a migration not yet released may change in place)."""
    folder = Path(migrations_package.__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.sql")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def seeded_node(
    root: Path,
    families: int,
    pg_server: str | None,
    seed_cache: Path | None,
    push_url: str,
    *,
    name: str | None = None,
    seed_more: Callable[[feed.Node, feed.School], dict[str, Any]] | None = None,
) -> tuple[feed.Node, feed.School, dict[str, Any]]:
    """A node with a class of ``families`` families seeded by ``feed.seed_school``, served by nobody yet.

    ``seed_more(node, school)`` seeds what a benchmark needs on top (e.g. an
    admin and the school's alert group) and returns what its clients must
    remember, as JSON; it is cached with the school.  ``--seed-cache``: the
    folder ``seed_cache/name`` keeps the seeded data folder and reuses a copy.
    """
    name = name or f"class-{families}"
    node = feed.Node(root, name, pg_server)
    cache = seed_cache / name if seed_cache else None
    kept = cache / "school.json" if cache is not None else None
    saved = json.loads(kept.read_text()) if kept is not None and kept.exists() else None
    if cache is not None and saved is not None and saved.get("schema") != schema_fingerprint():
        feed.progress(f"{node.name}: the database migrations changed since {cache} was seeded")
    elif cache is not None and saved is not None:
        shutil.copytree(cache / "data", node.data)
        open_copy(node)
        point_at(node, push_url)
        feed.progress(f"{node.name}: reused the seeded folder {cache}")
        return node, school_from_json(saved), saved.get("more", {})
    node.init()
    assert node.ctx is not None and node.storage is not None
    node.ctx = wired(node.ctx, node.data)
    feed.progress(f"{node.name}: seeding {families} families")
    school = feed.seed_school(node.ctx, node.storage, families, push_url, 25, feed.progress)
    more = seed_more(node, school) if seed_more is not None else {}
    feed.progress(f"  seeded in {school.seed_seconds:.1f} s")
    if cache is not None:
        node.storage.close()
        shutil.rmtree(cache, ignore_errors=True)
        cache.mkdir(parents=True)
        shutil.copytree(node.data, cache / "data")
        saved = {**school_to_json(school), "more": more, "schema": schema_fingerprint()}
        (cache / "school.json").write_text(json.dumps(saved))
        open_copy(node)
    return node, school, more


# --------------------------------------------------------------------------- measuring


@dataclass
class Options:
    """What a fan-out benchmark (push, alert) is asked to do."""

    families: int
    runs: int
    delays: list[int]
    readers: int
    read_every: float
    quiet: float
    seed_cache: Path | None
    pg_server: str | None


def now() -> float:
    """CLOCK_MONOTONIC: the same clock in this process and in the push service's."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process and its live children have used, from /proc (Linux).

    The children count: the node's push encryption helper works for it.
    0 for a process that does not exist (or off Linux).
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError, ValueError):
            total += sum(cpu_seconds(int(child)) for child in children.read_text().split())
    return total


@dataclass
class Sample:
    start: float
    seconds: float
    ok: bool


@dataclass
class Readers:
    """Guardians reading their feed in a closed loop, and a /healthz probe, until stopped."""

    browsers: list[feed.Browser]
    probe: feed.Browser
    #: seconds from the start of one read to the start of the reader's next (0: no pause)
    every: float
    reads: list[Sample] = field(default_factory=list)
    probes: list[Sample] = field(default_factory=list)
    running: bool = True

    async def read(self, browser: feed.Browser, offset: float) -> None:
        await asyncio.sleep(offset)  # readers out of step, as people are
        while self.running:
            start = now()
            try:
                response = await browser.client.get("/api/v1/feed")
                ok = response.status_code == 200
            except httpx.TransportError:  # counted, not fatal: the node may be saturated
                ok = False
            self.reads.append(Sample(start, now() - start, ok))
            await asyncio.sleep(max(0.0, self.every - (now() - start)))

    async def probe_loop(self) -> None:
        while self.running:
            start = now()
            try:
                ok = (await self.probe.client.get("/healthz")).status_code == 200
            except httpx.TransportError:
                ok = False
            self.probes.append(Sample(start, now() - start, ok))
            await asyncio.sleep(max(0.0, 0.05 - (now() - start)))

    @staticmethod
    def between(samples: list[Sample], start: float, end: float) -> list[Sample]:
        return [s for s in samples if start <= s.start < end]


def latencies(samples: list[Sample]) -> dict[str, Any]:
    if not samples:
        return {"n": 0}
    ms = [s.seconds * 1000 for s in samples]
    return {
        "n": len(ms),
        "errors": sum(not s.ok for s in samples),
        "p50_ms": round(feed.pct(ms, 0.50), 1),
        "p99_ms": round(feed.pct(ms, 0.99), 1),
        "max_ms": round(max(ms), 1),
    }


def node_statuses(node: feed.Node) -> dict[str, int]:
    assert node.storage is not None
    model = notification_store.Notification

    def count() -> dict[str, int]:
        query = model.select(model.status, fn.COUNT(model.id)).group_by(model.status).tuples()
        return {status: n for status, n in query}

    return node.storage.call(count)


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = (
        "post_request_ms",
        "first_push_ms",
        "every_push_ms",
        "after_answer_ms",
        "outbox_settled_ms",
        "pushes_per_second",
        "node_cpu_s",
    )
    out: dict[str, Any] = {
        k: {
            "median": round(statistics.median(r[k] for r in runs), 1),
            "min": min(r[k] for r in runs),
            "max": max(r[k] for r in runs),
        }
        for k in keys
    }
    for k in ("feed_during", "feed_quiet", "healthz_during"):
        p99 = [r[k]["p99_ms"] for r in runs if r[k].get("n")]
        out[f"{k}_p99_ms"] = round(statistics.median(p99), 1) if p99 else None
    return out


async def settle(node: feed.Node) -> None:
    """Until no notification is pending in the node's outbox (polls for up to 10 minutes)."""
    for _ in range(60_000):
        if not await asyncio.to_thread(node.pending_notifications):
            return
        await asyncio.sleep(0.01)


async def fan_outs(
    node: feed.Node,
    school: feed.School,
    service: Any,
    opts: Options,
    delay_ms: int,
    what: str,
    fire: Callable[[int], Awaitable[tuple[float, float, dict[str, Any]]]],
    after: Callable[[dict[str, Any]], Awaitable[Any]] | None = None,
) -> dict[str, Any]:
    """``opts.runs`` fan-outs (after one warm-up) to every family, timed, while guardians read.

    ``fire(n)`` sends the ``n``th post or alert and returns when it was sent
    and answered, and figures of its own for the run; ``after(those figures)``
    then sends what closes it (an alert's all clear), whose pushes are waited
    for but not measured.  ``service`` is the fake push service
    (``push.PushService``), set to ``delay_ms``.
    """
    secrets: dict[str, str] = {}
    browsers = [feed.Browser(node.url) for _ in range(opts.readers)]
    probe = feed.Browser(node.url)
    try:
        secret = await feed.prelogin_secret(node.url, school.families[0].login, secrets)
        await asyncio.gather(
            *(b.login(f.login, secret) for b, f in zip(browsers, school.families, strict=False))
        )
        service.set_delay(delay_ms / 1000)
        expected = [f.push_path for f in school.families]
        readers = Readers(browsers, probe, opts.read_every)
        tasks = [
            asyncio.create_task(readers.read(b, opts.read_every * i / len(browsers)))
            for i, b in enumerate(browsers)
        ]
        tasks.append(asyncio.create_task(readers.probe_loop()))
        runs: list[dict[str, Any]] = []
        connections = service.stats()["connections"]
        try:
            for n in range(opts.runs + 1):
                quiet_from = now()
                await asyncio.sleep(opts.quiet)
                service.expect(expected)
                assert node.server is not None
                cpu_before = cpu_seconds(node.server.pid)
                sent, answered, own = await fire(n)
                accepted = await asyncio.to_thread(service.wait, 600)
                await settle(node)
                settled = now()
                node_cpu = cpu_seconds(node.server.pid) - cpu_before
                if after is not None:
                    service.expect(expected)
                    await after(own)
                    await asyncio.to_thread(service.wait, 600)
                    await settle(node)
                if n == 0:
                    continue  # warm-up: connections, caches
                every = accepted["last"] - sent
                runs.append(
                    {
                        **own,
                        "post_request_ms": round((answered - sent) * 1000, 1),
                        "first_push_ms": round((accepted["first"] - sent) * 1000, 1),
                        "every_push_ms": round(every * 1000, 1),
                        "after_answer_ms": round((accepted["last"] - answered) * 1000, 1),
                        "outbox_settled_ms": round((settled - sent) * 1000, 1),
                        "pushes_per_second": round(len(expected) / every, 1),
                        # the node's CPU from sending to the settled outbox, feed reads included
                        "node_cpu_s": round(node_cpu, 2),
                        "feed_during": latencies(
                            readers.between(readers.reads, sent, accepted["last"])
                        ),
                        "feed_quiet": latencies(readers.between(readers.reads, quiet_from, sent)),
                        "healthz_during": latencies(
                            readers.between(readers.probes, sent, accepted["last"])
                        ),
                        "window": (sent, accepted["last"], quiet_from),
                    }
                )
                feed.progress(
                    f"  delay {delay_ms} ms, {what} {n}: answered {runs[-1]['post_request_ms']:.0f} ms, "
                    f"every push {runs[-1]['every_push_ms']:.0f} ms, "
                    f"feed p99 during {runs[-1]['feed_during'].get('p99_ms')} ms"
                )
        finally:
            readers.running = False
            await asyncio.gather(*tasks, return_exceptions=True)

        def pooled(samples: list[Sample], start: int, end: int) -> dict[str, Any]:
            windows = [(r["window"][start], r["window"][end]) for r in runs]
            return latencies([s for a, b in windows for s in readers.between(samples, a, b)])

        during, quiet = pooled(readers.reads, 0, 1), pooled(readers.reads, 2, 0)
        probed = pooled(readers.probes, 0, 1)
        for r in runs:
            del r["window"]
        family = school.families[0]
        headers, sample = service.last(family.push_path)
        payload = json.loads(
            http_ece.decrypt(
                sample,
                private_key=family.push_key,
                auth_secret=family.push_auth,
                version="aes128gcm",
            )
        )
        statuses = await asyncio.to_thread(node_statuses, node)
        return {
            "delay_ms": delay_ms,
            "recipients": len(expected),
            "runs": runs,
            "median": medians(runs),
            "feed_during_pooled": during,
            "feed_quiet_pooled": quiet,
            "healthz_during_pooled": probed,
            "push_connections_opened": service.stats()["connections"] - connections,
            "notification_statuses": statuses,
            "sample_push": {
                "bytes": len(sample),
                "urgency": headers.get("urgency"),
                "payload_kind": payload.get("kind"),
                "payload_url": payload.get("url"),
            },
        }
    finally:
        await asyncio.gather(*(b.close() for b in (probe, *browsers)))


def run_delays(
    opts: Options,
    benchmark: str,
    start_service: Callable[[], Any],
    measure: Callable[
        [feed.Node, feed.School, dict[str, Any], Any, int], Awaitable[dict[str, Any]]
    ],
    seed_more: Callable[[feed.Node, feed.School], dict[str, Any]] | None = None,
) -> tuple[dict[str, Any], feed.School, dict[str, Any]]:
    """Start the push service, seed (or reuse) and serve the node, ``measure`` each delay.

    ``measure(node, school, more, service, delay_ms)``; ``more`` is what
    ``seed_more`` returned.  Results are keyed ``delay_{ms}ms``; the node, the
    service and the temporary folder are gone on return.
    """
    results: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        prefix = f"carnet-bench-{benchmark}-"
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=prefix)))
        service = start_service()
        stack.callback(service.stop)
        name = f"{benchmark}-{opts.families}" if seed_more is not None else None
        node, school, more = seeded_node(
            root, opts.families, opts.pg_server, opts.seed_cache, service.url,
            name=name, seed_more=seed_more,
        )  # fmt: skip
        stack.callback(node.stop)
        node.serve()
        feed.progress(f"  carnet serve pid {node.server.pid if node.server else '?'} on {node.url}")
        try:
            for delay in opts.delays:
                results[f"delay_{delay}ms"] = asyncio.run(
                    measure(node, school, more, service, delay)
                )
        except Exception:
            feed.progress(f"{node.name} failed; the end of its log:\n{node.log_tail()}")
            raise
    return results, school, more


# --------------------------------------------------------------------------- command line


def fan_out_options(description: str, what: str) -> tuple[Options, argparse.Namespace]:
    """The command line of a fan-out benchmark timing ``what`` (posts, alerts) per push delay."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--families", type=int, default=2000, help="families (default 2000)")
    parser.add_argument("--runs", type=int, help=f"{what} timed per delay (default 3, quick 1)")
    parser.add_argument(
        "--delays", default="0,100", help="push service delays in ms (default 0,100)"
    )
    parser.add_argument("--readers", type=int, default=4, help="concurrent feed readers (4)")
    parser.add_argument(
        "--read-every",
        type=float,
        default=0.5,
        help="seconds between the starts of a reader's reads (default 0.5; 0: back to back)",
    )
    parser.add_argument(
        "--quiet", type=float, default=2.0, help=f"seconds of reads before each of the {what} (2)"
    )
    parser.add_argument("--seed-cache", type=Path, help="keep and reuse the seeded data folder")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--quick", action="store_true", help=f"one of the {what} per delay")
    parser.add_argument(
        "--database-url",
        default="",
        help="a PostgreSQL server (postgresql://user:pass@host/postgres) where the node gets "
        "a temporary database (needs CREATEDB); default: SQLite",
    )
    args = parser.parse_args()
    if args.database_url and not args.database_url.startswith(("postgresql://", "postgres://")):
        parser.error("--database-url must be a postgresql:// URL")
    if args.database_url and args.seed_cache:
        parser.error("--seed-cache keeps SQLite folders only")
    opts = Options(
        families=args.families,
        runs=args.runs or (1 if args.quick else 3),
        delays=[int(d) for d in args.delays.split(",")],
        readers=args.readers,
        read_every=args.read_every,
        quiet=args.quiet,
        seed_cache=args.seed_cache,
        pg_server=args.database_url or None,
    )
    if opts.families < opts.readers:
        parser.error("need at least as many families as readers")
    return opts, args


def run_and_report(
    benchmark: str,
    opts: Any,
    json_path: Path | None,
    run: Callable[[], dict[str, Any]],
    describe: Callable[[dict[str, Any], dict[str, Any]], tuple[str, dict[str, Any]]],
) -> int:
    """Run, print ``describe(results, load)``'s text, and write the JSON document it completes.

    ``opts``: the benchmark's options dataclass (with ``pg_server``), written to the document.

    Ctrl-C and SIGTERM unwind through the benchmark's clean-up.
    """

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    load_before = os.getloadavg()
    try:
        results = run()
    except KeyboardInterrupt:
        print("interrupted: servers stopped, temporary folders removed", file=sys.stderr)
        return 130
    load = {"before": load_before, "after": os.getloadavg()}
    text, extra = describe(results, load)
    print(text)
    if json_path:
        document = {
            "benchmark": benchmark,
            "machine": {"cores": os.cpu_count(), "cpu": feed.cpu_name()},
            "code": feed.code_version(),
            "database": "postgresql" if opts.pg_server else "sqlite",
            "options": {
                k: str(v) if isinstance(v, Path) else v
                for k, v in vars(opts).items()
                if k != "pg_server"
            },
            "load_average_1_5_15_min": load,
            **extra,
            "results": results,
        }
        json_path.write_text(json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n")
    return 0
