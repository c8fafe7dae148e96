"""Emergency alerts through the services: who may send, what the node checks, acks, SMS escalation."""

from __future__ import annotations

import dataclasses
import datetime as dt
import zoneinfo
from typing import Any

import pytest

from node import refclient_groups as rc
from node.e2e.encoding import b64url_encode
from node.errors import Conflict, Invalid, NotFound, PermissionDenied
from node.services import alert_reach, alerts, notifications, push_delivery, sms_outbox
from node.services.context import ServiceContext
from node.storage import alerts as store
from node.storage import notifications as notification_store
from node.storage.db import Storage
from tests.alert_factories import AlertSchool, make_alert_school
from tests.factories import invite, make_child, make_staff, texts_to
from tests.feed_factories import as_json
from tests.push_factories import fake_browser


@pytest.fixture
def school(storage: Storage, ctx: ServiceContext) -> AlertSchool:
    return make_alert_school(storage, ctx, families=3)


def later(ctx: ServiceContext, seconds: int) -> ServiceContext:
    moment = ctx.now() + dt.timedelta(seconds=seconds)
    return dataclasses.replace(ctx, clock=lambda: moment)


def alert_notices(storage: Storage) -> list[notification_store.Notification]:
    query = notification_store.Notification.select().where(
        notification_store.Notification.kind == "alert"
    )
    return storage.call(lambda: list(query))


def recipient(storage: Storage, alert_id: str, account_id: int) -> store.AlertRecipient:
    found = storage.call(
        lambda: store.select_recipient(store.select_alert(alert_id).id, account_id)  # type: ignore[union-attr]
    )
    assert found is not None
    return found


# -- sending ------------------------------------------------------------------------


def test_an_alert_reaches_every_guardian_who_decrypts_it(storage: Storage, ctx, school) -> None:
    sent = school.send("lockdown", "Confinement : restez chez vous.")
    guardians = sorted(p.actor.account_id for p in school.guardians)
    assert sent.state == "active" and sorted(sent.recipients) == guardians
    notices = alert_notices(storage)
    assert sorted(n.account_id for n in notices) == guardians
    assert {n.urgency for n in notices} == {"high"}
    for person in school.guardians:
        view = as_json(storage.call(alerts.get_alert, ctx, person.actor, sent.alert_id))
        assert view["template"] == "lockdown" and not view["drill"]
        state, keys = rc.open_epoch_keys(school.view(person), person.keys)
        body = rc.decrypt_alert(view["messages"][0], state, keys)
        assert body == {"template": "lockdown", "text": "Confinement : restez chez vous.",
                        "drill": False}  # fmt: skip
        assert recipient(storage, sent.alert_id, person.actor.account_id).delivered_at


def test_the_push_notice_names_the_alert_and_says_nothing_of_its_text(storage, ctx, school) -> None:
    for person in school.guardians:
        fake_browser().subscribe(storage, ctx, person.actor)
    sent = school.send("evacuation", "Évacuation vers le gymnase.")
    jobs, _ = storage.call(push_delivery.claim_due, ctx)
    assert len(jobs) == 3 and {j.urgency for j in jobs} == {"high"}
    payload = jobs[0].payload
    assert payload["url"] == f"/alerts/{sent.alert_id}" and payload["kind"] == "alert"
    assert "gymnase" not in repr(payload)
    results = {j.notification_id: [push_delivery.DeviceResult(j.targets[0].subscription_id, "ok")]
               for j in jobs}  # fmt: skip
    storage.call(push_delivery.record_results, ctx, results)
    for person in school.guardians:
        assert recipient(storage, sent.alert_id, person.actor.account_id).delivered_at


@pytest.mark.parametrize("who", ["teacher", "guardian"])
def test_only_admins_send(storage, ctx, school, who) -> None:
    actor = school.feed.teacher.actor if who == "teacher" else school.guardians[0].actor
    message = school.alert_message()
    with pytest.raises(PermissionDenied):
        storage.call(alerts.send, ctx, actor, message, "lockdown", False)


