"""Post levels and daily digests: which notifications wait, when a digest forms, what it says."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from quart import Quart

from node import refclient_groups as rc
from node.errors import Invalid
from node.services import digests, notifications, posts, push_delivery
from node.services.context import ServiceContext
from node.storage import notifications as store
from node.storage.db import Storage
from tests.absence_factories import at
from tests.feed_factories import ClassFeed, Person, make_class_feed
from tests.push_factories import fake_browser

#: Tuesday 10 March 2026, 09:00 UTC (10:00 in Paris, UTC+1)
NOW = dt.datetime(2026, 3, 10, 9, 0)
#: 18:00 in Paris that day
SIX_PM = dt.datetime(2026, 3, 10, 17, 0)


@pytest.fixture
async def cf(app: Quart, storage: Storage, ctx: ServiceContext) -> ClassFeed:
    # the server's own worker would form digests with the real clock
    await app.extensions["carnet_push"].stop()
    feed_ = make_class_feed(storage, ctx, families=2)
    feed_.ctx = at(ctx, NOW)
    return feed_


def rows_of(cf: ClassFeed, person: Person) -> list[store.Notification]:
    account = person.actor.account_id
    return cf.storage.call(
        lambda: list(
            store.Notification.select()
            .where(store.Notification.account == account)
            .order_by(store.Notification.id)
        )
    )


def digest_mode(cf: ClassFeed, person: Person, at_time: str = "18:00") -> None:
    cf.storage.call(notifications.set_digest, cf.ctx, person.actor, "digest", at_time)


def test_information_posts_wait_for_the_digest_and_the_others_do_not(cf: ClassFeed) -> None:
    digest_mode(cf, cf.guardians[0])
    cf.post({"text": "Info"})
    cf.post({"text": "Signez"}, priority="action")
    cf.post({"text": "Grève"}, priority="urgent")

    held = rows_of(cf, cf.guardians[0])
    assert [(r.status, r.deliver_after) for r in held] == [
        ("held", SIX_PM), ("pending", NOW), ("pending", NOW),
    ]  # fmt: skip
    assert [r.status for r in rows_of(cf, cf.guardians[1])] == ["pending"] * 3


def test_a_digest_forms_once_at_its_time_and_the_posts_count_as_delivered(
    cf: ClassFeed,
) -> None:
    digest_mode(cf, cf.guardians[0])
    cf.post({"text": "Un"})
    cf.post({"text": "Deux"})

    assert cf.storage.call(digests.form_due, at(cf.ctx, SIX_PM - dt.timedelta(minutes=1))) == 0
    assert cf.storage.call(digests.form_due, at(cf.ctx, SIX_PM)) == 1
    assert cf.storage.call(digests.form_due, at(cf.ctx, SIX_PM)) == 0  # a second worker: nothing

    *posts_, digest = rows_of(cf, cf.guardians[0])
    assert digest.kind == "digest" and digest.status == "pending"
    assert digest.message_id is None and digest.deliver_after == SIX_PM
    assert [(r.status, r.digest_id, r.pushed_at) for r in posts_] == [
        ("sent", digest.id, SIX_PM)
    ] * 2

    fake_browser().subscribe(cf.storage, cf.ctx, cf.guardians[0].actor)
    jobs, _ = cf.storage.call(push_delivery.claim_due, at(cf.ctx, SIX_PM))
    mine = [j for j in jobs if j.notification_id == digest.id]
    assert len(mine) == 1
    assert mine[0].payload["kind"] == "digest"
    assert mine[0].payload["body"]["en"] == "2 new posts: CE1 A (2)"
    assert "Un" not in str(mine[0].payload) and mine[0].payload["url"] == "/"


def test_the_digest_waits_out_quiet_hours(cf: ClassFeed) -> None:
    cf.storage.call(notifications.set_quiet_hours, cf.ctx, cf.guardians[0].actor, "17:30", "19:00")
    digest_mode(cf, cf.guardians[0])
    cf.post({"text": "Info"})
    cf.storage.call(digests.form_due, at(cf.ctx, SIX_PM))
    digest = rows_of(cf, cf.guardians[0])[-1]
    assert digest.kind == "digest" and digest.deliver_after == SIX_PM + dt.timedelta(hours=1)


def test_deleted_posts_are_not_counted_and_an_empty_digest_is_cancelled(cf: ClassFeed) -> None:
    digest_mode(cf, cf.guardians[0])
    post = cf.post({"text": "Oups"})
    cf.storage.call(posts.delete_message, cf.ctx, cf.teacher.actor, cf.class_id, post)
    cf.storage.call(digests.form_due, at(cf.ctx, SIX_PM))
    fake_browser().subscribe(cf.storage, cf.ctx, cf.guardians[0].actor)
    jobs, _ = cf.storage.call(push_delivery.claim_due, at(cf.ctx, SIX_PM))
    digest = rows_of(cf, cf.guardians[0])[-1]
    assert digest.kind == "digest" and digest.status == "cancelled"
    assert all(j.notification_id != digest.id for j in jobs)


def test_a_digest_names_each_class_and_its_count() -> None:
    class Ctx:
        class config:  # noqa: N801 - a stand-in for NodeConfig
            school_name = "École"
            default_locale = "en"

        @staticmethod
        def translate(locale: str, text: str) -> str:
            return text

    payload = digests.digest_payload(
        Ctx(),  # type: ignore[arg-type]
        7,
        [("CE1 A", 2), ("CM2 B", 1)],
        ("en",),
    )
    assert payload["body"] == {"en": "3 new posts: CE1 A (2), CM2 B (1)"}
    assert payload["tag"] == "digest-7" and payload["author"] is None


def test_going_back_to_at_once_sends_what_was_held_in_one_digest_now(cf: ClassFeed) -> None:
    digest_mode(cf, cf.guardians[0])
    cf.post({"text": "Info"})
    cf.storage.call(notifications.set_digest, cf.ctx, cf.guardians[0].actor, "now")
    assert (
        cf.storage.call(notifications.get_settings, cf.ctx, cf.guardians[0].actor).digest_time
        is None
    )
    assert cf.storage.call(digests.form_due, cf.ctx) == 1
    cf.post({"text": "Encore"})
    assert rows_of(cf, cf.guardians[0])[-1].status == "pending"


def test_changing_the_digest_time_moves_what_is_held(cf: ClassFeed) -> None:
    digest_mode(cf, cf.guardians[0])
    cf.post({"text": "Info"})
    digest_mode(cf, cf.guardians[0], "07:30")  # 07:30 Paris tomorrow = 06:30 UTC
    assert rows_of(cf, cf.guardians[0])[0].deliver_after == dt.datetime(2026, 3, 11, 6, 30)


@pytest.mark.parametrize(
    ("mode", "when", "field"),
    [("weekly", "18:00", "digest"), ("digest", "6pm", "digest_time"), ("digest", None, "digest_time"),
     ("digest", "24:00", "digest_time")],
)  # fmt: skip
def test_bad_digest_settings_are_refused(
    cf: ClassFeed, mode: str, when: str | None, field: str
) -> None:
    with pytest.raises(Invalid) as refused:
        cf.storage.call(notifications.set_digest, cf.ctx, cf.guardians[0].actor, mode, when)
    assert refused.value.field == field


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (dt.datetime(2026, 3, 10, 9, 0), dt.datetime(2026, 3, 10, 17, 0)),  # later today
        (dt.datetime(2026, 3, 10, 17, 0), dt.datetime(2026, 3, 11, 17, 0)),  # just past: tomorrow
        (dt.datetime(2026, 7, 1, 12, 0), dt.datetime(2026, 7, 1, 16, 0)),  # summer, UTC+2
    ],
)
def test_the_next_digest_time_is_read_in_the_schools_zone(
    now: dt.datetime, expected: dt.datetime
) -> None:
    zone = zoneinfo.ZoneInfo("Europe/Paris")
    assert notifications.next_digest(now, zone, "18:00") == expected


# -- post levels ------------------------------------------------------------------------


def test_the_feed_shows_each_posts_level(cf: ClassFeed) -> None:
    cf.post({"text": "Info"})
    cf.post({"text": "Signez"}, priority="action")
    for person in (cf.teacher, cf.guardians[0]):
        items = cf.feed_of(person)["items"]
        assert [i["priority"] for i in items] == ["action", "info"]


@pytest.mark.parametrize("level", ["URGENT", "", "high", 1, None])
def test_an_unknown_level_is_refused(cf: ClassFeed, level: object) -> None:
    with pytest.raises(Invalid) as refused:
        cf.post({"text": "?"}, priority=level)
    assert refused.value.field == "priority"


def test_an_edit_can_change_the_level_and_notifies_nobody_again(cf: ClassFeed) -> None:
    post = cf.post({"text": "Info"})
    before = len(rows_of(cf, cf.guardians[0]))
    state, keys = cf.keys_of(cf.teacher)
    request = rc.encrypt(
        cf.teacher.keys, cf.teacher.me, state, keys, "post", {"text": "Signez"},
        message_id=post, version=2,
    )  # fmt: skip
    cf.storage.call(
        posts.edit_post, cf.ctx, cf.teacher.actor, cf.class_id, post, request["message"],
        priority="urgent",
    )  # fmt: skip
    assert cf.feed_of(cf.guardians[0])["items"][0]["priority"] == "urgent"
    assert len(rows_of(cf, cf.guardians[0])) == before
