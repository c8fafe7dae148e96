#!/usr/bin/env python3
"""Benchmark the Web Push fan-out of one post to a class of 2,000 families, and the feed during it.

    .venv/bin/python scripts/bench/push.py [--families 2000] [--runs 3] [--delays 0,100]
        [--readers 4] [--read-every 0.5] [--seed-cache DIR] [--json out.json] [--quick]
        [--database-url postgresql://user:pass@host/postgres]

One real ``carnet serve`` process on 127.0.0.1 with a class of
``--families`` families (seeded as ``scripts/bench/feed.py`` does), each
guardian with one push subscription to a fake push service.  The fake push
service runs in a process of its own (so that its work never waits for the
benchmark's): it answers ``201 Created`` after the injected delay, and
records when each push was *accepted* (its answer written).

For each delay in ``--delays`` (milliseconds per request) and each of
``--runs`` posts (after one warm-up post), while ``--readers`` guardians read
``GET /api/v1/feed``, each starting a read every ``--read-every`` seconds
(or as soon as the previous read ends if it took longer; 0 reads back to
back, which saturates a 2-core node by itself), and a probe asks
``/healthz`` every 50 ms:

- post request: the teacher's ``POST /api/v1/classes/{id}/posts``, sent to answered;
- every push accepted: from sending the post until the push service has
  accepted a push for every family; pushes/s = families ÷ that time;
- outbox settled: until no notification is pending in the node's database;
- node CPU: the CPU time the ``carnet serve`` process and its children (the
  push encryption helper) used from the post to the settled outbox (feed
  reads included), which other work on the machine skews far less than
  the times;
- feed during the fan-out: latencies of the feed reads that started between
  sending the post and the last push accepted (p50, p99, max), next to the
  same readers' latencies in a quiet window of ``--quiet`` seconds before
  each post; the probe's worst ``/healthz`` then shows any stall of the
  server's event loop.

Reported: the median over the runs of each figure (and min/max), the
pooled feed latencies, and the load average before and after.  The
machine's other work skews everything: compare runs on the same, otherwise
idle, machine only.

Seeding 2,000 families takes minutes; ``--seed-cache DIR`` keeps the seeded
data folder (SQLite) and reuses a copy of it on the next run (every run
starts from the same pristine copy; the push endpoints are rewritten, and
the node serves on the port it was seeded on, which member ids name).

To compare with another version of the node (e.g. before a change), copy
its ``node``, ``web`` and ``federation`` folders somewhere and run this
script from a folder that has no ``node`` package (``-m`` puts the current
folder first on the path) with ``PYTHONPATH`` set to the copy::

    cd /tmp && PYTHONPATH=/tmp/carnet-before /work/main/.venv/bin/python \
        /work/main/scripts/bench/push.py --seed-cache /tmp/push-seed

Both the benchmark and the ``carnet serve`` it starts then import that
copy.  Traffic stays on loopback; servers, processes and temporary folders
are removed on exit, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import inspect
import json
import os
import re
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
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

from node import refclient_groups as rc  # noqa: E402
from node.e2e.keys import AccountKeys  # noqa: E402
from node.storage import notifications as notification_store  # noqa: E402
from node.storage.db import write_transaction  # noqa: E402
from node.workers import push as push_worker  # noqa: E402


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


# --------------------------------------------------------------------------- fake push service


class PushService:
    """The fake push service, in a process of its own (this script with ``--serve-push``).

    Minimal HTTP/1.1 (keep-alive, ``Content-Length`` bodies): every request
    is answered ``201 Created`` after ``delay`` seconds, and the time of that
    answer is the push's acceptance.  Driven with JSON lines on its stdin
    and stdout.
    """

    def __init__(self) -> None:
        self.port = 0
        self._process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> PushService:
        self._process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve-push"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.port = int(self._read(60)["port"])
        return self

    def _read(self, timeout: float) -> Any:
        assert self._process is not None and self._process.stdout is not None
        ready, _, _ = select.select([self._process.stdout], [], [], timeout)
        line = self._process.stdout.readline() if ready else ""
        if not line:
            raise RuntimeError("the fake push service did not answer")
        return json.loads(line)

    def _ask(self, *command: Any, timeout: float = 30) -> Any:
        assert self._process is not None and self._process.stdin is not None
        self._process.stdin.write(json.dumps(command) + "\n")
        self._process.stdin.flush()
        return self._read(timeout)

    def set_delay(self, seconds: float) -> None:
        self._ask("delay", seconds)

    def stats(self) -> dict[str, int]:
        result: dict[str, int] = self._ask("stats")
        return result

    def last(self, path: str) -> tuple[dict[str, str], bytes]:
        headers, body = self._ask("last", path)
        return headers, base64.b64decode(body)

    def expect(self, paths: list[str]) -> None:
        """From now on, note when a push is accepted for each of ``paths`` (before posting)."""
        self._ask("expect", paths)

    def wait(self, timeout: float) -> dict[str, Any]:
        """Block until a push was accepted for every expected path; first/last acceptance times."""
        result: dict[str, Any] = self._ask("wait", timeout=timeout)
        return result

    def stop(self) -> None:
        if self._process is not None:
            with contextlib.suppress(OSError, ValueError):
                assert self._process.stdin is not None
                self._process.stdin.close()  # end of commands: the service stops
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            if self._process.stdout is not None:
                self._process.stdout.close()
            self._process = None


def serve_push() -> int:
    """``--serve-push``: run the fake push service, commands on stdin, answers on stdout."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the benchmark stops it
    asyncio.run(_PushServiceProcess().main())
    return 0


