"""Just enough HTTP/1.1 framing to relay messages byte for byte (for the fault proxy).

A request is read with its exact bytes (head and framed body) so that it can
be forwarded unchanged; a response is copied piece by piece as it arrives,
so a streamed answer (Server-Sent Events, chunked) flows through. Framing:
``Content-Length``, ``Transfer-Encoding: chunked`` (extensions and trailers
kept), no body for HEAD, 1xx, 204 and 304, else until the connection ends.

Rule: nothing here changes a byte; it only finds where a message ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

#: Longest request or response head accepted (NP/1 structured fields are ≤ 16 KiB each).
HEAD_LIMIT = 256 * 1024
#: Bytes copied at a time when relaying a body.
PIECE = 64 * 1024


class BadMessage(ValueError):
    """Bytes that are not an HTTP/1.1 message the proxy can frame."""


@dataclass
class Request:
    """One request as read: its exact bytes, and what the proxy needs to know about it."""

    head: bytes
    raw_body: bytes
    body: bytes
    method: str
    target: str
    version: str
    headers: tuple[tuple[str, str], ...]
    chunked: bool
    close: bool


def _field(headers: tuple[tuple[str, str], ...], name: str) -> str:
    return ", ".join(v for k, v in headers if k.lower() == name)


def _tokens(value: str) -> set[str]:
    return {t.strip().lower() for t in value.split(",") if t.strip()}


def _parse_head(head: bytes) -> tuple[str, tuple[tuple[str, str], ...]]:
    lines = head[:-4].decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise BadMessage(f"bad header line {line!r}")
        headers.append((name, value.strip(" \t")))
    return lines[0], tuple(headers)


async def _chunks(reader: asyncio.StreamReader) -> AsyncIterator[tuple[bytes, bytes]]:
    """A chunked body as (raw bytes, payload) pieces, the last one the zero chunk and trailers."""
    while True:
        line = await reader.readuntil(b"\r\n")
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise BadMessage(f"bad chunk size line {line!r}") from None
        if size == 0:
            raw = line
            while True:
                trailer = await reader.readuntil(b"\r\n")
                raw += trailer
                if trailer == b"\r\n":
                    break
            yield raw, b""
            return
        data = await reader.readexactly(size + 2)
        if not data.endswith(b"\r\n"):
            raise BadMessage("chunk data not followed by CRLF")
        yield line + data, data[:-2]


def _content_length(headers: tuple[tuple[str, str], ...]) -> int | None:
    value = _field(headers, "content-length")
    if not value:
        return None
    lengths = {v.strip() for v in value.split(",")}
    if len(lengths) != 1 or not next(iter(lengths)).isdigit():
        raise BadMessage(f"bad Content-Length {value!r}")
    return int(next(iter(lengths)))


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    """Read one request, keeping its exact bytes; ``None`` on a clean end of connection."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial.strip():
            return None
        raise
    request_line, headers = _parse_head(head)
    parts = request_line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadMessage(f"bad request line {request_line!r}")
    method, target, version = parts
    chunked = "chunked" in _tokens(_field(headers, "transfer-encoding"))
    if chunked:
        raw, body = b"", b""
        async for piece, payload in _chunks(reader):
            raw += piece
            body += payload
    else:
        length = _content_length(headers) or 0
        raw = body = await reader.readexactly(length) if length else b""
    connection = _tokens(_field(headers, "connection"))
    close = "close" in connection or (version == "HTTP/1.0" and "keep-alive" not in connection)
    return Request(head, raw, body, method, target, version, headers, chunked, close)


class Relay:
    """Writes an answer to the client one piece behind.

    The proxy records a request's outcome before it writes the answer's last
    piece, so a test that has its answer always finds the record complete.
    With no client (``drop_response``), pieces are read and dropped.
    """

    def __init__(self, out: asyncio.StreamWriter | None) -> None:
        self.out = out
        self.held = b""

    async def write(self, data: bytes) -> None:
        if self.out is None:
            return
        if self.held:
            self.out.write(self.held)
            await self.out.drain()
        self.held = data

    async def finish(self) -> None:
        if self.out is not None and self.held:
            self.out.write(self.held)
            self.held = b""
            await self.out.drain()


async def relay_response(
    reader: asyncio.StreamReader, relay: Relay, method: str
) -> tuple[int, bool]:
    """Copy one response from ``reader`` to ``relay`` as it arrives (all but its last piece).

    Returns:
        The final status code, and whether the upstream connection may be reused.
    """
    while True:
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, headers = _parse_head(head)
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            raise BadMessage(f"bad status line {status_line!r}")
        status = int(parts[1])
        await relay.write(head)
        if not (100 <= status < 200) or status == 101:
            break  # interim 1xx answers are relayed, and the real one follows
    connection = _tokens(_field(headers, "connection"))
    keep = "close" not in connection and not (
        parts[0] == "HTTP/1.0" and "keep-alive" not in connection
    )
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        pass  # no body, whatever the headers say
    elif "chunked" in _tokens(_field(headers, "transfer-encoding")):
        async for piece, _ in _chunks(reader):
            await relay.write(piece)
    elif (length := _content_length(headers)) is not None:
        while length:
            data = await reader.readexactly(min(length, PIECE))
            length -= len(data)
            await relay.write(data)
    else:  # delimited by the end of the connection
        keep = False
        while data := await reader.read(PIECE):
            await relay.write(data)
    return status, keep