def test_an_alert_signed_by_a_guardian_key_is_refused(storage, ctx, school) -> None:
    """Even relayed by an admin's session, a guardian-signed alert has no emergency-role key."""
    guardian = school.guardians[0]
    state, keys = rc.open_epoch_keys(school.view(guardian), guardian.keys)
    with pytest.raises(Exception, match="emergency"):
        rc.encrypt_alert(guardian.keys, guardian.me, state, keys, "lockdown", "x", False)
    forged = dict(school.alert_message())
    header = dict(forged["header"], author=guardian.me, by=b64url_encode(guardian.keys.sign_pk))
    forged["header"] = header
    with pytest.raises(Invalid):
        storage.call(alerts.send, ctx, school.admin.actor, forged, "lockdown", False)


def alert_texts(storage: Storage, phone: str) -> list[Any]:
    """The alert SMS copies sent to ``phone`` (its first-login code left out)."""
    return [t for t in texts_to(storage, phone) if t.purpose == "alert"]


def tampered(message: dict[str, Any], **header: Any) -> dict[str, Any]:
    return dict(message, header=dict(message["header"], **header))


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda m: dict(m, ct=m["ct"][:-4] + "AAAA"), Invalid),  # signature covers the ciphertext
        (lambda m: tampered(m, kind="post"), Invalid),
        (lambda m: tampered(m, group="A" * 22), Invalid),
        (lambda m: tampered(m, parent="B" * 22), Invalid),
        (lambda m: tampered(m, epoch=7), Conflict),
        (lambda m: {"header": m["header"]}, Invalid),
        (lambda m: "not an object", Invalid),
    ],
)
def test_the_node_refuses_a_malformed_or_altered_alert(storage, ctx, school, change, error) -> None:
    with pytest.raises(error):
        storage.call(
            alerts.send, ctx, school.admin.actor, change(school.alert_message()), "lockdown", False
        )
    assert storage.call(lambda: store.Alert.select().count()) == 0


def test_a_replayed_alert_is_refused(storage, ctx, school) -> None:
    message = school.alert_message()
    storage.call(alerts.send, ctx, school.admin.actor, message, "lockdown", False)
    with pytest.raises(Conflict):
        storage.call(alerts.send, ctx, school.admin.actor, message, "lockdown", False)


@pytest.mark.parametrize(("template", "drill"), [("all_clear", False), ("fire", False),
                                                 ("lockdown", "yes")])  # fmt: skip
def test_bad_templates_and_flags(storage, ctx, school, template, drill) -> None:
    with pytest.raises(Invalid):
        storage.call(alerts.send, ctx, school.admin.actor, school.alert_message(), template, drill)


# -- acknowledgements ------------------------------------------------------------------


def test_acknowledging_is_once_per_guardian_and_only_for_recipients(storage, ctx, school) -> None:
    sent = school.send()
    first = school.guardians[0]
    storage.call(alerts.acknowledge, ctx, first.actor, sent.alert_id)
    when = recipient(storage, sent.alert_id, first.actor.account_id).acknowledged_at
    storage.call(alerts.acknowledge, later(ctx, 30), first.actor, sent.alert_id)
    assert recipient(storage, sent.alert_id, first.actor.account_id).acknowledged_at == when
    with pytest.raises(NotFound):
        storage.call(alerts.acknowledge, ctx, school.admin.actor, sent.alert_id)
    with pytest.raises(NotFound):
        storage.call(alerts.acknowledge, ctx, first.actor, "C" * 22)
    listed = storage.call(alerts.list_alerts, ctx, first.actor)
    assert listed[0].acknowledged_at is not None


# -- SMS escalation -------------------------------------------------------------------