class _PushServiceProcess:
    def __init__(self) -> None:
        self.delay = 0.0
        self.requests = 0
        self.connections = 0
        self.last: dict[str, tuple[dict[str, str], bytes]] = {}
        self.outstanding: set[str] = set()
        self.first: float | None = None
        self.latest: float | None = None
        self.waiting = False
        self.stopping = asyncio.Event()
        self.loop: asyncio.AbstractEventLoop | None = None

    async def main(self) -> None:
        self.loop = asyncio.get_running_loop()
        server = await asyncio.start_server(self.serve, "127.0.0.1", 0, backlog=1024)
        self.send({"port": int(server.sockets[0].getsockname()[1])})
        threading.Thread(target=self.control, daemon=True).start()
        async with server:
            await self.stopping.wait()

    @staticmethod
    def send(answer: Any) -> None:
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()

    def control(self) -> None:
        """Commands from the benchmark, on a thread: each handled on the event loop."""
        assert self.loop is not None
        for line in sys.stdin:
            self.loop.call_soon_threadsafe(self.command, json.loads(line))
        self.loop.call_soon_threadsafe(self.stopping.set)  # stdin closed: stop

    def command(self, command: list[Any]) -> None:
        kind = command[0]
        if kind == "delay":
            self.delay = float(command[1])
            self.send("ok")
        elif kind == "stats":
            self.send({"requests": self.requests, "connections": self.connections})
        elif kind == "last":
            headers, body = self.last.get(command[1], ({}, b""))
            self.send([headers, base64.b64encode(body).decode()])
        elif kind == "expect":
            self.outstanding = set(command[1])
            self.first = self.latest = None
            self.send("ok")
        elif kind == "wait":
            self.waiting = True
            self.check()

    def check(self) -> None:
        if self.waiting and not self.outstanding:
            self.waiting = False
            self.send({"first": self.first, "last": self.latest})

    def accepted(self, path: str, headers: dict[str, str], body: bytes) -> None:
        at = now()
        self.requests += 1
        self.last[path] = (headers, body)
        if path in self.outstanding:
            self.outstanding.discard(path)
            self.first = at if self.first is None else self.first
            self.latest = at
            self.check()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                target = lines[0].split(" ", 2)[1]
                headers = {}
                for line in lines[1:]:
                    name, sep, value = line.partition(":")
                    if sep:
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0"))
                body = await reader.readexactly(length) if length else b""
                if self.delay:
                    await asyncio.sleep(self.delay)
                writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
                self.accepted(target, headers, body)
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        except (ValueError, IndexError):
            with contextlib.suppress(ConnectionError):
                writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        except asyncio.CancelledError:
            pass
        finally:
            writer.close()


