"""Issue 8: families who left every class are erased after the retention delay, not before."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from node.services import erasure, housekeeping, posts, retention
from node.services.context import utcnow
from node.storage import absences as absence_store
from node.storage import accounts as account_store
from node.storage import directory as directory_store
from node.storage.db import Storage
from tests.absence_factories import at, report
from tests.factories import make_child
from tests.feed_factories import ClassFeed, make_class_feed
from tests.retention_factories import (
    DAY,
    account_exists,
    audit_rows,
    housekeeping_at,
    message_row,
    remove,
    upload,
)


@pytest.fixture
def cf(storage: Storage, ctx) -> ClassFeed:  # type: ignore[no-untyped-def]
    return make_class_feed(storage, ctx, families=2)


def test_a_departed_family_is_erased_after_exactly_the_delay_and_not_before(
    cf: ClassFeed,
) -> None:
    leaving, staying = cf.guardians
    post = cf.post({"text": "Sortie au musée", "attachments": []})
    comment = cf.reply(leaving, post, "comment", {"text": "Merci !"})
    kept = cf.reply(staying, post, "comment", {"text": "Super"})
    note = report(cf, leaving, "absent", utcnow().date().isoformat())
    blob = upload(cf, leaving)
    path = posts.blob_store(cf.ctx).path(blob)
    assert path.exists()
    remove(cf, leaving)
    left_at = utcnow().replace(microsecond=0)
    delay = dt.timedelta(days=cf.ctx.config.departed_family_retention_days)
    assert delay == 92 * DAY  # the default: three months

    housekeeping_at(cf, left_at)  # the first pass that finds them in no class
    purged = housekeeping_at(cf, left_at + delay - dt.timedelta(seconds=1))
    assert purged.departed.accounts == 0
    assert account_exists(cf, leaving.actor.account_id)
    assert message_row(cf, comment).ct is not None

    purged = housekeeping_at(cf, left_at + delay)
    assert purged.departed.accounts == 1
    assert not account_exists(cf, leaving.actor.account_id)
    sessions = cf.storage.call(
        lambda: (
            account_store.Session.select()
            .where(account_store.Session.account == leaving.actor.account_id)
            .count()
        )
    )
    assert sessions == 0
    gone = message_row(cf, comment)  # a tombstone: the thread keeps its shape
    assert gone.deleted_at is not None and gone.ct is None and gone.header is None
    assert message_row(cf, note).ct is None
    notes = cf.storage.call(lambda: absence_store.AbsenceNote.select().count())
    assert notes == 0
    assert not path.exists()
    # others' words and the teacher's post stay
    assert message_row(cf, kept).ct is not None and message_row(cf, post).ct is not None
    assert [r.action for r in audit_rows(cf)][-2:] == ["family_purged", "child_purged"]


def link(cf: ClassFeed, account_id: int, child_id: int) -> None:
    """What a guardian's first login with a slip for this child ends with (the link only)."""
    cf.storage.call(
        directory_store.Guardianship.create, child=child_id, account=account_id,
        created_at=utcnow(),
    )  # fmt: skip


def test_a_family_with_one_child_still_in_a_class_is_not_purged(cf: ClassFeed) -> None:
    parent = cf.guardians[0]
    second = make_child(cf.storage, cf.ctx, cf.teacher.actor, cf.class_id, "Tom")
    link(cf, parent.actor.account_id, second.id)
    remove(cf, parent)  # unlinked from their first child only
    now = utcnow()
    housekeeping_at(cf, now)
    purged = housekeeping_at(cf, now + 400 * DAY)
    assert purged.departed.accounts == 0
    assert account_exists(cf, parent.actor.account_id)
    # the first child, whose only guardian was removed, left; the second stays
    assert purged.departed.children == 1
    assert cf.storage.call(directory_store.select_child, second.id) is not None


def test_a_guardian_back_in_a_class_before_the_delay_is_kept(cf: ClassFeed) -> None:
    parent = cf.guardians[1]
    remove(cf, parent)
    now = utcnow()
    housekeeping_at(cf, now)
    assert parent.child_id is not None
    link(cf, parent.actor.account_id, parent.child_id)  # back in the class
    housekeeping_at(cf, now + DAY)  # the departure is forgotten
    purged = housekeeping_at(cf, now + 200 * DAY)
    assert purged.departed.accounts == 0 and account_exists(cf, parent.actor.account_id)


def test_a_child_whose_guardians_were_all_removed_is_erased_after_the_delay(
    cf: ClassFeed,
) -> None:
    parent = cf.guardians[1]
    child_id = parent.child_id
    remove(cf, parent)
    now = utcnow()
    housekeeping_at(cf, now)
    delay = cf.ctx.config.departed_family_retention_days * DAY
    assert cf.storage.call(directory_store.select_child, child_id) is not None
    purged = housekeeping_at(cf, now + delay)
    assert purged.departed.children == 1 and purged.departed.accounts == 1
    assert cf.storage.call(directory_store.select_child, child_id) is None
    # the invitation that held the guardian's name and phone number went with the child
    invitations = directory_store.GuardianInvitation
    left = cf.storage.call(
        lambda: invitations.select().where(invitations.child == child_id).count()
    )
    assert left == 0
    actions = [r.action for r in audit_rows(cf)]
    assert actions[-2:] == ["family_purged", "child_purged"]


def test_the_retention_delay_is_a_setting(cf: ClassFeed) -> None:
    config = dataclasses.replace(cf.ctx.config, departed_family_retention_days=7)
    short = dataclasses.replace(cf.ctx, config=config)
    remove(cf, cf.guardians[1])
    now = utcnow()
    cf.storage.call(retention.purge_departed, at(short, now))
    assert cf.storage.call(retention.purge_departed, at(short, now + 6 * DAY)).accounts == 0
    assert cf.storage.call(retention.purge_departed, at(short, now + 7 * DAY)).accounts == 1


def test_shadows_of_a_mirrored_class_s_other_members_are_never_purged(
    storage: Storage, ctx: Any
) -> None:
    """A class of another school mirrored here names its teacher and other families by
    shadow accounts, linked to no child here: they have not "left"."""
    shadow = storage.call(
        account_store.Account.create, role="guardian", display_name="Parent à B",
        login="np:9@ecole-b.example", status="remote", created_at=utcnow(),
    )  # fmt: skip
    now = utcnow()
    storage.call(housekeeping.purge_expired, at(ctx, now))
    purged = storage.call(housekeeping.purge_expired, at(ctx, now + 400 * DAY))
    assert purged.departed.accounts == 0
    assert storage.call(account_store.select_account, shadow.id) is not None


def test_an_erasure_that_fails_holds_back_no_other_and_is_retried(
    cf: ClassFeed, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = cf.guardians
    remove(cf, first)
    remove(cf, second)
    now = utcnow()
    housekeeping_at(cf, now)
    real = erasure.erase_account

    def broken(ctx: Any, account_id: int) -> erasure.Erased:
        if account_id == first.actor.account_id:
            raise RuntimeError("a row nobody foresaw points at this account")
        return real(ctx, account_id)

    monkeypatch.setattr(erasure, "erase_account", broken)
    later = now + 100 * DAY
    purged = housekeeping_at(cf, later)
    assert (purged.departed.accounts, purged.departed.failed) == (1, 1)
    assert account_exists(cf, first.actor.account_id)  # its transaction rolled back whole
    assert not account_exists(cf, second.actor.account_id)
    monkeypatch.setattr(erasure, "erase_account", real)
    assert housekeeping_at(cf, later + DAY).departed.accounts == 1
    assert not account_exists(cf, first.actor.account_id)
