"""Forgetting what is no longer needed: rate events, attempts, dead sessions, old notifications.

Runs periodically from the server (``node.workers.housekeeping``).  Nothing
here is needed once it has expired, and keeping it would only grow the
database and the amount of personal data held (GDPR data minimisation).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

from node.services import blobs, push_delivery, ratelimit, retention
from node.services.context import ServiceContext
from node.storage import accounts as account_store
from node.storage import onboarding as store
from node.storage.db import ping, write_transaction

#: Keep expired rows this long for troubleshooting before deleting them.
GRACE = dt.timedelta(days=7)


@dataclass(frozen=True)
class Purged:
    rate_events: int
    attempts: int
    sessions: int
    setup_links: int
    notifications: int = 0
    uploads: int = 0
    departed: retention.Purged = retention.Purged(0, 0)
    audit_events: int = 0
    #: files of the blob folder left without their row by a crash
    orphan_files: int = 0


def purge_expired(ctx: ServiceContext) -> Purged:
    """Delete expired rate events, login attempts, sessions, setup links and abandoned uploads."""
    now = ctx.now()
    with write_transaction():
        purged = Purged(
            rate_events=ratelimit.purge(ctx),
            attempts=store.delete_attempts_expired_before(now - GRACE),
            sessions=account_store.delete_sessions_ended_before(now - GRACE),
            setup_links=account_store.delete_setup_links_expired_before(now - GRACE),
            notifications=push_delivery.purge_done(ctx),
        )
    # its own transaction: the files go only after their rows are gone for good
    purged = dataclasses.replace(
        purged, uploads=blobs.purge_stale_uploads(ctx), orphan_files=blobs.sweep_orphan_files(ctx)
    )
    # families who left every class, and old audit events (docs/security.md): own transactions
    departed = retention.purge_departed(ctx)
    return dataclasses.replace(purged, departed=departed, audit_events=retention.purge_audit(ctx))


def database_ok(ctx: ServiceContext) -> bool:
    """A trivial query, for the health check."""
    return ping()