# --------------------------------------------------------------------------- the seeded node


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text)


def school_to_json(school: feed.School) -> dict[str, Any]:
    def keys(k: AccountKeys) -> dict[str, str]:
        return {name: _b64(getattr(k, name)) for name in ("sign_sk", "sign_pk", "enc_sk", "enc_pk")}

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
    def keys(d: dict[str, str]) -> AccountKeys:
        return AccountKeys(**{name: _unb64(value) for name, value in d.items()})

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


def open_copy(node: feed.Node) -> None:
    """Open a node whose data folder was copied in, as ``Node.init`` does after ``carnet init``."""
    from node.config import load_config
    from node.datafolder import load_keys
    from node.services.context import ServiceContext
    from node.storage.db import Storage, open_database
    from node.storage.migrations import migrate

    config = load_config({"data_dir": str(node.data)})
    db = open_database(config.resolved_database_url)
    with db.connection_context():
        migrate(db)
    node.ctx = ServiceContext(config=config, node_secret=load_keys(node.data).node_secret)
    node.storage = Storage(db, 1)


def seeded_node(root: Path, opts: Options, push: PushService) -> tuple[feed.Node, feed.School]:
    node = feed.Node(root, f"class-{opts.families}", opts.pg_server)
    cache = opts.seed_cache / f"class-{opts.families}" if opts.seed_cache else None
    if cache is not None and (cache / "school.json").exists():
        shutil.copytree(cache / "data", node.data)
        open_copy(node)
        point_at(node, push.url)
        school = school_from_json(json.loads((cache / "school.json").read_text()))
        feed.progress(f"{node.name}: reused the seeded folder {cache}")
        return node, school
    node.init()
    assert node.ctx is not None and node.storage is not None
    feed.progress(f"{node.name}: seeding {opts.families} families")
    school = feed.seed_school(node.ctx, node.storage, opts.families, push.url, 25, feed.progress)
    feed.progress(f"  seeded in {school.seed_seconds:.1f} s")
    if cache is not None:
        node.storage.close()
        shutil.rmtree(cache, ignore_errors=True)
        cache.mkdir(parents=True)
        shutil.copytree(node.data, cache / "data")
        (cache / "school.json").write_text(json.dumps(school_to_json(school)))
        open_copy(node)
    return node, school


# --------------------------------------------------------------------------- measuring


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


async def post_once(
    node: feed.Node, school: feed.School, teacher: feed.Browser, state: Any, epoch_keys: Any, n: int
) -> tuple[float, float]:
    body = {"text": f"Message à toute la classe n° {n}.", "attachments": []}
    request = rc.encrypt(school.teacher_keys, school.teacher_me, state, epoch_keys, "post", body)
    sent = now()
    response = await teacher.client.post(
        f"/api/v1/classes/{school.class_id}/posts",
        json={"message": request["message"]},
        headers={"X-CSRF-Token": teacher.csrf},
    )
    answered = now()
    if response.status_code != 201:
        raise RuntimeError(f"post refused: {response.status_code} {response.text}")
    return sent, answered


