"""Delivers the notification outbox as Web Push messages, as a pipeline.

A pass (``run_once``) overlaps four stages, so that no slow step holds the
others:

1. claim due notifications in batches (``push_delivery.claim_due``);
2. encrypt one payload per device (``node.push.webpush``), in chunks, so
   the first pushes leave while later ones are encrypted: in a helper
   process (``node.push.encryptor``, started by the first claim of
   ``helper_from`` devices or more), so that this CPU work runs on another
   core instead of holding the interpreter the pages need; in a thread for
   small claims, while the helper starts, or if it stopped;
3. send each push as soon as it is ready (``node.push.client``): at most
   ``per_service`` requests in flight to one push service (a kept-alive
   connection each) and ``concurrency`` in all, each within a timeout.  A
   slow push service holds only its own slots, never the others';
4. record the answers of every notification whose devices have all
   answered (``push_delivery.record_results``), all that are ready in one
   transaction, while the next pushes are still on their way.

Claiming waits while ``backlog`` devices wait for an answer (backpressure),
so a pass never holds more than ``backlog`` devices plus one claim.  Order
does not matter: each answer is counted against its notification, which is
recorded once all of its devices have answered.

The server runs the worker on a thread with its own event loop (``start``):
encryption, TLS handshakes and HTTP parsing never run on the loop that
serves pages.  ``wake()`` (from any thread) runs a pass at once (a post was
just committed); otherwise the worker polls for notifications whose quiet
hours or retry delay have ended.  Tests drive ``run_once`` on their own loop.

What the outbox guarantees stays true: claimed rows are leased, so a
crashed worker's rows come due again; retries back off; 404/410 delete the
subscription; quiet hours were applied when the row was queued (alerts
ignore them); nothing is sent to an address that is not public.  Endpoints
are capability URLs: logs name the push service's host only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec

from node.config import NodeConfig
from node.push.client import PushClient, RefusedAddress, TransportError
from node.push.encryptor import Encryptor, HelperGone
from node.push.webpush import (
    PushRequest,
    VapidSigner,
    classify,
    encrypt_all,
    payload_bytes,
    request_headers,
)
from node.services import digests
from node.services import push_delivery as delivery
from node.services.context import ServiceContext
from node.storage.db import Storage
from node.workers import BackgroundTask

log = logging.getLogger("carnet.push")
POLL_SECONDS = 5.0
#: Notifications claimed per transaction.
BATCH = 250
#: Requests in flight to one push service (one kept-alive connection each).
PER_SERVICE = 100
#: Requests in flight to all push services together.
CONCURRENCY = 256
#: Devices claimed and not yet answered beyond which the worker stops claiming.
BACKLOG = 1000
#: Devices encrypted per trip to the encryption helper (or thread).
ENCRYPT_CHUNK = 64
#: A claim with this many devices starts the encryption helper process (``node.push.encryptor``).
HELPER_FROM = 200
#: Seconds one push may take, from looking the host up to the end of the answer.
TIMEOUT = 10.0


@dataclass
class _Pass:
    """What a pass has claimed and not recorded yet."""

    #: notification id → its devices not answered yet
    waiting: dict[int, int] = field(default_factory=dict)
    answers: dict[int, list[delivery.DeviceResult]] = field(default_factory=dict)
    #: every device answered, not recorded yet
    finished: dict[int, list[delivery.DeviceResult]] = field(default_factory=dict)
    #: devices claimed and not answered
    unanswered: int = 0
    claiming_done: bool = False
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    recordable: asyncio.Event = field(default_factory=asyncio.Event)

    def expect(self, notification_id: int, devices: int) -> None:
        self.waiting[notification_id] = devices
        self.answers[notification_id] = []
        self.unanswered += devices

    def answer(self, notification_id: int, result: delivery.DeviceResult) -> None:
        if notification_id not in self.waiting:
            return  # abandoned
        self.answers[notification_id].append(result)
        self.unanswered -= 1
        self.waiting[notification_id] -= 1
        if not self.waiting[notification_id]:
            del self.waiting[notification_id]
            self.finished[notification_id] = self.answers.pop(notification_id)
            self.recordable.set()
        self.answered.set()

    def abandon(self) -> None:
        """Forget every notification not fully answered: it will not be recorded."""
        self.waiting.clear()
        self.answers.clear()
        self.unanswered = 0
        self.answered.set()

    async def until_fewer_than(self, devices: int) -> None:
        while self.unanswered >= devices:
            self.answered.clear()
            await self.answered.wait()


async def _cancel(tasks: set[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


class PushWorker(BackgroundTask):
    name = "carnet-push"

    def __init__(
        self,
        config: NodeConfig,
        storage: Storage,
        ctx: ServiceContext,
        vapid_key: ec.EllipticCurvePrivateKey,
        *,
        client: PushClient | None = None,
        batch: int = BATCH,
        per_service: int = PER_SERVICE,
        concurrency: int = CONCURRENCY,
        backlog: int = BACKLOG,
        timeout: float = TIMEOUT,
        helper_from: int | None = HELPER_FROM,
    ) -> None:
        super().__init__()
        self._storage = storage
        self._ctx = ctx
        self._client = client
        self._batch = batch
        self._per_service = per_service
        self._concurrency = concurrency
        self._backlog = backlog
        self._timeout = timeout
        #: devices in one claim that start the encryption helper (None: never)
        self._helper_from = helper_from
        self._helper: Encryptor | None = None
        self._helper_start: asyncio.Task[None] | None = None
        #: VAPID ``sub``: the node's public URL, where push services can find its operator.
        self.signer = VapidSigner(vapid_key, config.public_url)
        # Only a node on plain-HTTP loopback (tests, the demo) may push to private addresses.
        parts = urlsplit(config.public_url)
        self._private_ok = parts.scheme == "http" and parts.hostname in (
            "127.0.0.1",
            "localhost",
            "::1",
        )
        # the worker's own thread and loop, once started
        self._thread: threading.Thread | None = None
        self._thread_loop: asyncio.AbstractEventLoop | None = None
        self._main: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None

    @property
    def client(self) -> PushClient:
        """The push client of the loop the worker runs on (made on first use)."""
        if self._client is None:
            self._client = PushClient(
                per_origin=self._per_service,
                limit=self._concurrency,
                timeout=self._timeout,
                private_ok=self._private_ok,
            )
        return self._client

    # -- one pass ----------------------------------------------------------------

    async def run_once(self) -> int:
        """Deliver every due notification, claim after claim; return how many rows were claimed.

        If a claim (the database) fails, the pushes on their way are
        abandoned, what was answered is recorded, and the error is raised:
        the abandoned rows stay leased and come due again after the lease.
        """
        # daily digests whose time has come become notifications this pass sends
        await self._storage.run(digests.form_due, self._ctx)
        work = _Pass()
        recorder = asyncio.create_task(self._record(work))
        senders: set[asyncio.Task[None]] = set()
        claimed = 0
        failure: Exception | None = None
        try:
            try:
                while not recorder.done():  # a failed recorder ends the claiming
                    await work.until_fewer_than(self._backlog)
                    jobs, count = await self._storage.run(
                        delivery.claim_due, self._ctx, self._batch
                    )
                    claimed += count
                    await self._dispatch(work, jobs, senders)
                    if count < self._batch:
                        break  # nothing else was due
            except Exception as error:
                failure = error
                await _cancel(senders)
                work.abandon()
            await work.until_fewer_than(1)
            work.claiming_done = True
            work.recordable.set()
            await recorder
        except BaseException:  # cancelled (stop), or recording failed
            await _cancel({*senders, recorder})
            raise
        if failure is not None:
            raise failure
        return claimed

    async def _dispatch(
        self, work: _Pass, jobs: list[delivery.PushJob], senders: set[asyncio.Task[None]]
    ) -> None:
        """Encrypt the jobs' pushes chunk by chunk and start sending each chunk at once."""
        devices = [(job, target) for job in jobs for target in job.targets]
        data = {job.notification_id: payload_bytes(job.payload) for job in jobs}
        for job in jobs:
            work.expect(job.notification_id, len(job.targets))
        if self._helper_from is not None and len(devices) >= self._helper_from:
            self._start_helper()
        for start in range(0, len(devices), ENCRYPT_CHUNK):
            chunk = devices[start : start + ENCRYPT_CHUNK]
            bodies = await self._encrypt(
                [(t.p256dh, t.auth, data[j.notification_id]) for j, t in chunk]
            )
            for (job, target), body in zip(chunk, bodies, strict=True):
                if isinstance(body, ValueError):  # a stored key that cannot be used
                    log.error("push to subscription %d not built: %s", target.subscription_id, body)
                    work.answer(
                        job.notification_id,
                        delivery.DeviceResult(target.subscription_id, "rejected"),
                    )
                    continue
                headers = request_headers(self.signer, target.endpoint, urgency=job.urgency)
                request = PushRequest(target.endpoint, headers, body)
                task = asyncio.create_task(
                    self._deliver(work, job.notification_id, target.subscription_id, request)
                )
                senders.add(task)
                task.add_done_callback(senders.discard)

    async def _encrypt(self, items: list[tuple[str, str, bytes]]) -> list[bytes | ValueError]:
        """ECDH, HKDF and AES for each push: CPU work, never on this loop.

        In the helper process once it is ready (``node.push.encryptor``),
        else in a thread.
        """
        helper = self._helper
        if helper is not None and helper.ready:
            try:
                return await helper.encrypt(items)
            except HelperGone as error:
                log.warning("push encryption helper stopped (%s): encrypting in a thread", error)
                self._helper = None
                await helper.aclose()
        return await asyncio.to_thread(encrypt_all, items)

    def _start_helper(self) -> None:
        """Start the encryption helper in the background; pushes go to a thread meanwhile."""
        if self._helper is not None:
            return
        helper = self._helper = Encryptor()

        async def start() -> None:
            try:
                await helper.start()
            except HelperGone as error:
                log.warning("push encryption helper did not start (%s)", error)
                if self._helper is helper:
                    self._helper = None
                await helper.aclose()

        self._helper_start = asyncio.create_task(start())

    async def _deliver(
        self, work: _Pass, notification_id: int, subscription_id: int, request: PushRequest
    ) -> None:
        outcome, retry_after = await self._send(request)
        work.answer(notification_id, delivery.DeviceResult(subscription_id, outcome, retry_after))

    async def _send(self, request: PushRequest) -> tuple[str, int | None]:
        host = urlsplit(request.url).hostname
        try:
            answer = await self.client.post(request.url, request.headers, request.body)
        except RefusedAddress:
            log.warning("push to %s refused: it resolves to a non-public address", host)
            return "rejected", None
        except TransportError as error:
            log.warning("push to %s failed: %s", host, error)
            return "retry", None
        except Exception:  # a bug, or a failure not foreseen: retried later, never left unanswered
            log.exception("push to %s failed", host)
            return "retry", None
        outcome = classify(answer.status, answer.retry_after)
        if outcome[0] not in ("ok", "gone"):
            log.warning("push to %s answered %s", host, answer.status)
        return outcome

    async def _record(self, work: _Pass) -> None:
        """Settle finished notifications, all that are ready in one transaction each time."""
        while True:
            if not work.finished:
                if work.claiming_done and not work.waiting:
                    return
                work.recordable.clear()
                await work.recordable.wait()
                continue
            ready, work.finished = work.finished, {}
            await self._storage.run(delivery.record_results, self._ctx, ready)

    # -- running on its own thread -----------------------------------------------

    async def start(self) -> None:
        """Run passes on a thread of the worker's own, with its own event loop."""
        if self._thread is not None:
            return
        started = threading.Event()
        self._thread = threading.Thread(
            target=self._thread_main, args=(started,), name=self.name, daemon=True
        )
        self._thread.start()
        await asyncio.to_thread(started.wait)

    def _thread_main(self, started: threading.Event) -> None:
        asyncio.run(self._serve(started))

    async def _serve(self, started: threading.Event) -> None:
        self._thread_loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._main = asyncio.current_task()
        started.set()
        try:
            await self._loop()
        except asyncio.CancelledError:
            pass  # stop(): end the thread quietly
        finally:
            await self._close()

    def wake(self) -> None:
        """Start a pass now (thread-safe; a no-op while the worker is not started)."""
        loop, event = self._thread_loop, self._wake
        if loop is not None and event is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closing: it is being stopped
                loop.call_soon_threadsafe(event.set)

    async def _loop(self) -> None:
        assert self._wake is not None
        while True:
            try:
                await self.run_once()
            except Exception:  # keep the worker alive; leased rows come due again
                log.exception("push worker pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)
            self._wake.clear()

    async def stop(self) -> None:
        thread, loop, main = self._thread, self._thread_loop, self._main
        if thread is not None:
            # cancel again until the thread ends: a cancellation that lands while a
            # pass is absorbing one (closing a connection, gathering results) is lost
            while thread.is_alive():
                if loop is not None and main is not None:
                    with contextlib.suppress(RuntimeError):  # already ended
                        loop.call_soon_threadsafe(main.cancel)
                await asyncio.to_thread(thread.join, 1.0)
            self._thread = self._thread_loop = self._main = self._wake = None
        else:
            await self._close()  # passes driven by hand (tests) on this loop

    async def _close(self) -> None:
        """Close the connections and end the helper (on the loop that made them)."""
        if self._helper_start is not None:
            await _cancel({self._helper_start})
            self._helper_start = None
        if self._helper is not None:
            await self._helper.aclose()
            self._helper = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None
