"""A tiny HTTP server on 127.0.0.1 that records what it receives and says so.

The stand-in upstream for testing the fault proxy (and, later, a fake peer
that counts what reaches it). It is served by hypercorn, like a real node,
from a background thread with its own event loop, on a socket bound before
the thread starts, so it accepts connections as soon as ``start`` returns.

Routes (any method):

* ``/stream?parts=N``: answers N lines as a chunked body (no Content-Length);
* ``/status/<code>``: answers that status with a short JSON body;
* anything else: ``200`` and JSON ``{method, path, query, body_size, body_sha256}``.

Rule: every request is recorded before it is answered, so a client that
has its answer can assert on :attr:`EchoServer.received` without waiting.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import threading
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qs

from hypercorn.asyncio import serve
from hypercorn.config import Config

if TYPE_CHECKING:
    from hypercorn.typing import Framework

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Received:
    """One request as the upstream's HTTP stack (h11) handed it over."""

    method: str
    path: str
    query: str
    #: Header names lower-cased by h11; values and order as sent.
    headers: tuple[tuple[str, str], ...]
    body: bytes
    #: The client's (host, port): equal ports mean one kept-alive connection.
    client: tuple[str, int]

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k == name.lower()]
        return ", ".join(values) if values else None


class EchoServer:
    """Hypercorn serving :meth:`app` on a free 127.0.0.1 port until :meth:`close`."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((HOST, 0))
        self._sock.listen(128)
        self.port = int(self._sock.getsockname()[1])
        self._received: list[Received] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def hits(self, path: str) -> int:
        """How many requests reached ``path``."""
        return sum(1 for r in self.received if r.path == path)

    def start(self) -> EchoServer:
        config = Config()
        # Hypercorn adopts the bound, listening socket: no window where the port is free.
        config.bind = [f"fd://{self._sock.detach()}"]
        config.accesslog = None
        config.graceful_timeout = 1
        ready = threading.Event()

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stopping = asyncio.Event()
            ready.set()
            await serve(
                cast("Framework", self.app),
                config,
                shutdown_trigger=self._stopping.wait,
                mode="asgi",
            )

        self._thread = threading.Thread(target=asyncio.run, args=(main(),), name="echo-server")
        self._thread.daemon = True
        self._thread.start()
        ready.wait(10)
        return self

    def close(self) -> None:
        if self._loop is not None and self._stopping is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(10)
            self._thread = None

    def __enter__(self) -> EchoServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """The ASGI application (lifespan and HTTP)."""
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path: str = scope["path"]
        query = scope["query_string"].decode("latin-1")
        record = Received(
            method=scope["method"],
            path=path,
            query=query,
            headers=tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]),
            body=body,
            client=tuple(scope["client"]),
        )
        with self._lock:
            self._received.append(record)
        if path == "/stream":
            parts = int(parse_qs(query).get("parts", ["3"])[0])
            await send({"type": "http.response.start", "status": 200, "headers": []})
            for n in range(parts):
                await send(
                    {"type": "http.response.body", "body": b"part %d\n" % n, "more_body": True}
                )
            await send({"type": "http.response.body", "body": b""})
            return
        status = 200
        if path.startswith("/status/"):
            status = int(path.rsplit("/", 1)[1])
            payload = json.dumps({"status": status}).encode()
        else:
            payload = json.dumps(
                {
                    "method": record.method,
                    "path": path,
                    "query": query,
                    "body_size": len(body),
                    "body_sha256": hashlib.sha256(body).hexdigest(),
                }
            ).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(payload)),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
