"""Expired rows are forgotten; live ones stay."""

from __future__ import annotations

import dataclasses
import datetime as dt

from quart.typing import TestClientProtocol as Client

from node.e2e.attachments import sha256_b64
from node.services import accounts, blobs, housekeeping, onboarding
from node.services.context import ServiceContext
from node.services.posts import blob_store
from node.storage import accounts as account_store
from node.storage import onboarding as onboarding_store
from node.storage.db import Storage
from tests.factories import invite, make_school
from tests.feed_factories import make_class_feed


def _age_everything(days: int) -> None:
    past = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=days)
    onboarding_store.RateEvent.update(created_at=past).execute()
    onboarding_store.LoginAttempt.update(expires_at=past).execute()
    account_store.SetupLink.update(expires_at=past).execute()


def test_purge_forgets_expired_and_keeps_live(storage: Storage, ctx: ServiceContext) -> None:
    school = make_school(storage, ctx)
    slip = invite(storage, ctx, school.teacher, school.child_id)
    storage.call(onboarding.start, ctx, "+33639980001", slip.code, "192.0.2.9", "en")
    storage.call(accounts.create_staff, ctx, school.admin, "teacher", "Pending", "p@school.test")
    nothing = storage.call(housekeeping.purge_expired, ctx)
    assert nothing == housekeeping.Purged(0, 0, 0, 0)
    storage.call(_age_everything, 30)
    purged = storage.call(housekeeping.purge_expired, ctx)
    assert purged.rate_events >= 1 and purged.attempts == 1 and purged.setup_links >= 1
    # Live sessions (the staff logged in by the factories) are kept.
    assert purged.sessions == 0
    assert storage.call(lambda: account_store.Session.select().count()) == 2


async def test_health_check_queries_the_database(client: Client) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert (await response.get_json()) == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"


def test_abandoned_uploads_are_deleted_after_a_day_attached_ones_stay(
    storage: Storage, ctx: ServiceContext
) -> None:
    cf = make_class_feed(storage, ctx, families=1)
    teacher = cf.teacher.actor

    def upload() -> str:
        info = storage.call(blobs.start_upload, ctx, teacher, cf.class_id, 32)
        storage.call(blobs.append_part, ctx, teacher, info.id, 0, b"c" * 32)
        storage.call(blobs.complete_upload, ctx, teacher, info.id, sha256_b64(b"c" * 32))
        return str(info.id)

    abandoned, attached = upload(), upload()
    cf.post({"text": "x", "attachments": []}, blobs=[attached])
    later = dataclasses.replace(ctx, clock=lambda: ctx.now() + dt.timedelta(hours=25))
    assert storage.call(housekeeping.purge_expired, ctx).uploads == 0  # too recent
    assert storage.call(housekeeping.purge_expired, later).uploads == 1
    store = blob_store(ctx)
    assert not store.path(abandoned).exists() and store.path(attached).exists()