async def fan_out_runs(
    node: feed.Node, school: feed.School, push: PushService, opts: Options, delay_ms: int
) -> dict[str, Any]:
    secrets: dict[str, str] = {}
    teacher = feed.Browser(node.url)
    readers_browsers = [feed.Browser(node.url) for _ in range(opts.readers)]
    probe = feed.Browser(node.url)
    try:
        await teacher.login(
            feed.TEACHER_LOGIN, await feed.prelogin_secret(node.url, feed.TEACHER_LOGIN, secrets)
        )
        secret = await feed.prelogin_secret(node.url, school.families[0].login, secrets)
        await asyncio.gather(
            *(
                b.login(f.login, secret)
                for b, f in zip(readers_browsers, school.families, strict=False)
            )
        )
        view = (await teacher.client.get(f"/api/v1/classes/{school.class_id}/group")).json()
        state, epoch_keys = await asyncio.to_thread(rc.open_epoch_keys, view, school.teacher_keys)
        push.set_delay(delay_ms / 1000)
        expected = [f.push_path for f in school.families]
        readers = Readers(readers_browsers, probe, opts.read_every)
        tasks = [
            asyncio.create_task(readers.read(b, opts.read_every * i / len(readers_browsers)))
            for i, b in enumerate(readers_browsers)
        ]
        tasks.append(asyncio.create_task(readers.probe_loop()))
        runs: list[dict[str, Any]] = []
        connections = push.stats()["connections"]
        try:
            for n in range(opts.runs + 1):
                quiet_from = now()
                await asyncio.sleep(opts.quiet)
                push.expect(expected)
                assert node.server is not None
                cpu_before = cpu_seconds(node.server.pid)
                sent, answered = await post_once(node, school, teacher, state, epoch_keys, n)
                accepted = await asyncio.to_thread(push.wait, 600)
                for _ in range(60_000):  # poll the database for up to 10 minutes
                    if not await asyncio.to_thread(node.pending_notifications):
                        break
                    await asyncio.sleep(0.01)
                settled = now()
                node_cpu = cpu_seconds(node.server.pid) - cpu_before
                if n == 0:
                    continue  # warm-up: connections, caches
                every = accepted["last"] - sent
                runs.append(
                    {
                        "post_request_ms": round((answered - sent) * 1000, 1),
                        "first_push_ms": round((accepted["first"] - sent) * 1000, 1),
                        "every_push_ms": round(every * 1000, 1),
                        "after_answer_ms": round((accepted["last"] - answered) * 1000, 1),
                        "outbox_settled_ms": round((settled - sent) * 1000, 1),
                        "pushes_per_second": round(len(expected) / every, 1),
                        # the node's CPU from the post to the settled outbox, feed reads included
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
                    f"  delay {delay_ms} ms, post {n}: every push {runs[-1]['every_push_ms']:.0f} ms, "
                    f"feed p99 during {runs[-1]['feed_during'].get('p99_ms')} ms"
                )
        finally:
            readers.running = False
            await asyncio.gather(*tasks, return_exceptions=True)
        pooled_during = [
            s for r in runs for s in readers.between(readers.reads, r["window"][0], r["window"][1])
        ]
        pooled_quiet = [
            s for r in runs for s in readers.between(readers.reads, r["window"][2], r["window"][0])
        ]
        pooled_probe = [
            s for r in runs for s in readers.between(readers.probes, r["window"][0], r["window"][1])
        ]
        for r in runs:
            del r["window"]
        family = school.families[0]
        headers, sample = push.last(family.push_path)
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
            "feed_during_pooled": latencies(pooled_during),
            "feed_quiet_pooled": latencies(pooled_quiet),
            "healthz_during_pooled": latencies(pooled_probe),
            "push_connections_opened": push.stats()["connections"] - connections,
            "notification_statuses": statuses,
            "sample_push": {
                "bytes": len(sample),
                "urgency": headers.get("urgency"),
                "payload_kind": payload.get("kind"),
                "payload_url": payload.get("url"),
            },
        }
    finally:
        await asyncio.gather(*(b.close() for b in (teacher, probe, *readers_browsers)))


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


def worker_settings() -> dict[str, Any]:
    """The push worker's bounds, read from the code being measured (not copied)."""
    params = inspect.signature(push_worker.PushWorker.__init__).parameters
    settings = {
        name: p.default
        for name, p in params.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is not inspect.Parameter.empty
    }
    settings.pop("client", None)
    for constant in ("ENCRYPT_CHUNK", "POLL_SECONDS"):
        if hasattr(push_worker, constant):
            settings[constant.lower()] = getattr(push_worker, constant)
    settings["runs_on_own_thread"] = "threading.Thread" in inspect.getsource(push_worker)
    return settings


# --------------------------------------------------------------------------- the run


@dataclass
class Options:
    families: int
    runs: int
    delays: list[int]
    readers: int
    read_every: float
    quiet: float
    seed_cache: Path | None
    pg_server: str | None


