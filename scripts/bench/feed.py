#!/usr/bin/env python3
"""Benchmark the class feed on this machine: posting fan-out to Web Push, and feed reads.

    .venv/bin/python scripts/bench/feed.py [--quick] [--json out.json]
        [--database-url postgresql://user:pass@host/postgres] [--profile DIR]

Two real ``carnet serve`` processes on 127.0.0.1, each with its own
temporary data folder: a class of 60 families and a class of 2,000 (the
whole school in one class, the path emergency alerts will reuse).  Every
guardian has a push subscription whose endpoint is a fake push service this
script runs on 127.0.0.1: it answers ``201 Created`` and records when each
request arrived.

1. Posting fan-out: the teacher logs in through the JSON API, encrypts a post
   with the reference client (``node.refclient_groups``) and sends
   ``POST /api/v1/classes/{id}/posts``.  Measured: the request's own latency,
   and the time from sending it until the fake push service has received the
   first push, and a push for every recipient; then until the node's outbox
   has no pending row left.  Median, min and max over several posts (after
   one warm-up post).
2. Feed reads (run first): 32 concurrent ``httpx.AsyncClient``s, each
   logged in as a different guardian, read ``GET /api/v1/feed`` (20 posts,
   each with comments and reactions) for 10 s; then 32 clients sharing the
   teacher's session read ``GET /api/v1/classes/{id}/posts``.  Requests per
   second, p50 and p99 latency.  Requests start within the 10 s and all are
   waited for, so a saturated node shows as few requests with long
   latencies.  A request whose kept-alive connection the node closed as it
   left is sent again, as browsers do (counted in the JSON).

The push worker's bounds (batch, requests in flight, connection pool) are
read from ``node/workers/push.py`` and printed with the results.

Seeding shortcut (this script only): 2,000 onboardings with PBKDF2 (600,000
iterations, twice) and Argon2id each would take half an hour, and ``kdf_iterations``
cannot go below 600,000.  So every bench guardian shares one passphrase and
one salt: PBKDF2 and the Argon2id verifier are computed once, and each
account gets its own keys and a real vault sealed with the shared wrap key.
Accounts are then made through the real services (invitation → access code →
SMS code → keys), as ``carnet demo`` does.  Read receipts are inserted in
bulk, and the notifications of the seeded posts are cancelled so that the
node starts with an empty outbox.  Everything measured goes through HTTP.

Reports medians and ratios, and the load average before and after: numbers
vary with the machine (the benchmark, the fake push service and the node
share its cores) and with whatever else runs on it, so compare runs on the
same, otherwise idle, machine only.  Traffic stays on loopback.  Servers,
temporary folders and PostgreSQL databases are removed on exit, Ctrl-C
included.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import inspect
import json
import math
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import http_ece
import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

import node as node_package
from node import refclient_groups as rc
from node.config import load_config
from node.datafolder import load_keys
from node.e2e.encoding import b64url_encode
from node.e2e.kdf import derive_from_passphrase, generate_recovery_bytes, recovery_wrap_key
from node.e2e.keys import AccountKeys, account_keys_proof, generate_account_keys
from node.e2e.vault import _seal_vault
from node.refclient import login_secret, new_account
from node.services import accounts, directory, groups, notifications, onboarding, posts, sms_outbox
from node.services.context import Actor, ServiceContext
from node.services.credentials import Credentials, hash_login_secret
from node.storage import feed as feed_store
from node.storage import notifications as notification_store
from node.storage import onboarding as sms_store
from node.storage.db import Storage, open_database, write_transaction
from node.storage.migrations import migrate
from node.workers import push as push_worker

PASSPHRASE = "bench passphrase for carnet"
TEACHER_LOGIN = "teacher@bench.carnet.test"
CLIENT_IP = "127.0.0.1"


# --------------------------------------------------------------------------- pure helpers


def pct(values: Iterable[float], q: float) -> float:
    """The ``q`` quantile (0 ≤ q ≤ 1) with linear interpolation between ranks (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    if not 0 <= q <= 1:
        raise ValueError("q must be between 0 and 1")
    rank = q * (len(ordered) - 1)
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(seconds: list[float]) -> dict[str, float | int]:
    """n, median, min, max, p50 and p99 of durations, in milliseconds."""
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "median_ms": round(statistics.median(ms), 2),
        "min_ms": round(min(ms), 2),
        "max_ms": round(max(ms), 2),
        "p50_ms": round(pct(ms, 0.50), 2),
        "p99_ms": round(pct(ms, 0.99), 2),
    }


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 2) if b else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def push_worker_settings() -> dict[str, Any]:
    """The push worker's bounds: its constructor's defaults in node/workers/push.py (not copied)."""
    params = inspect.signature(push_worker.PushWorker.__init__).parameters
    settings: dict[str, Any] = {
        name: p.default
        for name, p in params.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and name != "client"
    }
    settings["poll_s"] = push_worker.POLL_SECONDS
    return settings


