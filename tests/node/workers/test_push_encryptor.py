"""The encryption helper process: what it returns opens in the browser, and its death is survived."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from quart import Quart

from node.push.encryptor import Encryptor, HelperGone, _frame, serve
from node.push.webpush import MAX_PLAINTEXT
from node.services import notifications
from node.storage import notifications as store
from node.storage.db import Storage
from node.workers.push import PushWorker
from tests.factories import School, make_school
from tests.push_factories import FakeBrowser, FakePushService, fake_browser


@pytest.fixture
async def helper() -> AsyncIterator[Encryptor]:
    encryptor = Encryptor()
    await encryptor.start()
    yield encryptor
    await encryptor.aclose()


async def test_the_helper_encrypts_for_each_browser_and_reports_bad_keys(helper: Encryptor) -> None:
    assert helper.ready
    browsers = [FakeBrowser(f"https://push.example/{n}") for n in range(3)]
    items = [(b.p256dh, b.auth, json.dumps({"n": n}).encode()) for n, b in enumerate(browsers)]
    items.insert(1, ("BA" + "A" * 85, browsers[0].auth, b"{}"))  # not a P-256 point
    items.append((browsers[0].p256dh, browsers[0].auth, b"x" * (MAX_PLAINTEXT + 1)))
    bodies = await helper.encrypt(items)
    assert isinstance(bodies[1], ValueError) and isinstance(bodies[4], ValueError)
    good = [body for body in bodies if isinstance(body, bytes)]
    opened = [
        b.open(httpx.Request("POST", b.endpoint, content=body))
        for b, body in zip(browsers, good, strict=True)
    ]
    assert opened == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert await helper.encrypt([]) == []


async def test_a_dead_helper_is_reported(helper: Encryptor) -> None:
    assert helper._process is not None
    helper._process.kill()
    await helper._process.wait()
    with pytest.raises(HelperGone):
        await helper.encrypt([("k", "a", b"{}")])
    assert not helper.ready


def test_the_helper_loop_answers_one_frame_per_request() -> None:
    browser = FakeBrowser("https://push.example/x")
    source = io.BytesIO(_frame([(browser.p256dh, browser.auth, b'{"a":1}')]) + _frame([]))
    sink = io.BytesIO()
    serve(source, sink)  # until the end of its input
    answer = sink.getvalue()
    assert answer[:4] == b"\x00\x00\x00\x01" and answer[4:5] == b"\x00"
    size = int.from_bytes(answer[5:9], "big")
    body = answer[9 : 9 + size]
    assert browser.open(httpx.Request("POST", browser.endpoint, content=body)) == {"a": 1}
    assert answer[9 + size :] == b"\x00\x00\x00\x00"  # the empty frame's answer


@pytest.fixture
async def school(app: Quart, storage: Storage) -> School:
    await app.extensions["carnet_push"].stop()  # it would race these tests for the outbox
    return make_school(storage, app.config["CARNET_CTX"])


async def test_a_large_claim_is_encrypted_by_the_helper_and_survives_its_death(
    app: Quart, storage: Storage, school: School
) -> None:
    ctx = dataclasses.replace(app.config["CARNET_CTX"], clock=lambda: dt.datetime(2026, 3, 10, 9))
    worker = PushWorker(
        app.config["CARNET"], storage, ctx, app.config["CARNET_KEYS"].vapid_key, helper_from=1
    )
    async with FakePushService() as service:
        phones = [fake_browser(n, service) for n in range(3)]
        for phone in phones:
            phone.subscribe(storage, ctx, school.admin)

        def alert() -> None:
            storage.call(
                notifications.enqueue, ctx, kind="alert", account_ids=[school.admin.account_id],
                class_id=None, message_id=None, urgency="high",
            )  # fmt: skip

        alert()
        assert await worker.run_once() == 1  # a thread encrypts while the helper starts
        assert worker._helper_start is not None
        await worker._helper_start
        helper = worker._helper
        assert helper is not None and helper.ready
        alert()
        assert await worker.run_once() == 1  # the helper encrypts
        assert helper._process is not None
        helper._process.kill()  # it dies: the next pushes are encrypted in a thread
        await helper._process.wait()
        alert()
        assert await worker.run_once() == 1
        await worker.stop()
    for phone in phones:
        requests = service.get_requests(phone.endpoint)
        assert [phone.open(r)["kind"] for r in requests] == ["alert"] * 3
    statuses = storage.call(lambda: {n.status for n in store.Notification.select()})
    assert statuses == {"sent"}
