"""Sends queued texts through the SMS gateway.

The services queue a text in the same transaction that decides to send it;
this worker picks queued texts up, hands them to the gateway and records the
result.  ``wake()`` makes it run at once (a code was just queued); otherwise
it polls every few seconds for retries that have come due, and for
emergency alerts whose SMS delay has passed (``alerts.escalate_due``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from node.config import NodeConfig
from node.services import alerts, sms_outbox
from node.services.context import ServiceContext
from node.sms import SmsGateway, make_gateway
from node.storage.db import Storage
from node.workers import BackgroundTask

log = logging.getLogger("carnet.sms")
POLL_SECONDS = 5.0
#: Texts claimed per pass, and handed to the gateway at once.
BATCH = 100
CONCURRENCY = 8


class SmsWorker(BackgroundTask):
    name = "carnet-sms"

    def __init__(
        self,
        config: NodeConfig,
        storage: Storage,
        ctx: ServiceContext,
        gateway: SmsGateway | None = None,
    ) -> None:
        super().__init__()
        self._config = config
        self._storage = storage
        self._ctx = ctx
        self._gateway = gateway
        self._wake = asyncio.Event()

    @property
    def gateway(self) -> SmsGateway:
        if self._gateway is None:
            self._gateway = make_gateway(self._config.sms, self._config.data_dir)
        return self._gateway

    def wake(self) -> None:
        self._wake.set()

    async def run_once(self) -> int:
        """Escalate due alerts, then send every text that is due; return how many were attempted."""
        if await self._storage.run(alerts.escalate_due, self._ctx):
            log.info("emergency alert: texting guardians who have not acknowledged")
        attempted = 0
        while True:
            due = await self._storage.run(sms_outbox.due, self._ctx, BATCH)
            # a few texts at a time: 2,000 alert copies must not queue behind one another
            gate = asyncio.Semaphore(CONCURRENCY)
            await asyncio.gather(*(self._send(text, gate) for text in due))
            attempted += len(due)
            if len(due) < BATCH:
                return attempted

    async def _send(self, text: sms_outbox.QueuedText, gate: asyncio.Semaphore) -> None:
        async with gate:
            try:
                result = await self.gateway.send(
                    text.recipient, text.body, reference=text.reference, urgent=text.urgent
                )
            except ValueError as error:  # a number the gateway refuses: fail this text only
                await self._storage.run(
                    sms_outbox.record_result, self._ctx, text.id, "failed", None, str(error), False
                )
                log.warning("SMS %s refused by the gateway: %s", text.reference[:8], error)
                return
            await self._storage.run(
                sms_outbox.record_result,
                self._ctx,
                text.id,
                result.status.value,
                result.provider_id,
                result.error,
                result.retryable,
            )
            if result.status.value != "sent":
                log.warning("SMS %s not sent: %s", text.reference[:8], result.error)

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:  # keep the worker alive; the text stays queued and is retried
                log.exception("SMS worker pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)
            self._wake.clear()

    async def stop(self) -> None:
        await super().stop()
        if self._gateway is not None:
            await self._gateway.aclose()
