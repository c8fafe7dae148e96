"""Abusive HTTP clients against a real ``carnet serve`` (Hypercorn), over raw sockets.

One node, with its timeouts lowered so that the test waits about a second
instead of the defaults' 5 and 180 (``request_header_timeout``,
``request_body_timeout``). While a logged-in page holds its live-updates
stream (``GET /api/v1/events``, a request that sends nothing for minutes),
these run together:

* slowloris: 200 connections, each trickling its request headers and never
  ending them, reconnecting when closed. The node closes every one without an
  answer, and a normal client is answered meanwhile;
* bodies that never end (chunked without the last chunk, ``Content-Length``
  past what is sent) on the JSON API, a web form and an attachment part:
  408, then the connection is closed; an attachment part sent slowly, for
  longer than the header timeout, is stored;
* cleartext HTTP/2, by prior knowledge (505, closed) and by ``Upgrade: h2c``
  (ignored: an HTTP/1.1 answer), see ``node/http11.py``; HTTP/1.0 is still served;
* a request line or header block past Hypercorn's 16 KiB that never ends: 431 at once.

The live stream, opened before all of them, is still open after the node cut
them: neither timeout applies to it. Nothing here measures speed; every wait
is for an event (a status line, the node closing a socket), with a ceiling
for a broken run.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import h2.config
import h2.connection
import httpx
import pytest

from tests.factories import client_account
from tests.multinode.classes import SchoolClass, Session, log_in_admin, new_class, open_group
from tests.multinode.cluster import Cluster
from tests.multinode.nodes import HOST, Node

pytestmark = pytest.mark.transport

#: The test node's ``request_header_timeout`` and ``request_body_timeout`` (seconds).
HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 2.5
#: Ceiling for anything the node should do within its timeouts (a broken run only).
CEILING = 30.0
#: Slow connections held open at once, and the pause between two of their bytes.
SLOW_CLIENTS = 200
TRICKLE = 0.4
#: Hypercorn's ``h11_max_incomplete_size`` (16 KiB), the default Carnet keeps.
MAX_INCOMPLETE = 16 * 1024

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def connect(node: Node) -> Streams:
    return await asyncio.open_connection(HOST, node.port)


async def until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the node sends until it closes the connection (ceiling: :data:`CEILING`)."""
    received = b""
    async with asyncio.timeout(CEILING):
        while True:
            try:
                chunk = await reader.read(65536)
            except ConnectionResetError:
                return received
            if not chunk:
                return received
            received += chunk


def status_of(answer: bytes) -> str:
    """``HTTP/1.1 408`` from an answer's first line."""
    return " ".join(answer.split(b"\r\n", 1)[0].decode("latin-1").split()[:2])


def head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: {HOST}",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def send_and_read(node: Node, data: bytes) -> bytes:
    reader, writer = await connect(node)
    writer.write(data)
    await writer.drain()
    try:
        return await until_closed(reader)
    finally:
        writer.close()


async def closed_by_node(node: Node) -> None:
    """A connection that sends nothing, until the node closes it: ``request_header_timeout`` passed."""
    answer = await send_and_read(node, b"")
    assert answer == b"", answer[:200]


# --------------------------------------------------------------------------- the logged-in page


@dataclass
class Browser:
    """The admin's logged-in browser: cookies and CSRF token, for raw requests."""

    session: Session
    school_class: SchoolClass

    def headers(self, **extra: str) -> dict[str, str]:
        return csrf_headers(self.session.http, self.session.csrf, **extra)

    def start_upload(self, size: int) -> str:
        started = self.session.post(
            f"/api/v1/classes/{self.school_class.class_id}/blobs", {"size": size}
        )
        return str(started["id"])


def csrf_headers(client: httpx.Client, token: str, **extra: str) -> dict[str, str]:
    cookies = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    return {"Cookie": cookies, "X-CSRF-Token": token, **extra}


def stranger(node: Node, **extra: str) -> dict[str, str]:
    """Headers of a browser that is not logged in: its CSRF cookie and token are enough."""
    client = node.client()
    token = client.get("/api/v1/session").json()["csrf_token"]
    return csrf_headers(client, token, **extra)


def log_in(node: Node) -> Browser:
    assert node.admin_email
    # the costly keys first, so that no connection idles while they are made
    client_account(node.admin_email)
    admin = log_in_admin(node)
    # from now on a new connection per request: none is reused as the node closes it
    no_reuse = httpx.Limits(max_keepalive_connections=0)
    admin.http = node.client(timeout=30.0, limits=no_reuse, cookies=admin.http.cookies)
    school_class = SchoolClass(admin, new_class(admin, "CM1").class_id, "CM1")
    open_group(school_class)  # uploads go to a class's group
    return Browser(admin, school_class)


