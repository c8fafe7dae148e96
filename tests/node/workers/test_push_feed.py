"""A real post through the feed's services notifies every family's device, and says nothing of the post."""

from __future__ import annotations

from quart import Quart

from node.services.context import ServiceContext
from node.storage.db import Storage
from tests.feed_factories import make_class_feed
from tests.push_factories import FakePushService, fake_browser


async def test_posting_pushes_to_each_family_without_content(
    app: Quart, storage: Storage, ctx: ServiceContext
) -> None:
    worker = app.extensions["carnet_push"]
    await worker.stop()  # driven by hand below
    cf = make_class_feed(storage, ctx, families=2)
    async with FakePushService() as service:
        phones = [fake_browser(i, service) for i in range(2)]
        for phone, guardian in zip(phones, cf.guardians, strict=True):
            phone.subscribe(storage, ctx, guardian.actor)
        teacher_laptop = fake_browser(9, service)
        teacher_laptop.subscribe(storage, ctx, cf.teacher.actor)  # the author is not notified

        post = cf.post({"text": "Sortie au musée jeudi, prévoir un goûter", "attachments": []})
        assert await worker.run_once() == 2
        await worker.stop()

    for phone in phones:
        request = service.get_request(url=phone.endpoint)
        assert request is not None
        payload = phone.open(request)
        assert payload["kind"] == "post"
        assert payload["class"] == "CE1 A" and payload["author"] == "M. Dubois"
        assert payload["url"] == f"/classes/{cf.class_id}/feed#m-{post}"
        assert "musée" not in str(payload) and "goûter" not in str(payload)
    assert service.get_request(url=teacher_laptop.endpoint) is None
