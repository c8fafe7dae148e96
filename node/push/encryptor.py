"""Encrypting push payloads in a helper process, next to the node's interpreter rather than in it.

A fan-out to 2,000 devices spends ~0.4 s of CPU on RFC 8291 encryption
(an ECDH per device).  In a thread of the node that CPU holds the
interpreter lock the pages need; in this helper it runs on the machine's
other core.  The push worker starts the helper for large fan-outs only,
encrypts in a thread while it starts, and falls back to the thread if the
helper dies.

The helper is ``python -m node.push.encryptor``: it imports only
``node.push.webpush`` and reads frames on stdin, answering each on stdout.
A frame is a 4-byte count, then per push three length-prefixed byte strings
(``p256dh``, ``auth``, the JSON); an answer is the count, then per push a
status byte (0: the body follows; 1: an error message follows) and a
length-prefixed body or message.  No pickle: the helper trusts its parent,
but there is no need to.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import sys
from typing import BinaryIO

from node.push.webpush import encrypt_all

_COUNT = struct.Struct(">I")


class HelperGone(Exception):
    """The helper process ended, or answered something that is not a frame."""


def _frame(items: list[tuple[str, str, bytes]]) -> bytes:
    out = bytearray(_COUNT.pack(len(items)))
    for p256dh, auth, data in items:
        for part in (p256dh.encode(), auth.encode(), data):
            out += _COUNT.pack(len(part)) + part
    return bytes(out)


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise EOFError
    return data


def serve(source: BinaryIO, sink: BinaryIO) -> None:
    """The helper's loop: one answer per frame, until the parent closes the pipe."""
    while True:
        try:
            (count,) = _COUNT.unpack(_read_exactly(source, 4))
            items = []
            for _ in range(count):
                p256dh, auth, data = (
                    _read_exactly(source, _COUNT.unpack(_read_exactly(source, 4))[0])
                    for _ in range(3)
                )
                items.append((p256dh.decode("latin-1"), auth.decode("latin-1"), data))
        except EOFError:
            return
        answer = bytearray(_COUNT.pack(count))
        for body in encrypt_all(items):
            if isinstance(body, ValueError):  # a bad stored key: that push only
                message = str(body).encode()
                answer += b"\x01" + _COUNT.pack(len(message)) + message
            else:
                answer += b"\x00" + _COUNT.pack(len(body)) + body
        sink.write(answer)
        sink.flush()


class Encryptor:
    """The helper process, driven from one event loop, one frame at a time."""

    def __init__(self) -> None:
        self._process: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()
        #: the helper answered: pushes may go to it
        self.ready = False

    async def start(self) -> None:
        """Start the helper and wait until it answers (an empty frame): then ``ready``.

        Raises:
            HelperGone: it could not start, or did not answer.
        """
        try:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "node.push.encryptor",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
        except OSError as error:
            raise HelperGone(type(error).__name__) from None
        await self.encrypt([])
        self.ready = True

    async def encrypt(self, items: list[tuple[str, str, bytes]]) -> list[bytes | ValueError]:
        """One body per push, or the ValueError that push's keys or JSON raised.

        Raises:
            HelperGone: the helper is not running or stopped answering.
        """
        process = self._process
        if process is None or process.stdin is None or process.stdout is None:
            raise HelperGone("not started")
        async with self._lock:
            try:
                process.stdin.write(_frame(items))
                await process.stdin.drain()
                (count,) = _COUNT.unpack(await process.stdout.readexactly(4))
                if count != len(items):
                    raise HelperGone("answered another frame")
                out: list[bytes | ValueError] = []
                for _ in range(count):
                    status = await process.stdout.readexactly(1)
                    (size,) = _COUNT.unpack(await process.stdout.readexactly(4))
                    payload = await process.stdout.readexactly(size)
                    out.append(payload if status == b"\x00" else ValueError(payload.decode()))
                return out
            except (ConnectionError, asyncio.IncompleteReadError) as error:
                self.ready = False
                raise HelperGone(type(error).__name__) from None

    async def aclose(self) -> None:
        """End the helper: close its input, then wait (or kill it after 5 s)."""
        process, self._process = self._process, None
        self.ready = False
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            async with asyncio.timeout(5):
                await process.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