async def still_open(reader: asyncio.StreamReader) -> bool:
    """Whether the node has not closed this connection: reading finds a pause, not its end."""
    try:
        while await asyncio.wait_for(reader.read(65536), 0.1):
            pass  # a heartbeat
    except TimeoutError:
        return True
    except ConnectionError:
        return False
    return False


async def open_live_stream(node: Node, browser: Browser) -> Streams:
    reader, writer = await connect(node)
    writer.write(head("GET", "/api/v1/events", browser.headers(Accept="text/event-stream")))
    await writer.drain()
    async with asyncio.timeout(CEILING):
        answer = await reader.readuntil(b": connected\n\n")
    assert status_of(answer) == "HTTP/1.1 200", answer[:300]
    return reader, writer


# --------------------------------------------------------------------------- slowloris


@dataclass
class Slowloris:
    """``SLOW_CLIENTS`` connections trickling headers, each reconnecting once the node closes it."""

    node: Node
    started: asyncio.Event = field(default_factory=asyncio.Event)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    connected: int = 0
    #: one entry per finished connection: what the node answered (b"" = closed silently)
    answers: list[bytes] = field(default_factory=list)

    async def one_client(self) -> None:
        first = True
        while first or not self.stop.is_set():
            reader, writer = await connect(self.node)
            if first:
                first = False
                self.connected += 1
                if self.connected == SLOW_CLIENTS:
                    self.started.set()
            data = head("GET", "/healthz", {"X-Slow": "a"})[:-4]  # the headers never end
            writer.write(data)
            answer = b""
            async with asyncio.timeout(CEILING):
                while True:
                    try:
                        chunk = await asyncio.wait_for(reader.read(4096), TRICKLE)
                    except TimeoutError:
                        try:
                            writer.write(b"a")
                            await writer.drain()
                        except ConnectionError:
                            break
                        continue
                    except ConnectionError:
                        break
                    if not chunk:
                        break
                    answer += chunk
            writer.close()
            self.answers.append(answer)

    async def run(self) -> None:
        await asyncio.gather(*(self.one_client() for _ in range(SLOW_CLIENTS)))


async def normal_client(node: Node, attack: Slowloris) -> list[tuple[str, int]]:
    """A family's browser, while the slow connections are open: each page on a new connection."""
    async with asyncio.timeout(CEILING):
        await attack.started.wait()
    answered = []
    limits = httpx.Limits(max_keepalive_connections=0)  # never reuse what the node may be closing
    async with node.async_client(limits=limits) as client:
        for path in ("/healthz", "/login", "/api/v1/session", "/healthz"):
            response = await client.get(path)
            answered.append((path, response.status_code))
    attack.stop.set()
    return answered


# --------------------------------------------------------------------------- bodies


async def body_never_ends(node: Node, request_head: bytes, first_part: bytes) -> bytes:
    """Send the head and part of the body, then nothing: what the node answers, up to its close."""
    return await send_and_read(node, request_head + first_part)


