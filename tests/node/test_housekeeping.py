"""Expired rows are forgotten; live ones stay."""

from __future__ import annotations

import datetime as dt

from quart.typing import TestClientProtocol as Client

from node.services import accounts, housekeeping, onboarding
from node.services.context import ServiceContext
from node.storage import accounts as account_store
from node.storage import onboarding as onboarding_store
from node.storage.db import Storage
from tests.factories import invite, make_school


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
