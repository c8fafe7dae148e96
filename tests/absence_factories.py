"""Plain functions that write absence notes as a guardian's browser does (the reference client)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from node import refclient_groups as rc
from node.services import absences, groups
from node.services.context import ServiceContext
from tests.factories import client_account, invite, make_guardian
from tests.feed_factories import ClassFeed, Person


def at(ctx: ServiceContext, moment: dt.datetime) -> ServiceContext:
    """The same node, with its clock stopped at ``moment`` (naive UTC)."""
    return dataclasses.replace(ctx, clock=lambda: moment)


def audience(cf: ClassFeed, child_id: int) -> list[str]:
    """The teacher and every approved guardian of the child, as the browser computes it."""
    view = cf.view(cf.teacher)
    wanted = {m for c in view["children"] if c["id"] == child_id for m in c["members"]}
    active = set(rc.g.verify_log(view["entries"]).active_members())
    return sorted({cf.teacher.me} | (wanted & active))


def sealed_note(
    cf: ClassFeed, person: Person, body: dict[str, Any], to: list[str] | None = None
) -> dict[str, Any]:
    """The request's ``message`` and ``keys`` for a note from ``person`` about their child."""
    assert person.child_id is not None
    state, keys = cf.keys_of(person)
    return rc.encrypt(
        person.keys, person.me, state, keys, "absence", body,
        to=to if to is not None else audience(cf, person.child_id),
    )  # fmt: skip


def body(kind: str, first: str, last: str | None = None, **kw: Any) -> dict[str, Any]:
    return {
        "kind": kind, "first_day": first, "last_day": last or first,
        "arrival": kw.get("arrival"), "text": kw.get("text", ""),
    }  # fmt: skip


def report(
    cf: ClassFeed, person: Person, kind: str, first: str, last: str | None = None, *,
    ctx: ServiceContext | None = None, child: int | None = None, text: str = "",
    arrival: str | None = None,
) -> str:  # fmt: skip
    """Report through the service as ``person``; returns the note's id."""
    request = sealed_note(cf, person, body(kind, first, last, text=text, arrival=arrival))
    done = cf.storage.call(
        absences.report, ctx or cf.ctx, person.actor, cf.class_id, request["message"],
        keys=request["keys"], child=child if child is not None else person.child_id, kind=kind,
        first_day=first, last_day=last,
    )  # fmt: skip
    return done.message


def second_guardian(cf: ClassFeed, child_id: int, phone: str = "+33639989999") -> Person:
    """Another guardian of the same child (separated parents), approved by the teacher."""
    slip = invite(cf.storage, cf.ctx, cf.teacher.actor, child_id, phone=phone, name="Papa Deux")
    actor = make_guardian(cf.storage, cf.ctx, slip.code, phone)
    person = Person(
        actor, client_account(phone).keys, groups.member_id(cf.ctx, actor.account_id), child_id
    )
    cf.approve_all()
    cf.guardians.append(person)
    return person