# --------------------------------------------------------------------------- fake push service


@dataclass
class Waiter:
    """Waits until a push has arrived for every path in ``outstanding``."""

    outstanding: set[str]
    first: float | None = None
    last: float | None = None
    done: threading.Event = field(default_factory=threading.Event)


class FakePushService:
    """A push service on 127.0.0.1 that answers ``201 Created`` and records each arrival.

    Minimal HTTP/1.1: keep-alive, ``Content-Length`` bodies (what httpx
    sends).  It runs its own event loop in a thread, so that an arrival's
    timestamp (``time.perf_counter()`` once the body is read) never waits
    behind the benchmark's own work.
    """

    def __init__(self) -> None:
        self.port = 0
        self.requests = 0
        self.connections = 0
        #: path → (headers, body) of the last request to it
        self.last: dict[str, tuple[dict[str, str], bytes]] = {}
        self._waiters: list[Waiter] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakePushService:
        ready = threading.Event()
        failure: list[BaseException] = []

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stopping = asyncio.Event()
            try:
                server = await asyncio.start_server(self._serve, "127.0.0.1", 0, backlog=512)
            except OSError as error:
                failure.append(error)
                ready.set()
                return
            self.port = int(server.sockets[0].getsockname()[1])
            ready.set()
            async with server:
                await self._stopping.wait()

        self._thread = threading.Thread(target=asyncio.run, args=(main(),), name="fake-push")
        self._thread.daemon = True
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None and self._thread is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already ended
                self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(10)
            self._thread = None

    def expect(self, paths: Iterable[str]) -> Waiter:
        waiter = Waiter(set(paths))
        if not waiter.outstanding:
            waiter.done.set()
        with self._lock:
            self._waiters.append(waiter)
        return waiter

    def forget(self, waiter: Waiter) -> None:
        with self._lock:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def _arrived(self, path: str, headers: dict[str, str], body: bytes, at: float) -> None:
        with self._lock:
            self.requests += 1
            self.last[path] = (headers, body)
            for waiter in self._waiters:
                if path in waiter.outstanding:
                    waiter.outstanding.discard(path)
                    waiter.first = at if waiter.first is None else waiter.first
                    waiter.last = at
                    if not waiter.outstanding:
                        waiter.done.set()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with self._lock:
            self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                _method, target, _version = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    name, sep, value = line.partition(":")
                    if sep:
                        headers[name.strip().lower()] = value.strip()
                if "transfer-encoding" in headers:
                    writer.write(b"HTTP/1.1 411 Length Required\r\nContent-Length: 0\r\n\r\n")
                    break
                length = int(headers.get("content-length", "0"))
                body = await reader.readexactly(length) if length else b""
                self._arrived(target, headers, body, time.perf_counter())
                close = headers.get("connection", "").lower() == "close"
                writer.write(
                    b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n"
                    + (b"Connection: close\r\n" if close else b"")
                    + b"\r\n"
                )
                await writer.drain()
                if close:
                    break
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        except ValueError:  # a malformed request line or length
            with contextlib.suppress(ConnectionError):
                writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        except asyncio.CancelledError:
            pass  # the service stops: end quietly (Python 3.11 logs a cancelled handler)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()


# --------------------------------------------------------------------------- seeding


@dataclass
class Family:
    """A bench guardian: what their browser holds (keys, push subscription keys)."""

    login: str
    account_id: int
    keys: AccountKeys
    me: str
    child_id: int
    push_path: str
    push_key: ec.EllipticCurvePrivateKey
    push_auth: bytes


@dataclass
class School:
    class_id: int
    teacher_keys: AccountKeys
    teacher_me: str
    families: list[Family]
    salt: str
    iterations: int
    seed_seconds: float
    seeded_posts: int
    seeded_replies: int
    seeded_receipts: int


