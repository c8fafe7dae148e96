"""``carnet worker``: the background workers without HTTP, beside HTTP-only ``carnet serve``.

A large school or a district runs several ``carnet serve --no-workers``
processes behind its proxy and one (or more) ``carnet worker`` on the same
PostgreSQL database.  The workers share their outboxes safely (``SKIP
LOCKED`` and leases) and hear the HTTP processes' wake-ups through
``node.live_bus``.  On SQLite a node is one process: use ``carnet serve``.
"""

from __future__ import annotations

import asyncio
import signal

from quart import Quart

from node.storage.db import is_sqlite


class WorkerProcessError(Exception):
    """This node cannot run its workers in a process of their own; the message says why."""


def check_can_split(app: Quart) -> None:
    if is_sqlite(app.config["CARNET_STORAGE"].db):
        raise WorkerProcessError(
            "carnet worker needs PostgreSQL (database_url); on SQLite, run only carnet serve"
        )


async def run_until_stopped(app: Quart) -> None:
    """Start the app's workers, run until SIGTERM or SIGINT, then stop them cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await app.startup()
    try:
        await stop.wait()
    finally:
        await app.shutdown()
