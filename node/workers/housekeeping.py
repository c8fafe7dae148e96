"""Runs ``services.housekeeping.purge_expired`` at start and then every hour."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from node.services import housekeeping
from node.services.context import ServiceContext
from node.storage.db import Storage

log = logging.getLogger("carnet.housekeeping")
INTERVAL_SECONDS = 3600.0


class HousekeepingWorker:
    def __init__(self, storage: Storage, ctx: ServiceContext) -> None:
        self._storage = storage
        self._ctx = ctx
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> housekeeping.Purged:
        purged = await self._storage.run(housekeeping.purge_expired, self._ctx)
        log.info("housekeeping: %s", purged)
        return purged

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:  # a failed pass is retried at the next interval
                log.exception("housekeeping pass failed")
            await asyncio.sleep(INTERVAL_SECONDS)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="carnet-housekeeping")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
