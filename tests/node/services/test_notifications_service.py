"""Queueing notifications (quiet hours, urgency), push subscriptions and their checks."""

from __future__ import annotations

import dataclasses
import datetime as dt
import zoneinfo

import pytest

from node.errors import Conflict, Invalid, NotFound
from node.services import notifications
from node.services.context import ServiceContext
from node.storage import notifications as store
from node.storage.db import Storage
from tests.factories import School, make_school
from tests.push_factories import FakeBrowser, b64, fake_browser

PARIS = zoneinfo.ZoneInfo("Europe/Paris")
PUSH_ENDPOINT = "https://fcm.googleapis.com/fcm/send/dGVzdA:APA91b"


def at(ctx: ServiceContext, moment: dt.datetime) -> ServiceContext:
    """The same node, with its clock stopped at ``moment`` (naive UTC)."""
    return dataclasses.replace(ctx, clock=lambda: moment)


@pytest.fixture
def school(storage: Storage, ctx: ServiceContext) -> School:
    return make_school(storage, ctx)


def rows(storage: Storage) -> list[store.Notification]:
    return storage.call(lambda: list(store.Notification.select().order_by(store.Notification.id)))


# -- quiet hours ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "start", "end", "expected"),
    [
        # winter, Paris is UTC+1: 22:30 local is inside 21:00-07:00 -> 07:00 next day
        (dt.datetime(2026, 1, 15, 21, 30), "21:00", "07:00", dt.datetime(2026, 1, 16, 6, 0)),
        # 06:00 local, after midnight, still inside -> 07:00 the same day
        (dt.datetime(2026, 1, 15, 5, 0), "21:00", "07:00", dt.datetime(2026, 1, 15, 6, 0)),
        # 13:00 local is outside 21:00-07:00
        (dt.datetime(2026, 1, 15, 12, 0), "21:00", "07:00", None),
        # the start is inside, the end is not
        (dt.datetime(2026, 1, 15, 20, 0), "21:00", "07:00", dt.datetime(2026, 1, 16, 6, 0)),
        (dt.datetime(2026, 1, 15, 6, 0), "21:00", "07:00", None),
        # hours within one day: lunch 12:00-14:00, 12:30 local -> 14:00 local
        (dt.datetime(2026, 1, 15, 11, 30), "12:00", "14:00", dt.datetime(2026, 1, 15, 13, 0)),
        (dt.datetime(2026, 1, 15, 14, 0), "12:00", "14:00", None),
        # summer, Paris is UTC+2: 22:00 local -> 07:00 local = 05:00 UTC
        (dt.datetime(2026, 7, 1, 20, 0), "21:00", "07:00", dt.datetime(2026, 7, 2, 5, 0)),
        # the night clocks go back (25 Oct 2026): 23:00 CEST -> 07:00 CET = 06:00 UTC
        (dt.datetime(2026, 10, 24, 21, 0), "21:00", "07:00", dt.datetime(2026, 10, 25, 6, 0)),
        # none set
        (dt.datetime(2026, 1, 15, 21, 30), None, None, None),
    ],
)
def test_after_quiet_hours(
    now: dt.datetime, start: str | None, end: str | None, expected: dt.datetime | None
) -> None:
    assert notifications.after_quiet_hours(now, PARIS, start, end) == (expected or now)


def test_enqueue_waits_for_the_end_of_each_recipients_quiet_hours(
    storage: Storage, ctx: ServiceContext, school: School
) -> None:
    storage.call(notifications.set_quiet_hours, ctx, school.admin, "21:00", "07:00")
    night = at(ctx, dt.datetime(2026, 1, 15, 22, 0))  # 23:00 in Paris
    ids = storage.call(
        notifications.enqueue,
        night,
        kind="post",
        account_ids=[school.admin.account_id, school.teacher.account_id, school.admin.account_id],
        class_id=school.class_id,
        message_id=None,
    )
    assert len(ids) == 2  # duplicates ignored
    admin_row, teacher_row = rows(storage)
    assert admin_row.account_id == school.admin.account_id
    assert admin_row.deliver_after == dt.datetime(2026, 1, 16, 6, 0)
    assert teacher_row.deliver_after == dt.datetime(2026, 1, 15, 22, 0)  # no quiet hours: now
    assert {r.status for r in (admin_row, teacher_row)} == {"pending"}
    assert admin_row.school_class_id == school.class_id and admin_row.urgency == "normal"


