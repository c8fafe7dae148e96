"""Background workers: asyncio tasks started with the server, each exposing ``run_once``."""

from __future__ import annotations

import abc
import asyncio
import contextlib


class BackgroundTask(abc.ABC):
    """Start and stop one long-running ``_loop`` coroutine with the server."""

    name = "carnet-worker"

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None

    @abc.abstractmethod
    async def _loop(self) -> None:
        """Run until cancelled."""

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        task = self._task
        if task is not None:
            # cancel again until it ends: on Python 3.11 a cancellation that lands just
            # as ``asyncio.wait_for`` gets its result is swallowed, and the loop goes on
            while not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=1.0)
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self._task = None
