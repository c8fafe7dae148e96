"""Issue 8: the audit log records security-relevant actions pseudonymously, for a limited time."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from node.errors import Invalid, NotFound, PermissionDenied, Unauthenticated
from node.services import accounts, audit, directory
from node.services.context import utcnow
from node.storage import accounts as account_store
from node.storage import directory as directory_store
from node.storage.db import Storage, write_transaction
from tests.absence_factories import at
from tests.alert_factories import add_alert_group
from tests.factories import secret_for
from tests.feed_factories import ClassFeed, make_class_feed
from tests.retention_factories import DAY, audit_rows, remove


@pytest.fixture
def cf(storage: Storage, ctx) -> ClassFeed:  # type: ignore[no-untyped-def]
    return make_class_feed(storage, ctx, families=2)


def _login(cf: ClassFeed, login: str, secret: str | None = None) -> None:
    pre = cf.storage.call(accounts.prelogin, cf.ctx, login)
    cf.storage.call(
        accounts.login, cf.ctx, login, secret or secret_for(pre.salt, pre.iterations), "192.0.2.9"
    )


def test_each_action_is_recorded_with_pseudonyms_and_no_personal_data(cf: ClassFeed) -> None:
    ctx, teacher = cf.ctx, cf.teacher.actor
    admin = cf.school.admin
    _login(cf, "dubois@school.test")
    with pytest.raises(Unauthenticated):
        _login(cf, "dubois@school.test", "A" * 43)
    alerting = add_alert_group(cf.storage, ctx, cf)
    alerting.send("lockdown", "Exercice", drill=True)
    remove(cf, cf.guardians[1])
    cf.storage.call(accounts.disable_account, ctx, admin, teacher.account_id)
    rows = audit_rows(cf)
    seen = {(r.action, r.outcome) for r in rows}
    assert {
        ("staff_created", "ok"),
        ("access_code_issued", "ok"),
        ("login", "ok"),
        ("login", "failed"),
        ("guardian_approved", "ok"),
        ("guardian_removed", "ok"),
        ("account_disabled", "ok"),
        ("alert_role_changed", "ok"),
        ("alert_sent", "ok"),
    } <= seen
    [sent] = [r for r in rows if r.action == "alert_sent"]
    assert '"drill":true' in sent.details and sent.actor == audit.pseudonym(ctx, admin.account_id)
    me = audit.pseudonym(ctx, teacher.account_id)
    assert me is not None and len(me) == 16
    logins = [r for r in rows if r.action == "login" and r.target == me]
    assert {r.outcome for r in logins} == {"ok", "failed"}
    approvals = [r for r in rows if r.action == "guardian_approved"]
    assert {r.target for r in approvals} >= {
        audit.pseudonym(ctx, g.actor.account_id) for g in cf.guardians
    }
    assert all(r.actor == me for r in approvals)
    # scan every row: no name, phone number or e-mail address of anyone on the node
    people = cf.storage.call(lambda: list(account_store.Account.select()))
    invitations = cf.storage.call(lambda: list(directory_store.GuardianInvitation.select()))
    secrets = {p.display_name for p in people} | {p.login for p in people}
    secrets |= {i.phone for i in invitations if i.phone} | {i.display_name for i in invitations}
    secrets |= {p.phone for p in people if p.phone}
    for row in rows:
        text = " ".join(str(v) for v in (row.actor, row.target, row.action, row.details))
        assert "@" not in text and "+33" not in text
        assert not any(s and s in text for s in secrets), (row.action, text)


def test_a_detail_that_could_be_personal_data_is_refused(storage: Storage, ctx: Any) -> None:
    def attempt(value: str) -> None:
        with write_transaction():
            audit.record(ctx, "export", 1, None, what=value)

    for value in ("parent@example.test", "+33612345678", "Camille Martin"):
        with pytest.raises(ValueError):
            storage.call(attempt, value)
    with pytest.raises(ValueError):
        audit.record(ctx, "no_such_action", None)


def test_only_admins_read_the_log_filtered_and_paged(cf: ClassFeed) -> None:
    ctx, admin = cf.ctx, cf.school.admin
    for person in (cf.teacher.actor, cf.guardians[0].actor):
        with pytest.raises(PermissionDenied):
            cf.storage.call(audit.list_events, ctx, person)
    page = cf.storage.call(audit.list_events, ctx, admin, "guardian_approved")
    assert page.total == len(cf.guardians)
    assert {e.action for e in page.events} == {"guardian_approved"}
    who = audit.pseudonym(ctx, cf.guardians[0].actor.account_id)
    mine = cf.storage.call(audit.list_events, ctx, admin, None, "1", who)
    assert mine.total >= 2 and all(who in (e.actor, e.target) for e in mine.events)
    for bad in ({"action": "drop table"}, {"page": "0"}, {"page": "x"}, {"who": "Camille"}):
        with pytest.raises(Invalid):
            cf.storage.call(audit.list_events, ctx, admin, **bad)
    # an admin answering a legal request finds whose events are whose
    found = cf.storage.call(audit.pseudonym_for_login, ctx, admin, "+33639980001")
    assert found == audit.pseudonym(ctx, cf.guardians[1].actor.account_id)
    with pytest.raises(NotFound):
        cf.storage.call(audit.pseudonym_for_login, ctx, admin, "+33639980999")
    with pytest.raises(PermissionDenied):
        cf.storage.call(audit.pseudonym_for_login, ctx, cf.teacher.actor, "+33639980001")


def test_events_are_kept_for_the_retention_period_then_purged(cf: ClassFeed) -> None:
    from node.services import retention

    count = len(audit_rows(cf))
    now = utcnow()
    assert cf.ctx.config.audit_retention_days == 365
    assert cf.storage.call(retention.purge_audit, at(cf.ctx, now + 364 * DAY)) == 0
    assert len(audit_rows(cf)) == count
    assert cf.storage.call(retention.purge_audit, at(cf.ctx, now + 366 * DAY)) == count
    assert audit_rows(cf) == []
    shorter = dataclasses.replace(
        cf.ctx, config=dataclasses.replace(cf.ctx.config, audit_retention_days=30)
    )
    cf.storage.call(directory.reissue_codes_for_class, shorter, cf.teacher.actor, cf.class_id)
    assert cf.storage.call(retention.purge_audit, at(shorter, now + 31 * DAY)) == 1
