"""The delivery worker: sends each due peer its batch, one in flight per peer, eight overall.

``wake()`` runs a pass at once (an activity was just committed, or a peer
just showed it is up); otherwise the worker polls for peers whose backoff
ended.  After five failures in a row a peer's breaker is open: the worker
probes its node document first and sends the batch only if the probe works.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time

from federation.runtime import delivery, keyrotation
from federation.runtime.client import Answer, FetchError
from federation.runtime.routes import Federation
from node.workers import BackgroundTask

log = logging.getLogger("carnet.federation")
POLL_SECONDS = 5.0
#: answers that mean "our batch is wrong", not "try later" (NP/1 §8)
PERMANENT = frozenset({400, 403, 413, 422})
#: 401 reasons a peer fixes on its side (its clock, our key after a refetch)
TRANSIENT_401 = frozenset({"unknown_key", "stale_signature"})


def _retry_after(answer: Answer) -> int | None:
    value = answer.headers.get("Retry-After", "")
    # ASCII digits only: int() refuses "²", which isdigit() accepts
    return int(value) if value.isascii() and value.isdigit() and len(value) < 10 else None


def _reason(answer: Answer) -> str:
    try:
        body = json.loads(answer.body)
        return f"HTTP {answer.status} {body.get('error', '')}: {body.get('message', '')}".strip()
    except (ValueError, AttributeError):
        return f"HTTP {answer.status}"


class DeliveryWorker(BackgroundTask):
    name = "carnet-federation"

    def __init__(self, fed: Federation, *, concurrency: int = 8) -> None:
        super().__init__()
        self._fed = fed
        self._slots = asyncio.Semaphore(concurrency)
        self._busy: set[int] = set()
        self._wake = asyncio.Event()
        #: deliveries started by the loop, each on its own: a peer that never answers
        #: (a blackhole: the client waits its whole timeout) holds up no other peer
        self._in_flight: set[asyncio.Task[bool]] = set()
        #: our key statements on their way (on their own too, for the same reason)
        self._statements: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    async def run_once(self) -> int:
        """Send one batch to every due peer and wait for them; return how many were accepted."""
        fed = self._fed
        await self._send_key_statements()
        due = await fed.storage.run(delivery.due_peers, fed.ctx)
        results = await asyncio.gather(*(self._deliver(p) for p in self._claim(due)))
        return sum(results)

    def _claim(self, due: list[int]) -> list[int]:
        """The due peers with nothing in flight, now marked in flight (one per peer)."""
        free = [p for p in due if p not in self._busy]
        self._busy.update(free)
        return free

    async def _send_key_statements(self) -> None:
        fed = self._fed
        try:  # our own key statements first: a peer needs them to accept the batches
            await keyrotation.send_statements(
                fed.storage, fed.ctx, fed.client,
                keyrotation.data_folder_keys(fed.ctx.config.data_dir, fed.ctx.signing_key),
            )  # fmt: skip
        except Exception:
            log.exception("sending this node's key statements failed")

    async def _start_due(self) -> None:
        """Start a delivery for every due peer with nothing in flight, without waiting."""
        fed = self._fed
        if self._statements is None or self._statements.done():
            self._statements = asyncio.create_task(self._send_key_statements(), name="np keys")
        due = await fed.storage.run(delivery.due_peers, fed.ctx)
        for peer_id in self._claim(due):
            task = asyncio.create_task(self._deliver_then_wake(peer_id), name=f"np {peer_id}")
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    async def _deliver_then_wake(self, peer_id: int) -> bool:
        accepted = await self._deliver(peer_id)
        if accepted:
            self._wake.set()  # more may be waiting behind that batch
        return accepted

    async def _deliver(self, peer_id: int) -> bool:
        """Send the peer its batch; the caller claimed the peer (``_claim``)."""
        fed = self._fed
        try:
            async with self._slots:
                batch = await fed.storage.run(delivery.next_batch, fed.ctx, peer_id)
                if batch is None:
                    return False
                if batch.fail_count >= delivery.BREAKER_AFTER:
                    try:
                        await fed.client.fetch_document(batch.origin)
                    except FetchError as error:
                        await self._failed(batch, f"probe failed: {error}")
                        return False
                try:
                    answer = await fed.client.signed(
                        "PUT", batch.origin, f"/np/inbox/txn/{batch.txn_id}", batch.body,
                        created=int(time.time()),
                    )  # fmt: skip
                except FetchError as error:
                    await self._failed(batch, str(error))
                    return False
                return await self._answered(batch, answer)
        finally:
            self._busy.discard(peer_id)

    async def _answered(self, batch: delivery.Batch, answer: Answer) -> bool:
        fed = self._fed
        if answer.status == 200:
            try:
                results = json.loads(answer.body)["results"]
                if not isinstance(results, dict):
                    raise TypeError
            except (ValueError, KeyError, TypeError):
                await self._failed(batch, "HTTP 200 without a results object")
                return False
            refused = await fed.storage.run(
                delivery.record_success, fed.ctx, batch.peer_id, batch.txn_id, results
            )
            for activity_id in refused:
                log.warning(
                    "np: %s refused %s: %s", batch.origin, activity_id, results[activity_id]
                )
            return True
        reason = _reason(answer)
        permanent = answer.status in PERMANENT
        if answer.status == 401:
            try:
                permanent = json.loads(answer.body).get("error") not in TRANSIENT_401
            except (ValueError, AttributeError):
                permanent = False
        await self._failed(batch, reason, permanent=permanent, retry_after=_retry_after(answer))
        return False

    async def _failed(
        self,
        batch: delivery.Batch,
        reason: str,
        *,
        permanent: bool = False,
        retry_after: int | None = None,
    ) -> None:
        log.warning(
            "np: delivery to %s failed (txn %s, try %d): %s",
            batch.origin, batch.txn_id, batch.attempts, reason,
        )  # fmt: skip
        await self._fed.storage.run(
            delivery.record_failure, self._fed.ctx, batch.peer_id, batch.txn_id, reason,
            permanent=permanent, retry_after=retry_after,
        )  # fmt: skip

    async def _loop(self) -> None:
        try:
            while True:
                self._wake.clear()
                try:
                    await self._start_due()
                except Exception:  # keep delivering; the batch stays stored and comes back
                    log.exception("federation delivery pass failed")
                # woken by a write, a peer that is back, or an accepted batch (more may
                # be waiting behind it); otherwise a backoff may have ended meanwhile
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)
        finally:
            tasks = [*self._in_flight, *([self._statements] if self._statements else [])]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
