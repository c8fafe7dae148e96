"""A small HTTP/1.1 client for push services: kept-alive connections per origin, bounded in flight.

Why not httpx here: a post to a school sends thousands of tiny POSTs to a
handful of origins, and httpx 0.28 (httpcore 1.0) spends milliseconds of
CPU per request in its connection pool, whose bookkeeping grows with the
connections it holds (encode/httpcore#1035).  Measured on the 2-core bench
machine, 2,000 POSTs with 64 in flight cost 5.7 ms of CPU each with one
``httpx.AsyncClient``, 1.7 ms with one client per connection, 0.35 ms with
h11 (the HTTP/1.1 state machine httpcore uses) over asyncio streams, and
0.1 ms with the few lines below.  On the node's single interpreter that CPU
is taken from the pages being served.

What it does and does not do:

- ``POST`` only, with a ``Content-Length`` body; targets and header values
  with control characters are refused (no header injection).
- The answer's status and ``Retry-After`` are returned.  Its (tiny) body is
  read to the end, by ``Content-Length`` or chunks, so the connection can
  be reused; a body longer than ``MAX_ANSWER_BYTES``, one that ends with the
  connection, ``Connection: close`` or HTTP/1.0 close it instead.  Interim
  (1xx) answers are skipped; anything that is not HTTP/1.x is an error.
- At most ``per_origin`` requests in flight per origin (one connection
  each), ``limit`` in all; idle connections are kept ``idle_seconds``.
- The host is resolved first and every address must be public
  (``RefusedAddress`` otherwise), unless the node itself runs on plain-HTTP
  loopback (tests, the demo).  The connection then goes to an address that
  was checked, so a name cannot pass the check and connect elsewhere.
  Lookups are reused for ``DNS_TTL_SECONDS``.
- TLS is verified with httpx's context (certifi's roots, or ``SSL_CERT_FILE``);
  no redirects, no proxy.
- One timeout bounds the whole exchange: lookup, connection, request, answer.
- A request that finds its kept-alive connection closed by the server
  before any byte of an answer (the server dropped it while idle) is sent
  once more on a new connection, as browsers do; any other failure is
  reported, never retried here.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import socket
import ssl
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

#: How long a host's addresses are reused.
DNS_TTL_SECONDS = 60.0
#: A push service answers with an empty or tiny body; more than this is not read.
MAX_ANSWER_BYTES = 4096
#: Idle connections older than this are closed instead of reused (servers close theirs too).
IDLE_SECONDS = 30.0
#: Hosts kept in the lookup cache (a handful of push services in practice).
MAX_HOSTS = 1000
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


class TransportError(Exception):
    """No answer: the lookup, the connection or the exchange failed, or timed out."""


class RefusedAddress(Exception):
    """The endpoint's name resolves to an address that is not public: nothing was sent."""


@dataclass(frozen=True)
class Answer:
    status: int
    retry_after: str | None


class _Stale(Exception):
    """The server closed a kept-alive connection before answering anything."""


@dataclass(eq=False)
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    idle_since: float = 0.0

    def usable(self, now: float) -> bool:
        return (
            not self.writer.is_closing()
            and not self.reader.at_eof()
            and now - self.idle_since < IDLE_SECONDS
        )

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing a broken transport may raise; it is gone
            self.writer.close()


def _unsafe(text: str) -> bool:
    """Whether ``text`` holds a character a request line or header must not (CR, LF, NUL…)."""
    return not text.isascii() or _CONTROL.search(text) is not None


