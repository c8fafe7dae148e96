"""Web Push for tests: a browser's side (keys, decrypting what arrives, reading VAPID) and a push service.

``FakeBrowser`` plays what ``PushManager.subscribe`` makes in a real
browser: a P-256 key pair and a 16-byte auth secret.  Its endpoint is on
127.0.0.1, which the node accepts only because the test node itself runs
on http://127.0.0.1.  ``FakePushService`` plays the push service: a real
HTTP/1.1 server on 127.0.0.1 (parsed with h11) that records every request
as an ``httpx.Request`` and answers as the test tells it to.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import h11
import http_ece
import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from node.services import notifications
from node.services.context import Actor, ServiceContext
from node.storage.db import Storage
from node.storage.feed import Message
from node.storage.groups import E2eGroup


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class FakeBrowser:
    endpoint: str
    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth_secret: bytes = field(default_factory=lambda: os.urandom(16))

    @property
    def p256dh(self) -> str:
        raw = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return b64(raw)

    @property
    def auth(self) -> str:
        return b64(self.auth_secret)

    def subscribe(
        self, storage: Storage, ctx: ServiceContext, actor: Actor
    ) -> notifications.SubscriptionView:
        return storage.call(
            notifications.subscribe, ctx, actor, self.endpoint, self.p256dh, self.auth, "Firefox"
        )

    def open(self, request: httpx.Request) -> dict[str, Any]:
        """Decrypt a push message as the browser does (RFC 8291) and parse its JSON."""
        plain = http_ece.decrypt(
            request.content,
            private_key=self.private_key,
            auth_secret=self.auth_secret,
            version="aes128gcm",
        )
        payload: dict[str, Any] = json.loads(plain)
        return payload


async def until(condition: Callable[[], bool], guard: float = 30.0) -> None:
    """Wait until ``condition()`` holds: a guard against hanging, not an assertion about speed."""
    for _ in range(int(guard / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"still false after {guard} s")


def fake_browser(n: int = 1, service: FakePushService | None = None) -> FakeBrowser:
    """A browser whose endpoint is on ``service`` (by default, on a port where nothing listens)."""
    origin = service.url if service is not None else "http://127.0.0.1:9"
    return FakeBrowser(f"{origin}/push/device-{n}-{os.urandom(4).hex()}")


@dataclass
class _Rule:
    url: str | None
    status: int
    headers: dict[str, str]
    reusable: bool
    #: never answer (the connection stays open until the service closes)
    stall: bool = False
    #: close the connection instead of answering
    drop: bool = False
    #: waits for this before answering (a slow push service)
    gate: asyncio.Event | None = None


class FakePushService:
    """A push service on 127.0.0.1: records each request, answers ``201`` unless told otherwise.

    ``add_response``, ``add_stall`` and ``add_drop`` queue answers for a URL (or any URL),
    used once each unless reusable, in order, as pytest-httpx does;
    ``get_request(s)`` return what arrived, as ``httpx.Request`` objects
    (``FakeBrowser.open`` decrypts them, ``vapid_claims`` checks them).
    ``delay`` (a function of the path) answers each request late, which
    mixes up the order of the answers.
    """

    def __init__(self, delay: Callable[[str], float] | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.connections = 0
        #: requests received and not answered yet
        self.in_flight = 0
        self.most_in_flight = 0
        self._rules: list[_Rule] = []
        self._delay = delay
        self._server: asyncio.Server | None = None
        self._closing = asyncio.Event()
        self._handlers: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> FakePushService:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closing.set()
        for rule in self._rules:
            if rule.gate is not None:
                rule.gate.set()
        assert self._server is not None
        self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add_response(
        self,
        url: str | None = None,
        status_code: int = 201,
        headers: dict[str, str] | None = None,
        is_reusable: bool = False,
        gate: asyncio.Event | None = None,
    ) -> None:
        self._rules.append(_Rule(url, status_code, headers or {}, is_reusable, gate=gate))

    def add_stall(self, url: str | None = None) -> None:
        """Never answer the next request to ``url``: the sender times out."""
        self._rules.append(_Rule(url, 0, {}, False, stall=True))

    def add_drop(self, url: str | None = None) -> None:
        """Close the connection on the next request to ``url``, without an answer."""
        self._rules.append(_Rule(url, 0, {}, False, drop=True))

    def get_requests(self, url: str | None = None) -> list[httpx.Request]:
        return [r for r in self.requests if url is None or str(r.url) == url]

    def get_request(self, url: str | None = None) -> httpx.Request | None:
        found = self.get_requests(url)
        assert len(found) <= 1, f"{len(found)} requests to {url}"
        return found[0] if found else None

    def _rule_for(self, url: str) -> _Rule | None:
        for rule in self._rules:
            if rule.url is None or rule.url == url:
                if not rule.reusable:
                    self._rules.remove(rule)
                return rule
        return None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self.connections += 1
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                request, body = await self._read(conn, reader)
                if request is None:
                    return
                url = f"{self.url}{request.target.decode()}"
                headers = [(k.decode(), v.decode()) for k, v in request.headers]
                self.requests.append(httpx.Request("POST", url, headers=headers, content=body))
                self.in_flight += 1
                self.most_in_flight = max(self.most_in_flight, self.in_flight)
                try:
                    rule = self._rule_for(url)
                    rule = rule or _Rule(None, 201, {}, True)
                    if rule.stall:
                        await self._closing.wait()
                        return
                    if rule.drop:
                        return
                    if rule.gate is not None:
                        await rule.gate.wait()
                    if self._delay is not None:
                        await asyncio.sleep(self._delay(request.target.decode()))
                finally:
                    self.in_flight -= 1
                response = h11.Response(
                    status_code=rule.status,
                    headers=[("Content-Length", "0"), *rule.headers.items()],
                )
                writer.write((conn.send(response) or b"") + (conn.send(h11.EndOfMessage()) or b""))
                await writer.drain()
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except (ConnectionError, h11.ProtocolError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            self._handlers.discard(task)

    @staticmethod
    async def _read(
        conn: h11.Connection, reader: asyncio.StreamReader
    ) -> tuple[h11.Request | None, bytes]:
        request: h11.Request | None = None
        body = b""
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await reader.read(65536))
            elif isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                return request, body
            else:  # ConnectionClosed
                return None, b""


def vapid_claims(request: httpx.Request, node_public_key: str) -> dict[str, Any]:
    """Check the VAPID header as a push service does (RFC 8292) and return the JWT claims."""
    scheme, _, params = request.headers["Authorization"].partition(" ")
    assert scheme == "vapid"
    fields = dict(part.strip().split("=", 1) for part in params.split(","))
    assert fields["k"] == node_public_key
    header_b64, claims_b64, signature_b64 = fields["t"].split(".")
    assert json.loads(unb64(header_b64)) == {"typ": "JWT", "alg": "ES256"}
    signature = unb64(signature_b64)
    assert len(signature) == 64
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64(node_public_key))
    # raises InvalidSignature when the token was not signed by the node's key
    public.verify(der, f"{header_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    claims: dict[str, Any] = json.loads(unb64(claims_b64))
    return claims


def make_message(
    storage: Storage, class_id: int, author_id: int, ciphertext: str = "c2VjcmV0"
) -> tuple[int, str]:
    """A post row as the feed stores it (the real feed's services are tested on their own)."""

    def create() -> tuple[int, str]:
        now = dt.datetime(2026, 1, 15, 12, 0)
        group = E2eGroup.get_or_none(E2eGroup.school_class == class_id) or E2eGroup.create(
            public_id="G" * 22,
            school_class=class_id,
            admins="[]",
            head_seq=0,
            head_hash="h" * 43,
            created_at=now,
        )
        public_id = os.urandom(11).hex()[:22]
        row = Message.create(
            group=group,
            public_id=public_id,
            kind="post",
            author=author_id,
            author_member="m",
            epoch=0,
            version=1,
            header="{}",
            ct=ciphertext,
            sig="s",
            created_at=now,
            updated_at=now,
        )
        return row.id, public_id

    return storage.call(create)
