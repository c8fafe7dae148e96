"""Web Push end to end against a fake push service that decrypts what it receives.

The push service is played by pytest-httpx; the browser by ``FakeBrowser``,
whose private key opens the aes128gcm body (RFC 8291) and whose test checks
the VAPID token (RFC 8292) with the node's public key, as a real push
service would.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import time

import httpx
import pytest
from pytest_httpx import HTTPXMock
from quart import Quart

from node.datafolder import load_keys
from node.services import directory, notifications, push_delivery
from node.services.context import ServiceContext
from node.storage import notifications as store
from node.storage.db import Storage
from node.workers.push import PushWorker
from tests.factories import School, invite, make_guardian, make_school
from tests.push_factories import FakeBrowser, fake_browser, make_message, vapid_claims

NOW = dt.datetime(2026, 3, 10, 9, 0)


@pytest.fixture
async def school(app: Quart, storage: Storage, ctx: ServiceContext) -> School:
    # The server's own worker would race these tests for the outbox.
    await app.extensions["carnet_push"].stop()
    return make_school(storage, ctx)


class Clock:
    def __init__(self, moment: dt.datetime) -> None:
        self.moment = moment

    def __call__(self) -> dt.datetime:
        return self.moment


def worker_at(app: Quart, clock: Clock) -> tuple[PushWorker, ServiceContext]:
    ctx = dataclasses.replace(app.config["CARNET_CTX"], clock=clock)
    worker = PushWorker(
        app.config["CARNET"], app.config["CARNET_STORAGE"], ctx, app.config["CARNET_KEYS"].vapid_key
    )
    return worker, ctx


def notification(storage: Storage, notification_id: int) -> store.Notification:
    return storage.call(store.Notification.get_by_id, notification_id)


def subscriptions(storage: Storage) -> list[store.PushSubscription]:
    return storage.call(lambda: list(store.PushSubscription.select()))


async def test_a_post_reaches_the_device_encrypted_naming_class_and_author_only(
    app: Quart, storage: Storage, school: School, httpx_mock: HTTPXMock
) -> None:
    clock = Clock(NOW)
    worker, ctx = worker_at(app, clock)
    browser = fake_browser()
    browser.subscribe(storage, ctx, school.admin)
    message_id, public_id = make_message(
        storage, school.class_id, school.teacher.account_id, ciphertext="U29ydGllIGF1IG11c8OpZQ"
    )
    (nid,) = storage.call(
        notifications.enqueue,
        ctx,
        kind="post",
        account_ids=[school.admin.account_id],
        class_id=school.class_id,
        message_id=message_id,
    )
    httpx_mock.add_response(url=browser.endpoint, method="POST", status_code=201)

    assert await worker.run_once() == 1
    await worker.stop()

    request = httpx_mock.get_request()
    assert request is not None
    assert request.headers["Content-Encoding"] == "aes128gcm"
    assert request.headers["Urgency"] == "normal"
    assert int(request.headers["TTL"]) > 0
    payload = browser.open(request)
    assert payload == {
        "v": 1,
        "kind": "post",
        "class": "CE1 A",
        "author": "M. Dubois",
        "title": "CE1 A",
        "body": {"fr": "Nouvelle publication de M. Dubois", "en": "New post from M. Dubois"},
        "lang": "en",
        "url": f"/classes/{school.class_id}/feed#m-{public_id}",
        "tag": f"m-{public_id}",
    }
    assert b"U29ydGll" not in request.content and "U29ydGll" not in str(payload)

    claims = vapid_claims(request, load_keys(app.config["CARNET"].data_dir).vapid_public_key)
    assert claims["aud"] == "http://127.0.0.1:9"
    assert claims["sub"] == "http://127.0.0.1:8000"
    assert time.time() < claims["exp"] <= time.time() + 24 * 3600

    row = notification(storage, nid)
    assert (row.status, row.pushed_at, row.attempts) == ("sent", NOW, 1)
    (sub,) = subscriptions(storage)
    assert (sub.failures, sub.last_success_at) == (0, NOW)
    assert await worker.run_once() == 0  # nothing left


async def test_every_device_gets_it_and_a_gone_one_is_forgotten(
    app: Quart, storage: Storage, school: School, httpx_mock: HTTPXMock
) -> None:
    worker, ctx = worker_at(app, Clock(NOW))
    phone, laptop = fake_browser(1), fake_browser(2)
    phone.subscribe(storage, ctx, school.admin)
    laptop.subscribe(storage, ctx, school.admin)
    storage.call(
        notifications.enqueue,
        ctx,
        kind="alert",
        account_ids=[school.admin.account_id],
        class_id=None,
        message_id=None,
        urgency="high",
    )
    httpx_mock.add_response(url=phone.endpoint, status_code=201)
    httpx_mock.add_response(url=laptop.endpoint, status_code=410)

    await worker.run_once()
    await worker.stop()

    alert = phone.open(httpx_mock.get_request(url=phone.endpoint))  # type: ignore[arg-type]
    assert alert["title"] == "École des Tests" and alert["class"] is None
    assert alert["body"]["en"] == "Emergency alert: open Carnet now"
    assert httpx_mock.get_request(url=phone.endpoint).headers["Urgency"] == "high"  # type: ignore[union-attr]
    assert [s.endpoint for s in subscriptions(storage)] == [phone.endpoint]


async def test_410_on_the_only_device_leaves_no_device(
    app: Quart, storage: Storage, school: School, httpx_mock: HTTPXMock
) -> None:
    worker, ctx = worker_at(app, Clock(NOW))
    browser = fake_browser()
    browser.subscribe(storage, ctx, school.admin)
    (nid,) = storage.call(
        notifications.enqueue,
        ctx,
        kind="post",
        account_ids=[school.admin.account_id],
        class_id=school.class_id,
        message_id=None,
    )
    httpx_mock.add_response(url=browser.endpoint, status_code=404)
    await worker.run_once()
    await worker.stop()
    assert subscriptions(storage) == []
    assert notification(storage, nid).status == "no_device"


async def test_a_failing_push_service_keeps_the_device_and_retries_later(
    app: Quart, storage: Storage, school: School, httpx_mock: HTTPXMock
) -> None:
    clock = Clock(NOW)
    worker, ctx = worker_at(app, clock)
    browser = fake_browser()
    browser.subscribe(storage, ctx, school.admin)
    (nid,) = storage.call(
        notifications.enqueue,
        ctx,
        kind="post",
        account_ids=[school.admin.account_id],
        class_id=school.class_id,
        message_id=None,
    )
    httpx_mock.add_response(url=browser.endpoint, status_code=500)
    assert await worker.run_once() == 1
    row = notification(storage, nid)
    assert row.status == "pending"
    assert row.deliver_after == NOW + push_delivery.RETRY_DELAYS[0]
    (sub,) = subscriptions(storage)
    assert sub.failures == 1

    assert await worker.run_once() == 0  # not yet
    clock.moment = row.deliver_after
    httpx_mock.add_exception(httpx.ConnectTimeout("slow"), url=browser.endpoint)
    assert await worker.run_once() == 1
    row = notification(storage, nid)
    assert row.deliver_after == clock.moment + push_delivery.RETRY_DELAYS[1]

    clock.moment = row.deliver_after
    httpx_mock.add_response(url=browser.endpoint, status_code=429, headers={"Retry-After": "900"})
    await worker.run_once()
    row = notification(storage, nid)
    assert row.deliver_after == clock.moment + dt.timedelta(seconds=900)  # longer than the delay

    clock.moment = row.deliver_after
    httpx_mock.add_response(url=browser.endpoint, status_code=201)
    await worker.run_once()
    await worker.stop()
    row = notification(storage, nid)
    assert (row.status, row.attempts) == ("sent", 4)
    (sub,) = subscriptions(storage)
    assert sub.failures == 0
    assert len(httpx_mock.get_requests()) == 4


async def test_retries_stop_after_the_last_attempt(
    app: Quart, storage: Storage, school: School, httpx_mock: HTTPXMock
) -> None:
    clock = Clock(NOW)
    worker, ctx = worker_at(app, clock)
    browser = fake_browser()
    browser.subscribe(storage, ctx, school.admin)
    (nid,) = storage.call(
        notifications.enqueue,
        ctx,
        kind="post",
        account_ids=[school.admin.account_id],
        class_id=None,
        message_id=None,
    )
    httpx_mock.add_response(url=browser.endpoint, status_code=503, is_reusable=True)
    for _ in range(push_delivery.MAX_ATTEMPTS):
        assert await worker.run_once() == 1
        clock.moment = notification(storage, nid).deliver_after
    await worker.stop()
    assert notification(storage, nid).status == "failed"
    assert len(subscriptions(storage)) == 1  # a bad day for the push service, not a dead device


async def test_a_refusal_is_not_retried(
    app: Quart, storage: Storage, school: School, httpx_mock: HTTPXMock
) -> None:
    worker, ctx = worker_at(app, Clock(NOW))
    browser = fake_browser()
    browser.subscribe(storage, ctx, school.admin)
    (nid,) = storage.call(
        notifications.enqueue,
        ctx,
        kind="post",
        account_ids=[school.admin.account_id],
        class_id=None,
        message_id=None,
    )
    httpx_mock.add_response(url=browser.endpoint, status_code=403)
    await worker.run_once()
    await worker.stop()
    assert notification(storage, nid).status == "failed"
    assert subscriptions(storage)[0].failures == 1


async def test_quiet_hours_hold_the_push_until_morning(
    app: Quart, storage: Storage, school: School, httpx_mock: HTTPXMock
) -> None:
    clock = Clock(dt.datetime(2026, 3, 10, 22, 0))  # 23:00 in Paris
    worker, ctx = worker_at(app, clock)
    browser = fake_browser()
    browser.subscribe(storage, ctx, school.admin)
    storage.call(notifications.set_quiet_hours, ctx, school.admin, "21:00", "07:00")
    storage.call(
        notifications.enqueue,
        ctx,
        kind="post",
        account_ids=[school.admin.account_id],
        class_id=school.class_id,
        message_id=None,
    )
    assert await worker.run_once() == 0
    clock.moment = dt.datetime(2026, 3, 11, 6, 0)  # 07:00 in Paris
    httpx_mock.add_response(url=browser.endpoint, status_code=201)
    assert await worker.run_once() == 1
    await worker.stop()


async def test_nothing_is_sent_without_a_device_or_for_a_deleted_post(
    app: Quart, storage: Storage, school: School, httpx_mock: HTTPXMock
) -> None:
    worker, ctx = worker_at(app, Clock(NOW))
    fake_browser().subscribe(storage, ctx, school.teacher)
    message_id, _ = make_message(storage, school.class_id, school.admin.account_id)
    (lonely,) = storage.call(
        notifications.enqueue,
        ctx,
        kind="post",
        account_ids=[school.admin.account_id],  # has no device
        class_id=school.class_id,
        message_id=None,
    )
    (deleted,) = storage.call(
        notifications.enqueue,
        ctx,
        kind="post",
        account_ids=[school.teacher.account_id],
        class_id=school.class_id,
        message_id=message_id,
    )
    storage.call(
        lambda: store.Message.update(deleted_at=NOW).where(store.Message.id == message_id).execute()
    )
    assert await worker.run_once() == 2
    await worker.stop()
    assert notification(storage, lonely).status == "no_device"
    assert notification(storage, deleted).status == "cancelled"
    assert httpx_mock.get_requests() == []


async def test_a_crashed_pass_is_retried_after_the_lease(
    app: Quart, storage: Storage, school: School, httpx_mock: HTTPXMock
) -> None:
    clock = Clock(NOW)
    worker, ctx = worker_at(app, clock)
    fake_browser().subscribe(storage, ctx, school.admin)
    (nid,) = storage.call(
        notifications.enqueue,
        ctx,
        kind="post",
        account_ids=[school.admin.account_id],
        class_id=None,
        message_id=None,
    )
    jobs, _ = storage.call(push_delivery.claim_due, ctx)  # a worker that dies before recording
    assert [j.notification_id for j in jobs] == [nid]
    assert storage.call(push_delivery.claim_due, ctx) == ([], 0)  # leased: nobody else takes it
    clock.moment = NOW + push_delivery.LEASE
    jobs, _ = storage.call(push_delivery.claim_due, ctx)
    assert [j.notification_id for j in jobs] == [nid]
    await worker.stop()


async def test_housekeeping_forgets_finished_notifications_after_a_month(
    app: Quart, storage: Storage, school: School
) -> None:
    from node.services import housekeeping

    clock = Clock(NOW)
    _, ctx = worker_at(app, clock)
    done, waiting = storage.call(
        notifications.enqueue,
        ctx,
        kind="post",
        account_ids=[school.admin.account_id, school.teacher.account_id],
        class_id=None,
        message_id=None,
    )
    storage.call(store.update_notification, done, "sent")
    clock.moment = NOW + push_delivery.KEEP_DONE + dt.timedelta(seconds=1)
    assert storage.call(housekeeping.purge_expired, ctx).notifications == 1
    left = storage.call(lambda: [n.id for n in store.Notification.select()])
    assert left == [waiting]  # still pending: never purged


async def test_a_guardian_who_left_the_class_is_not_pushed_its_names(
    app: Quart, storage: Storage, school: School, httpx_mock: HTTPXMock
) -> None:
    """Queued before they were unlinked from the child: cancelled, nothing sent."""
    clock = Clock(NOW)
    worker, ctx = worker_at(app, clock)
    slip = invite(storage, ctx, school.teacher, school.child_id)
    parent = make_guardian(storage, ctx, slip.code)
    fake_browser().subscribe(storage, ctx, parent)
    message_id, _ = make_message(storage, school.class_id, school.teacher.account_id)
    (nid,) = storage.call(
        notifications.enqueue, ctx, kind="post", account_ids=[parent.account_id],
        class_id=school.class_id, message_id=message_id,
    )  # fmt: skip
    storage.call(directory.remove_guardian, ctx, school.teacher, slip.invitation_id)
    assert await worker.run_once() == 1
    await worker.stop()
    assert httpx_mock.get_requests() == []
    assert notification(storage, nid).status == "cancelled"


async def test_an_endpoint_that_resolves_to_a_private_address_is_refused(app: Quart) -> None:
    config = dataclasses.replace(app.config["CARNET"], public_url="https://ecole.example")
    worker = PushWorker(
        config,
        app.config["CARNET_STORAGE"],
        app.config["CARNET_CTX"],
        app.config["CARNET_KEYS"].vapid_key,
    )
    assert not await worker._public("localhost", 443)  # /etc/hosts: no lookup leaves the machine
    assert not await worker._public("10.1.2.3", 443)
    assert await worker._public("192.0.2.0", 443) is False  # documentation range: not global either
    assert await worker._public("8.8.8.8", 443)  # a literal: checked, not looked up
    loopback = PushWorker(
        app.config["CARNET"],
        app.config["CARNET_STORAGE"],
        app.config["CARNET_CTX"],
        app.config["CARNET_KEYS"].vapid_key,
    )
    assert await loopback._public("127.0.0.1", 9)  # the test node itself is on loopback


class CountingPushService:
    """A real HTTP/1.1 push service on 127.0.0.1 that counts the TCP connections it accepts."""

    def __init__(self) -> None:
        self.connections = 0
        self.pushes = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> CountingPushService:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                await reader.readexactly(length)
                self.pushes += 1
                # a body, as some push services send: the worker must read it to reuse the connection
                writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: 7\r\n\r\ncreated")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def test_pushes_reuse_kept_alive_connections(
    app: Quart, storage: Storage, school: School
) -> None:
    ctx = app.config["CARNET_CTX"]
    worker = PushWorker(
        app.config["CARNET"], storage, ctx, app.config["CARNET_KEYS"].vapid_key, concurrency=2
    )
    async with CountingPushService() as service:
        for n in range(5):
            device = FakeBrowser(f"http://127.0.0.1:{service.port}/push/device-{n}")
            device.subscribe(storage, ctx, school.admin)
        for _ in range(4):  # 4 notifications × 5 devices, in one pass
            storage.call(
                notifications.enqueue, ctx, kind="alert", account_ids=[school.admin.account_id],
                class_id=None, message_id=None, urgency="high",
            )  # fmt: skip
        await worker.run_once()
        await worker.stop()
    assert service.pushes == 20
    assert service.connections <= 2  # one per request in flight, not one per push
    assert all(s.failures == 0 for s in subscriptions(storage))


async def test_an_endpoint_host_is_looked_up_once_a_minute_not_once_per_push(
    app: Quart, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = dataclasses.replace(app.config["CARNET"], public_url="https://ecole.example")
    worker = PushWorker(
        config, app.config["CARNET_STORAGE"], app.config["CARNET_CTX"],
        app.config["CARNET_KEYS"].vapid_key,
    )  # fmt: skip
    loop = asyncio.get_running_loop()
    lookups: list[str] = []
    real = loop.getaddrinfo

    async def counting(host: str, *args: object, **kwargs: object) -> object:
        lookups.append(host)
        return await real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(loop, "getaddrinfo", counting)
    for _ in range(5):
        assert not await worker._public("localhost", 443)
    assert lookups == ["localhost"]
    later = loop.time() + 61
    monkeypatch.setattr(loop, "time", lambda: later)  # a minute later: asked again
    assert not await worker._public("localhost", 443)
    assert lookups == ["localhost", "localhost"]