def test_no_device_means_an_sms_at_once_and_a_device_means_after_the_delay(
    storage, ctx, school
) -> None:
    with_device, without, acked = school.guardians
    fake_browser().subscribe(storage, ctx, with_device.actor)
    fake_browser().subscribe(storage, ctx, acked.actor)
    sent = school.send("lockdown", "Secret text")
    phones = {p.actor.account_id: f"+3363998{i:04d}" for i, p in enumerate(school.guardians)}
    assert [t.body for t in alert_texts(storage, phones[without.actor.account_id])] == [
        f"Urgent message from {ctx.config.school_name}: open Carnet now."
    ]
    assert alert_texts(storage, phones[with_device.actor.account_id]) == []
    storage.call(alerts.acknowledge, ctx, acked.actor, sent.alert_id)
    assert storage.call(alerts.escalate_due, later(ctx, 60)) == 0  # before the 2 minutes
    assert storage.call(alerts.escalate_due, later(ctx, 121)) == 1
    assert storage.call(alerts.escalate_due, later(ctx, 400)) == 0  # nobody twice
    assert len(alert_texts(storage, phones[with_device.actor.account_id])) == 1
    assert len(alert_texts(storage, phones[without.actor.account_id])) == 1
    assert alert_texts(storage, phones[acked.actor.account_id]) == []


def test_a_device_that_keeps_failing_does_not_delay_the_sms(storage, ctx, school) -> None:
    broken, fine = school.guardians[0], school.guardians[1]
    fake_browser().subscribe(storage, ctx, broken.actor)
    fake_browser().subscribe(storage, ctx, fine.actor)

    def failing() -> None:
        notification_store.PushSubscription.update(failures=3).where(
            notification_store.PushSubscription.account == broken.actor.account_id
        ).execute()

    storage.call(failing)
    school.send()
    assert len(alert_texts(storage, "+33639980000")) == 1  # at once: no working device
    assert alert_texts(storage, "+33639980001") == []  # after the delay, if not acknowledged


def test_the_sms_carries_the_text_only_where_the_school_opted_in(storage, ctx, school) -> None:
    phone = "+33639980000"
    school.send("lockdown", "x", sms_text="Confinement, ne venez pas.")
    assert "Confinement" not in alert_texts(storage, phone)[0].body
    storage.call(alerts.set_policy, ctx, school.admin.actor, 120, True, False)
    school.send("lockdown", "y", sms_text="Confinement, ne venez pas.")
    assert (
        alert_texts(storage, phone)[1].body
        == f"{ctx.config.school_name}: Confinement, ne venez pas."
    )
    with pytest.raises(Invalid):
        school.send("lockdown", "z", sms_text="x" * 301)


def test_a_drill_sends_no_sms_and_says_so(storage, ctx, school) -> None:
    sent = school.send("lockdown", "Exercice", drill=True)
    assert alert_texts(storage, "+33639980000") == []
    assert storage.call(alerts.escalate_due, later(ctx, 3600)) == 0
    assert (
        recipient(storage, sent.alert_id, school.guardians[0].actor.account_id).sms_state == "drill"
    )
    jobs_view = as_json(storage.call(alerts.get_alert, ctx, school.admin.actor, sent.alert_id))
    assert jobs_view["drill"] is True


# -- follow-ups, all clear ---------------------------------------------------------------


def test_follow_ups_stay_in_the_thread_until_all_clear(storage, ctx, school) -> None:
    sent = school.send()
    follow = school.alert_message("free", "Restez à l'intérieur.", parent=sent.alert_id)
    storage.call(alerts.follow_up, ctx, school.admin.actor, sent.alert_id, follow, "free")
    stray = school.alert_message("free", "Autre fil.")  # no parent
    with pytest.raises(Invalid):
        storage.call(alerts.follow_up, ctx, school.admin.actor, sent.alert_id, stray, "free")
    done = school.alert_message("all_clear", "", parent=sent.alert_id)
    closed = storage.call(
        alerts.follow_up, ctx, school.admin.actor, sent.alert_id, done, "all_clear"
    )
    assert closed.state == "closed"
    assert storage.call(alerts.escalate_due, later(ctx, 600)) == 0
    late = school.alert_message("free", "Encore", parent=sent.alert_id)
    with pytest.raises(Conflict):
        storage.call(alerts.follow_up, ctx, school.admin.actor, sent.alert_id, late, "free")
    guardian = school.guardians[0]
    view = as_json(storage.call(alerts.get_alert, ctx, guardian.actor, sent.alert_id))
    assert [m["template"] for m in view["messages"]] == ["lockdown", "free", "all_clear"]
    state, keys = rc.open_epoch_keys(school.view(guardian), guardian.keys)
    assert rc.decrypt_alert(view["messages"][1], state, keys)["text"] == "Restez à l'intérieur."
    assert len(alert_notices(storage)) == 9  # 3 messages × 3 guardians


