"""A fault-injecting HTTP/1.1 proxy for one directed link between nodes (A→B).

Node A is configured to reach B's origin through the proxy's URL; the proxy
listens on 127.0.0.1 and forwards to B's port, unless a test switched it to
a failure mode. It runs its own asyncio loop on its own thread, so tests
drive it with plain synchronous calls, and each call returns once the new
mode is in force (``cut`` has closed the listening socket, ``passthrough``
has reopened it on the same port).

Modes. The mode in force when a request has been read applies to it (a
kept-alive connection picks up a new mode at its next request):

* ``passthrough()``: forward the request and relay the answer as it comes.
* ``delay(s)``: wait ``s`` seconds, then forward, even if the client has
  given up meanwhile (a slow network still delivers).
* ``drop()``: close the connection without answering.
* ``blackhole()``: never answer; the connection closes, still unanswered,
  when the client gives up or the mode changes.
* ``status(code, retry_after=None, count=None)``: answer ``code`` (with
  ``Retry-After`` if given) instead of forwarding, for the next ``count``
  requests (then back to pass) or until changed.
* ``cut()``: close the listening socket (connections are refused) and reset
  the open ones, as if the cable were cut; any other mode listens again on
  the same port.
* ``drop_response()``: forward, let the upstream process the request and
  answer, then close the client's connection without the answer (the lost
  Accept, the lost acknowledgement).

If the upstream refuses the connection (its node is down), the client's
connection to the proxy is reset: the closest a proxy gets to "refused".

Rule: the request bytes reach the upstream exactly as the client sent them
(request line, header lines with their case, order and spacing, body with
its Content-Length or chunked framing), because the receiver verifies RFC
9421 signatures and Content-Digest over them. Only the TCP connection
differs; the ``Host`` header stays the proxy's, which NP/1 receivers ignore
(they rebuild ``@target-uri`` from their own configured URL).

Every request is recorded (:class:`SeenRequest`: method, target, headers,
body, what the proxy did, the status the client got, when it was read and
when the proxy was done with it) and every accepted connection counted, for
assertions; :func:`peak_in_flight` tells how many requests of a list were
ever open at once (one transaction in flight per peer, NP/1 §9.1).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import socket
import struct
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from http import HTTPStatus
from types import TracebackType
from typing import Any, Literal, TypeVar

from tests.multinode.http1 import (
    HEAD_LIMIT,
    BadMessage,
    Relay,
    Request,
    read_request,
    relay_response,
)
from tests.multinode.ports import port_of, reserve_port
from tests.multinode.waiting import wait_until

HOST = "127.0.0.1"
#: Seconds between checks of a blackholed connection (mode changed? client gone?).
BLACKHOLE_POLL = 0.02
#: Seconds a synchronous control call waits for the proxy's loop.
CONTROL_TIMEOUT = 10.0

ModeKind = Literal["pass", "delay", "drop", "blackhole", "status", "cut", "drop_response"]
T = TypeVar("T")


@dataclass(frozen=True)
class Mode:
    """The proxy's current behaviour; see the module docstring."""

    kind: ModeKind = "pass"
    #: ``delay``: seconds to wait before forwarding.
    seconds: float = 0.0
    #: ``status``: the status code answered.
    code: int = 0
    #: ``status``: the ``Retry-After`` value sent, if any.
    retry_after: str | None = None
    #: ``status``: requests still to answer this way (``None``: until changed).
    count: int | None = None


@dataclass
class SeenRequest:
    """One request the proxy read, and what became of it."""

    #: 0, 1, 2… in the order requests were fully read.
    index: int
    #: Which accepted connection (1, 2…) carried it.
    connection: int
    method: str
    #: The request target as sent (``/np/inbox?x=1``).
    target: str
    version: str
    #: Header lines as sent: original case, order and repetition.
    headers: tuple[tuple[str, str], ...]
    #: The body (chunked framing removed); the upstream got the framed bytes.
    body: bytes
    chunked: bool
    #: The mode in force when the request was read.
    mode: ModeKind
    #: forwarded, dropped, blackholed, status, response_dropped, upstream_unreachable, reset.
    action: str = ""
    #: The status the client got, or for ``response_dropped`` the one it did not get.
    status: int | None = None
    #: Whether a complete answer reached the client.
    answered: bool = False
    #: Anything unusual: the upstream closed mid-answer, the client gave up, …
    note: str = ""
    #: ``time.monotonic()`` when the request had been read, and when it was forwarded.
    seen_at: float = 0.0
    forwarded_at: float | None = None
    #: ``time.monotonic()`` when the proxy was done with the request: before the last
    #: piece of its answer was written (so the client's next request is always seen
    #: later), or when it was dropped, reset or given up; ``None`` while still open.
    done_at: float | None = None

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def body_size(self) -> int:
        return len(self.body)

    def header(self, name: str) -> str | None:
        """The value of a header (repeated lines joined with ``, ``), or ``None``."""
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return ", ".join(values) if values else None

    def describe(self) -> str:
        status = "" if self.status is None else f" {self.status}"
        note = f" ({self.note})" if self.note else ""
        return (
            f"#{self.index} conn {self.connection} {self.method} {self.target} "
            f"[{self.body_size} B] mode={self.mode} → {self.action}{status}{note}"
        )


