"""The live-delivery measurement both servers share, and Carnet's side of it (SSE streams).

Used by ``scripts/bench/synapse.py`` (the comparison with Matrix Synapse):

- ``Arrivals``: when each member's stream delivered each message, keyed by
  the server's id for it (a stream may deliver before the send request is
  answered);
- ``rounds``: the measuring loop: every stream parked, a quiet pause, one
  message sent, until every member's stream has it; medians after a warm-up;
- Carnet's side: a class of N guardians seeded as ``feed.py`` does (or
  ``alert.py``'s cached school), each with a session (opened in-process:
  ``guardian_sessions``) and ``GET /api/v1/events`` open; the teacher logs
  in through the JSON API and posts, encrypted with the reference client.

Every timestamp is this process's monotonic clock (``common.now``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import alert  # noqa: E402  (its cached school, shared)
import common  # noqa: E402  (the seeded node, cached)
import feed  # noqa: E402  (nodes, browsers)
import push as push_service  # noqa: E402  (the fake push service, a process of its own)

from node import refclient_groups as rc  # noqa: E402
from node.services import accounts  # noqa: E402
from node.storage import accounts as account_store  # noqa: E402
from node.storage.db import write_transaction  # noqa: E402

#: Concurrent requests while setting up (registrations, joins, logins, initial syncs).
SETUP_CONCURRENCY = 16
#: Seconds a round may take before the benchmark gives up.
CEILING = 600.0

now = common.now

# --------------------------------------------------------------------------- measuring (both)


class Arrivals:
    """When each member's stream delivered each message (keyed by the server's id for it).

    A stream may deliver before the send request is answered, so arrivals
    are recorded under any key and matched once the id is known.
    """

    def __init__(self) -> None:
        self.times: dict[str, dict[int, float]] = {}
        self.changed = asyncio.Event()
        #: set between rounds; a Synapse member that got a message waits for it to poll again
        self.settled = asyncio.Event()
        self.settled.set()
        #: streams waiting on the server right now (an SSE stream open, a /sync in flight)
        self.parked = 0
        #: the streams' tasks: one that failed ends the wait at once
        self.streams: list[asyncio.Task[None]] = []

    def check_streams(self) -> None:
        for task in self.streams:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise RuntimeError(f"a stream failed: {task.exception()!r}")

    def arrived(self, key: str, member: int, at: float) -> None:
        self.times.setdefault(key, {}).setdefault(member, at)
        self.changed.set()

    async def every(self, key: str, members: int) -> list[float]:
        deadline = now() + CEILING
        while len(self.times.get(key, {})) < members:
            self.changed.clear()
            self.check_streams()
            if now() > deadline:
                got = len(self.times.get(key, {}))
                raise TimeoutError(f"{key}: {got} of {members} streams delivered it")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(1.0, deadline - now()))
        return sorted(self.times[key].values())

    async def all_parked(self, members: int) -> None:
        deadline = now() + CEILING
        while self.parked < members:
            self.check_streams()
            if now() > deadline:
                raise TimeoutError(f"only {self.parked} of {members} streams are waiting")
            await asyncio.sleep(0.01)


async def rounds(
    arrivals: Arrivals,
    members: int,
    messages: int,
    quiet: float,
    make: Callable[[int], Any],
    send: Callable[[Any], Awaitable[str]],
    label: str,
) -> dict[str, Any]:
    """``messages`` + 1 rounds (the first a warm-up): send, then wait for every member's stream.

    ``make(n)`` prepares the ``n``th message (encryption: the sender's work,
    not timed); ``send(message)`` sends it and returns the server's id for it.
    """
    runs: list[dict[str, float]] = []
    for n in range(messages + 1):
        message = make(n)
        await arrivals.all_parked(members)
        await asyncio.sleep(quiet)
        await arrivals.all_parked(members)
        arrivals.settled.clear()
        sent = now()
        key = await send(message)
        answered = now()
        times = await arrivals.every(key, members)
        arrivals.settled.set()
        if n == 0:
            continue  # warm-up: caches, connections
        runs.append(
            {
                "send_answered_ms": round((answered - sent) * 1000, 1),
                "first_member_ms": round((times[0] - sent) * 1000, 1),
                "median_member_ms": round((statistics.median(times) - sent) * 1000, 1),
                "every_member_ms": round((times[-1] - sent) * 1000, 1),
            }
        )
        feed.progress(
            f"  {label}, N={members}, message {n}: answered {runs[-1]['send_answered_ms']:.0f} ms, "
            f"every member {runs[-1]['every_member_ms']:.0f} ms"
        )
    keys = ("send_answered_ms", "first_member_ms", "median_member_ms", "every_member_ms")
    return {
        "members": members,
        "runs": runs,
        "median": {k: round(statistics.median(r[k] for r in runs), 1) for k in keys},
        "min_every_member_ms": min(r["every_member_ms"] for r in runs),
        "max_every_member_ms": max(r["every_member_ms"] for r in runs),
    }


def stream_client(members: int, base_url: str) -> httpx.AsyncClient:
    """One client for every member's stream (a connection each, no pool limit in the way)."""
    limits = httpx.Limits(max_connections=members + 32, max_keepalive_connections=members + 32)
    timeout = httpx.Timeout(120.0, read=None)  # a stream waits as long as it has to
    return httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout)