def test_emergencies_ignore_quiet_hours(
    storage: Storage, ctx: ServiceContext, school: School
) -> None:
    storage.call(notifications.set_quiet_hours, ctx, school.admin, "21:00", "07:00")
    night = at(ctx, dt.datetime(2026, 1, 15, 22, 0))
    storage.call(
        notifications.enqueue,
        night,
        kind="alert",
        account_ids=[school.admin.account_id],
        class_id=None,
        message_id=None,
        urgency="high",
    )
    (row,) = rows(storage)
    assert row.deliver_after == dt.datetime(2026, 1, 15, 22, 0) and row.urgency == "high"


def test_enqueue_joins_the_callers_transaction(
    storage: Storage, ctx: ServiceContext, school: School
) -> None:
    """A failure after enqueue (the post is refused) leaves no notification behind."""
    from node.storage.db import write_transaction

    def post_then_fail() -> None:
        with write_transaction():
            notifications.enqueue(
                ctx,
                kind="post",
                account_ids=[school.admin.account_id],
                class_id=school.class_id,
                message_id=None,
            )
            raise RuntimeError("the post was refused")

    with pytest.raises(RuntimeError):
        storage.call(post_then_fail)
    assert rows(storage) == []


def test_enqueue_refuses_unknown_kinds_and_urgencies(
    storage: Storage, ctx: ServiceContext, school: School
) -> None:
    with pytest.raises(ValueError, match="kind"):
        notifications.enqueue(ctx, kind="gossip", account_ids=[], class_id=None, message_id=None)
    with pytest.raises(ValueError, match="urgency"):
        notifications.enqueue(
            ctx, kind="post", account_ids=[], class_id=None, message_id=None, urgency="urgent"
        )


def test_quiet_hours_are_both_or_neither_and_well_formed(
    storage: Storage, ctx: ServiceContext, school: School
) -> None:
    me = school.teacher
    view = storage.call(notifications.set_quiet_hours, ctx, me, "20:30", "06:45")
    assert (view.quiet_start, view.quiet_end, view.timezone) == ("20:30", "06:45", "Europe/Paris")
    assert storage.call(notifications.get_settings, ctx, me) == view
    cleared = storage.call(notifications.set_quiet_hours, ctx, me, None, "")
    assert (cleared.quiet_start, cleared.quiet_end) == (None, None)
    for start, end, field in [
        ("21:00", None, "quiet_end"),
        (None, "07:00", "quiet_start"),
        ("7:00", "08:00", "quiet_start"),
        ("21:00", "24:00", "quiet_end"),
        ("21:60", "07:00", "quiet_start"),
        ("２１:00", "07:00", "quiet_start"),  # full-width digits
        ("21:00\n", "07:00", "quiet_start"),
        ("21:00", "21:00", "quiet_end"),
        (2100, "07:00", "quiet_start"),
    ]:
        with pytest.raises(Invalid) as caught:
            storage.call(notifications.set_quiet_hours, ctx, me, start, end)
        assert caught.value.field == field, (start, end)
    # someone else's settings are untouched
    assert storage.call(notifications.get_settings, ctx, school.admin).quiet_start is None


# -- subscriptions ----------------------------------------------------------------


def test_subscribe_lists_and_unsubscribes(
    storage: Storage, ctx: ServiceContext, school: School
) -> None:
    browser = FakeBrowser(PUSH_ENDPOINT)
    view = storage.call(
        notifications.subscribe,
        ctx,
        school.teacher,
        browser.endpoint,
        browser.p256dh,
        browser.auth,
        "Mozilla/5.0 (Android 14; Mobile) Firefox/128.0",
    )
    assert view.device == "Firefox · Android"
    assert storage.call(notifications.my_subscriptions, ctx, school.teacher) == [view]
    assert storage.call(notifications.my_subscriptions, ctx, school.admin) == []
    assert storage.call(notifications.get_settings, ctx, school.teacher).devices == 1
    # someone else cannot turn it off, by endpoint or by id
    assert not storage.call(notifications.unsubscribe, ctx, school.admin, browser.endpoint)
    with pytest.raises(NotFound):
        storage.call(notifications.remove_device, ctx, school.admin, view.id)
    assert storage.call(notifications.unsubscribe, ctx, school.teacher, browser.endpoint)
    assert storage.call(notifications.my_subscriptions, ctx, school.teacher) == []