def _token(headers: Mapping[str, str]) -> bool:
    """Whether every header name is a token and every value is free of control characters."""
    return all(
        _NAME.fullmatch(name) is not None and not _unsafe(value) for name, value in headers.items()
    )


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, str | None, bool]:
    """Status, ``Retry-After`` and whether the connection can carry another request.

    Raises:
        _Stale: the connection ended before any byte of an answer.
        TransportError: not an HTTP/1.x answer, or it ended early.
    """
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as error:
        if not error.partial:
            raise _Stale from None
        raise TransportError("the connection closed mid-answer") from None
    while True:
        lines = head[:-4].split(b"\r\n")
        version, _, rest = lines[0].partition(b" ")
        code = rest[:3]
        if version not in (b"HTTP/1.1", b"HTTP/1.0") or len(code) != 3 or not code.isdigit():
            raise TransportError("not an HTTP/1.x answer")
        status = int(code)
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if not colon or not name or name != name.strip():
                raise TransportError("a malformed header")
            name = name.lower()
            if name in headers and name in (b"content-length", b"transfer-encoding"):
                raise TransportError("a repeated framing header")
            headers[name] = value.strip()
        if not 100 <= status < 200:
            break
        if status == 101:
            raise TransportError("an unexpected protocol switch")
        head = await reader.readuntil(b"\r\n\r\n")  # an interim answer: the final one follows
    retry = headers.get(b"retry-after")
    retry_after = retry.decode("latin-1") if retry is not None else None
    tokens = {t.strip() for t in headers.get(b"connection", b"").lower().split(b",")}
    reusable = b"close" not in tokens and (version == b"HTTP/1.1" or b"keep-alive" in tokens)
    if status in (204, 304):
        return status, retry_after, reusable
    if b"transfer-encoding" in headers:
        if headers[b"transfer-encoding"].lower() != b"chunked":
            return status, retry_after, False  # an encoding not read here: drop the connection
        read = 0
        while True:
            size_line = await reader.readuntil(b"\r\n")
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise TransportError("a malformed chunk") from None
            if size < 0:
                raise TransportError("a malformed chunk")
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                    pass
                return status, retry_after, reusable
            read += size
            if read > MAX_ANSWER_BYTES:  # not worth reading: close instead
                return status, retry_after, False
            if (await reader.readexactly(size + 2))[-2:] != b"\r\n":
                raise TransportError("a malformed chunk")
    length = headers.get(b"content-length")
    if length is None:  # the body ends with the connection: not read
        return status, retry_after, False
    if not length.isdigit():
        raise TransportError("a malformed Content-Length")
    size = int(length)
    if size > MAX_ANSWER_BYTES:
        return status, retry_after, False
    if size:
        await reader.readexactly(size)
    return status, retry_after, reusable


class _Origin:
    def __init__(self, slots: int) -> None:
        self.slots = asyncio.Semaphore(slots)
        #: idle connections, the most recently used last
        self.idle: deque[_Connection] = deque()

    def take(self, now: float) -> _Connection | None:
        while self.idle:
            conn = self.idle.pop()
            if conn.usable(now):
                return conn
            conn.close()
        return None