class SharedPassphrase:
    """The seeding shortcut: one PBKDF2 and one Argon2id for every bench guardian.

    Each account still has its own keys, proof of possession and a vault
    that the passphrase really opens; only the salt (hence the login secret
    and its verifier) is shared.
    """

    def __init__(self, iterations: int) -> None:
        self.salt = os.urandom(16)
        self.iterations = iterations
        self.derived = derive_from_passphrase(PASSPHRASE, self.salt, iterations)
        self.verifier = hash_login_secret(self.derived.login_secret)

    def credentials(self, login: str) -> tuple[Credentials, AccountKeys]:
        keys = generate_account_keys()
        wrap = (self.derived.passphrase_wrap_key, self.salt, self.iterations, os.urandom(12))
        vault = _seal_vault(
            keys,
            vk=os.urandom(32),
            nonce=os.urandom(12),
            passphrase_wrap=wrap,
            recovery_wrap_key=recovery_wrap_key(generate_recovery_bytes()),
            recovery_nonce=os.urandom(12),
        )
        creds = Credentials(
            kdf_salt=b64url_encode(self.salt),
            kdf_iterations=self.iterations,
            login_secret=b64url_encode(self.derived.login_secret),
            sign_pk=b64url_encode(keys.sign_pk),
            enc_pk=b64url_encode(keys.enc_pk),
            vault=vault,
            proof=account_keys_proof(keys.sign_sk, keys.sign_pk, keys.enc_pk, login),
        )
        return creds, keys

    @contextlib.contextmanager
    def cheap_verifier(self) -> Iterator[None]:
        """Inside: the node's onboarding stores the shared verifier instead of hashing again."""
        real = onboarding.hash_login_secret

        def shared(secret: bytes) -> str:
            return self.verifier if secret == self.derived.login_secret else real(secret)

        onboarding.hash_login_secret = shared  # type: ignore[assignment]
        try:
            yield
        finally:
            onboarding.hash_login_secret = real  # type: ignore[assignment]


def _sms_code(ctx: ServiceContext, phone: str) -> str:
    """Play the phone, as ``carnet demo`` does: read the queued text and mark it delivered."""
    texts = sms_store.select_queued_sms_to(phone)
    match = re.search(r"\b(\d{6})\b", texts[-1].body or "")
    assert match, "the first-login text carries a 6-digit code"
    for text in texts:
        sms_outbox.record_result(ctx, text.id, "sent", "bench", None, False)
    return match[1]


def _subscription_keys() -> tuple[ec.EllipticCurvePrivateKey, bytes, str, str]:
    """What ``PushManager.subscribe`` makes in a browser: a P-256 key pair and a 16-byte secret."""
    key = ec.generate_private_key(ec.SECP256R1())
    raw = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    auth = os.urandom(16)
    return key, auth, b64url_encode(raw), b64url_encode(auth)


def _family(
    ctx: ServiceContext,
    teacher: Actor,
    class_id: int,
    i: int,
    shared: SharedPassphrase,
    push_url: str,
) -> Family:
    """One child and one guardian, through the real onboarding; their browser subscribes to push.

    The services' own transactions nest inside one (savepoints): one commit per family.
    """
    with write_transaction():
        return _family_steps(ctx, teacher, class_id, i, shared, push_url)


def _family_steps(
    ctx: ServiceContext,
    teacher: Actor,
    class_id: int,
    i: int,
    shared: SharedPassphrase,
    push_url: str,
) -> Family:
    phone = f"+3363998{i:04d}"  # 06 39 98 xx xx: the range France reserves for fiction
    child = directory.add_child(ctx, teacher, class_id, f"Enfant{i:04d}", "Banc")
    slip = directory.register_guardian(ctx, teacher, child.id, f"Parent {i:04d}", phone)
    attempt = onboarding.start(ctx, phone, slip.code, CLIENT_IP, "fr")
    onboarding.verify_sms(ctx, attempt.attempt_id, _sms_code(ctx, phone), CLIENT_IP)
    creds, keys = shared.credentials(phone)
    grant = onboarding.complete_new(ctx, attempt.attempt_id, creds, "carnet bench")
    accounts.logout(ctx, grant.actor)
    key, auth, p256dh, auth_b64 = _subscription_keys()
    path = f"/push/{i:04d}-{os.urandom(6).hex()}"
    notifications.subscribe(ctx, grant.actor, push_url + path, p256dh, auth_b64, "Firefox")
    me = groups.member_id(ctx, grant.actor.account_id)
    return Family(phone, grant.actor.account_id, keys, me, child.id, path, key, auth)


