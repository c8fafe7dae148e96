"""Web Push end to end against a fake push service that decrypts what it receives.

The push service is ``FakePushService``, a real HTTP/1.1 server on
127.0.0.1; the browser is ``FakeBrowser``, whose private key opens the
aes128gcm body (RFC 8291) and whose test checks the VAPID token (RFC 8292)
with the node's public key, as a real push service would.  No test here
asserts how fast anything is: ``scripts/bench/push.py`` measures that.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from quart import Quart

from node.datafolder import load_keys
from node.push.client import PushClient, RefusedAddress
from node.services import directory, notifications, push_delivery
from node.services.context import ServiceContext
from node.storage import notifications as store
from node.storage.db import Storage
from node.workers.push import PushWorker
from tests.factories import School, invite, make_guardian, make_school
from tests.push_factories import (
    FakeBrowser,
    FakePushService,
    fake_browser,
    make_message,
    until,
    vapid_claims,
)

NOW = dt.datetime(2026, 3, 10, 9, 0)


@pytest.fixture
async def school(app: Quart, storage: Storage, ctx: ServiceContext) -> School:
    # The server's own worker would race these tests for the outbox.
    await app.extensions["carnet_push"].stop()
    return make_school(storage, ctx)


@pytest.fixture
async def service() -> AsyncIterator[FakePushService]:
    async with FakePushService() as push_service:
        yield push_service


class Clock:
    def __init__(self, moment: dt.datetime) -> None:
        self.moment = moment

    def __call__(self) -> dt.datetime:
        return self.moment


def worker_at(app: Quart, clock: Clock, **bounds: Any) -> tuple[PushWorker, ServiceContext]:
    ctx = dataclasses.replace(app.config["CARNET_CTX"], clock=clock)
    worker = PushWorker(
        app.config["CARNET"],
        app.config["CARNET_STORAGE"],
        ctx,
        app.config["CARNET_KEYS"].vapid_key,
        **bounds,
    )
    return worker, ctx


def alert(storage: Storage, ctx: ServiceContext, account_id: int) -> int:
    (nid,) = storage.call(
        notifications.enqueue, ctx, kind="alert", account_ids=[account_id],
        class_id=None, message_id=None, urgency="high",
    )  # fmt: skip
    return int(nid)


def notification(storage: Storage, notification_id: int) -> store.Notification:
    return storage.call(store.Notification.get_by_id, notification_id)


def subscriptions(storage: Storage) -> list[store.PushSubscription]:
    return storage.call(lambda: list(store.PushSubscription.select()))


async def test_a_post_reaches_the_device_encrypted_naming_class_and_author_only(
    app: Quart, storage: Storage, school: School, service: FakePushService
) -> None:
    clock = Clock(NOW)
    worker, ctx = worker_at(app, clock)
    browser = fake_browser(service=service)
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
    service.add_response(url=browser.endpoint, status_code=201)

    assert await worker.run_once() == 1
    await worker.stop()

    request = service.get_request()
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
    assert claims["aud"] == service.url
    assert claims["sub"] == "http://127.0.0.1:8000"
    assert time.time() < claims["exp"] <= time.time() + 24 * 3600

    row = notification(storage, nid)
    assert (row.status, row.pushed_at, row.attempts) == ("sent", NOW, 1)
    (sub,) = subscriptions(storage)
    assert (sub.failures, sub.last_success_at) == (0, NOW)
    assert await worker.run_once() == 0  # nothing left


async def test_every_device_gets_it_and_a_gone_one_is_forgotten(
    app: Quart, storage: Storage, school: School, service: FakePushService
) -> None:
    worker, ctx = worker_at(app, Clock(NOW))
    phone, laptop = fake_browser(1, service), fake_browser(2, service)
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
    service.add_response(url=phone.endpoint, status_code=201)
    service.add_response(url=laptop.endpoint, status_code=410)

    await worker.run_once()
    await worker.stop()

    alert = phone.open(service.get_request(url=phone.endpoint))  # type: ignore[arg-type]
    assert alert["title"] == "École des Tests" and alert["class"] is None
    assert alert["body"]["en"] == "Emergency alert: open Carnet now"
    assert service.get_request(url=phone.endpoint).headers["Urgency"] == "high"  # type: ignore[union-attr]
    assert [s.endpoint for s in subscriptions(storage)] == [phone.endpoint]


async def test_410_on_the_only_device_leaves_no_device(
    app: Quart, storage: Storage, school: School, service: FakePushService
) -> None:
    worker, ctx = worker_at(app, Clock(NOW))
    browser = fake_browser(service=service)
    browser.subscribe(storage, ctx, school.admin)
    (nid,) = storage.call(
        notifications.enqueue,
        ctx,
        kind="post",
        account_ids=[school.admin.account_id],
        class_id=school.class_id,
        message_id=None,
    )
    service.add_response(url=browser.endpoint, status_code=404)
    await worker.run_once()
    await worker.stop()
    assert subscriptions(storage) == []
    assert notification(storage, nid).status == "no_device"


async def test_a_failing_push_service_keeps_the_device_and_retries_later(
    app: Quart, storage: Storage, school: School, service: FakePushService
) -> None:
    clock = Clock(NOW)
    worker, ctx = worker_at(app, clock, timeout=0.5)
    browser = fake_browser(service=service)
    browser.subscribe(storage, ctx, school.admin)
    (nid,) = storage.call(
        notifications.enqueue,
        ctx,
        kind="post",
        account_ids=[school.admin.account_id],
        class_id=school.class_id,
        message_id=None,
    )
    service.add_response(url=browser.endpoint, status_code=500)
    assert await worker.run_once() == 1
    row = notification(storage, nid)
    assert row.status == "pending"
    assert row.deliver_after == NOW + push_delivery.RETRY_DELAYS[0]
    (sub,) = subscriptions(storage)
    assert sub.failures == 1

    assert await worker.run_once() == 0  # not yet
    clock.moment = row.deliver_after
    service.add_stall(url=browser.endpoint)  # no answer: the push times out
    assert await worker.run_once() == 1
    row = notification(storage, nid)
    assert row.deliver_after == clock.moment + push_delivery.RETRY_DELAYS[1]

    clock.moment = row.deliver_after
    service.add_response(url=browser.endpoint, status_code=429, headers={"Retry-After": "900"})
    await worker.run_once()
    row = notification(storage, nid)
    assert row.deliver_after == clock.moment + dt.timedelta(seconds=900)  # longer than the delay

    clock.moment = row.deliver_after
    service.add_response(url=browser.endpoint, status_code=201)
    await worker.run_once()
    await worker.stop()
    row = notification(storage, nid)
    assert (row.status, row.attempts) == ("sent", 4)
    (sub,) = subscriptions(storage)
    assert sub.failures == 0
    assert len(service.get_requests()) == 4


async def test_retries_stop_after_the_last_attempt(
    app: Quart, storage: Storage, school: School, service: FakePushService
) -> None:
    clock = Clock(NOW)
    worker, ctx = worker_at(app, clock)
    browser = fake_browser(service=service)
    browser.subscribe(storage, ctx, school.admin)
    (nid,) = storage.call(
        notifications.enqueue,
        ctx,
        kind="post",
        account_ids=[school.admin.account_id],
        class_id=None,
        message_id=None,
    )
    service.add_response(url=browser.endpoint, status_code=503, is_reusable=True)
    for _ in range(push_delivery.MAX_ATTEMPTS):
        assert await worker.run_once() == 1
        clock.moment = notification(storage, nid).deliver_after
    await worker.stop()
    assert notification(storage, nid).status == "failed"
    assert len(subscriptions(storage)) == 1  # a bad day for the push service, not a dead device


async def test_a_refusal_is_not_retried(
    app: Quart, storage: Storage, school: School, service: FakePushService
) -> None:
    worker, ctx = worker_at(app, Clock(NOW))
    browser = fake_browser(service=service)
    browser.subscribe(storage, ctx, school.admin)
    (nid,) = storage.call(
        notifications.enqueue,
        ctx,
        kind="post",
        account_ids=[school.admin.account_id],
        class_id=None,
        message_id=None,
    )
    service.add_response(url=browser.endpoint, status_code=403)
    await worker.run_once()
    await worker.stop()
    assert notification(storage, nid).status == "failed"
    assert subscriptions(storage)[0].failures == 1


async def test_quiet_hours_hold_the_push_until_morning(
    app: Quart, storage: Storage, school: School, service: FakePushService
) -> None:
    clock = Clock(dt.datetime(2026, 3, 10, 22, 0))  # 23:00 in Paris
    worker, ctx = worker_at(app, clock)
    browser = fake_browser(service=service)
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
    service.add_response(url=browser.endpoint, status_code=201)
    assert await worker.run_once() == 1
    await worker.stop()


async def test_nothing_is_sent_without_a_device_or_for_a_deleted_post(
    app: Quart, storage: Storage, school: School, service: FakePushService
) -> None:
    worker, ctx = worker_at(app, Clock(NOW))
    fake_browser(service=service).subscribe(storage, ctx, school.teacher)
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
    assert service.get_requests() == []


async def test_a_crashed_pass_is_retried_after_the_lease(
    app: Quart, storage: Storage, school: School, service: FakePushService
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
    app: Quart, storage: Storage, school: School, service: FakePushService
) -> None:
    """Queued before they were unlinked from the child: cancelled, nothing sent."""
    clock = Clock(NOW)
    worker, ctx = worker_at(app, clock)
    slip = invite(storage, ctx, school.teacher, school.child_id)
    parent = make_guardian(storage, ctx, slip.code)
    fake_browser(service=service).subscribe(storage, ctx, parent)
    message_id, _ = make_message(storage, school.class_id, school.teacher.account_id)
    (nid,) = storage.call(
        notifications.enqueue, ctx, kind="post", account_ids=[parent.account_id],
        class_id=school.class_id, message_id=message_id,
    )  # fmt: skip
    storage.call(directory.remove_guardian, ctx, school.teacher, slip.invitation_id)
    assert await worker.run_once() == 1
    await worker.stop()
    assert service.get_requests() == []
    assert notification(storage, nid).status == "cancelled"


async def test_an_endpoint_that_resolves_to_a_private_address_is_refused() -> None:
    client = PushClient(per_origin=1, limit=1, timeout=5)
    for host in ("localhost", "10.1.2.3", "192.0.2.0"):  # /etc/hosts; private; documentation range
        with pytest.raises(RefusedAddress):
            await client.resolve(host, 443)
    assert await client.resolve("8.8.8.8", 443) == [("8.8.8.8", 443)]  # a literal: not looked up
    loopback = PushClient(per_origin=1, limit=1, timeout=5, private_ok=True)
    assert await loopback.resolve("127.0.0.1", 9) == [("127.0.0.1", 9)]  # the test node's case


async def test_a_node_on_a_public_address_sends_nothing_into_its_own_network(
    app: Quart, storage: Storage, school: School, service: FakePushService
) -> None:
    """The endpoint is stored (a loopback test node accepts it), then the node moves to https."""
    browser = fake_browser(service=service)
    browser.subscribe(storage, app.config["CARNET_CTX"], school.admin)
    config = dataclasses.replace(app.config["CARNET"], public_url="https://ecole.example")
    ctx = dataclasses.replace(app.config["CARNET_CTX"], clock=Clock(NOW))
    worker = PushWorker(config, storage, ctx, app.config["CARNET_KEYS"].vapid_key)
    nid = alert(storage, ctx, school.admin.account_id)
    assert await worker.run_once() == 1
    await worker.stop()
    assert service.get_requests() == [] and service.connections == 0
    assert notification(storage, nid).status == "failed"  # refused: not retried


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
        app.config["CARNET"], storage, ctx, app.config["CARNET_KEYS"].vapid_key, per_service=2
    )
    async with CountingPushService() as service:
        for n in range(5):
            device = FakeBrowser(f"http://127.0.0.1:{service.port}/push/device-{n}")
            device.subscribe(storage, ctx, school.admin)
        for _ in range(4):  # 4 notifications × 5 devices, in one pass
            alert(storage, ctx, school.admin.account_id)
        await worker.run_once()
        await worker.stop()
    assert service.pushes == 20
    assert service.connections <= 2  # one per request in flight, not one per push
    assert all(s.failures == 0 for s in subscriptions(storage))


async def test_an_endpoint_host_is_looked_up_once_a_minute_not_once_per_push(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = PushClient(per_origin=1, limit=1, timeout=5)
    loop = asyncio.get_running_loop()
    lookups: list[str] = []
    real = loop.getaddrinfo

    async def counting(host: str, *args: Any, **kwargs: Any) -> Any:
        lookups.append(host)
        return await real(host, *args, **kwargs)

    monkeypatch.setattr(loop, "getaddrinfo", counting)
    for _ in range(5):
        with pytest.raises(RefusedAddress):
            await client.resolve("localhost", 443)
    assert lookups == ["localhost"]
    later = loop.time() + 61
    monkeypatch.setattr(loop, "time", lambda: later)  # a minute later: asked again
    with pytest.raises(RefusedAddress):
        await client.resolve("localhost", 443)
    assert lookups == ["localhost", "localhost"]


# -- the pipeline ----------------------------------------------------------------


def scrambled(path: str) -> float:
    """An answer delay of 0–40 ms that depends on the device: answers come back out of order."""
    return (sum(path.encode()) * 7919 % 41) / 1000


async def test_answers_in_any_order_settle_each_notification_by_its_own_devices(
    app: Quart, storage: Storage, school: School
) -> None:
    clock = Clock(NOW)
    # tiny claims and backlog: claims, sends and records of several batches interleave
    worker, ctx = worker_at(app, clock, batch=2, backlog=3)
    async with FakePushService(delay=scrambled) as service:
        admin = [fake_browser(n, service) for n in range(4)]
        teacher = [fake_browser(10 + n, service) for n in range(2)]
        for browser in admin:
            browser.subscribe(storage, ctx, school.admin)
        for browser in teacher:
            browser.subscribe(storage, ctx, school.teacher)
        service.add_response(url=admin[0].endpoint, status_code=410, is_reusable=True)  # gone
        for browser in admin[1:3]:
            service.add_response(url=browser.endpoint, status_code=503, is_reusable=True)
        for browser in teacher:
            service.add_response(url=browser.endpoint, status_code=500, is_reusable=True)
        to_admin = [alert(storage, ctx, school.admin.account_id) for _ in range(5)]
        to_teacher = [alert(storage, ctx, school.teacher.account_id) for _ in range(5)]

        assert await worker.run_once() == 10
        await worker.stop()

    for nid in to_admin:  # one device took each: sent
        assert notification(storage, nid).status == "sent"
    for nid in to_teacher:  # none did, a failure that may pass: retried later
        row = notification(storage, nid)
        assert (row.status, row.deliver_after) == ("pending", NOW + push_delivery.RETRY_DELAYS[0])
    endpoints = {s.endpoint: s for s in subscriptions(storage)}
    assert admin[0].endpoint not in endpoints  # the 410 removed it
    assert endpoints[admin[3].endpoint].failures == 0
    assert endpoints[admin[3].endpoint].last_success_at == NOW
    assert all(endpoints[b.endpoint].failures >= 1 for b in (*admin[1:3], *teacher))
    # each notification reached each of its devices once (the gone one until its 410 was
    # recorded: claims made meanwhile still named it)
    pushes = [str(r.url) for r in service.get_requests()]
    assert 1 <= pushes.count(admin[0].endpoint) <= 5
    assert all(pushes.count(b.endpoint) == 5 for b in (*admin[1:], *teacher))
    for request in service.get_requests(admin[3].endpoint):
        assert admin[3].open(request)["kind"] == "alert"


async def test_claims_stop_while_the_backlog_waits_for_answers(
    app: Quart, storage: Storage, school: School, service: FakePushService
) -> None:
    worker, ctx = worker_at(app, Clock(NOW), batch=2, backlog=3)
    fake_browser(service=service).subscribe(storage, ctx, school.admin)
    gate = asyncio.Event()
    service.add_response(is_reusable=True, gate=gate)
    ids = [alert(storage, ctx, school.admin.account_id) for _ in range(10)]
    run = asyncio.create_task(worker.run_once())
    await until(lambda: service.in_flight == 4)
    await asyncio.sleep(0.2)  # the worker had time to claim more, if it would

    # 3 waiting answers stop the claims: 2 + 2 claimed, not 10
    claimed = storage.call(
        lambda: store.Notification.select().where(store.Notification.attempts > 0).count()
    )
    assert claimed == 4 and service.in_flight == 4
    gate.set()
    assert await run == 10
    await worker.stop()
    assert {notification(storage, nid).status for nid in ids} == {"sent"}


async def test_a_slow_push_service_holds_its_own_slots_only(
    app: Quart, storage: Storage, school: School, service: FakePushService
) -> None:
    worker, ctx = worker_at(app, Clock(NOW), per_service=2)
    async with FakePushService() as fast:
        slow_phone, fast_phone = fake_browser(1, service), fake_browser(2, fast)
        slow_phone.subscribe(storage, ctx, school.admin)
        fast_phone.subscribe(storage, ctx, school.admin)
        gate = asyncio.Event()
        service.add_response(is_reusable=True, gate=gate)  # ``service`` is the slow one
        ids = [alert(storage, ctx, school.admin.account_id) for _ in range(6)]
        run = asyncio.create_task(worker.run_once())

        # every push to the fast service goes out while the slow one answers nothing
        await until(lambda: len(fast.get_requests()) == 6)
        assert service.in_flight == 2 and len(service.get_requests()) == 2
        gate.set()
        assert await run == 6
        await worker.stop()
    assert service.most_in_flight == 2 and len(service.get_requests()) == 6
    assert {notification(storage, nid).status for nid in ids} == {"sent"}


async def test_the_server_runs_the_worker_on_its_own_thread_and_wakes_it_after_a_post(
    app: Quart, storage: Storage, school: School, service: FakePushService
) -> None:
    worker, ctx = worker_at(app, Clock(NOW))
    browser = fake_browser(service=service)
    browser.subscribe(storage, ctx, school.admin)
    await worker.start()
    try:
        nid = alert(storage, ctx, school.admin.account_id)
        worker.wake()
        await until(lambda: notification(storage, nid).status == "sent")
    finally:
        await worker.stop()
    request = service.get_request(browser.endpoint)
    assert request is not None and browser.open(request)["kind"] == "alert"
    worker.wake()  # stopped: a no-op