async def bounded(jobs: list[Callable[[], Awaitable[Any]]]) -> list[Any]:
    """Run setup jobs ``SETUP_CONCURRENCY`` at a time, in order of their results."""
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def one(job: Callable[[], Awaitable[Any]]) -> Any:
        async with gate:
            return await job()

    return list(await asyncio.gather(*(one(j) for j in jobs)))


async def stop_tasks(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    failures = [r for r in results if isinstance(r, Exception)]
    if failures:
        raise RuntimeError(f"{len(failures)} streams failed, e.g. {failures[0]!r}")


def within(budget: float, measuring: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    """Run a side's measuring, setup included, and give up after ``budget`` seconds."""

    async def bounded_run() -> dict[str, Any]:
        try:
            return await asyncio.wait_for(measuring, budget)
        except TimeoutError:
            raise TimeoutError(f"gave up after {budget:.0f} s (--budget)") from None

    return asyncio.run(bounded_run())


def raise_nofile() -> None:
    """Two sockets per stream (this client's and the server's) on one machine: raise the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# --------------------------------------------------------------------------- Carnet


def guardian_sessions(node: feed.Node, school: feed.School) -> list[str]:
    """Seeding shortcut: a session per guardian, opened in-process; their ``Cookie`` headers.

    The session is the one a login opens once the login secret is checked
    (``accounts._open_session``); the check itself (Argon2id, 50 ms of a
    core each) would add minutes at 2,000 guardians and is not measured here.
    """
    assert node.storage is not None and node.ctx is not None
    assert node.url.startswith("http://"), "over plain HTTP the cookie has no __Host- prefix"
    ctx = node.ctx

    def open_all() -> list[str]:
        tokens = []
        with write_transaction():
            for family in school.families:
                account = account_store.select_account(family.account_id)
                if account is None:
                    raise RuntimeError(f"guardian account {family.account_id} is not seeded")
                tokens.append(accounts._open_session(ctx, account, "carnet bench").token)
        return tokens

    return [f"carnet_session={token}" for token in node.storage.call(open_all)]


async def sse_stream(
    client: httpx.AsyncClient, cookie: str, member: int, arrivals: Arrivals
) -> None:
    """One guardian's ``EventSource``: note when each post event arrives."""
    headers = {"Cookie": cookie, "Accept": "text/event-stream"}
    async with client.stream("GET", "/api/v1/events", headers=headers) as response:
        response.raise_for_status()
        parked = False
        try:
            async for line in response.aiter_lines():
                if not parked:  # the node's ": connected" comment: the stream is open
                    parked = True
                    arrivals.parked += 1
                if line.startswith("data:"):
                    at = now()
                    event = json.loads(line[5:])
                    if event.get("type") == "post":
                        arrivals.arrived(event["message"], member, at)
        finally:
            if parked:
                arrivals.parked -= 1
    raise RuntimeError(f"guardian {member}'s event stream ended")


async def measure_carnet(
    node: feed.Node, school: feed.School, cookies: list[str], messages: int, quiet: float
) -> dict[str, Any]:
    members = len(school.families)
    started = time.perf_counter()
    teacher = feed.Browser(node.url)
    arrivals = Arrivals()
    client = stream_client(members, node.url)
    tasks: list[asyncio.Task[None]] = []
    try:
        secret = await feed.prelogin_secret(node.url, feed.TEACHER_LOGIN, {})
        await teacher.login(feed.TEACHER_LOGIN, secret)
        view = (await teacher.client.get(f"/api/v1/classes/{school.class_id}/group")).json()
        state, epoch_keys = rc.open_epoch_keys(view, school.teacher_keys)
        tasks = arrivals.streams = [
            asyncio.create_task(sse_stream(client, cookie, i, arrivals))
            for i, cookie in enumerate(cookies)
        ]
        await arrivals.all_parked(members)
        setup = time.perf_counter() - started
        feed.progress(f"  carnet: {members} guardians' streams open in {setup:.1f} s")
        sizes: list[int] = []

        def encrypt(n: int) -> Any:
            body = {"text": f"Message à toute la classe n° {n}.", "attachments": []}
            made = rc.encrypt(
                school.teacher_keys, school.teacher_me, state, epoch_keys, "post", body
            )
            sizes.append(len(json.dumps(made["message"])))
            return made["message"]

        async def post(message: Any) -> str:
            response = await teacher.client.post(
                f"/api/v1/classes/{school.class_id}/posts",
                json={"message": message},
                headers={"X-CSRF-Token": teacher.csrf},
            )
            if response.status_code != 201:
                raise RuntimeError(f"post refused: {response.status_code} {response.text}")
            return str(response.json()["id"])

        result = await rounds(arrivals, members, messages, quiet, encrypt, post, "carnet")
        result["setup_seconds"] = round(setup, 1)
        result["message_bytes"] = max(sizes)
        return result
    finally:
        await stop_tasks(tasks)
        await client.aclose()
        await teacher.close()


def seeded(
    root: Path,
    members: int,
    history: int,
    push_url: str,
    seed_cache: Path | None,
    pg_server: str | None,
) -> tuple[feed.Node, feed.School]:
    """A class of ``members`` families with ``history`` posts (replies, reads), served by nobody yet.

    With ``seed_cache``: ``alert.py``'s cached school of that size (the same
    class, plus the school's alert group), seeded once for both benchmarks
    (``scripts/bench/run`` passes the same folder to both); its history is
    the 25 posts ``common.seeded_node`` seeds.
    """
    if seed_cache is not None:
        node, school, _ = common.seeded_node(
            root, members, None, seed_cache, push_url,
            name=f"alert-{members}", seed_more=alert.seed_alert_group,
        )  # fmt: skip
        return node, school
    node = feed.Node(root, f"class-{members}", pg_server)
    node.init()
    assert node.ctx is not None and node.storage is not None
    node.ctx = common.wired(node.ctx, node.data)  # posts need the federation publisher
    feed.progress(f"  seeding {members} families, {history} posts with replies")
    school = feed.seed_school(node.ctx, node.storage, members, push_url, history, feed.progress)
    feed.progress(f"  seeded in {school.seed_seconds:.1f} s")
    return node, school


def run_carnet(
    root: Path,
    members: int,
    messages: int,
    quiet: float,
    history: int,
    seed_cache: Path | None,
    budget: float,
    pg_server: str | None = None,
) -> dict[str, Any]:
    """Seed (or reuse) a class of ``members`` families, serve it, measure (within ``budget`` s)."""
    # in a process of its own: its work never holds up this process's streams
    push = push_service.PushService().start()
    node: feed.Node | None = None
    try:
        node, school = seeded(root, members, history, push.url, seed_cache, pg_server)
        cookies = guardian_sessions(node, school)
        node.serve()
        feed.progress(f"  carnet serve pid {node.server.pid if node.server else '?'} on {node.url}")
        try:
            result = within(budget, measure_carnet(node, school, cookies, messages, quiet))
        except Exception:
            feed.progress(f"{node.name} failed; the end of its log:\n{node.log_tail()}")
            raise
        return {
            **result,
            "history_posts": school.seeded_posts,
            "seed_seconds": round(school.seed_seconds, 1),
        }
    finally:
        if node is not None:
            node.stop()
        push.stop()