def seed_school(
    ctx: ServiceContext,
    storage: Storage,
    size: int,
    push_url: str,
    feed_posts: int,
    progress: Callable[[str], None],
) -> School:
    """A teacher, one class of ``size`` children with one guardian each, keys approved, posts with replies."""
    started = time.perf_counter()
    call = storage.call
    _, token = call(accounts.create_staff, ctx, None, "teacher", "M. Banc", TEACHER_LOGIN)
    teacher_client = new_account(TEACHER_LOGIN, PASSPHRASE, ctx.config.kdf_iterations)
    grant = call(accounts.complete_setup, ctx, token, teacher_client.credentials, "carnet bench")
    teacher = grant.actor
    call(accounts.logout, ctx, teacher)
    school_class = call(directory.create_class, ctx, teacher, f"Classe de {size}")
    shared = SharedPassphrase(ctx.config.kdf_iterations)
    families = []
    with shared.cheap_verifier():
        for i in range(size):
            families.append(call(_family, ctx, teacher, school_class.id, i, shared, push_url))
            if (i + 1) % 250 == 0:
                progress(f"  {i + 1} families ({time.perf_counter() - started:.0f} s)")

    # The teacher's browser on the class page: set up the keys, approve everyone.
    keys, me = teacher_client.keys, groups.member_id(ctx, teacher.account_id)
    log, envelopes, epoch_key = rc.setup_group(keys, me)
    call(groups.create_group, ctx, teacher, school_class.id, log, envelopes)
    view = call(groups.group_view, ctx, teacher, school_class.id)
    candidates = [dataclasses.asdict(c) for c in view.to_approve]
    step = groups.MAX_ENTRIES_PER_CALL
    for start in range(0, len(candidates), step):
        new, sealed = rc.approve(keys, log, candidates[start : start + step], epoch_key)
        call(groups.append_entries, ctx, teacher, school_class.id, new, sealed)
        log = log + new
    progress(f"  approved {len(candidates)} guardians ({time.perf_counter() - started:.0f} s)")

    # Posts with comments and reactions, so that a timeline page has 20 full items.
    state = rc.g.verify_log(log)
    epoch_keys = {state.current_epoch.epoch: epoch_key} if state.current_epoch else {}
    replies = 0
    for n in range(feed_posts):
        body = {"text": f"Nouvelle n° {n} de la classe.", "attachments": []}
        request = rc.encrypt(keys, me, state, epoch_keys, "post", body)
        posted = call(posts.create_post, ctx, teacher, school_class.id, request["message"])
        for k in range(5):  # two comments and three reactions, each from another family
            person = families[(n * 5 + k) % len(families)]
            who = Actor(person.account_id, "guardian", "")
            kind = "comment" if k < 2 else "reaction"
            reply = {"text": f"Merci ({k})"} if kind == "comment" else {"emoji": "👍"}
            sealed_reply = rc.encrypt(
                person.keys, person.me, state, epoch_keys, kind, reply, parent=posted.message
            )
            call(
                posts.add_reply,
                ctx,
                who,
                school_class.id,
                posted.message,
                sealed_reply["message"],
            )
            replies += 1

    def receipts_and_quiet_outbox() -> int:
        """Most families read most posts; the seeded posts' notifications are not sent."""
        model = feed_store.ReadReceipt
        post_ids = [
            m.id for m in feed_store.Message.select(feed_store.Message.id).where(
                feed_store.Message.kind == "post"
            )
        ]  # fmt: skip
        rows = [
            {"message": post_id, "account": f.account_id, "read_at": ctx.now()}
            for p, post_id in enumerate(post_ids)
            for i, f in enumerate(families)
            if (i + p) % 5  # four families in five read each post
        ]
        with write_transaction():
            for chunk in range(0, len(rows), 500):
                model.insert_many(rows[chunk : chunk + 500]).execute()
            outbox = notification_store.Notification
            outbox.update(status="cancelled").where(outbox.status == "pending").execute()
        return len(rows)

    receipts = call(receipts_and_quiet_outbox)
    return School(
        school_class.id, keys, me, families, b64url_encode(shared.salt), shared.iterations,
        time.perf_counter() - started, feed_posts, replies, receipts,
    )  # fmt: skip


# --------------------------------------------------------------------------- nodes


class Node:
    """A ``carnet serve`` process on 127.0.0.1 with its own temporary data folder (and database)."""

    def __init__(self, root: Path, name: str, pg_server: str | None) -> None:
        self.name = name
        self.data = root / name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = root / f"{name}.log"
        self.server: subprocess.Popen[bytes] | None = None
        self.storage: Storage | None = None
        self.ctx: ServiceContext | None = None
        self.pg_server = pg_server
        self.database_url = ""
        if pg_server:
            self.pg_name = f"carnet_bench_{os.getpid()}_{name.replace('-', '_')}"
            parts = urlsplit(pg_server)
            self.database_url = urlunsplit(parts._replace(path=f"/{self.pg_name}"))

    def _pg(self, statement: str) -> None:
        import psycopg2

        assert self.pg_server
        connection = psycopg2.connect(self.pg_server)
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(statement)
        finally:
            connection.close()

    def init(self) -> None:
        if self.pg_server:
            self._pg(f'CREATE DATABASE "{self.pg_name}"')
        command = [sys.executable, "-m", "node.cli", "init", "--data", str(self.data)]
        command += ["--url", self.url, "--bind", f"127.0.0.1:{self.port}"]
        if self.database_url:
            command += ["--database-url", self.database_url]
        subprocess.run(command, check=True, capture_output=True, stdin=subprocess.DEVNULL)
        config = load_config({"data_dir": str(self.data)})
        db = open_database(config.resolved_database_url)
        with db.connection_context():
            migrate(db)
        self.ctx = ServiceContext(config=config, node_secret=load_keys(self.data).node_secret)
        self.storage = Storage(db, 1)

    def serve(self) -> None:
        with self.log.open("wb") as log:
            self.server = subprocess.Popen(
                [sys.executable, "-m", "node.cli", "serve", "--data", str(self.data)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "CARNET_LOG_LEVEL": "WARNING"},
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                break
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name}: carnet serve did not start:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def pending_notifications(self) -> int:
        assert self.storage is not None
        model = notification_store.Notification
        return int(
            self.storage.call(lambda: model.select().where(model.status == "pending").count())
        )

    def stop(self) -> None:
        if self.server is not None:
            if self.server.poll() is None:
                self.server.terminate()
                try:
                    self.server.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    self.server.kill()
                    self.server.wait()
            self.server = None
        if self.storage is not None:
            self.storage.close()
            self.storage = None
        if self.pg_server:
            with contextlib.suppress(Exception):
                self._pg(f'DROP DATABASE IF EXISTS "{self.pg_name}"')
            self.pg_server = None


