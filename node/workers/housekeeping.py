"""Runs ``services.housekeeping.purge_expired`` at start and then every hour."""

from __future__ import annotations

import asyncio
import logging

from node.services import housekeeping
from node.services.context import ServiceContext
from node.storage.db import Storage
from node.workers import BackgroundTask

log = logging.getLogger("carnet.housekeeping")
INTERVAL_SECONDS = 3600.0


class HousekeepingWorker(BackgroundTask):
    name = "carnet-housekeeping"

    def __init__(self, storage: Storage, ctx: ServiceContext) -> None:
        super().__init__()
        self._storage = storage
        self._ctx = ctx

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
