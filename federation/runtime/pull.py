"""Pull of missed ranges (NP/1 §7): serving our streams' pages, and pulling a peer's.

Serving: a peer may read a stream only if it is one of that stream's
destinations (it has a cursor on it), and sees only the activities
addressed to its users, with ``to`` set for it.  Pulling: after a gap, at
start-up and periodically, page by page from our ``applied_seq``, at most
two pulls in flight per peer; each page is checked like a transaction.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Coroutine, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from federation.errors import FederationError, NotAMember, TransactionError
from federation.runtime import inbox
from federation.runtime.client import FetchError
from federation.transaction import BATCH_BYTES, MAX_PULL_LIMIT, check_pull_page
from node.services.context import ServiceContext
from node.storage import activities as store

log = logging.getLogger("carnet.federation")
#: How often every followed stream is pulled, whatever happened (NP/1 §7).
ANTI_ENTROPY_SECONDS = 15 * 60.0


def serve_page(
    ctx: ServiceContext, peer_id: int, stream: str, after: int, limit: int
) -> dict[str, Any]:
    """``{"activities", "next_after", "head_seq"}`` of ``stream`` for the peer."""
    if not 0 <= after or not 1 <= limit <= MAX_PULL_LIMIT:
        raise TransactionError(f"after must be ≥ 0 and limit between 1 and {MAX_PULL_LIMIT}")
    row = store.select_stream(stream)
    if row is None or not store.has_cursor(peer_id, row.id):
        raise NotAMember("no user of your school may read this stream")
    found = store.page_for(peer_id, row.id, after, limit)
    activities, size, cut = [], 0, len(found) == limit
    for i, (_seq, body, recipients) in enumerate(found):
        size += len(body) + len(recipients)
        if i and size > BATCH_BYTES:  # the page stays under the reader's body limit
            found, cut = found[:i], True
            break
        activity = json.loads(body)
        activity["to"] = json.loads(recipients)
        activities.append(activity)
    # a full page accounts up to its last activity; a short one up to the head
    next_after = found[-1][0] if cut else max(row.head_seq, after)
    return {"activities": activities, "next_after": next_after, "head_seq": row.head_seq}


def stream_path(stream: str) -> str:
    """``/np/streams/{stream path}`` for a stream id (NP/1 §7)."""
    return "/np/streams/" + quote(urlsplit(stream).path.lstrip("/"), safe="/")


class Puller:
    """Pulls peers' streams, at most two pulls in flight per peer, one per stream; a peer's
    alerts stream has a slot of its own, so no backlog of class content delays an alert."""

    def __init__(self, fed: Any, handlers: Mapping[str, inbox.Handler]) -> None:
        self._fed = fed
        self._handlers = handlers
        self._per_peer: dict[int | tuple[int, str], asyncio.Semaphore] = {}
        self._running: dict[str, asyncio.Task[Any]] = {}

    def schedule(self, peer_id: int, origin: str, stream: str) -> None:
        """Pull ``stream`` soon (no-op if a pull of it is running)."""
        if stream in self._running and not self._running[stream].done():
            return
        task = asyncio.create_task(self.pull(peer_id, origin, stream), name=f"pull {stream}")
        self._running[stream] = task

    async def pull(self, peer_id: int, origin: str, stream: str) -> int:
        """Pull until caught up with the head; returns how many pages were applied."""
        fed = self._fed
        pages = 0
        slot = (peer_id, "alerts") if stream.endswith("/alerts") else peer_id
        async with self._per_peer.setdefault(slot, asyncio.Semaphore(2)):
            while True:
                after = await fed.storage.run(inbox.applied_seq, fed.ctx, peer_id, stream)
                path = f"{stream_path(stream)}?after={after}&limit={MAX_PULL_LIMIT}"
                try:
                    answer = await fed.client.signed(
                        "GET", origin, path, None, created=int(time.time())
                    )
                except FetchError as error:
                    log.warning("np: pulling %s failed: %s", stream, error)
                    return pages
                if answer.status != 200:
                    log.warning("np: pulling %s answered HTTP %d", stream, answer.status)
                    return pages
                try:
                    page = check_pull_page(answer.body, stream=stream, sender=origin, after=after)
                except FederationError as error:
                    log.warning("np: %s sent a bad page of %s: %s", origin, stream, error)
                    return pages
                applied = await fed.storage.run(
                    inbox.apply_pulled, fed.ctx, self._handlers, peer_id, stream,
                    page.after, page.next_after, page.activities,
                )  # fmt: skip
                pages += 1
                if applied >= page.head_seq or page.next_after == after:
                    return pages

    async def anti_entropy(
        self, first_delay: float = 3.0, every: float = ANTI_ENTROPY_SECONDS
    ) -> None:
        """Pull every followed stream soon after start-up, then every 15 min ± jitter.

        Push and pull converge: a lost transaction, or an activity a peer
        wrote while our node was down, arrives at the latest with this pass.
        """
        await asyncio.sleep(first_delay)
        while True:
            try:
                followed = await self._fed.storage.run(store.followed_streams)
                for peer_id, origin, stream in followed:
                    self.schedule(peer_id, origin, stream)
            except Exception:  # the next pass tries again
                log.exception("np: anti-entropy pass failed")
            await asyncio.sleep(every * random.uniform(0.8, 1.2))  # noqa: S311 (timing jitter)

    def run(self, key: str, work: Coroutine[Any, Any, Any]) -> None:
        """Run ``work`` in the background unless work under ``key`` is still running."""
        if key in self._running and not self._running[key].done():
            work.close()
            return
        self._running[key] = asyncio.create_task(work, name=key)

    async def wait(self) -> None:
        """Wait for the pulls running now (tests, shutdown)."""
        running = [t for t in self._running.values() if not t.done()]
        if running:
            await asyncio.gather(*running, return_exceptions=True)

    async def stop(self) -> None:
        for task in self._running.values():
            task.cancel()
        await self.wait()