# --------------------------------------------------------------------------- over HTTP


class Browser:
    """A logged-in ``httpx.AsyncClient`` with the CSRF token the login returned."""

    def __init__(self, url: str) -> None:
        self.client = httpx.AsyncClient(base_url=url, timeout=900)  # a saturated node answers late
        self.csrf = ""

    async def login(self, login: str, secret: str) -> None:
        session = (await self.client.get("/api/v1/session")).json()
        headers = {"X-CSRF-Token": session["csrf_token"]}
        response = await self.client.post(
            "/api/v1/auth/login", json={"login": login, "login_secret": secret}, headers=headers
        )
        response.raise_for_status()
        self.csrf = response.json()["csrf_token"]

    async def close(self) -> None:
        await self.client.aclose()


async def prelogin_secret(url: str, login: str, cache: dict[str, str]) -> str:
    """The browser's PBKDF2 for a login, once per salt (not part of what is measured)."""
    async with httpx.AsyncClient(base_url=url) as client:
        session = (await client.get("/api/v1/session")).json()
        pre = (
            await client.post(
                "/api/v1/auth/prelogin",
                json={"login": login},
                headers={"X-CSRF-Token": session["csrf_token"]},
            )
        ).json()
    key = f"{pre['salt']}:{pre['iterations']}"
    if key not in cache:
        cache[key] = await asyncio.to_thread(
            login_secret, PASSPHRASE, pre["salt"], pre["iterations"]
        )
    return cache[key]


async def fan_out(
    node: Node, school: School, teacher: Browser, push: FakePushService, runs: int
) -> dict[str, Any]:
    """Post ``runs`` + 1 times (the first is a warm-up) and time the pushes' arrival."""
    start = time.perf_counter()
    view = (await teacher.client.get(f"/api/v1/classes/{school.class_id}/group")).json()
    group_seconds = time.perf_counter() - start
    start = time.perf_counter()
    state, epoch_keys = await asyncio.to_thread(rc.open_epoch_keys, view, school.teacher_keys)
    client_keys_seconds = time.perf_counter() - start
    expected = [f.push_path for f in school.families]
    samples: dict[str, list[float]] = {"post": [], "first": [], "every": [], "settled": []}
    connections = push.connections
    for run in range(runs + 1):
        body = {"text": f"Message à toute la classe n° {run}.", "attachments": []}
        request = rc.encrypt(
            school.teacher_keys, school.teacher_me, state, epoch_keys, "post", body
        )
        waiter = push.expect(expected)
        sent = time.perf_counter()
        response = await teacher.client.post(
            f"/api/v1/classes/{school.class_id}/posts",
            json={"message": request["message"]},
            headers={"X-CSRF-Token": teacher.csrf},
        )
        answered = time.perf_counter()
        if response.status_code != 201:
            raise RuntimeError(f"post refused: {response.status_code} {response.text}")
        arrived = await asyncio.to_thread(waiter.done.wait, 300)
        push.forget(waiter)
        if not arrived or waiter.first is None or waiter.last is None:
            raise RuntimeError(
                f"{len(waiter.outstanding)} of {len(expected)} pushes never arrived:\n"
                + node.log_tail()
            )
        for _ in range(30_000):  # poll the database for up to 5 minutes
            if not await asyncio.to_thread(node.pending_notifications):
                break
            await asyncio.sleep(0.01)
        settled = time.perf_counter()
        if run == 0:
            continue  # warm-up: connections, caches
        samples["post"].append(answered - sent)
        samples["first"].append(waiter.first - sent)
        samples["every"].append(waiter.last - sent)
        samples["settled"].append(settled - sent)
    family = school.families[0]
    headers, sample = push.last[family.push_path]
    payload = json.loads(
        http_ece.decrypt(
            sample, private_key=family.push_key, auth_secret=family.push_auth, version="aes128gcm"
        )
    )
    every = statistics.median(samples["every"])
    return {
        "recipients": len(expected),
        "runs": runs,
        "post_request": summary(samples["post"]),
        "first_push": summary(samples["first"]),
        "every_push": summary(samples["every"]),
        "outbox_settled": summary(samples["settled"]),
        "pushes_per_second": round(len(expected) / every, 1),
        "ms_per_push": round(every * 1000 / len(expected), 3),
        "teacher_group_view_ms": round(group_seconds * 1000, 1),
        "teacher_client_verify_log_ms": round(client_keys_seconds * 1000, 1),
        "group_log_entries": len(view["entries"]),
        "push_connections_opened": push.connections - connections,
        "sample_push": {
            "bytes": len(sample),
            "urgency": headers.get("urgency"),
            "payload_kind": payload.get("kind"),
            "payload_url": payload.get("url"),
        },
    }