def peak_in_flight(records: list[SeenRequest]) -> int:
    """The most of ``records`` open at the same time (read, and the proxy not yet done with it).

    A request still open (``done_at`` is ``None``) counts as open until now.
    """
    events: list[tuple[float, int]] = []
    for record in records:
        events.append((record.seen_at, 1))
        events.append((record.done_at if record.done_at is not None else float("inf"), -1))
    peak = current = 0
    for _, step in sorted(events):  # at a tie an end (-1) sorts first: back to back is not overlap
        current += step
        peak = max(peak, current)
    return peak


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0), as a crashed or unreachable peer looks."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class _Connection:
    """One client connection and the upstream connection that mirrors it (opened lazily)."""

    def __init__(self, number: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.number = number
        self.reader = reader
        self.writer = writer
        self.upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def upstream_streams(
        self, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.upstream is not None:
            reader, writer = self.upstream
            if not reader.at_eof() and not writer.is_closing():
                return self.upstream
            self.close_upstream()  # the upstream closed its idle side: open a new one
        self.upstream = await asyncio.open_connection(HOST, port, limit=HEAD_LIMIT)
        return self.upstream

    def close_upstream(self) -> None:
        if self.upstream is not None:
            self.upstream[1].close()
            self.upstream = None

    def reset(self) -> None:
        self.close_upstream()
        _reset(self.writer)


class FaultProxy:
    """A proxy from ``127.0.0.1:port`` to ``127.0.0.1:upstream_port``; see the module docstring.

    Use as a context manager, or call :meth:`start` and :meth:`close`.
    """

    def __init__(self, upstream_port: int, *, name: str = "proxy") -> None:
        self.upstream_port = upstream_port
        self.name = name
        self.port = 0
        self._reservation: socket.socket | None = None
        self._mode = Mode()
        self._generation = 0
        self._records: list[SeenRequest] = []
        self._connections = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._open: set[_Connection] = set()
        self._tasks: set[asyncio.Task[Any]] = set()

    def __repr__(self) -> str:
        return f"<FaultProxy {self.name} {self.url} → :{self.upstream_port} {self._mode.kind}>"

    @property
    def url(self) -> str:
        """What the sending node is told to connect to."""
        return f"http://{HOST}:{self.port}"

    @property
    def upstream_url(self) -> str:
        return f"http://{HOST}:{self.upstream_port}"

    @property
    def mode(self) -> Mode:
        return self._mode

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FaultProxy:
        """Listen on a free port and serve from a background thread."""
        if self._thread is not None:
            raise RuntimeError(f"{self.name}: already started")
        # Reserved for the proxy's lifetime, so that a cut port is still ours to listen on again.
        self._reservation = reserve_port()
        self.port = port_of(self._reservation)
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(
            target=loop.run_forever, name=f"fault-proxy-{self.name}", daemon=True
        )
        self._thread.start()
        try:
            self._call(self._listen())
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Stop listening, reset every connection, end the thread. Safe to call twice."""
        loop, thread = self._loop, self._thread
        try:
            if loop is not None and thread is not None:
                try:
                    if loop.is_running():
                        self._call(self._shutdown())
                finally:
                    loop.call_soon_threadsafe(loop.stop)
                    thread.join(CONTROL_TIMEOUT)
                    loop.close()
                    self._loop = self._thread = None
        finally:
            if self._reservation is not None:  # last: the port is free for others from now on
                self._reservation.close()
                self._reservation = None

    def __enter__(self) -> FaultProxy:
        return self.start() if self._thread is None else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the proxy's loop and wait for it: control calls are synchronous."""
        if self._loop is None:
            coroutine.close()
            raise RuntimeError(f"{self.name}: not started")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(CONTROL_TIMEOUT)

    async def _listen(self) -> None:
        # On the reserved port (SO_REUSEADDR lets it share it), again after each cut.
        self._server = await asyncio.start_server(
            self._serve, HOST, self.port, limit=HEAD_LIMIT, reuse_address=True
        )
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for connection in list(self._open):
            connection.reset()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ------------------------------------------------------------------ modes

    async def _set(self, mode: Mode) -> None:
        self._mode = mode
        self._generation += 1  # wakes blackholed requests: they close, unanswered
        if mode.kind == "cut":
            if self._server is not None:
                self._server.close()  # closes the listening socket now: connects are refused
                self._server = None
            for connection in list(self._open):
                connection.reset()
        elif self._server is None:
            await self._listen()

    def set_mode(self, mode: Mode) -> None:
        """Switch to ``mode``; returns once it is in force."""
        self._call(self._set(mode))

    def passthrough(self) -> None:
        """Forward everything (and listen again after a cut)."""
        self.set_mode(Mode("pass"))

    def delay(self, seconds: float) -> None:
        """Hold each request ``seconds`` before forwarding it."""
        if seconds < 0:
            raise ValueError("a delay is never negative")
        self.set_mode(Mode("delay", seconds=seconds))

    def drop(self) -> None:
        """Read each request, then close the connection without an answer."""
        self.set_mode(Mode("drop"))

    def blackhole(self) -> None:
        """Read each request and never answer (until the client gives up or the mode changes)."""
        self.set_mode(Mode("blackhole"))

    def status(
        self, code: int, retry_after: float | str | None = None, count: int | None = None
    ) -> None:
        """Answer ``code`` instead of forwarding, for ``count`` requests (then pass) or until changed."""
        if not 200 <= code <= 599:
            raise ValueError(f"status {code} is not a final HTTP status")
        if count is not None and count < 1:
            raise ValueError("count is at least 1 (or None: until changed)")
        after = None if retry_after is None else str(retry_after)
        self.set_mode(Mode("status", code=code, retry_after=after, count=count))

    def cut(self) -> None:
        """Refuse new connections (listening socket closed) and reset the open ones."""
        self.set_mode(Mode("cut"))

    def drop_response(self) -> None:
        """Forward each request, then close the client connection instead of relaying the answer."""
        self.set_mode(Mode("drop_response"))

    # ------------------------------------------------------------------ records

    @property
    def requests(self) -> list[SeenRequest]:
        """Copies of every request seen so far, in order."""
        with self._lock:
            return [dataclasses.replace(r) for r in self._records]

    @property
    def connections(self) -> int:
        """TCP connections accepted so far."""
        with self._lock:
            return self._connections

    @property
    def open_connections(self) -> int:
        return len(self._open)

    def clear(self) -> None:
        """Forget the requests and connections seen so far."""
        with self._lock:
            self._records.clear()
            self._connections = 0

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[SeenRequest]:
        """Wait until at least ``count`` requests were read; all of them."""
        return wait_until(
            lambda: self.requests if len(self.requests) >= count else None,
            timeout=timeout,
            what=f"{self.name} to see {count} request(s)",
            logs=[self],
        )

    def log_tail(self, lines: int = 40) -> str:
        """The last requests, one line each (so a proxy can be passed to ``wait_until(logs=…)``)."""
        with self._lock:
            records = self._records[-lines:]
            total = self._connections
        head = f"{self!r}: {total} connection(s)"
        return "\n".join([head, *(r.describe() for r in records)])

    def _update(self, record: SeenRequest, **changes: Any) -> None:
        with self._lock:
            for key, value in changes.items():
                setattr(record, key, value)

    # ------------------------------------------------------------------ serving

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        with self._lock:
            self._connections += 1
            number = self._connections
        connection = _Connection(number, reader, writer)
        self._open.add(connection)
        try:
            while (request := await read_request(reader)) is not None:
                if not await self._handle(connection, request):
                    break
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, BadMessage, OSError):
            pass  # a client that hung up or spoke garbage: the connection just ends
        except asyncio.CancelledError:
            pass  # the proxy is closing; end quietly (Python 3.11 logs cancelled handlers)
        finally:
            self._open.discard(connection)
            connection.close_upstream()
            writer.close()
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await writer.wait_closed()
            if task is not None:
                self._tasks.discard(task)

    def _record(self, connection: _Connection, request: Request, mode: Mode) -> SeenRequest:
        with self._lock:
            record = SeenRequest(
                index=len(self._records),
                connection=connection.number,
                method=request.method,
                target=request.target,
                version=request.version,
                headers=request.headers,
                body=request.body,
                chunked=request.chunked,
                mode=mode.kind,
                seen_at=time.monotonic(),
            )
            self._records.append(record)
        return record

    async def _handle(self, connection: _Connection, request: Request) -> bool:
        """Apply the current mode to one request; whether the client connection stays open."""
        mode = self._mode
        record = self._record(connection, request, mode)
        if mode.kind == "status":
            if mode.count is not None:  # one fewer; the last one switches back to pass
                left = mode.count - 1
                await self._set(dataclasses.replace(mode, count=left) if left else Mode("pass"))
            try:
                await self._answer(connection, request, record, mode)
            finally:
                if record.done_at is None:  # a subclass's answer that did not say
                    self._update(record, done_at=time.monotonic())
            return not request.close
        if mode.kind == "drop":
            self._update(record, action="dropped", done_at=time.monotonic())
            return False
        if mode.kind == "blackhole":
            self._update(record, action="blackholed")
            try:
                await self._hold(connection, record)
            finally:
                self._update(record, done_at=time.monotonic())
            return False
        if mode.kind == "cut":  # read on a connection that survived the cut: reset it too
            self._update(record, action="reset", done_at=time.monotonic())
            connection.reset()
            return False
        try:
            if mode.kind == "delay":
                await asyncio.sleep(mode.seconds)
            return await self._forward(connection, request, record, mode.kind != "drop_response")
        finally:
            if record.done_at is None:  # an error path, or the proxy closing: done now
                self._update(record, done_at=time.monotonic())

    async def _answer(
        self, connection: _Connection, request: Request, record: SeenRequest, mode: Mode
    ) -> None:
        try:
            reason = HTTPStatus(mode.code).phrase
        except ValueError:
            reason = "Injected"
        body = json.dumps({"error": {"reason": "fault_proxy", "status": mode.code}}).encode()
        lines = [f"HTTP/1.1 {mode.code} {reason}", "Content-Type: application/json"]
        lines.append(f"Content-Length: {len(body)}")
        if mode.retry_after is not None:
            lines.append(f"Retry-After: {mode.retry_after}")
        if request.close:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        # Recorded first: once the client has its answer, the record is complete.
        self._update(
            record, action="status", status=mode.code, answered=True, done_at=time.monotonic()
        )
        try:
            connection.writer.write(head + (b"" if request.method == "HEAD" else body))
            await connection.writer.drain()
        except OSError:
            self._update(record, answered=False, note="the client left before the answer")
            raise

    async def _hold(self, connection: _Connection, record: SeenRequest) -> None:
        """Keep a blackholed request unanswered until the mode changes or the client leaves."""
        generation = self._generation
        while self._generation == generation:
            if connection.reader.at_eof() or connection.writer.is_closing():
                self._update(record, note="the client gave up")
                return
            await asyncio.sleep(BLACKHOLE_POLL)
        self._update(record, note="closed unanswered: the mode changed")

    async def _forward(
        self, connection: _Connection, request: Request, record: SeenRequest, deliver: bool
    ) -> bool:
        try:
            up_reader, up_writer = await connection.upstream_streams(self.upstream_port)
        except OSError as exc:
            # The client's connect already succeeded (to us); the closest a proxy
            # gets to "connection refused" is resetting that connection.
            self._update(record, action="upstream_unreachable", note=repr(exc))
            connection.reset()
            return False
        self._update(
            record,
            action="forwarded" if deliver else "response_dropped",
            forwarded_at=time.monotonic(),
        )
        relay = Relay(connection.writer if deliver else None)
        try:
            up_writer.write(request.head + request.raw_body)
            await up_writer.drain()
            status, reusable = await relay_response(up_reader, relay, request.method)
            self._update(record, status=status, answered=deliver, done_at=time.monotonic())
            await relay.finish()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, BadMessage, OSError) as exc:
            self._update(
                record, answered=False, note=f"upstream or client connection failed: {exc!r}"
            )
            connection.reset()
            return False
        if not reusable:
            connection.close_upstream()
        return deliver and reusable and not request.close