class PushClient:
    """Sends POSTs to push services; one instance per event loop (it holds that loop's sockets)."""

    def __init__(
        self,
        *,
        per_origin: int,
        limit: int,
        timeout: float,
        private_ok: bool = False,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._per_origin = per_origin
        self._all = asyncio.Semaphore(limit)
        self._timeout = timeout
        self._private_ok = private_ok
        self._ssl = ssl_context
        self._origins: dict[tuple[str, str, int], _Origin] = {}
        #: (host, port) → (addresses, loop time they expire)
        self._resolved: dict[tuple[str, int], tuple[list[tuple[str, int]], float]] = {}
        #: connections opened so far (tests and the benchmark count them)
        self.connections_opened = 0

    async def post(self, url: str, headers: Mapping[str, str], body: bytes) -> Answer:
        """POST ``body`` to ``url`` and return the answer's status.

        Raises:
            RefusedAddress: the host resolves to a non-public address.
            TransportError: no answer (lookup, connection, TLS, protocol,
                timeout), or a request that cannot be written safely.
        """
        parts = urlsplit(url)
        host = parts.hostname
        if parts.scheme not in ("http", "https") or not host:
            raise TransportError(f"not an http(s) URL: {parts.scheme}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if " " in target or _unsafe(target) or _unsafe(parts.netloc) or not _token(headers):
            raise TransportError("a target or header that HTTP does not allow")
        lines = [f"POST {target} HTTP/1.1", f"Host: {parts.netloc}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append(f"Content-Length: {len(body)}")
        request = "\r\n".join(lines).encode("ascii") + b"\r\n\r\n" + body
        key = (parts.scheme, host, port)
        origin = self._origins.get(key)
        if origin is None:
            origin = self._origins[key] = _Origin(self._per_origin)
        # the origin's slot first: requests to a slow service queue for its own
        # slots and do not hold any of the shared ones meanwhile
        async with origin.slots, self._all:
            try:
                async with asyncio.timeout(self._timeout):
                    return await self._exchange(origin, key, request)
            except TimeoutError:
                raise TransportError("timed out") from None

    async def _exchange(self, origin: _Origin, key: tuple[str, str, int], request: bytes) -> Answer:
        loop = asyncio.get_running_loop()
        conn = origin.take(loop.time())
        if conn is not None:
            try:
                return await self._send(origin, conn, request)
            except _Stale:
                pass  # closed while idle: once more on a new connection
        conn = await self._connect(key)
        try:
            return await self._send(origin, conn, request)
        except _Stale:
            raise TransportError("the server closed the connection without answering") from None

    async def _send(self, origin: _Origin, conn: _Connection, request: bytes) -> Answer:
        try:
            try:
                conn.writer.write(request)
                await conn.writer.drain()
            except ConnectionError:
                raise _Stale from None
            # a reset while reading is not retried: the server may have taken the push
            status, retry_after, reusable = await _read_answer(conn.reader)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as error:
            conn.close()
            raise TransportError(type(error).__name__) from None
        except BaseException:  # _Stale, TransportError, cancellation (timeout): not reusable
            conn.close()
            raise
        if reusable:
            conn.idle_since = asyncio.get_running_loop().time()
            origin.idle.append(conn)
        else:
            conn.close()
        return Answer(status, retry_after)

    async def _connect(self, key: tuple[str, str, int]) -> _Connection:
        scheme, host, port = key
        addresses = await self.resolve(host, port)
        context = None
        if scheme == "https":
            if self._ssl is None:
                # the node's other outgoing requests' trust: certifi, or SSL_CERT_FILE/_DIR
                self._ssl = httpx.create_ssl_context()
                self._ssl.set_alpn_protocols(["http/1.1"])
            context = self._ssl
        error: Exception | None = None
        for address, address_port in addresses:
            try:
                reader, writer = await asyncio.open_connection(
                    address,
                    address_port,
                    ssl=context,
                    server_hostname=host if context is not None else None,
                )
            except (OSError, ValueError) as failure:  # refused, unreachable, TLS: the next one
                error = failure
                continue
            self.connections_opened += 1
            return _Connection(reader, writer)
        raise TransportError(type(error).__name__ if error else "no address")

    async def resolve(self, host: str, port: int) -> list[tuple[str, int]]:
        """The addresses to connect to for ``host``, each checked to be public.

        Raises:
            RefusedAddress: any of them is private, loopback, link-local,
                reserved… (``ipaddress``'s ``is_global`` is false), unless
                private addresses are allowed.
            TransportError: the name does not resolve.
        """
        loop = asyncio.get_running_loop()
        known = self._resolved.get((host, port))
        if known is not None and known[1] > loop.time():
            addresses = known[0]
        else:
            try:
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except (OSError, UnicodeError) as error:  # UnicodeError: a name IDNA cannot encode
                raise TransportError(f"lookup failed: {type(error).__name__}") from None
            addresses = list(dict.fromkeys((str(i[4][0]), int(i[4][1])) for i in infos))
            if len(self._resolved) >= MAX_HOSTS:
                self._resolved.clear()
            self._resolved[(host, port)] = (addresses, loop.time() + DNS_TTL_SECONDS)
        if not addresses:
            raise TransportError("no address")
        if not self._private_ok and not all(
            ipaddress.ip_address(address).is_global for address, _ in addresses
        ):
            raise RefusedAddress(host)
        return addresses

    async def aclose(self) -> None:
        """Close every idle connection (those in use close when their request ends)."""
        closing = []
        for origin in self._origins.values():
            while origin.idle:
                conn = origin.idle.pop()
                conn.close()
                closing.append(conn.writer)
        self._origins.clear()
        for writer in closing:
            with contextlib.suppress(Exception):
                await writer.wait_closed()
