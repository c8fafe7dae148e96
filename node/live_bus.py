"""Live updates and worker wake-ups across node processes, through PostgreSQL LISTEN/NOTIFY.

With several ``carnet serve`` processes (and ``carnet worker`` processes) on
one PostgreSQL database, a browser's event stream is held by one process
while the post it should hear about is written by another, and the worker
that sends the pushes may be a third.  Each process runs one ``PgBus``: a
thread with its own connection that LISTENs on ``carnet_live`` and sends
this process's notifications.  What travels is what ``node.live`` allows,
ids and kinds, never content, plus which process sent it (a process skips
its own).

A notification is lost if a process is disconnected when it is sent (the
thread reconnects within seconds): an open page then catches up at its next
load, and workers at their next poll.  On SQLite there is one process and
no bus.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import os
import secrets
import select
import threading
from collections.abc import Callable, Mapping
from typing import Any

import psycopg2
import psycopg2.extensions

log = logging.getLogger("carnet.live")

CHANNEL = "carnet_live"
#: PostgreSQL refuses payloads of 8,000 bytes or more: a long recipient list is split.
ACCOUNTS_PER_NOTIFICATION = 500
#: Seconds between checks that the connection is alive, and before reconnecting.
IDLE_SECONDS = 5.0
RECONNECT_SECONDS = 1.0

EventHandler = Callable[[list[int], dict[str, Any]], object]
WakeHandler = Callable[[], object]


class PgBus:
    """One process's link to the others: send and receive events and wake-ups."""

    def __init__(self, dsn: str, on_event: EventHandler, on_wake: WakeHandler) -> None:
        self._dsn = dsn
        self._on_event = on_event
        self._on_wake = on_wake
        self.token = secrets.token_hex(8)
        self._outbox: collections.deque[str] = collections.deque(maxlen=10_000)
        self._stop = threading.Event()
        self.listening = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._wake_read, self._wake_write = os.pipe()

    # -- sending (any thread) ------------------------------------------------------

    def send_event(self, account_ids: list[int], event: Mapping[str, Any]) -> None:
        for start in range(0, len(account_ids), ACCOUNTS_PER_NOTIFICATION):
            chunk = account_ids[start : start + ACCOUNTS_PER_NOTIFICATION]
            self._send({"from": self.token, "accounts": chunk, "event": dict(event)})

    def send_wake(self) -> None:
        self._send({"from": self.token, "wake": True})

    def _send(self, message: dict[str, Any]) -> None:
        if self._stop.is_set():  # the app is shutting down: nobody will send it
            return
        self._outbox.append(json.dumps(message, separators=(",", ":")))
        os.write(self._wake_write, b"x")

    # -- the thread ---------------------------------------------------------------

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name="carnet-live-bus", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        os.write(self._wake_write, b"x")
        if self._thread is not None:
            self._thread.join(timeout=5)
        os.close(self._wake_read)
        os.close(self._wake_write)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except psycopg2.Error as error:
                self.listening.clear()
                log.warning("live updates across processes paused: %s", str(error).strip())
                self._stop.wait(RECONNECT_SECONDS)

    def _listen(self) -> None:
        connection = psycopg2.connect(self._dsn)
        try:
            connection.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
            with connection.cursor() as cursor:
                cursor.execute(f"LISTEN {CHANNEL}")
            self.listening.set()
            while not self._stop.is_set():
                ready, _, _ = select.select([connection, self._wake_read], [], [], IDLE_SECONDS)
                if self._wake_read in ready:
                    os.read(self._wake_read, 4096)
                self._flush(connection)
                connection.poll()  # also notices a lost connection (raises)
                while connection.notifies:
                    self._received(connection.notifies.pop(0).payload)
        finally:
            connection.close()

    def _flush(self, connection: Any) -> None:
        with connection.cursor() as cursor:
            while self._outbox:
                payload = self._outbox[0]
                cursor.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
                self._outbox.popleft()  # only once sent: a lost connection keeps it queued

    def _received(self, payload: str) -> None:
        try:
            message = json.loads(payload)
        except ValueError:
            log.warning("ignored a malformed live notification")
            return
        if not isinstance(message, dict) or message.get("from") == self.token:
            return
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        accounts, event = message.get("accounts"), message.get("event")
        if isinstance(accounts, list) and isinstance(event, dict):
            ids = [a for a in accounts if type(a) is int]
            loop.call_soon_threadsafe(self._deliver, ids, event)
        loop.call_soon_threadsafe(self._on_wake)

    def _deliver(self, ids: list[int], event: dict[str, Any]) -> None:
        try:
            self._on_event(ids, event)
        except ValueError:  # node.live refuses anything but ids and kinds
            log.warning("ignored a live notification that is not an event")
