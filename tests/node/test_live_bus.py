"""Events and wake-ups between processes of one node, through PostgreSQL LISTEN/NOTIFY.

Two buses on the test database stand for two processes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from node.live_bus import ACCOUNTS_PER_NOTIFICATION, PgBus

pytestmark = pytest.mark.postgresql_only


class Process:
    def __init__(self, url: str) -> None:
        self.events: list[tuple[list[int], dict[str, Any]]] = []
        self.wakes = 0
        self.bus = PgBus(url, self.on_event, self.on_wake)

    def on_event(self, ids: list[int], event: dict[str, Any]) -> None:
        if event.get("type") == "bad":
            raise ValueError("not an event")
        self.events.append((ids, event))

    def on_wake(self) -> None:
        self.wakes += 1


@pytest.fixture
async def two(postgres_url: str) -> AsyncIterator[tuple[Process, Process]]:
    first, second = Process(postgres_url), Process(postgres_url)
    for process in (first, second):
        process.bus.start()
    loop = asyncio.get_running_loop()
    for process in (first, second):
        assert await loop.run_in_executor(None, process.bus.listening.wait, 10)
    yield first, second
    for process in (first, second):
        await loop.run_in_executor(None, process.bus.stop)


async def _until(check: Any, what: str) -> None:
    for _ in range(200):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def test_an_event_reaches_the_other_process_and_not_its_sender(
    two: tuple[Process, Process],
) -> None:
    first, second = two
    first.bus.send_event([3, 7], {"type": "post", "class_id": 2, "message": "abc"})
    await _until(lambda: second.events, "the event in the other process")
    assert second.events == [([3, 7], {"type": "post", "class_id": 2, "message": "abc"})]
    assert second.wakes == 1  # an event also means work for its workers (pushes)
    await asyncio.sleep(0.2)
    assert first.events == [] and first.wakes == 0


async def test_a_wake_up_reaches_the_other_process(two: tuple[Process, Process]) -> None:
    first, second = two
    second.bus.send_wake()
    await _until(lambda: first.wakes, "the wake-up")
    assert first.events == []


async def test_a_long_recipient_list_is_split_under_postgresql_s_payload_limit(
    two: tuple[Process, Process],
) -> None:
    first, second = two
    accounts = list(range(1_000_000, 1_000_000 + 2 * ACCOUNTS_PER_NOTIFICATION + 10))
    first.bus.send_event(accounts, {"type": "alert", "alert": "a1"})
    await _until(lambda: len(second.events) == 3, "three notifications")
    assert [a for ids, _ in second.events for a in ids] == accounts


async def test_what_the_hub_refuses_is_dropped_and_the_bus_goes_on(
    two: tuple[Process, Process],
) -> None:
    first, second = two
    first.bus.send_event([1], {"type": "bad"})
    first.bus.send_event([1], {"type": "post", "message": "x"})
    await _until(lambda: second.events, "the good event")
    assert second.events == [([1], {"type": "post", "message": "x"})]