# -- two-person approval ---------------------------------------------------------------


def test_two_person_approval(storage, ctx, school) -> None:
    second = make_staff(
        storage, ctx, "admin", "M. Second", "second@school.test", by=school.admin.actor
    )
    storage.call(alerts.set_policy, ctx, school.admin.actor, 120, False, True)
    waiting = school.send()
    assert waiting.state == "awaiting_approval" and waiting.recipients == []
    assert alert_notices(storage) == []
    with pytest.raises(NotFound):
        storage.call(alerts.get_alert, ctx, school.guardians[0].actor, waiting.alert_id)
    with pytest.raises(PermissionDenied):
        storage.call(alerts.approve, ctx, school.admin.actor, waiting.alert_id)
    approved = storage.call(alerts.approve, ctx, second, waiting.alert_id)
    assert approved.state == "active" and len(approved.recipients) == 3
    with pytest.raises(Conflict):
        storage.call(alerts.approve, ctx, second, waiting.alert_id)
    drill = school.send(drill=True)  # drills never wait
    assert drill.state == "active"
    other = school.send()
    assert storage.call(alerts.cancel, ctx, second, other.alert_id).state == "cancelled"


@pytest.mark.parametrize(
    ("delay", "with_text", "two"), [(5, False, False), (7200, False, False), (120, "no", False),
                                    (120, False, None), ("120", False, False)],
)  # fmt: skip
def test_policy_bad_input(storage, ctx, school, delay, with_text, two) -> None:
    with pytest.raises(Invalid):
        storage.call(alerts.set_policy, ctx, school.admin.actor, delay, with_text, two)
    assert storage.call(alerts.policy, ctx, school.admin.actor) == alerts.Policy(120, False, False)


def test_only_admins_see_or_change_the_policy(storage, ctx, school) -> None:
    with pytest.raises(PermissionDenied):
        storage.call(alerts.set_policy, ctx, school.feed.teacher.actor, 60, False, False)


# -- reach -------------------------------------------------------------------------


def test_the_dashboard_counts_a_child_reached_when_any_guardian_acknowledged(
    storage, ctx, school
) -> None:
    teacher = school.feed.teacher.actor
    # a second guardian for the first child, and a child whose family has no account yet
    invite(storage, ctx, teacher, school.guardians[0].child_id, phone="+33639981111", name="Papa")
    lonely = make_child(storage, ctx, teacher, school.feed.class_id, "Zoé", "Seule")
    sent = school.send()
    storage.call(alerts.acknowledge, ctx, school.guardians[0].actor, sent.alert_id)
    reach = storage.call(alert_reach.dashboard, ctx, school.admin.actor, sent.alert_id)
    assert reach.guardians == 3 and reach.acknowledged == 1
    (klass,) = reach.classes
    by_child = {c.child_id: c for c in klass.children}
    assert by_child[school.guardians[0].child_id].reached
    assert not by_child[school.guardians[1].child_id].reached
    assert not by_child[lonely.id].reached and by_child[lonely.id].guardians == []
    assert reach.children == 4 and reach.children_reached == 1
    assert "+3363" not in repr(reach)  # never a phone number
    with pytest.raises(PermissionDenied):
        storage.call(alert_reach.dashboard, ctx, teacher, sent.alert_id)


# -- who cannot be reached, and how fast ---------------------------------------------------


