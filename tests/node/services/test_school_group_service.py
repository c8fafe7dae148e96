"""The school's all-guardians group: who may set it up and change it, what the node checks."""

from __future__ import annotations

import pytest

from node import refclient_groups as rc
from node.errors import Conflict, Invalid, NotFound, PermissionDenied
from node.services import directory, school_group
from node.services.context import ServiceContext
from node.storage.db import Storage
from tests.alert_factories import AlertSchool, make_alert_school
from tests.factories import client_account
from tests.feed_factories import make_class_feed


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
    with pytest.raises(PermissionDenied):
        storage.call(school_group.view, ctx, school.feed.teacher.actor)
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
