"""Fixtures for the federation runtime tests."""

from __future__ import annotations

import pytest
from quart import Quart


@pytest.fixture(autouse=True)
async def no_delivery(app: Quart) -> None:
    """These tests read what a peer would be sent, or send it themselves
    (``delivery.next_batch``); the server's own worker, woken by every write,
    would race them."""
    await app.extensions["carnet_delivery"].stop()
    # nor pull every followed stream 3 s after start-up (a test of more than 3 s on a
    # busy machine would see an unexpected request to its fake peer)
    for task in app.extensions["carnet_anti_entropy"]:
        task.cancel()
