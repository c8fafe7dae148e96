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
