"""Live updates inside one node process: a small publish/subscribe hub for Server-Sent Events.

Every open ``GET /api/v1/events`` stream subscribes for its account; code that
has just committed something calls ``publish(account_ids, event)`` and each
of those accounts' open streams receives the event.  Plain asyncio, no
framework: the hub lives in ``app.extensions["carnet_live"]``.

Events carry ids and kinds only (``{"type": "post", "class_id": 3,
"message": "<public id>"}``), never content: ``publish`` refuses anything
but ids, kinds, numbers and booleans.  The browser fetches what changed
through the JSON API, with its own permissions.

Across processes (several ``carnet serve`` on one PostgreSQL database),
``node.live_bus`` carries each event to the other processes' hubs.  Limits:
a slow reader's queue is bounded, and when it
overflows that stream is closed (``EventSource`` reconnects by itself);
an account holds at most ``max_streams`` streams, the oldest closed first.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

#: What a string value may look like: an id or a kind, never prose.
ID_OR_KIND = re.compile(r"[A-Za-z0-9_.:-]{0,64}")
#: Most keys an event may carry.
MAX_KEYS = 8


class StreamClosed(Exception):
    """The hub ended this stream (overflow, shutdown, too many streams)."""


class Stream:
    """One subscriber's queue of events; iterate it to receive them."""

    def __init__(self, hub: LiveHub, account_id: int, size: int) -> None:
        self.hub = hub
        self.account_id = account_id
        self._queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(size)
        self.closed = False

    def _offer(self, event: dict[str, Any]) -> None:
        if self.closed:
            return
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.close()

    def close(self) -> None:
        """End the stream: its reader gets ``StreamClosed`` after the events already queued."""
        if self.closed:
            return
        self.closed = True
        if self._queue.full():  # make room for the end marker
            with contextlib.suppress(asyncio.QueueEmpty):
                self._queue.get_nowait()
        self._queue.put_nowait(None)

    async def next(self, within: float | None = None) -> dict[str, Any] | None:
        """The next event, or None when ``within`` seconds pass first.

        Raises:
            StreamClosed: the hub ended this stream.
        """
        try:
            event = await asyncio.wait_for(self._queue.get(), within)
        except TimeoutError:
            return None
        if event is None:
            raise StreamClosed
        return event


class LiveHub:
    """Routes events to the open streams of the accounts they concern."""

    def __init__(self, max_streams: int = 10, queue_size: int = 64) -> None:
        self.max_streams = max_streams
        self.queue_size = queue_size
        self._streams: dict[int, list[Stream]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    @contextlib.asynccontextmanager
    async def subscribe(self, account_id: int) -> AsyncIterator[Stream]:
        """Open a stream for ``account_id`` for the duration of the ``async with``."""
        self._loop = asyncio.get_running_loop()
        stream = Stream(self, account_id, self.queue_size)
        if self._closed:
            stream.close()
        streams = self._streams.setdefault(account_id, [])
        streams.append(stream)
        while len(streams) > self.max_streams:
            streams.pop(0).close()
        try:
            yield stream
        finally:
            stream.close()
            remaining = self._streams.get(account_id, [])
            if stream in remaining:
                remaining.remove(stream)
            if not remaining:
                self._streams.pop(account_id, None)

    def publish(self, account_ids: Iterable[int], event: Mapping[str, Any]) -> int:
        """Send ``event`` to every open stream of these accounts; return how many got it.

        Safe to call from the event loop or from a worker thread (it then
        hands over to the loop).

        Raises:
            ValueError: the event is not a small mapping of short scalars
                with a string ``type`` (content must never travel here).
        """
        checked = check_event(event)
        targets = list(dict.fromkeys(account_ids))
        loop = self._loop
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is not None and running is not loop and loop.is_running():
            loop.call_soon_threadsafe(self._deliver, targets, checked)
            return sum(len(self._streams.get(a, ())) for a in targets)
        return self._deliver(targets, checked)

    def _deliver(self, account_ids: list[int], event: dict[str, Any]) -> int:
        count = 0
        for account_id in account_ids:
            for stream in list(self._streams.get(account_id, ())):
                stream._offer(dict(event))
                count += 1
        return count

    def streams_of(self, account_id: int) -> int:
        return len(self._streams.get(account_id, ()))

    def close(self) -> None:
        """End every stream (server shutdown)."""
        self._closed = True
        for streams in list(self._streams.values()):
            for stream in list(streams):
                stream.close()


def check_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``event`` if it holds ids and kinds only; ValueError otherwise."""
    if not isinstance(event, Mapping) or not isinstance(event.get("type"), str):
        raise ValueError("a live event is a mapping with a string 'type'")
    if len(event) > MAX_KEYS:
        raise ValueError("a live event carries ids and kinds only: too many keys")
    out: dict[str, Any] = {}
    for key, value in event.items():
        if not isinstance(key, str) or len(key) > 32:
            raise ValueError("live event keys are short strings")
        if isinstance(value, str) and not ID_OR_KIND.fullmatch(value):
            raise ValueError(f"live event value {key!r} is not an id or a kind")
        if value is not None and not isinstance(value, str | int | bool):
            raise ValueError(f"live event value {key!r} must be a string, number or boolean")
        out[key] = value
    return out