def test_the_worklist_lists_families_no_alert_reaches_in_the_app(storage, ctx, school) -> None:
    teacher = school.feed.teacher.actor
    with_device, without, _ = school.guardians
    fake_browser().subscribe(storage, ctx, with_device.actor)
    fake_browser().subscribe(storage, ctx, school.guardians[2].actor)
    # a second guardian for the family with a device, who never joined: that family is fine
    invite(storage, ctx, teacher, with_device.child_id, phone="+33639981111", name="Papa")
    lonely = make_child(storage, ctx, teacher, school.feed.class_id, "Zoé", "Seule")
    invite(storage, ctx, teacher, lonely.id, phone="+33639982222", name="Maman de Zoé")
    found = storage.call(alert_reach.worklist, ctx, school.admin.actor)
    by_child = {f.child_id: f for f in found}
    assert set(by_child) == {without.child_id, lonely.id}
    assert by_child[without.child_id].reach == "sms"
    assert [g.problem for g in by_child[without.child_id].guardians] == ["no_device"]
    assert by_child[lonely.id].reach == "none"
    assert [(g.name, g.problem) for g in by_child[lonely.id].guardians] == [
        ("Maman de Zoé", "not_joined")
    ]
    assert "+336" not in repr(found)
    with pytest.raises(PermissionDenied):
        storage.call(alert_reach.worklist, ctx, teacher)


def test_the_timing_report_of_a_drill(storage, ctx, school) -> None:
    for person in school.guardians[:2]:
        fake_browser().subscribe(storage, ctx, person.actor)
    sent_at = ctx.now()

    def at(seconds: int) -> ServiceContext:  # a stopped clock: times count from sent_at exactly
        return dataclasses.replace(ctx, clock=lambda: sent_at + dt.timedelta(seconds=seconds))

    school.ctx = at(0)
    sent = school.send("lockdown", "Exercice", drill=True)
    storage.call(alerts.acknowledge, at(20), school.guardians[0].actor, sent.alert_id)
    storage.call(alerts.acknowledge, at(50), school.guardians[1].actor, sent.alert_id)
    report = storage.call(alert_reach.timing, ctx, school.admin.actor, sent.alert_id)
    assert (report.recipients, report.acknowledged, report.delivered) == (3, 2, 2)
    assert (report.first_ack, report.median_ack) == (20.0, 50.0)
    assert report.p90_ack is None and report.last_ack is None  # the third never acknowledged
    assert report.texts == 1  # the guardian with no device: what a real alert would have texted
    with pytest.raises(NotFound):
        storage.call(alert_reach.timing, ctx, school.admin.actor, "D" * 22)


async def test_a_stop_reply_never_silences_an_alert(app, storage, ctx, school) -> None:
    await app.extensions["carnet_sms"].stop()  # the texts stay queued for this test to read
    storage.call(sms_outbox.apply_reply, ctx, "+33639980000", "stop")
    assert storage.call(sms_outbox.opted_out, ctx, "+33639980000")
    school.send("lockdown", "x")  # nobody has a device: every guardian is texted at once
    [text] = alert_texts(storage, "+33639980000")
    [due] = [t for t in storage.call(sms_outbox.due, ctx, 100) if t.reference == text.reference]
    assert due.urgent  # sent from the alert sender


def test_an_alert_ignores_quiet_hours(storage, ctx, school) -> None:
    guardian = school.guardians[0]
    # quiet all day long but one minute: whatever the time now, it is inside them
    now_local = ctx.now().replace(tzinfo=dt.UTC).astimezone(zoneinfo.ZoneInfo(ctx.config.timezone))
    end = (now_local - dt.timedelta(minutes=1)).strftime("%H:%M")
    start = (now_local - dt.timedelta(minutes=2)).strftime("%H:%M")
    storage.call(notifications.set_quiet_hours, ctx, guardian.actor, start, end)
    school.send()
    [notice] = [n for n in alert_notices(storage) if n.account_id == guardian.actor.account_id]
    assert notice.deliver_after <= ctx.now() and notice.urgency == "high"
