"""A post's level across schools: the class stream announces it, the guardian's node keeps it
and routes that guardian's notifications by it (a daily digest holds information posts only)."""

from __future__ import annotations

from typing import Any

from quart.typing import TestClientProtocol as Client

from federation.runtime import class_stream
from node.services import feed, notifications
from node.services.context import ServiceContext
from node.storage import feed as feed_store
from node.storage import notifications as notification_store
from node.storage.db import Storage
from tests.federation.runtime.test_class_mirror import (  # noqa: F401 - the fixture by name
    ClassAtB,
    accept_and_open,
    school_b,
)
from tests.feed_factories import make_class_feed


def statuses(storage: Storage, account_id: int) -> list[tuple[str, str]]:
    def rows() -> list[tuple[str, str]]:
        query = notification_store.Notification.select().where(
            notification_store.Notification.account == account_id
        )
        return [(n.kind, n.status) for n in query.order_by(notification_store.Notification.id)]

    return storage.call(rows)


def leveled(b: ClassAtB, text: str, priority: Any) -> dict[str, Any]:
    item = b.note(text)
    if priority is not None:
        item = b.resigned(item, priority=priority)
    return item


async def test_the_level_arrives_with_the_post_and_routes_the_digest(
    client: Client,
    storage: Storage,
    ctx: ServiceContext,
    school_b: ClassAtB,  # noqa: F811
) -> None:
    b = school_b
    await accept_and_open(b, client)
    storage.call(notifications.set_digest, ctx, b.guardian, "digest", "18:00")
    urgent = leveled(b, "Grève demain", "urgent")
    plain = leveled(b, "Photos en ligne", None)
    odd = leveled(b, "Niveau inconnu", "critical")
    assert await b.send(client, urgent, plain, odd) == {urgent["id"]: {}, plain["id"]: {},
                                                         odd["id"]: {}}  # fmt: skip

    items = storage.call(feed.my_feed, ctx, b.guardian).items
    assert [i.priority for i in items] == ["info", "info", "urgent"]  # newest first
    # the urgent post notifies at once (the push worker may have handled it already:
    # this node has no device for them); the others wait for the guardian's digest
    first, *others = statuses(storage, b.guardian.account_id)
    assert first in (("post", "pending"), ("post", "no_device"))
    assert others == [("post", "held"), ("post", "held")]


def test_the_class_stream_announces_the_level(storage: Storage, ctx: ServiceContext) -> None:
    cf = make_class_feed(storage, ctx, families=1)
    post = cf.post({"text": "Signez le mot"}, priority="action")

    def note() -> dict[str, Any]:
        row = feed_store.Message.get(feed_store.Message.public_id == post)
        cu = class_stream.class_url(ctx, cf.class_id)
        [announced] = class_stream._notes(ctx, cu, [row])
        return announced.obj

    assert storage.call(note)["priority"] == "action"
