"""The SMS outbox hands each text to one worker at a time, and retries a worker's lost texts.

With several node processes on PostgreSQL each takes due texts with ``SKIP
LOCKED`` and leases them; the same rule holds for one process on SQLite.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt

import pytest
from quart import Quart

from node.services import sms_outbox
from node.services.context import ServiceContext
from node.storage.db import Storage, write_transaction


@pytest.fixture(autouse=True)
async def no_sms_worker(app: Quart) -> None:
    """The app's own worker would take the texts these tests take by hand."""
    await app.extensions["carnet_sms"].stop()
    # a pass it began may still be running in a storage thread (cancelling the task does
    # not stop it) and could lease the texts queued next: let it end first
    await asyncio.sleep(1.0)


def _queue(storage: Storage, ctx: ServiceContext, count: int) -> list[str]:
    def queue() -> list[str]:
        with write_transaction():
            return [
                sms_outbox.enqueue(ctx, f"+3361234{i:04d}", "first-login", f"Code {i}")
                for i in range(count)
            ]

    return storage.call(queue)


def test_a_text_taken_by_one_worker_is_not_taken_by_another(
    storage: Storage, ctx: ServiceContext
) -> None:
    queued = _queue(storage, ctx, 3)
    first = storage.call(sms_outbox.due, ctx, 2)
    second = storage.call(sms_outbox.due, ctx, 2)
    assert [t.reference for t in first + second] == queued
    assert storage.call(sms_outbox.due, ctx, 2) == []


def test_a_lost_worker_s_texts_are_sent_again_after_the_lease_and_sent_ones_are_not(
    storage: Storage, ctx: ServiceContext
) -> None:
    sent, lost = _queue(storage, ctx, 2)
    taken = storage.call(sms_outbox.due, ctx, 10)
    done = next(t for t in taken if t.reference == sent)
    storage.call(sms_outbox.record_result, ctx, done.id, "sent", "p-1", None, False)
    later = dataclasses.replace(
        ctx, clock=lambda: ctx.now() + sms_outbox.LEASE + dt.timedelta(seconds=1)
    )
    assert storage.call(sms_outbox.due, ctx, 10) == []  # still leased
    assert [t.reference for t in storage.call(sms_outbox.due, later, 10)] == [lost]