async def slow_upload_part(node: Node, browser: Browser, blob: str, size: int) -> bytes:
    """An attachment part sent in two halves, the second after the header timeout has passed."""
    reader, writer = await connect(node)
    headers = browser.headers(
        **{"Content-Type": "application/octet-stream", "Content-Length": str(size)}
    )
    writer.write(head("PUT", f"/api/v1/blobs/{blob}?offset=0", headers) + b"x" * (size // 2))
    await writer.drain()
    # a connection opened after this part began, closed by the node: the header timeout passed
    await closed_by_node(node)
    writer.write(b"y" * (size // 2))
    await writer.drain()
    async with asyncio.timeout(CEILING):
        answer = await reader.readuntil(b"\r\n\r\n")
    writer.close()
    return answer


# --------------------------------------------------------------------------- HTTP/2 and oversize


def http2_preface_and_request() -> bytes:
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    pseudo = [(":method", "GET"), (":path", "/healthz"), (":scheme", "http"), (":authority", HOST)]
    client.send_headers(1, pseudo, end_stream=True)
    return client.data_to_send()


H2C_UPGRADE = head(
    "GET",
    "/healthz",
    {
        "Connection": "Upgrade, HTTP2-Settings, close",
        "Upgrade": "h2c",
        "HTTP2-Settings": "AAMAAABkAAQAAP__",
    },
)


# --------------------------------------------------------------------------- the test


def test_abusive_clients_are_cut_off_while_others_and_live_streams_are_served(
    make_cluster: Callable[..., Cluster],
) -> None:
    (node,) = make_cluster(
        ("a",),
        config={
            "request_header_timeout": HEADER_TIMEOUT,
            "request_body_timeout": BODY_TIMEOUT,
        },
    )
    browser = log_in(node)
    slow_blob, slow_size = browser.start_upload(64 * 1024), 64 * 1024
    unfinished_blob = browser.start_upload(4096)
    part = browser.headers(**{"Content-Type": "application/octet-stream"})
    json_api = stranger(node, **{"Content-Type": "application/json"})
    form = {"Content-Type": "application/x-www-form-urlencoded", "Content-Length": "100"}

    async def scenario() -> tuple[Slowloris, dict[str, Any], bool]:
        stream_reader, stream_writer = await open_live_stream(node, browser)
        attack = Slowloris(node)
        clients: dict[str, Coroutine[Any, Any, Any]] = {
            "slowloris": attack.run(),
            "normal": normal_client(node, attack),
            "chunked json": body_never_ends(
                node,
                head("POST", "/api/v1/auth/prelogin", {**json_api, "Transfer-Encoding": "chunked"}),
                b'8\r\n{"login"\r\n',
            ),
            "short json": body_never_ends(
                node,
                head("POST", "/api/v1/auth/prelogin", {**json_api, "Content-Length": "100"}),
                b'{"login": ',
            ),
            "short form": body_never_ends(
                node, head("POST", "/account/notifications/digest", form), b"csrf_"
            ),
            "short part": body_never_ends(
                node,
                head(
                    "PUT",
                    f"/api/v1/blobs/{unfinished_blob}?offset=0",
                    {**part, "Content-Length": "4096"},
                ),
                b"z" * 1024,
            ),
            "slow part": slow_upload_part(node, browser, slow_blob, slow_size),
            "prior knowledge": send_and_read(node, http2_preface_and_request()),
            "upgrade": send_and_read(node, H2C_UPGRADE),
            "http/1.0": send_and_read(
                node, f"GET /healthz HTTP/1.0\r\nHost: {HOST}\r\n\r\n".encode()
            ),
            "long line": send_and_read(node, b"GET /" + b"a" * (MAX_INCOMPLETE + 1024)),
            "long headers": send_and_read(
                node,
                b"GET /healthz HTTP/1.1\r\n"
                + b"".join(b"X-Filler-%d: %s\r\n" % (i, b"f" * 90) for i in range(200)),
            ),
        }
        results = dict(zip(clients, await asyncio.gather(*clients.values()), strict=True))
        # All of them were cut off after both timeouts; the stream began before any of them.
        alive = await still_open(stream_reader)
        stream_writer.close()
        return attack, results, alive

    attack, got, stream_alive = asyncio.run(scenario())

    # slowloris: every slow connection closed by the node, unanswered, with its headers unfinished
    assert len(attack.answers) >= SLOW_CLIENTS
    assert set(attack.answers) == {b""}, {a[:100] for a in attack.answers}
    assert got["normal"] == [
        ("/healthz", 200),
        ("/login", 200),
        ("/api/v1/session", 200),
        ("/healthz", 200),
    ]

    # bodies that never end: 408 and closed, on the JSON API, a form and an attachment part
    for name in ("chunked json", "short json", "short form", "short part"):
        assert status_of(got[name]) == "HTTP/1.1 408", (name, got[name][:300])
    # a slow part outlives the header timeout and is stored
    assert status_of(got["slow part"]) == "HTTP/1.1 200", got["slow part"][:300]

    # no cleartext HTTP/2: the preface is refused, an Upgrade: h2c answered in HTTP/1.1
    assert status_of(got["prior knowledge"]) == "HTTP/1.1 505", got["prior knowledge"][:300]
    assert status_of(got["upgrade"]) == "HTTP/1.1 200", got["upgrade"][:300]
    assert json.loads(got["upgrade"].split(b"\r\n\r\n", 1)[1]) == {"status": "ok"}
    # HTTP/1.0 (what nginx speaks to its upstreams by default) is still served
    assert status_of(got["http/1.0"]) == "HTTP/1.1 200", got["http/1.0"][:300]

    # an unfinished request line or header block past 16 KiB: 431, not the idle timer's silent close
    for name in ("long line", "long headers"):
        assert status_of(got[name]) == "HTTP/1.1 431", (name, got[name][:300])

    # the live stream outlived both timeouts
    assert stream_alive, node.log_tail()
