"""Absence notes through the services: who reports, who reads, dates, seen, withdraw."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from node import refclient_groups as rc
from node.errors import Conflict, Invalid, NotFound, PermissionDenied
from node.services import absences, push_delivery
from node.services.context import ServiceContext
from node.storage import absences as absence_store
from node.storage import feed as feed_store
from node.storage import notifications as notification_store
from node.storage.db import Storage
from tests.absence_factories import at, body, report, sealed_note, second_guardian
from tests.factories import invite, make_child, make_class, make_guardian
from tests.feed_factories import ClassFeed, Person, as_json, make_class_feed
from tests.node.test_node_cannot_read import encodings, every_row

#: Tuesday 10 March 2026, 09:00 UTC (10:00 in Paris)
NOW = dt.datetime(2026, 3, 10, 9, 0)


@pytest.fixture
def cf(storage: Storage, ctx: ServiceContext) -> ClassFeed:
    feed_ = make_class_feed(storage, ctx, families=2)
    feed_.ctx = at(ctx, NOW)
    return feed_


def notes_of(cf: ClassFeed, person: Person, day: str | None = None) -> dict[str, Any]:
    return as_json(cf.storage.call(absences.list_notes, cf.ctx, person.actor, cf.class_id, day))


def opened(cf: ClassFeed, person: Person, note: dict[str, Any]) -> dict[str, Any]:
    state, keys = cf.keys_of(person)
    return rc.decrypt(note, state, keys, person.keys, person.me)


def test_the_teacher_sees_the_days_notes_and_decrypts_them(cf: ClassFeed) -> None:
    parent = cf.guardians[0]
    note = report(cf, parent, "absent", "2026-03-11", "2026-03-12", text="Grippe")

    for day in ("2026-03-11", "2026-03-12"):
        listed = notes_of(cf, cf.teacher, day)
        assert [n["id"] for n in listed["notes"]] == [note]
    item = notes_of(cf, cf.teacher, "2026-03-11")["notes"][0]
    assert item["child_name"] == "Léa" and item["kind"] == "absent"
    assert item["author_name"] == "Parent 0" and item["seen_at"] is None
    assert opened(cf, cf.teacher, item)["text"] == "Grippe"
    assert notes_of(cf, cf.teacher, "2026-03-13")["notes"] == []
    assert notes_of(cf, cf.teacher)["day"] == "2026-03-10"  # today by default


def test_a_lateness_carries_its_arrival_time_encrypted_only(cf: ClassFeed) -> None:
    note = report(cf, cf.guardians[0], "late", "2026-03-10", arrival="10:30")
    item = notes_of(cf, cf.teacher, "2026-03-10")["notes"][0]
    assert item["kind"] == "late" and item["first_day"] == item["last_day"] == "2026-03-10"
    assert opened(cf, cf.teacher, item)["arrival"] == "10:30"
    row = feed_store.Message.get(feed_store.Message.public_id == note)
    assert "10:30" not in (row.header or "") + (row.ct or "")


def test_the_reason_and_arrival_never_reach_the_database(cf: ClassFeed) -> None:
    reason = "CANARY-ABSENCE-REASON-7f3a"
    report(cf, cf.guardians[0], "late", "2026-03-10", arrival="10:47", text=reason)
    report(cf, cf.guardians[0], "absent", "2026-03-12", text=reason)
    dump = cf.storage.call(lambda: every_row(feed_store.Message._meta.database))
    for secret in encodings(reason.encode()):
        assert secret not in dump
    assert b"10:47" not in dump


def test_both_separated_parents_see_the_note_and_other_families_do_not(cf: ClassFeed) -> None:
    other_parent = second_guardian(cf, cf.guardians[0].child_id or 0)
    report(cf, cf.guardians[0], "absent", "2026-03-11", text="Dentiste")

    mine = notes_of(cf, other_parent)["notes"]
    assert len(mine) == 1 and opened(cf, other_parent, mine[0])["text"] == "Dentiste"
    assert mine[0]["can_withdraw"] is False  # only its author withdraws it
    assert notes_of(cf, cf.guardians[0])["notes"][0]["can_withdraw"] is True
    assert notes_of(cf, cf.guardians[1])["notes"] == []


def test_the_teacher_is_notified_without_content(cf: ClassFeed) -> None:
    note = report(cf, cf.guardians[0], "absent", "2026-03-11", text="Varicelle")
    rows = list(
        notification_store.Notification.select().where(
            notification_store.Notification.kind == "absence"
        )
    )
    assert [r.account_id for r in rows] == [cf.teacher.actor.account_id]
    jobs, _ = cf.storage.call(push_delivery.claim_due, cf.ctx)
    assert jobs == []  # the teacher has no device: nothing to push, nothing lost
    label = (note, "Parent 0", False)
    payload = push_delivery.build_payload(cf.ctx, 1, "absence", cf.class_id, "CE1 A", label)
    assert payload["title"] == "CE1 A" and payload["body"]["en"] == "New absence note"
    assert payload["url"] == f"/classes/{cf.class_id}/absences"
    assert "Varicelle" not in str(payload)


def test_a_guardian_cannot_report_for_another_child(cf: ClassFeed) -> None:
    with pytest.raises(PermissionDenied):
        report(cf, cf.guardians[0], "absent", "2026-03-11", child=cf.guardians[1].child_id)


def test_the_teacher_cannot_report(cf: ClassFeed) -> None:
    teacher = Person(cf.teacher.actor, cf.teacher.keys, cf.teacher.me, cf.guardians[0].child_id)
    with pytest.raises(PermissionDenied):
        report(cf, teacher, "absent", "2026-03-11")


def test_a_guardian_of_another_class_gets_not_found(cf: ClassFeed) -> None:
    other = make_class(cf.storage, cf.ctx, cf.teacher.actor, "CM2 B")
    kid = make_child(cf.storage, cf.ctx, cf.teacher.actor, other.id, "Tom")
    slip = invite(cf.storage, cf.ctx, cf.teacher.actor, kid.id, phone="+33639987777")
    stranger = make_guardian(cf.storage, cf.ctx, slip.code, "+33639987777")
    request = sealed_note(cf, cf.guardians[0], body("absent", "2026-03-11"))
    with pytest.raises(NotFound):
        cf.storage.call(
            absences.report, cf.ctx, stranger, cf.class_id, request["message"],
            keys=request["keys"], child=kid.id, kind="absent", first_day="2026-03-11",
        )  # fmt: skip
    with pytest.raises(NotFound):
        cf.storage.call(absences.list_notes, cf.ctx, stranger, cf.class_id)


@pytest.mark.parametrize(
    ("kind", "first", "last", "field"),
    [
        ("absent", "2026-03-02", None, "first_day"),  # 8 days ago
        ("absent", "2026-05-10", None, "first_day"),  # 61 days ahead
        ("absent", "2026-03-12", "2026-03-11", "last_day"),  # ends before it starts
        ("absent", "2026-03-11", "2026-04-10", "last_day"),  # 31 days
        ("absent", "11/03/2026", None, "first_day"),
        ("absent", "2026-02-30", None, "first_day"),
        ("late", "2026-03-11", "2026-03-12", "last_day"),  # a lateness is one day
        ("sick", "2026-03-11", None, "kind"),
    ],
)
def test_bad_dates_and_kinds_are_refused_with_the_field(
    cf: ClassFeed, kind: str, first: str, last: str | None, field: str
) -> None:
    with pytest.raises(Invalid) as refused:
        report(cf, cf.guardians[0], kind, first, last)
    assert refused.value.field == field
    assert absence_store.AbsenceNote.select().count() == 0


def test_the_limits_themselves_are_accepted(cf: ClassFeed) -> None:
    report(cf, cf.guardians[0], "absent", "2026-03-03")  # 7 days ago
    report(cf, cf.guardians[0], "absent", "2026-05-09", "2026-06-07")  # 60 ahead, 30 days
    assert absence_store.AbsenceNote.select().count() == 2


def test_a_note_must_be_sealed_to_every_guardian_of_the_child(cf: ClassFeed) -> None:
    second_guardian(cf, cf.guardians[0].child_id or 0)
    parent = cf.guardians[0]
    request = sealed_note(cf, parent, body("absent", "2026-03-11"), to=[cf.teacher.me, parent.me])
    with pytest.raises(Invalid):
        cf.storage.call(
            absences.report, cf.ctx, parent.actor, cf.class_id, request["message"],
            keys=request["keys"], child=parent.child_id, kind="absent", first_day="2026-03-11",
        )  # fmt: skip


def test_a_child_that_is_not_a_number_is_refused(cf: ClassFeed) -> None:
    with pytest.raises(Invalid) as refused:
        report(cf, cf.guardians[0], "absent", "2026-03-11", child="1")  # type: ignore[arg-type]
    assert refused.value.field == "child"


def test_the_teacher_marks_a_note_seen_and_guardians_cannot(cf: ClassFeed) -> None:
    note = report(cf, cf.guardians[0], "absent", "2026-03-11")
    with pytest.raises(PermissionDenied):
        cf.storage.call(absences.mark_seen, cf.ctx, cf.guardians[0].actor, cf.class_id, note)
    cf.storage.call(absences.mark_seen, cf.ctx, cf.teacher.actor, cf.class_id, note)
    assert notes_of(cf, cf.teacher, "2026-03-11")["notes"][0]["seen_at"] is not None
    with pytest.raises(NotFound):
        cf.storage.call(absences.mark_seen, cf.ctx, cf.teacher.actor, cf.class_id, "x" * 22)


def test_a_guardian_withdraws_before_the_first_day_and_the_ciphertext_leaves(
    cf: ClassFeed,
) -> None:
    note = report(cf, cf.guardians[0], "absent", "2026-03-11", text="Mariage")
    cf.storage.call(absences.withdraw, cf.ctx, cf.guardians[0].actor, cf.class_id, note)
    assert notes_of(cf, cf.teacher, "2026-03-11")["notes"] == []
    row = feed_store.Message.get(feed_store.Message.public_id == note)
    assert row.ct is None and row.header is None and row.deleted_at is not None
    with pytest.raises(NotFound):
        cf.storage.call(absences.withdraw, cf.ctx, cf.guardians[0].actor, cf.class_id, note)


def test_a_note_that_has_started_cannot_be_withdrawn(cf: ClassFeed) -> None:
    note = report(cf, cf.guardians[0], "absent", "2026-03-10")
    with pytest.raises(Conflict):
        cf.storage.call(absences.withdraw, cf.ctx, cf.guardians[0].actor, cf.class_id, note)


def test_only_the_author_withdraws(cf: ClassFeed) -> None:
    co_parent = second_guardian(cf, cf.guardians[0].child_id or 0)
    note = report(cf, cf.guardians[0], "absent", "2026-03-11")
    with pytest.raises(PermissionDenied):
        cf.storage.call(absences.withdraw, cf.ctx, co_parent.actor, cf.class_id, note)
    with pytest.raises(NotFound):  # another family does not learn the note exists
        cf.storage.call(absences.withdraw, cf.ctx, cf.guardians[1].actor, cf.class_id, note)


def test_a_guardians_list_keeps_sixty_days_of_history(cf: ClassFeed) -> None:
    report(cf, cf.guardians[0], "absent", "2026-03-11")
    later = at(cf.ctx, NOW + dt.timedelta(days=62))  # it ended 61 days before
    assert (
        cf.storage.call(absences.list_notes, cf.ctx, cf.guardians[0].actor, cf.class_id).notes != []
    )
    assert (
        cf.storage.call(absences.list_notes, later, cf.guardians[0].actor, cf.class_id).notes == []
    )


def test_a_bad_day_in_the_teachers_list_is_refused(cf: ClassFeed) -> None:
    with pytest.raises(Invalid):
        cf.storage.call(absences.list_notes, cf.ctx, cf.teacher.actor, cf.class_id, "tomorrow")