def test_subscribing_again_updates_and_a_shared_browser_moves_to_its_new_user(
    storage: Storage, ctx: ServiceContext, school: School
) -> None:
    browser = FakeBrowser(PUSH_ENDPOINT)
    first = browser.subscribe(storage, ctx, school.teacher)
    renewed = FakeBrowser(PUSH_ENDPOINT)  # same endpoint, new keys
    again = renewed.subscribe(storage, ctx, school.teacher)
    assert again.id == first.id
    (stored,) = storage.call(lambda: list(store.PushSubscription.select()))
    assert (stored.p256dh, stored.auth) == (renewed.p256dh, renewed.auth)
    moved = renewed.subscribe(storage, ctx, school.admin)
    assert moved.id == first.id
    assert storage.call(notifications.my_subscriptions, ctx, school.teacher) == []
    assert [s.id for s in storage.call(notifications.my_subscriptions, ctx, school.admin)] == [
        first.id
    ]


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://push.example.com/send/1",  # not https (and not this loopback node)
        "https://10.1.2.3/send/1",  # IP literals: the node's own network
        "https://[fd00::1]/send/1",
        "https://localhost/send/1",
        "https://push.localhost/send/1",
        "https://printer.local/send/1",
        "https://intranet/send/1",
        "https://push.example.com:8443/send/1",
        "https://user:pw@push.example.com/send/1",
        "https://push.example.com/send/1#frag",
        "https://push.example.com/send/ 1",
        "https://push.exämple.com/send/1",
        "ftp://push.example.com/send/1",
        "javascript:alert(1)",
        "https://push.example.com/" + "a" * 1024,
        "",
        None,
        42,
    ],
)
def test_subscribe_refuses_endpoints_that_are_not_public_https(
    storage: Storage, ctx: ServiceContext, school: School, endpoint: object
) -> None:
    browser = FakeBrowser(PUSH_ENDPOINT)
    with pytest.raises(Invalid) as caught:
        storage.call(
            notifications.subscribe, ctx, school.teacher, endpoint, browser.p256dh, browser.auth
        )
    assert caught.value.field == "endpoint"


def test_loopback_http_endpoints_only_for_a_loopback_node(
    storage: Storage, ctx: ServiceContext, school: School
) -> None:
    browser = fake_browser()
    assert browser.subscribe(storage, ctx, school.teacher).id
    public = dataclasses.replace(
        ctx, config=dataclasses.replace(ctx.config, public_url="https://carnet.example")
    )
    with pytest.raises(Invalid):
        storage.call(
            notifications.subscribe,
            public,
            school.teacher,
            fake_browser(2).endpoint,
            browser.p256dh,
            browser.auth,
        )


def test_subscribe_checks_the_browser_keys(
    storage: Storage, ctx: ServiceContext, school: School
) -> None:
    good = FakeBrowser(PUSH_ENDPOINT)
    raw_key = bytes.fromhex("04") + bytes(64)  # the right length, not on the curve
    compressed = b"\x02" + bytes(32)
    cases = [
        (b64(raw_key), good.auth, "p256dh"),
        (b64(compressed), good.auth, "p256dh"),
        (good.p256dh[:-2], good.auth, "p256dh"),
        (good.p256dh + "!", good.auth, "p256dh"),
        (None, good.auth, "p256dh"),
        (good.p256dh, b64(bytes(15)), "auth"),
        (good.p256dh, b64(bytes(17)), "auth"),
        (good.p256dh, "not base64 at all", "auth"),
        (good.p256dh, "", "auth"),
    ]
    for p256dh, auth, field in cases:
        with pytest.raises(Invalid) as caught:
            storage.call(notifications.subscribe, ctx, school.teacher, PUSH_ENDPOINT, p256dh, auth)
        assert caught.value.field == field, (p256dh, auth)
    # padded base64url is accepted and stored without padding
    view = storage.call(
        notifications.subscribe,
        ctx,
        school.teacher,
        PUSH_ENDPOINT,
        good.p256dh + "=",
        good.auth + "==",
    )
    assert view.id


def test_at_most_ten_devices_per_account(
    storage: Storage, ctx: ServiceContext, school: School
) -> None:
    browsers = [FakeBrowser(f"{PUSH_ENDPOINT}{i}") for i in range(notifications.MAX_DEVICES)]
    for browser in browsers:
        browser.subscribe(storage, ctx, school.teacher)
    with pytest.raises(Conflict) as caught:
        FakeBrowser(PUSH_ENDPOINT + "x").subscribe(storage, ctx, school.teacher)
    assert caught.value.params == {"limit": notifications.MAX_DEVICES}
    # renewing a device already counted is fine; another account has its own ten
    browsers[0].subscribe(storage, ctx, school.teacher)
    FakeBrowser(PUSH_ENDPOINT + "x").subscribe(storage, ctx, school.admin)