async def read_load(
    browsers: list[Browser], path: str, seconds: float, check: Callable[[Any], None]
) -> dict[str, Any]:
    """Every browser requests ``path`` in a loop for ``seconds``; latencies and throughput."""
    first = await browsers[0].client.get(path)  # also warms the node's caches
    first.raise_for_status()
    check(first.json())
    latencies: list[float] = []
    errors: list[str] = []
    retried = 0
    sizes: list[int] = []

    async def get(browser: Browser) -> httpx.Response:
        nonlocal retried
        try:
            return await browser.client.get(path)
        except httpx.RemoteProtocolError:
            # The node closed a kept-alive connection (5 s idle) as the request
            # left: browsers resend an idempotent request then, and so do we.
            retried += 1
            return await browser.client.get(path)

    async def loop(browser: Browser, deadline: float) -> None:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            try:
                response = await get(browser)
            except httpx.TransportError as error:  # counted, not fatal: the node may be saturated
                errors.append(type(error).__name__)
                continue
            latencies.append(time.perf_counter() - start)
            if response.status_code != 200:
                errors.append(str(response.status_code))
            elif len(sizes) < 100:
                sizes.append(len(response.content))

    began = time.perf_counter()
    await asyncio.gather(*(loop(b, began + seconds) for b in browsers))
    elapsed = time.perf_counter() - began
    if not latencies:
        raise RuntimeError(f"every request to {path} failed: {sorted(set(errors))}")
    return {
        "clients": len(browsers),
        "seconds": round(elapsed, 2),
        "requests": len(latencies),
        "errors": len(errors),
        "error_kinds": sorted(set(errors)),
        "retried_on_closed_connection": retried,
        "requests_per_second": round(len(latencies) / elapsed, 1),
        "response_bytes": int(statistics.median(sizes)) if sizes else 0,
        **summary(latencies),
    }


def _twenty_with_replies(page: Any) -> None:
    """The served page is what the benchmark claims: 20 posts, each with replies."""
    items = page["items"]
    if len(items) != 20 or not all(item["replies"] for item in items):
        raise RuntimeError(f"expected 20 posts with replies, got {len(items)} posts")


async def feed_reads(
    node: Node, school: School, teacher: Browser, clients: int, seconds: float
) -> dict[str, Any]:
    secrets: dict[str, str] = {}
    readers = school.families[:clients]
    secret = await prelogin_secret(node.url, readers[0].login, secrets)
    browsers = [Browser(node.url) for _ in readers]
    try:
        await asyncio.gather(
            *(b.login(f.login, secret) for b, f in zip(browsers, readers, strict=True))
        )
        # One guardian's browser decrypts the first page, as feed.js does.
        family = readers[0]
        view = (await browsers[0].client.get(f"/api/v1/classes/{school.class_id}/group")).json()
        state, epoch_keys = rc.open_epoch_keys(view, family.keys)
        page = (await browsers[0].client.get("/api/v1/feed")).json()
        opened = rc.decrypt(page["items"][0], state, epoch_keys, family.keys, family.me)
        if "text" not in opened:
            raise RuntimeError("the timeline's first post did not decrypt")
        timeline = await read_load(browsers, "/api/v1/feed", seconds, _twenty_with_replies)
    finally:
        await asyncio.gather(*(b.close() for b in browsers))
    shared = [Browser(node.url) for _ in range(clients)]
    for browser in shared:
        browser.client.cookies = teacher.client.cookies
    try:
        class_posts = await read_load(
            shared,
            f"/api/v1/classes/{school.class_id}/posts",
            seconds,
            _twenty_with_replies,
        )
    finally:
        await asyncio.gather(*(b.close() for b in shared))
    return {"guardian_timeline": timeline, "teacher_class_posts": class_posts}


