"""The new school year: next year's classes, the children who go up with their guardians,
last year's classes archived.

Who may do what: only a school admin, for this school's classes (another
school's classes, mirrored here, turn over on their own node).

Rules (docs/user-guide.md, "A new school year"):
- the new year comes after the year of every class it turns over;
- each class of the plan is this school's, not archived, and listed once;
- for each class the admin names next year's class and its teacher and keeps
  the children who go up (all by default); a class without a new name is
  only archived: its children leave, and their families are forgotten after
  the retention delay (``node.services.retention``);
- a child who goes up gets a record in the new class and, for each guardian
  invitation the teacher had not withdrawn:
  - a guardian of this school who has joined is linked to the new record at
    once (no new code, no SMS: they proved their phone already).  The new
    class has its own encrypted group and key: its teacher approves them as
    any new guardian, and last year's posts stay out of it;
  - anyone else (not joined yet, or a guardian of another school, who follows
    through their own node) gets a pending invitation with the same name and
    phone, for which the teacher prints a new slip;
- last year's classes are archived: read-only, out of everyone's lists.
A plan is applied in one transaction: a refused plan changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from node.errors import N_, Invalid, NotFound
from node.services import audit, policy
from node.services.accounts import clean_name
from node.services.context import Actor, ServiceContext
from node.services.directory import school_year_now
from node.storage import accounts as account_store
from node.storage import school_year as store
from node.storage.db import write_transaction
from node.storage.directory import Child, GuardianInvitation, SchoolClass

_YEAR = re.compile(r"([0-9]{4})-([0-9]{4})")
#: French primary school levels, in order: a class named after one moves up to the next
LEVELS = ("PS", "MS", "GS", "CP", "CE1", "CE2", "CM1", "CM2")
MAX_CLASSES = 200


@dataclass(frozen=True)
class PlanChild:
    id: int
    name: str


@dataclass(frozen=True)
class PlanClass:
    id: int
    name: str
    school_year: str
    teacher_id: int
    teacher_name: str
    children: list[PlanChild]
    #: next year's name: the next level (CE1 B → CE2 B); empty after CM2 (they leave)
    suggested_name: str


@dataclass(frozen=True)
class YearPlan:
    next_year: str
    classes: list[PlanClass]
    teachers: list[tuple[int, str]]


@dataclass(frozen=True)
class NewClass:
    id: int
    name: str
    teacher_name: str
    children: int
    #: guardians to give a new slip (not joined yet, or of another school)
    slips_to_print: int


@dataclass(frozen=True)
class Rolled:
    school_year: str
    classes: list[NewClass]
    children_moved: int
    guardians_linked: int
    archived: int


def next_name(name: str) -> str:
    """CE1 B → CE2 B, GS → CP; CM2 → "" (they go to secondary school); else the same name."""
    words = name.split()
    if words and words[0].upper() in LEVELS:
        index = LEVELS.index(words[0].upper())
        if index == len(LEVELS) - 1:
            return ""
        return " ".join([LEVELS[index + 1], *words[1:]])
    return name


def _year_after(year: str) -> str:
    start = int(year[:4]) + 1
    return f"{start}-{start + 1}"


def plan(ctx: ServiceContext, actor: Actor) -> YearPlan:
    """What the admin's form shows: this school's classes, their children, the teachers."""
    policy.require_admin(actor)
    classes = store.active_classes()
    latest = max((c.school_year for c in classes), default=None)
    next_year = _year_after(latest) if latest else school_year_now(ctx)
    children: dict[int, list[PlanChild]] = {}
    for child in store.children_of(c.id for c in classes):
        children.setdefault(child.school_class_id, []).append(
            PlanChild(child.id, f"{child.first_name} {child.last_name}")
        )
    teachers = [
        (a.id, a.display_name)
        for a in account_store.select_staff()
        if a.role == "teacher" and a.status != "disabled"
    ]
    return YearPlan(
        next_year,
        [
            PlanClass(
                c.id,
                c.name,
                c.school_year,
                c.teacher_id,
                c.teacher.display_name,
                children.get(c.id, []),
                next_name(c.name),
            )  # fmt: skip
            for c in classes
        ],
        teachers,
    )


def _check_year(raw: Any) -> str:
    match = _YEAR.fullmatch(raw) if isinstance(raw, str) else None
    if not match or int(match[2]) != int(match[1]) + 1 or not 2000 <= int(match[1]) <= 2100:
        raise Invalid(N_("The school year looks like 2026-2027."), field="school_year")
    return str(raw)


def _teacher(raw: Any) -> Any:
    account = account_store.select_account(raw) if type(raw) is int else None
    if account is None or account.role != "teacher" or account.status == "disabled":
        raise Invalid(N_("Choose a teacher of this school."), field="teacher_id")
    return account


def start_new_year(ctx: ServiceContext, actor: Actor, school_year: Any, moves: Any) -> Rolled:
    """Apply the admin's plan: ``moves`` is a list of
    ``{"from": class id, "name": next year's name or "", "teacher_id": id, "children": [ids]}``."""
    policy.require_admin(actor)
    year = _check_year(school_year)
    if not isinstance(moves, list) or not moves or len(moves) > MAX_CLASSES:
        raise Invalid(N_("Choose what happens to each class."), field="classes")
    now = ctx.now()
    with write_transaction():
        classes = {c.id: c for c in store.active_classes()}
        seen: set[int] = set()
        kept: list[tuple[SchoolClass, str, Any, list[int]]] = []
        for move in moves:
            if not isinstance(move, dict) or set(move) - {"from", "name", "teacher_id", "children"}:
                raise Invalid(N_("Choose what happens to each class."), field="classes")
            source = move.get("from")
            old = classes.get(source) if type(source) is int else None
            if old is None or old.id in seen:
                raise NotFound(N_("No such class."))
            seen.add(old.id)
            if year <= old.school_year:
                raise Invalid(
                    N_("The new school year must come after %(year)s."),
                    field="school_year", year=old.school_year,
                )  # fmt: skip
            going = move.get("children", [])
            if not isinstance(going, list) or not all(type(i) is int for i in going):
                raise Invalid(N_("Children must be a list of ids."), field="children")
            name = move.get("name") or ""
            if not name:
                if going:
                    raise Invalid(
                        N_("Name next year's class of %(class)s, or let its children leave."),
                        field="name", **{"class": old.name},
                    )  # fmt: skip
                kept.append((old, "", None, []))
                continue
            kept.append(
                (old, clean_name(name, "name", 80), _teacher(move.get("teacher_id")), going)
            )
        rows = store.children_of(seen)
        by_class: dict[int, dict[int, Child]] = {}
        for child in rows:
            by_class.setdefault(child.school_class_id, {})[child.id] = child
        invitations: dict[int, list[GuardianInvitation]] = {}
        for inv in store.live_invitations(child.id for child in rows):
            invitations.setdefault(inv.child_id, []).append(inv)
        created, moved, linked = [], 0, 0
        for old, name, teacher, going in kept:
            if not name:
                continue
            theirs = by_class.get(old.id, {})
            if any(child_id not in theirs for child_id in going):
                raise Invalid(
                    N_("Only children of %(class)s can go up with it."),
                    field="children", **{"class": old.name},
                )  # fmt: skip
            new_class = SchoolClass.create(
                name=name, school_year=year, teacher=teacher.id, created_at=now,
                comments_enabled=old.comments_enabled,
            )  # fmt: skip
            slips = 0
            for child_id in sorted(set(going)):
                child = theirs[child_id]
                copy = Child.create(
                    school_class=new_class, first_name=child.first_name,
                    last_name=child.last_name, created_at=now,
                )  # fmt: skip
                moved += 1
                for inv in invitations.get(child_id, []):
                    account_id = inv.account_id
                    account = inv.account if account_id is not None else None
                    joined = account is not None and account.home_peer_id is None
                    again = GuardianInvitation.create(
                        child=copy, issued_by=teacher.id, display_name=inv.display_name,
                        phone=inv.phone, created_at=now,
                        used_at=now if joined else None,
                        account=account_id if joined else None,
                    )  # fmt: skip
                    if account_id is not None and joined:
                        store.link(copy, account_id, again, now)
                        linked += 1
                    else:
                        slips += 1
            created.append(
                NewClass(new_class.id, name, teacher.display_name, len(set(going)), slips)
            )
        archived = store.archive(seen, now)
        audit.record(
            ctx, "school_year_started", actor, None, "ok", year=year, archived=archived,
            classes=len(created), children=moved,
        )  # fmt: skip
    return Rolled(year, created, moved, linked, archived)
