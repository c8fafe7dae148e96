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

import asyncio
import base64
import contextlib
import inspect
import json
import os
import select
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (the seeded node, cached)
import feed  # noqa: E402  (the feed benchmark's seeding, nodes and browsers)
from common import (  # noqa: E402, F401  (the tests use them from here)
    Options,
    Readers,
    Sample,
    cpu_seconds,
    latencies,
    medians,
    node_statuses,
    now,
    school_from_json,
    school_to_json,
)

from node import refclient_groups as rc  # noqa: E402
from node.workers import push as push_worker  # noqa: E402

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


# --------------------------------------------------------------------------- measuring


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
    try:
        await teacher.login(
            feed.TEACHER_LOGIN, await feed.prelogin_secret(node.url, feed.TEACHER_LOGIN, secrets)
        )
        view = (await teacher.client.get(f"/api/v1/classes/{school.class_id}/group")).json()
        state, epoch_keys = await asyncio.to_thread(rc.open_epoch_keys, view, school.teacher_keys)

        async def fire(n: int) -> tuple[float, float, dict[str, Any]]:
            sent, answered = await post_once(node, school, teacher, state, epoch_keys, n)
            return sent, answered, {}

        return await common.fan_outs(node, school, push, opts, delay_ms, "post", fire)
    finally:
        await teacher.close()


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


def run(opts: Options) -> dict[str, Any]:
    def measure(
        node: feed.Node, school: feed.School, more: Any, push: PushService, delay: int
    ) -> Any:
        return fan_out_runs(node, school, push, opts, delay)

    return common.run_delays(opts, "push", lambda: PushService().start(), measure)[0]


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
    opts, args = common.fan_out_options(__doc__.splitlines()[0], "posts")
    worker = worker_settings()

    def describe(results: dict[str, Any], load: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return report(results, opts, worker, load), {"push_worker": worker}

    return common.run_and_report("push", opts, args.json, lambda: run(opts), describe)


if __name__ == "__main__":
    sys.exit(main())