# --------------------------------------------------------------------------- the run


@dataclass
class Options:
    sizes: list[int]
    runs: int
    clients: int
    seconds: float
    feed_posts: int
    pg_server: str | None
    profile: Path | None


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def py_spy(node: Node, target: Path | None, label: str) -> Iterator[None]:
    """Record a flame graph of the node while the block runs (``--profile DIR``)."""
    tool = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if target is None or node.server is None or not Path(tool).exists():
        if target is not None:
            progress("  (py-spy not found: no profile)")
        yield
        return
    target.mkdir(parents=True, exist_ok=True)
    out = target / f"{node.name}-{label}.svg"
    recorder = subprocess.Popen(
        [tool, "record", "--pid", str(node.server.pid), "--rate", "250", "--output", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1)  # py-spy attaches
    try:
        yield
    finally:
        recorder.send_signal(signal.SIGINT)
        try:
            recorder.wait(timeout=60)
        except subprocess.TimeoutExpired:
            recorder.kill()
            recorder.wait()
        progress(f"  profile: {out}")


async def bench_node(
    node: Node, school: School, push: FakePushService, opts: Options
) -> dict[str, Any]:
    secrets: dict[str, str] = {}
    teacher = Browser(node.url)
    try:
        await teacher.login(TEACHER_LOGIN, await prelogin_secret(node.url, TEACHER_LOGIN, secrets))
        progress(f"  feed reads: {opts.clients} clients, {opts.seconds:.0f} s per endpoint")
        reads = await feed_reads(node, school, teacher, opts.clients, opts.seconds)
        progress(f"  fan-out: {opts.runs} posts to {len(school.families)} families (+1 warm-up)")
        with py_spy(node, opts.profile, "fanout"):
            fan = await fan_out(node, school, teacher, push, opts.runs)
    finally:
        await teacher.close()
    return {"fan_out": fan, "reads": reads}


def run(opts: Options) -> dict[str, Any]:
    from common import wired  # (common imports this module)

    results: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="carnet-bench-feed-")))
        push = FakePushService().start()
        stack.callback(push.stop)
        for n, size in enumerate(opts.sizes):
            name = f"class-{size}" if opts.sizes.count(size) == 1 else f"class-{size}-{n + 1}"
            node = Node(root, name, opts.pg_server)
            stack.callback(node.stop)
            node.init()
            assert node.ctx is not None and node.storage is not None
            node.ctx = wired(node.ctx, node.data)  # posts need the federation publisher
            progress(f"{node.name}: seeding {size} families")
            school = seed_school(node.ctx, node.storage, size, push.url, opts.feed_posts, progress)
            progress(f"  seeded in {school.seed_seconds:.1f} s; serving on {node.url}")
            node.serve()
            progress(f"  carnet serve pid {node.server.pid if node.server else '?'}")
            try:
                measured = asyncio.run(bench_node(node, school, push, opts))
            except Exception:
                progress(f"{node.name} failed; the end of its log:\n{node.log_tail()}")
                raise
            results[node.name] = {
                "families": size,
                "seed_seconds": round(school.seed_seconds, 1),
                "seeded": {
                    "posts": school.seeded_posts,
                    "replies": school.seeded_replies,
                    "read_receipts": school.seeded_receipts,
                },
                **measured,
            }
            node.stop()
    return results


def cpu_name() -> str:
    try:
        match = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
    except OSError:
        match = None
    return re.sub(r"\s+", " ", match[1]).strip() if match else "unknown CPU"


