"""The school's all-guardians group: who may set it up and change it, what the node checks."""

from __future__ import annotations

from typing import Any

import pytest

from node import refclient_groups as rc
from node.errors import Conflict, Invalid, NotFound, PermissionDenied
from node.services import alerts, directory, school_group
from node.services.context import ServiceContext
from node.storage.db import Storage
from tests.alert_factories import AlertSchool, make_alert_school
from tests.factories import client_account
from tests.feed_factories import as_json, make_class_feed


@pytest.fixture
def school(storage: Storage, ctx: ServiceContext) -> AlertSchool:
    return make_alert_school(storage, ctx, families=2)


def test_every_guardian_is_added_and_reads_their_own_key(storage, ctx, school) -> None:
    view = school.view(school.admin)
    assert view["add"] == [] and view["remove"] == []
    assert len(view["admin_fingerprints"]) == 1
    for person in school.guardians:
        mine = school.view(person)
        assert mine["is_member"] and len(mine["envelopes"]) == 1
        state, keys = rc.open_epoch_keys(mine, person.keys)
        assert set(keys) == {0} and person.me in state.active_members()


def test_a_teacher_sees_nothing_and_a_guardian_changes_nothing(storage, ctx, school) -> None:
    seen = school.view(school.feed.teacher)  # not in the emergency role: nothing to read
    assert (seen["is_member"], seen["entries"], seen["envelopes"]) == (False, [], [])
    assert seen["add"] == [] and seen["staff"] == []
    guardian = school.guardians[0]
    with pytest.raises(PermissionDenied):
        storage.call(school_group.append, ctx, guardian.actor, [{"seq": 9}], [])


def test_only_an_admin_creates_it_once_with_the_schools_own_admin_keys(
    storage: Storage, ctx: ServiceContext
) -> None:
    feed = make_class_feed(storage, ctx, 1)
    admin = feed.school.admin
    admin_keys = client_account("admin@school.test").keys
    me = school_group.member_id(ctx, admin.account_id)
    # the teacher's keys are not an admin's: refused as the emergency role
    teacher_log, teacher_env, _ = rc.setup_school_group(feed.teacher.keys, feed.teacher.me)
    with pytest.raises(Invalid):
        storage.call(school_group.create, ctx, admin, teacher_log, teacher_env)
    with pytest.raises(PermissionDenied):
        storage.call(school_group.create, ctx, feed.teacher.actor, teacher_log, teacher_env)
    log, envelopes, _ = rc.setup_school_group(admin_keys, me)
    with pytest.raises(Invalid):  # the epoch key must be sealed to every member
        storage.call(school_group.create, ctx, admin, log, [])
    storage.call(school_group.create, ctx, admin, log, envelopes)
    with pytest.raises(Conflict):
        storage.call(school_group.create, ctx, admin, log, envelopes)


def test_the_log_must_continue_the_head_and_verify(storage, ctx, school) -> None:
    view = school.view(school.admin)
    forked = dict(view["entries"][-1], seq=view["entries"][-1]["seq"])
    with pytest.raises(Conflict):
        storage.call(school_group.append, ctx, school.admin.actor, [forked], [])
    with pytest.raises(Invalid):
        storage.call(school_group.append, ctx, school.admin.actor, "nope", [])
    with pytest.raises(Invalid):
        storage.call(
            school_group.append, ctx, school.admin.actor, [{"seq": len(view["entries"])}], []
        )


def test_an_add_names_a_guardian_of_this_school_with_current_keys(storage, ctx, school) -> None:
    view = school.view(school.admin)
    teacher = school.feed.teacher
    stranger = {"member": teacher.me, "sign_pk": view["entries"][0]["by"],
                "enc_pk": view["entries"][1]["body"]["enc_pk"]}  # fmt: skip
    new, envelopes = rc.add_guardians(
        school.admin.keys, view["entries"], [stranger], school.epoch_key
    )
    with pytest.raises(Invalid):
        storage.call(school_group.append, ctx, school.admin.actor, new, envelopes)


def test_a_guardian_unlinked_is_listed_for_removal_and_loses_the_next_key(
    storage, ctx, school
) -> None:
    leaving = school.guardians[1]
    roster = storage.call(
        directory.class_roster, ctx, school.feed.teacher.actor, school.feed.class_id
    )
    invitation = next(
        g.invitation_id for c in roster if c.child.id == leaving.child_id for g in c.guardians
    )
    storage.call(directory.remove_guardian, ctx, school.feed.teacher.actor, invitation)
    view = school.view(school.admin)
    assert view["remove"] == [leaving.me]
    new, envelopes, key = rc.remove(
        school.admin.keys, view["entries"], view["remove"], school.epoch_key
    )
    storage.call(school_group.append, ctx, school.admin.actor, new, envelopes)
    school.epoch_key = key
    assert school.view(school.admin)["remove"] == []
    gone = school.view(leaving)
    assert not gone["is_member"] and gone["envelopes"] == [] and gone["entries"] == []


