"""Rate limits kept in the database, so they hold across processes and restarts.

A bucket counts events (failures, texts sent) in a sliding window.  Buckets
are chosen so that a stranger cannot lock out a real parent: failures are
counted per client address and per code, never per phone number alone (an
SMS is only sent after the right access code, which a stranger lacks).
"""

from __future__ import annotations

import datetime as dt

from node.errors import N_, RateLimited
from node.services.context import ServiceContext
from node.storage import onboarding as store


def check(ctx: ServiceContext, bucket: str, limit: int, window: dt.timedelta) -> None:
    """Raise RateLimited when ``bucket`` already holds ``limit`` events in ``window``."""
    since = ctx.now() - window
    if store.count_rate_events(bucket, since) >= limit:
        raise RateLimited(
            N_("Too many attempts. Wait a few minutes, then try again."),
            retry_after=int(window.total_seconds()),
        )


def hit(ctx: ServiceContext, bucket: str) -> None:
    store.insert_rate_event(bucket, ctx.now())


def purge(ctx: ServiceContext, older_than: dt.timedelta = dt.timedelta(days=1)) -> int:
    """Forget events older than every window in use (run by the housekeeping task)."""
    return store.delete_rate_events_before(ctx.now() - older_than)


FIFTEEN_MINUTES = dt.timedelta(minutes=15)
ONE_HOUR = dt.timedelta(hours=1)


def ip_bucket(ip: str) -> str:
    return f"fail-ip:{ip}"[:120]


def check_ip(ctx: ServiceContext, ip: str) -> None:
    check(ctx, ip_bucket(ip), ctx.config.failures_per_ip_per_15min, FIFTEEN_MINUTES)