def code_version() -> str:
    """The commit of the node code measured, and whether node/ or web/ had uncommitted changes."""
    root = Path(node_package.__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--", "node", "web", "federation"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit} + uncommitted changes" if dirty else commit


def report(
    results: dict[str, Any],
    opts: Options,
    worker: dict[str, Any],
    load: dict[str, tuple[float, float, float]] | None = None,
) -> str:
    backend = "PostgreSQL" if opts.pg_server else "SQLite"
    lines = [
        f"Carnet feed benchmark — {os.cpu_count()} cores, {cpu_name()}, {backend}, code {code_version()}",
    ]
    if opts.profile:
        lines.append("Profiled with py-spy: the fan-out figures are slower than without it")
    if load:  # other work on the machine skews every figure: say how busy it was
        lines.append(
            f"Load average (1 min) before {load['before'][0]:.2f}, after {load['after'][0]:.2f}"
        )
    lines += [
        "Push worker (node/workers/push.py): "
        + ", ".join(f"{name} {value}" for name, value in worker.items()),
        "",
        f"Posting fan-out: median of {opts.runs} posts after one warm-up (ms)",
        "| class | measurement | median | min | max |",
        "|---|---|---:|---:|---:|",
    ]
    names = {
        "post_request": "POST /classes/{id}/posts answered",
        "first_push": "post sent → first push received",
        "every_push": "post sent → every push received",
        "outbox_settled": "post sent → outbox settled",
    }
    for r in results.values():
        for key, label in names.items():
            s = r["fan_out"][key]
            lines.append(
                f"| {r['families']:>5} | {label:<36} | {s['median_ms']:>9.1f} | {s['min_ms']:>9.1f} | {s['max_ms']:>9.1f} |"
            )
    lines.append("")
    for node, r in results.items():
        f = r["fan_out"]
        lines.append(
            f"{node}: {f['pushes_per_second']} pushes/s ({f['ms_per_push']} ms each, "
            f"{f.get('push_connections_opened', '?')} connections to the push service); "
            f"teacher's GET /group {f['teacher_group_view_ms']} ms ({f['group_log_entries']} log entries); "
            f"seeded in {r['seed_seconds']} s"
        )
    if len(results) >= 2:
        small, big = (results[k] for k in list(results)[:2])
        scale = big["families"] / small["families"]
        lines.append(
            f"ratios {big['families']}/{small['families']} (recipients ×{scale:.1f}): "
            f"every push ×{ratio(big['fan_out']['every_push']['median_ms'], small['fan_out']['every_push']['median_ms'])}, "
            f"post request ×{ratio(big['fan_out']['post_request']['median_ms'], small['fan_out']['post_request']['median_ms'])}"
        )
    lines += [
        "",
        f"Feed reads: {opts.clients} concurrent clients, {opts.seconds:.0f} s each "
        "(timeline: a different guardian per client; class posts: the teacher's one session shared)",
        "| class | endpoint | requests | errors | req/s | p50 ms | p99 ms | bytes |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results.values():
        for key, label in (
            ("guardian_timeline", "GET /feed (guardian)"),
            ("teacher_class_posts", "GET /classes/{id}/posts (teacher)"),
        ):
            s = r["reads"][key]
            lines.append(
                f"| {r['families']:>5} | {label:<34} | {s['requests']:>6} | {s['errors']:>6} | {s['requests_per_second']:>7.1f} | {s['p50_ms']:>7.1f} | {s['p99_ms']:>7.1f} | {s['response_bytes']:>7} |"
            )
    if len(results) >= 2:
        small, big = (results[k] for k in list(results)[:2])
        for key, label in (
            ("guardian_timeline", "timeline"),
            ("teacher_class_posts", "class posts"),
        ):
            lines.append(
                f"req/s {small['families']} ÷ {big['families']}, {label}: "
                f"×{ratio(small['reads'][key]['requests_per_second'], big['reads'][key]['requests_per_second'])}"
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs, 3 s of reads")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument(
        "--database-url",
        default="",
        help="a PostgreSQL server (postgresql://user:pass@host/postgres) where each node "
        "gets a temporary database (needs CREATEDB); default: SQLite",
    )
    parser.add_argument("--sizes", default="60,2000", help="families per class (default 60,2000)")
    parser.add_argument("--runs", type=int, help="posts timed per class (default 5, quick 2)")
    parser.add_argument("--clients", type=int, default=32, help="concurrent readers (default 32)")
    parser.add_argument("--seconds", type=float, help="seconds per read load (default 10, quick 3)")
    parser.add_argument(
        "--profile",
        type=Path,
        help="write py-spy flame graphs of the node during the fan-out here "
        "(py-spy pauses the node at each sample: a profiled run's figures are slower)",
    )
    args = parser.parse_args()
    if args.database_url and not args.database_url.startswith(("postgresql://", "postgres://")):
        parser.error("--database-url must be a postgresql:// URL")
    opts = Options(
        sizes=[int(s) for s in args.sizes.split(",")],
        runs=args.runs or (2 if args.quick else 5),
        clients=args.clients,
        seconds=args.seconds or (3.0 if args.quick else 10.0),
        feed_posts=25,
        pg_server=args.database_url or None,
        profile=args.profile,
    )
    if min(opts.sizes) < opts.clients:
        parser.error(f"each class needs at least --clients ({opts.clients}) families")

    from common import run_and_report  # (common imports this module)

    worker = push_worker_settings()

    def describe(results: dict[str, Any], load: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return report(results, opts, worker, load), {"push_worker": worker}

    return run_and_report("feed", opts, args.json, lambda: run(opts), describe)


if __name__ == "__main__":
    sys.exit(main())