def test_before_set_up_an_admin_sees_who_would_be_added(storage, ctx) -> None:
    feed = make_class_feed(storage, ctx, 2)
    view = storage.call(school_group.view, ctx, feed.school.admin)
    assert view.group_id is None
    # the admin adds themselves with their emergency-role key when creating it
    assert {c.role for c in view.add} == {"guardian"} and len(view.add) == 2
    with pytest.raises(NotFound):
        storage.call(school_group.append, ctx, feed.school.admin, [{"seq": 1}], [])


def name_staff(school: AlertSchool, *people: Any) -> None:
    """The admin's page puts ``people`` (and themselves) in the emergency role, then syncs."""
    view = school.view(school.admin)
    keys = [school.admin.keys.sign_pk] + [p.keys.sign_pk for p in people]
    new, envelopes, school.epoch_key = rc.change_admins(
        school.admin.keys, view["entries"], keys, school.epoch_key
    )
    school.storage.call(school_group.append, school.ctx, school.admin.actor, new, envelopes)
    school.sync()


def test_a_named_teacher_sends_alerts_until_taken_out_of_the_role(storage, ctx, school) -> None:
    teacher = school.feed.teacher
    staff = {m["account_id"]: m for m in school.view(school.admin)["staff"]}
    assert staff[teacher.actor.account_id]["in_role"] is False
    with pytest.raises(PermissionDenied):
        storage.call(alerts.send, ctx, teacher.actor, school.alert_message(), "lockdown", False)
    with pytest.raises(PermissionDenied):
        storage.call(alerts.policy, ctx, teacher.actor)
    name_staff(school, teacher)
    assert school.view(school.admin)["add"] == []
    assert storage.call(alerts.policy, ctx, teacher.actor).sms_delay_seconds == 120  # reads it
    with pytest.raises(PermissionDenied):  # but only admins change it
        storage.call(alerts.set_policy, ctx, teacher.actor, 60, False, False)
    state, keys = rc.open_epoch_keys(school.view(teacher), teacher.keys)
    made = rc.encrypt_alert(teacher.keys, teacher.me, state, keys, "evacuation", "Cour.", False)
    sent = storage.call(alerts.send, ctx, teacher.actor, made["message"], "evacuation", False)
    guardian = school.guardians[0]
    view = as_json(storage.call(alerts.get_alert, ctx, guardian.actor, sent.alert_id))
    gstate, gkeys = rc.open_epoch_keys(school.view(guardian), guardian.keys)
    assert rc.decrypt_alert(view["messages"][0], gstate, gkeys)["text"] == "Cour."
    # out of the role again: the admin's page removes them, they send nothing more
    name_staff(school)
    view = school.view(school.admin)
    assert view["remove"] == [teacher.me]
    new, envelopes, school.epoch_key = rc.remove(
        school.admin.keys, view["entries"], view["remove"], school.epoch_key, cut=True
    )
    storage.call(school_group.append, ctx, school.admin.actor, new, envelopes)
    with pytest.raises(PermissionDenied):
        storage.call(alerts.send, ctx, teacher.actor, made["message"], "evacuation", False)
    # the alert they signed while in the role still opens for the guardian
    gstate, gkeys = rc.open_epoch_keys(school.view(guardian), guardian.keys)
    body = rc.decrypt_alert(view_of(storage, ctx, guardian, sent.alert_id), gstate, gkeys)
    assert body["text"] == "Cour."


def view_of(storage: Storage, ctx: ServiceContext, person: Any, alert_id: str) -> dict[str, Any]:
    return as_json(storage.call(alerts.get_alert, ctx, person.actor, alert_id))["messages"][0]


def test_the_role_names_only_staff_and_keeps_an_admin(storage, ctx, school) -> None:
    view = school.view(school.admin)
    guardian, teacher = school.guardians[0], school.feed.teacher
    for keys in ([school.admin.keys.sign_pk, guardian.keys.sign_pk], [teacher.keys.sign_pk]):
        new, envelopes, _ = rc.change_admins(
            school.admin.keys, view["entries"], keys, school.epoch_key
        )
        with pytest.raises(Invalid):
            storage.call(school_group.append, ctx, school.admin.actor, new, envelopes)


def test_no_alert_while_a_change_of_the_role_waits_for_its_new_key(storage, ctx, school) -> None:
    view = school.view(school.admin)
    new, envelopes, _ = rc.change_admins(
        school.admin.keys, view["entries"], [school.admin.keys.sign_pk], school.epoch_key
    )
    message = school.alert_message()  # made before: the epoch it names is the old one
    storage.call(school_group.append, ctx, school.admin.actor, new[:1], [])  # the rotate is lost
    with pytest.raises(Conflict):
        storage.call(alerts.send, ctx, school.admin.actor, message, "lockdown", False)
