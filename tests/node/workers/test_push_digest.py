"""A guardian's daily digest through the push worker, against a fake push service.

Information posts make no push of their own for a guardian who chose a
digest; at the digest time one push, decrypted by the fake browser, counts
them per class.  An urgent post is pushed at once.  Two workers passing at
the same time send the digest once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import AsyncIterator

import pytest
from quart import Quart

from node.services import notifications
from node.services.context import ServiceContext
from node.storage.db import Storage
from node.workers.push import PushWorker
from tests.feed_factories import ClassFeed, make_class_feed
from tests.push_factories import FakePushService, fake_browser

#: Tuesday 10 March 2026, 09:00 UTC (10:00 in Paris)
NOW = dt.datetime(2026, 3, 10, 9, 0)
#: 18:00 in Paris that day
SIX_PM = dt.datetime(2026, 3, 10, 17, 0)


class Clock:
    def __init__(self, moment: dt.datetime) -> None:
        self.moment = moment

    def __call__(self) -> dt.datetime:
        return self.moment


@pytest.fixture
async def service() -> AsyncIterator[FakePushService]:
    async with FakePushService() as push_service:
        yield push_service


@pytest.fixture
async def cf(app: Quart, storage: Storage, ctx: ServiceContext) -> ClassFeed:
    await app.extensions["carnet_push"].stop()  # the server's own worker would race this test
    return make_class_feed(storage, ctx, families=1)


def worker_for(app: Quart, ctx: ServiceContext) -> PushWorker:
    return PushWorker(
        app.config["CARNET"], app.config["CARNET_STORAGE"], ctx, app.config["CARNET_KEYS"].vapid_key
    )


async def test_information_posts_come_in_one_digest_push_and_urgent_ones_at_once(
    app: Quart, storage: Storage, cf: ClassFeed, service: FakePushService
) -> None:
    clock = Clock(NOW)
    cf.ctx = ctx = dataclasses.replace(cf.ctx, clock=clock)
    guardian = cf.guardians[0]
    browser = fake_browser(service=service)
    browser.subscribe(storage, ctx, guardian.actor)
    storage.call(notifications.set_digest, ctx, guardian.actor, "digest", "18:00")
    service.add_response(url=browser.endpoint, status_code=201)
    worker, twin = worker_for(app, ctx), worker_for(app, ctx)

    cf.post({"text": "Photos de la sortie"})
    cf.post({"text": "Menu de la cantine"})
    cf.post({"text": "École fermée demain"}, priority="urgent")
    await worker.run_once()
    [urgent] = service.get_requests(browser.endpoint)
    assert browser.open(urgent)["kind"] == "post"  # the urgent post, at once

    clock.moment = SIX_PM
    await asyncio.gather(worker.run_once(), twin.run_once())  # two workers, one digest
    await worker.stop()
    await twin.stop()
    _, digest = service.get_requests(browser.endpoint)
    payload = browser.open(digest)
    assert payload["kind"] == "digest"
    assert payload["body"] == {
        "en": "2 new posts: CE1 A (2)",
        "fr": "2 nouvelles publications : CE1 A (2)",
    }
    assert "Photos" not in str(payload) and payload["author"] is None
