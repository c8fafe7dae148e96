"""Delivers the notification outbox as Web Push messages.

Each pass claims a bounded batch of due notifications
(``push_delivery.claim_due``), encrypts one payload per device and signs
VAPID tokens in a thread (``node.push.webpush``), posts them with one shared
``httpx.AsyncClient`` (at most ``concurrency`` requests in flight, each with
a timeout), then records every answer in one transaction
(``push_delivery.record_results``).  ``wake()`` runs a pass at once (a post
was just committed); otherwise the worker polls for notifications whose
quiet hours or retry delay have ended.

Endpoints are capability URLs: logs name the push service's host only.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from urllib.parse import urlsplit

import httpx
from cryptography.hazmat.primitives.asymmetric import ec

from node.config import NodeConfig
from node.push.webpush import PushRequest, VapidSigner, build_request, classify
from node.services import push_delivery as delivery
from node.services.context import ServiceContext
from node.storage.db import Storage
from node.workers import BackgroundTask

log = logging.getLogger("carnet.push")
POLL_SECONDS = 5.0
#: How long an endpoint host's "every address is public" answer is reused.
DNS_TTL_SECONDS = 60.0
#: A push service answers with an empty or tiny body; more than this is not read.
MAX_ANSWER_BYTES = 4096


class PushWorker(BackgroundTask):
    name = "carnet-push"

    def __init__(
        self,
        config: NodeConfig,
        storage: Storage,
        ctx: ServiceContext,
        vapid_key: ec.EllipticCurvePrivateKey,
        *,
        client: httpx.AsyncClient | None = None,
        batch: int = 50,
        concurrency: int = 16,
        timeout: float = 10.0,
    ) -> None:
        super().__init__()
        self._storage = storage
        self._ctx = ctx
        self._client = client
        self._batch = batch
        self._timeout = timeout
        self._slots = asyncio.Semaphore(concurrency)
        self._concurrency = concurrency
        #: (host, port) → (public?, loop time the answer expires)
        self._resolved: dict[tuple[str | None, int], tuple[bool, float]] = {}
        self._wake = asyncio.Event()
        #: VAPID ``sub``: the node's public URL, where push services can find its operator.
        self.signer = VapidSigner(vapid_key, config.public_url)
        # Only a node on plain-HTTP loopback (tests, the demo) may push to private addresses.
        parts = urlsplit(config.public_url)
        self._private_ok = parts.scheme == "http" and parts.hostname in (
            "127.0.0.1",
            "localhost",
            "::1",
        )

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self._timeout,
                follow_redirects=False,
                # one kept-alive connection per request in flight: a post to a
                # school sends thousands of pushes to a handful of push services
                limits=httpx.Limits(
                    max_connections=self._concurrency,
                    max_keepalive_connections=self._concurrency,
                ),
            )
        return self._client

    def wake(self) -> None:
        self._wake.set()

    async def run_once(self) -> int:
        """Deliver one batch of due notifications; return how many were claimed."""
        jobs, claimed = await self._storage.run(delivery.claim_due, self._ctx, self._batch)
        if not jobs:
            return claimed
        # ECDH and AES for every device, plus any VAPID signature, off the loop.
        prepared = await asyncio.to_thread(self._prepare, jobs)
        answers = await asyncio.gather(*(self._send(request) for _, _, request in prepared))
        results: dict[int, list[delivery.DeviceResult]] = {j.notification_id: [] for j in jobs}
        for (notification_id, subscription_id, _), (outcome, retry_after) in zip(
            prepared, answers, strict=True
        ):
            results[notification_id].append(
                delivery.DeviceResult(subscription_id, outcome, retry_after)
            )
        await self._storage.run(delivery.record_results, self._ctx, results)
        return claimed

    def _prepare(self, jobs: list[delivery.PushJob]) -> list[tuple[int, int, PushRequest]]:
        prepared = []
        for job in jobs:
            for target in job.targets:
                request = build_request(
                    self.signer,
                    target.endpoint,
                    target.p256dh,
                    target.auth,
                    job.payload,
                    urgency=job.urgency,
                )
                prepared.append((job.notification_id, target.subscription_id, request))
        return prepared

    async def _public(self, host: str | None, port: int) -> bool:
        """Whether every address the endpoint's name resolves to is public (no push into the LAN).

        Subscriptions are checked for IP literals and local names when stored; a
        public name can still resolve to a private address.  The lookup here and
        the connection's own may differ (DNS rebinding): this narrows, it does
        not close, that path.
        """
        if self._private_ok:
            return True
        loop = asyncio.get_running_loop()
        known = self._resolved.get((host, port))
        if known is not None and known[1] > loop.time():
            return known[0]
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError:
            return True  # unresolvable: the request fails on its own and is retried
        public = all(ipaddress.ip_address(info[4][0]).is_global for info in infos)
        if len(self._resolved) > 1000:  # a handful of push services in practice
            self._resolved.clear()
        self._resolved[(host, port)] = (public, loop.time() + DNS_TTL_SECONDS)
        return public

    async def _send(self, request: PushRequest) -> tuple[str, int | None]:
        parts = urlsplit(request.url)
        host = parts.hostname
        if not await self._public(host, parts.port or 443):
            log.warning("push to %s refused: it resolves to a non-public address", host)
            return "rejected", None
        async with self._slots:
            try:
                async with self.client.stream(
                    "POST", request.url, content=request.body, headers=request.headers
                ) as response:
                    outcome = classify(response.status_code, response.headers.get("Retry-After"))
                    # Read the (tiny) answer to its end so the connection goes back
                    # to the pool; an unread one is closed, and the next push pays
                    # a new TCP and TLS handshake.  A huge answer is not read.
                    read = 0
                    async for chunk in response.aiter_raw():
                        read += len(chunk)
                        if read > MAX_ANSWER_BYTES:
                            break
            except httpx.HTTPError as error:
                log.warning("push to %s failed: %s", host, type(error).__name__)
                return "retry", None
        if outcome[0] not in ("ok", "gone"):
            log.warning("push to %s answered %s", host, response.status_code)
        return outcome

    async def _loop(self) -> None:
        while True:
            claimed = 0
            try:
                claimed = await self.run_once()
            except Exception:  # keep the worker alive; leased rows come due again
                log.exception("push worker pass failed")
            if claimed >= self._batch:
                continue  # more are due: no pause between full batches
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)
            self._wake.clear()

    async def stop(self) -> None:
        await super().stop()
        if self._client is not None:
            await self._client.aclose()
            self._client = None
