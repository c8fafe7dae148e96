"""SIGKILL during an emergency alert's fan-out: the alert is all there or absent, pushes resume.

Each trial's child sends a real alert (``alerts.send``: the alert, its
message, a row per guardian and per child, one high-urgency notification
per guardian, in one transaction), then works as the push worker does:
claims a small batch of due notifications, "pushes" each (a line appended
to a file: what the push service received, which a kill cannot take back)
and records the results, until the outbox is empty.  The parent kills it
at a random instant, then, as the restarted node:

* the database checks clean;
* every alert present is complete (one message, every guardian and child,
  one notification per guardian), the trial's own alert is present or
  absent, and every alert of the earlier trials is still there;
* the admin's page sending the same signed alert again (it got no answer)
  is absorbed: refused as already sent if it was committed, sent otherwise;
  never two alerts;
* once the lease of what the dead worker had claimed runs out, the
  restarted worker pushes every notification not yet pushed; a notification
  pushed twice (claimed and pushed, killed before recording it) carries the
  same tag, so the guardian's device shows it once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import pytest

from node.errors import Conflict
from node.services import alerts, push_delivery
from node.services.context import ServiceContext
from node.storage import alerts as store
from node.storage import notifications as notification_store
from tests.faults import kill
from tests.faults.conftest import CALIBRATION, AlertSchool

pytestmark = pytest.mark.transport

#: A batch as small as this makes the worker's claim/push/record loop run several rounds.
BATCH = 2


def _drain(ctx: ServiceContext, pushes: Path) -> None:
    """The push worker's loop: claim a batch, push it, record what the push services said."""
    fd = os.open(pushes, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        while True:
            jobs, claimed = push_delivery.claim_due(ctx, limit=BATCH)
            if not claimed:
                return
            for job in jobs:
                os.write(fd, json.dumps([job.notification_id, job.payload["tag"]]).encode() + b"\n")
            push_delivery.record_results(
                ctx,
                {
                    j.notification_id: [
                        push_delivery.DeviceResult(t.subscription_id, "ok") for t in j.targets
                    ]
                    for j in jobs
                },
            )
    finally:
        os.close(fd)


def _pushed(pushes: Path) -> list[tuple[int, str]]:
    if not pushes.exists():
        return []
    return [tuple(json.loads(line)) for line in pushes.read_text().splitlines()]  # type: ignore[misc]


def _check_alerts(school: AlertSchool, alert_id: str) -> set[str]:
    """Every alert present is whole (counted over all of them: a check per alert would make
    the trials quadratic), the trial's own one row by row; returns the ids present."""
    present = {a.public_id for a in store.Alert.select(store.Alert.public_id)}
    n, g = len(present), school.guardians
    unsent = store.Alert.select().where(
        (store.Alert.state != "active") | store.Alert.sent_at.is_null()
    )
    assert unsent.count() == 0
    assert store.AlertMessage.select().count() == n
    assert store.AlertRecipient.select().count() == n * g
    assert store.AlertChild.select().count() == n * g  # a child per family
    alert_notices = notification_store.Notification.select().where(
        notification_store.Notification.kind == "alert"
    )
    assert alert_notices.count() == n * g
    mine = store.select_alert(alert_id)
    if mine is not None:
        notices = alert_notices.where(notification_store.Notification.alert_id == mine.id)
        assert sorted(x.account_id for x in notices) == sorted(store.recipient_accounts(mine.id))
        assert len(store.select_children(mine.id)) == g
    # nothing left of an alert that is not there (notifications have no foreign key to it)
    orphans = notification_store.Notification.select().where(
        (notification_store.Notification.kind == "alert")
        & notification_store.Notification.alert_id.not_in(
            store.Alert.select(store.Alert.id)  # type: ignore[arg-type]
        )
    )
    assert orphans.count() == 0
    return present


def test_an_alert_killed_mid_fan_out_is_all_or_nothing_and_every_push_goes_out(
    school_folder: AlertSchool,
) -> None:
    school = school_folder
    node_folder = school.folder
    pushes = node_folder / "pushes.jsonl"
    ctx, admin = school.ctx, school.admin

    def operation(message: dict[str, Any]) -> Any:
        def fan_out(progress: kill.Progress) -> None:
            alerts.send(ctx, admin, message, "lockdown", False)
            progress.report("sent")
            _drain(ctx, pushes)

        return fan_out

    first = school.messages[:CALIBRATION]
    window = kill.calibrate(node_folder, [operation(m) for m in first])
    committed = {m["header"]["id"] for m in first}
    seed, delays = kill.delays("alert fan-out", window, kill.trials())
    table = kill.Table("alert fan-out", seed, window)
    print(f"\nalert fan-out: seed {seed}, {len(delays)} trials, window {window * 1000:.1f} ms")
    for message, delay in zip(school.messages[CALIBRATION:], delays, strict=False):
        alert_id = message["header"]["id"]
        outcome = kill.run_and_kill(node_folder, operation(message), delay)
        with kill.open_node(node_folder) as db:
            kill.check_database(db)
            present = _check_alerts(school, alert_id)
            assert committed <= present, "an alert committed before the crash was lost"
            mine = alert_id in present
            assert mine or (outcome.killed and "sent" not in outcome.reports)
            table.count(outcome, mine)
            # the admin's page got no answer and sends the same signed alert again
            try:
                alerts.send(ctx, admin, message, "lockdown", False)
                assert not mine
            except Conflict:
                assert mine
                table.replays_absorbed += 1
            committed.add(alert_id)
            assert _check_alerts(school, alert_id) == committed
            # the restarted worker, once the dead worker's lease has run out
            later = ctx.now() + push_delivery.LEASE + dt.timedelta(seconds=1)
            _drain(dataclasses.replace(ctx, clock=lambda later=later: later), pushes)
            row = store.select_alert(alert_id)
            assert row is not None
            notices = list(
                notification_store.Notification.select().where(
                    notification_store.Notification.alert_id == row.id
                )
            )
            assert {n.status for n in notices} == {"sent"}
            assert all(r.delivered_at for r in store.select_recipients(row.id))
        pushed = [(n, tag) for n, tag in _pushed(pushes) if tag == f"alert-{alert_id}"]
        assert {n for n, _ in pushed} == {n.id for n in notices}, "a notice was never pushed"
        table.note("pushed_twice", len(pushed) - len({n for n, _ in pushed}))
    print(table.line())
    assert table.killed > 0
