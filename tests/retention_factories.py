"""Plain functions for the retention, erasure and audit tests: a family leaves, time passes."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from node.e2e.encoding import b64url_encode
from node.services import blobs, directory, housekeeping
from node.services.context import ServiceContext
from node.storage import accounts as account_store
from node.storage import audit as audit_store
from node.storage import directory as directory_store
from node.storage import feed as feed_store
from tests.absence_factories import at
from tests.feed_factories import ClassFeed, Person

DAY = dt.timedelta(days=1)


def invitation_of(cf: ClassFeed, person: Person, child_id: int | None = None) -> int:
    model = directory_store.GuardianInvitation
    child = child_id if child_id is not None else person.child_id
    row = cf.storage.call(
        lambda: model.get((model.child == child) & (model.account == person.actor.account_id))
    )
    return int(row.id)


def remove(cf: ClassFeed, person: Person, child_id: int | None = None) -> None:
    """The teacher unlinks the guardian from one child (the roster's "Remove")."""
    invitation = invitation_of(cf, person, child_id)
    cf.storage.call(directory.remove_guardian, cf.ctx, cf.teacher.actor, invitation)


def housekeeping_at(cf: ClassFeed, moment: dt.datetime) -> housekeeping.Purged:
    purged: housekeeping.Purged = cf.storage.call(housekeeping.purge_expired, at(cf.ctx, moment))
    return purged


def account_exists(cf: ClassFeed, account_id: int) -> bool:
    return cf.storage.call(account_store.select_account, account_id) is not None


def message_row(cf: ClassFeed, public_id: str) -> Any:
    model = feed_store.Message
    return cf.storage.call(lambda: model.get(model.public_id == public_id))


def upload(cf: ClassFeed, person: Person, data: bytes = b"0123456789abcdef" * 4) -> str:
    """A finished upload of ``person`` in the class; returns its id."""
    ctx: ServiceContext = cf.ctx
    info = cf.storage.call(blobs.start_upload, ctx, person.actor, cf.class_id, len(data))
    cf.storage.call(blobs.append_part, ctx, person.actor, info.id, 0, data)
    digest = b64url_encode(hashlib.sha256(data).digest())
    cf.storage.call(blobs.complete_upload, ctx, person.actor, info.id, digest)
    return str(info.id)


def audit_rows(cf: ClassFeed) -> list[audit_store.AuditEvent]:
    model = audit_store.AuditEvent
    return cf.storage.call(lambda: list(model.select().order_by(model.id)))
