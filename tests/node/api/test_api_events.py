"""Live updates over Server-Sent Events: ids and kinds reach the right people, and streams end with the session."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from quart import Quart
from quart.typing import TestHTTPConnectionProtocol as Connection

from node.live import LiveHub, StreamClosed
from node.services.context import ServiceContext
from node.storage.db import Storage
from tests.factories import api_login, csrf, make_school


async def next_chunk(connection: Connection, within: float = 5.0) -> bytes:
    return await asyncio.wait_for(connection.receive(), within)


def events_in(chunk: bytes) -> list[dict[str, Any]]:
    return [
        json.loads(line[len("data: ") :])
        for line in chunk.decode().splitlines()
        if line.startswith("data: ")
    ]


async def test_a_published_event_reaches_the_accounts_open_streams_only(
    app: Quart, storage: Storage, ctx: ServiceContext
) -> None:
    school = make_school(storage, ctx)
    teacher = app.test_client()
    admin = app.test_client()
    await api_login(teacher, "dubois@school.test")
    await api_login(admin, "admin@school.test")
    publish = app.extensions["carnet_live_publish"]

    async with (
        teacher.request("/api/v1/events") as stream,
        admin.request("/api/v1/events") as other,
    ):
        await stream.send_complete()
        await other.send_complete()
        assert b"retry: 5000" in await next_chunk(stream)
        assert b"connected" in await next_chunk(other)
        assert stream.status_code == 200
        assert stream.headers is not None
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        assert stream.headers["Cache-Control"] == "no-store"

        event = {"type": "post", "class_id": school.class_id, "message": "AbCdEfGhIjKlMnOpQrStUv"}
        assert publish([school.teacher.account_id], event) == 1
        assert events_in(await next_chunk(stream)) == [event]
        with pytest.raises(TimeoutError):  # the admin was not addressed
            await next_chunk(other, within=0.2)
        await stream.disconnect()
        await other.disconnect()
    await asyncio.sleep(0)
    assert app.extensions["carnet_live"].streams_of(school.teacher.account_id) == 0


async def test_the_stream_ends_when_the_session_does(
    app: Quart, storage: Storage, ctx: ServiceContext
) -> None:
    make_school(storage, ctx)
    app.config["CARNET_SSE_HEARTBEAT"] = 0.05
    browser = app.test_client()
    await api_login(browser, "dubois@school.test")
    async with browser.request("/api/v1/events") as stream:
        await stream.send_complete()
        assert b"connected" in await next_chunk(stream)
        assert b": heartbeat" in await next_chunk(stream)
        await browser.post("/api/v1/auth/logout", headers={"X-CSRF-Token": await csrf(browser)})
        chunks = b""
        while (chunk := await next_chunk(stream)) != b"":
            chunks += chunk
    assert b"data:" not in chunks


async def test_events_need_a_login(app: Quart) -> None:
    response = await app.test_client().get("/api/v1/events")
    assert response.status_code == 401


def test_events_carry_ids_and_kinds_never_content() -> None:
    hub = LiveHub()
    with pytest.raises(ValueError):
        hub.publish([1], {"type": "post", "text": "La sortie au musée est reportée à jeudi."})
    with pytest.raises(ValueError):
        hub.publish([1], {"type": "post", "body": {"text": "x"}})
    with pytest.raises(ValueError):
        hub.publish([1], {"kind": "post"})
    assert hub.publish([1], {"type": "post", "class_id": 3, "message": "x" * 22}) == 0


async def test_a_slow_reader_is_cut_off_and_the_oldest_stream_closes_first() -> None:
    hub = LiveHub(max_streams=2, queue_size=2)
    async with hub.subscribe(7) as slow:
        for i in range(3):
            hub.publish([7], {"type": "post", "n": i})
        assert (await slow.next(0.1)) == {"type": "post", "n": 1}  # the oldest made room
        with pytest.raises(StreamClosed):
            await slow.next(0.1)
    async with hub.subscribe(8) as first, hub.subscribe(8), hub.subscribe(8):
        assert first.closed
        assert hub.streams_of(8) == 2
    assert hub.streams_of(8) == 0


async def test_publishing_from_a_storage_thread_reaches_the_loop() -> None:
    hub = LiveHub()
    async with hub.subscribe(5) as stream:
        await asyncio.to_thread(hub.publish, [5], {"type": "post", "class_id": 1})
        assert await stream.next(1.0) == {"type": "post", "class_id": 1}
