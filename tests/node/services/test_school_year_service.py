"""The new school year: who may start it, what goes up, what is archived, and refused plans."""

from __future__ import annotations

from typing import Any

import pytest

from node.errors import Invalid, NotFound, PermissionDenied
from node.services import audit, directory, groups, school_year
from node.services.context import ServiceContext
from node.storage import retention as retention_store
from node.storage.db import Storage
from tests.factories import invite, make_child, make_class, make_guardian, make_school, make_staff


def _school(storage: Storage, ctx: ServiceContext) -> dict[str, Any]:
    """CE1 A (Léa, whose parent joined, and Tom, whose parent has a slip) and CM2 B (Zoé)."""
    school = make_school(storage, ctx)
    slip = invite(storage, ctx, school.teacher, school.child_id, phone="+33639980001")
    parent = make_guardian(storage, ctx, slip.code, "+33639980001")
    tom = make_child(storage, ctx, school.teacher, school.class_id, "Tom", "Petit")
    invite(storage, ctx, school.teacher, tom.id, phone="+33639980002", name="Sam Petit")
    other = make_staff(storage, ctx, "teacher", "Mme Roux", "roux@school.test", by=school.admin)
    cm2 = make_class(storage, ctx, other, "CM2 B")
    zoe = make_child(storage, ctx, other, cm2.id, "Zoé", "Blanc")
    zoe_slip = invite(storage, ctx, other, zoe.id, phone="+33639980003", name="Ali Blanc")
    zoe_parent = make_guardian(storage, ctx, zoe_slip.code, "+33639980003")
    return {
        "school": school, "parent": parent, "tom": tom.id, "other": other, "cm2": cm2.id,
        "zoe_parent": zoe_parent,
    }  # fmt: skip


def test_the_plan_suggests_next_year_and_the_next_level(
    storage: Storage, ctx: ServiceContext
) -> None:
    world = _school(storage, ctx)
    plan = storage.call(school_year.plan, ctx, world["school"].admin)
    assert plan.next_year == "2027-2028"  # the classes are of 2026-2027
    by_name = {c.name: c for c in plan.classes}
    assert by_name["CE1 A"].suggested_name == "CE2 A"
    assert by_name["CM2 B"].suggested_name == ""  # they leave for secondary school
    assert [c.name for c in by_name["CE1 A"].children] == ["Léa Martin", "Tom Petit"]
    assert {name for _, name in plan.teachers} == {"M. Dubois", "Mme Roux"}
    with pytest.raises(PermissionDenied):
        storage.call(school_year.plan, ctx, world["school"].teacher)


def test_children_go_up_with_their_parents_and_last_year_is_archived(
    storage: Storage, ctx: ServiceContext
) -> None:
    world = _school(storage, ctx)
    school, other = world["school"], world["other"]
    moves = [
        {"from": school.class_id, "name": "CE2 A", "teacher_id": other.account_id,
         "children": [school.child_id, world["tom"]]},
        {"from": world["cm2"], "name": "", "children": []},
    ]  # fmt: skip
    done = storage.call(school_year.start_new_year, ctx, school.admin, "2027-2028", moves)
    assert (done.children_moved, done.guardians_linked, done.archived) == (2, 1, 2)
    [new] = done.classes
    assert (new.name, new.teacher_name, new.children, new.slips_to_print) == (
        "CE2 A", "Mme Roux", 2, 1,
    )  # fmt: skip
    # last year's classes are out of every list; the new class is its teacher's
    assert [c.name for c in storage.call(directory.list_classes, ctx, school.admin)] == ["CE2 A"]
    assert storage.call(directory.list_classes, ctx, school.teacher) == []
    with pytest.raises(PermissionDenied):
        storage.call(directory.class_roster, ctx, school.admin, school.class_id)
    roster = storage.call(directory.class_roster, ctx, other, new.id)
    assert [(c.child.first_name, [g.status for g in c.guardians]) for c in roster] == [
        ("Léa", ["active"]), ("Tom", ["expired"]),  # Tom's parent needs a new code
    ]  # fmt: skip
    # Léa's parent waits for the new teacher's approval in the new class's group
    view = storage.call(groups.group_view, ctx, other, new.id)
    assert [c.account_id for c in view.to_approve if c.role == "guardian"] == [
        world["parent"].account_id
    ]
    # Zoé's family left with CM2: retention counts it from now; Léa's family stays
    gone = storage.call(retention_store.guardians_in_no_class)
    assert world["zoe_parent"].account_id in gone
    assert world["parent"].account_id not in gone
    events = storage.call(audit.list_events, ctx, school.admin, "school_year_started").events
    assert [e.details["children"] for e in events] == [2]


@pytest.mark.parametrize(
    ("year", "moves", "error", "message"),
    [
        ("2026-2027", None, Invalid, "must come after 2026-2027"),
        ("2027-2029", None, Invalid, "looks like 2026-2027"),
        ("2027-2028", [], Invalid, "each class"),
        ("2027-2028", "twice", NotFound, "No such class"),
        ("2027-2028", "foreign child", Invalid, "Only children of CE1 A"),
        ("2027-2028", "unnamed", Invalid, "Name next year's class of CE1 A"),
        ("2027-2028", "bad teacher", Invalid, "Choose a teacher"),
        ("2027-2028", "extra field", Invalid, "each class"),
    ],
)
def test_a_refused_plan_changes_nothing(
    storage: Storage, ctx: ServiceContext, year: str, moves: Any, error: type, message: str
) -> None:
    world = _school(storage, ctx)
    school = world["school"]
    good = {"from": school.class_id, "name": "CE2 A", "teacher_id": school.teacher.account_id,
            "children": [school.child_id]}  # fmt: skip
    plans: dict[Any, Any] = {
        None: [good],
        "twice": [good, good],
        "foreign child": [{**good, "children": [school.child_id, 99999]}],
        "unnamed": [{**good, "name": ""}],
        "bad teacher": [{**good, "teacher_id": school.admin.account_id}],
        "extra field": [{**good, "school_id": 2}],
    }
    plan = plans[moves] if isinstance(moves, str) or moves is None else moves
    before = storage.call(directory.list_classes, ctx, school.admin)
    with pytest.raises(error) as refused:
        storage.call(school_year.start_new_year, ctx, school.admin, year, plan)
    assert message in refused.value.message % refused.value.params
    assert storage.call(directory.list_classes, ctx, school.admin) == before


def test_only_an_admin_starts_a_new_year(storage: Storage, ctx: ServiceContext) -> None:
    world = _school(storage, ctx)
    school = world["school"]
    with pytest.raises(PermissionDenied):
        storage.call(
            school_year.start_new_year, ctx, school.teacher, "2027-2028",
            [{"from": school.class_id, "name": "CE2 A", "teacher_id": school.teacher.account_id,
              "children": []}],
        )  # fmt: skip


@pytest.mark.parametrize(
    ("name", "after"),
    [
        ("CE1 B", "CE2 B"),
        ("GS", "CP"),
        ("cm1 rouge", "CM2 rouge"),
        ("CM2", ""),
        ("Les Lutins", "Les Lutins"),
    ],
)
def test_next_level_names(name: str, after: str) -> None:
    assert school_year.next_name(name) == after