def run(opts: Options) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="carnet-bench-push-")))
        push = PushService().start()
        stack.callback(push.stop)
        node, school = seeded_node(root, opts, push)
        stack.callback(node.stop)
        node.serve()
        feed.progress(f"  carnet serve pid {node.server.pid if node.server else '?'} on {node.url}")
        try:
            for delay in opts.delays:
                results[f"delay_{delay}ms"] = asyncio.run(
                    fan_out_runs(node, school, push, opts, delay)
                )
        except Exception:
            feed.progress(f"{node.name} failed; the end of its log:\n{node.log_tail()}")
            raise
    return results


def report(results: dict[str, Any], opts: Options, worker: dict[str, Any], load: Any) -> str:
    backend = "PostgreSQL" if opts.pg_server else "SQLite"
    lines = [
        f"Carnet push fan-out benchmark — {os.cpu_count()} cores, {feed.cpu_name()}, {backend}, "
        f"code {feed.code_version()}",
        f"Load average (1 min) before {load['before'][0]:.2f}, after {load['after'][0]:.2f}",
        f"Push worker: {json.dumps(worker, default=str)}",
        f"{opts.families} families, {opts.runs} posts per delay after one warm-up, "
        f"{opts.readers} feed readers each starting a read every {opts.read_every} s "
        "(or when the previous one ends), /healthz probe every 50 ms",
        "",
        "| delay | post answered | every push accepted | pushes/s | outbox settled | node CPU "
        "| feed p99 quiet | feed p99 during | feed max during | healthz max during |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def ms(value: Any) -> str:
        return "–" if value is None else f"{value} ms"

    for r in results.values():
        m = r["median"]
        lines.append(
            f"| {r['delay_ms']} ms | {m['post_request_ms']['median']:.0f} ms "
            f"| {m['every_push_ms']['median']:.0f} ms ({m['every_push_ms']['min']:.0f}–{m['every_push_ms']['max']:.0f}) "
            f"| {m['pushes_per_second']['median']:.0f} "
            f"| {m['outbox_settled_ms']['median']:.0f} ms "
            f"| {m['node_cpu_s']['median']:.2f} s "
            f"| {ms(r['feed_quiet_pooled'].get('p99_ms'))} "
            f"| {ms(r['feed_during_pooled'].get('p99_ms'))} "
            f"(median of runs {ms(m['feed_during_p99_ms'])}) "
            f"| {ms(r['feed_during_pooled'].get('max_ms'))} "
            f"| {ms(r['healthz_during_pooled'].get('max_ms'))} |"
        )
    lines.append("")
    for r in results.values():
        lines.append(
            f"delay {r['delay_ms']} ms: feed reads during fan-outs {r['feed_during_pooled'].get('n')} "
            f"(errors {r['feed_during_pooled'].get('errors')}), quiet {r['feed_quiet_pooled'].get('n')}; "
            f"{r['push_connections_opened']} connections to the push service; "
            f"outbox {r['notification_statuses']}"
        )
    return "\n".join(lines)


def main() -> int:
    if sys.argv[1:] == ["--serve-push"]:
        return serve_push()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", type=int, default=2000, help="families (default 2000)")
    parser.add_argument("--runs", type=int, help="posts timed per delay (default 3, quick 1)")
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
        "--quiet", type=float, default=2.0, help="seconds of reads before each post (default 2)"
    )
    parser.add_argument("--seed-cache", type=Path, help="keep and reuse the seeded data folder")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--quick", action="store_true", help="one post per delay")
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

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    worker = worker_settings()
    load_before = os.getloadavg()
    try:
        results = run(opts)
    except KeyboardInterrupt:
        print("interrupted: servers stopped, temporary folders removed", file=sys.stderr)
        return 130
    load = {"before": load_before, "after": os.getloadavg()}
    print(report(results, opts, worker, load))
    if args.json:
        document = {
            "benchmark": "push",
            "machine": {"cores": os.cpu_count(), "cpu": feed.cpu_name()},
            "code": feed.code_version(),
            "database": "postgresql" if opts.pg_server else "sqlite",
            "options": {
                k: str(v) if isinstance(v, Path) else v
                for k, v in vars(opts).items()
                if k != "pg_server"
            },
            "load_average_1_5_15_min": load,
            "push_worker": worker,
            "results": results,
        }
        args.json.write_text(json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
