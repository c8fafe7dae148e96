"""Absence notes: a guardian reports an absence or a lateness; the teacher sees the day's notes.

The note's reason and arrival time travel encrypted in ``message``; the body
names in the clear only what the node needs to show it on the right day.
"""

from __future__ import annotations

from typing import Any

from quart import current_app

from node.api import Api, actor, call, ok
from node.api.schema import Body, Param, array, integer, obj, string
from node.errors import N_
from node.services import absences

_MESSAGE_ID = "<pubid:message_id>"

NEW_ABSENCE = Body(
    "NewAbsence",
    {
        "message": obj("signed, encrypted note of kind absence, sealed to its recipients (§5)"),
        "keys": array("the note's key sealed to the teacher and each guardian of the child"),
        "child": integer(1, 2**53 - 1, description="the child's id (one child per note)"),
        "kind": string(8, description="absent or late"),
        "first_day": string(10, description="YYYY-MM-DD, the school's calendar"),
        "last_day": string(10, required=False, description="absent only; default first_day"),
    },
)


def register(api: Api) -> None:
    @api.operation(
        "GET",
        "/classes/<id:class_id>/absences",
        summary="Absence notes: the teacher's for a day (?day=YYYY-MM-DD), a guardian's own",
        tag="absences",
        query={
            "day": Param(
                "string",
                "The teacher's list: the notes covering this day (default: today, the school's "
                "calendar); a guardian's list ignores it",
                pattern="[0-9]{4}-[0-9]{2}-[0-9]{2}",
                format="date",
                message=N_("Enter a date like 2026-03-14."),
            )
        },
    )
    async def list_notes(class_id: int, query: dict[str, Any]) -> Any:
        return ok(await call(absences.list_notes, actor(), class_id, query["day"]))

    @api.operation(
        "POST",
        "/classes/<id:class_id>/absences",
        summary="Report my child's absence or lateness (guardian)",
        body=NEW_ABSENCE,
        tag="absences",
    )
    async def report(class_id: int, data: dict[str, Any]) -> Any:
        done = await call(
            absences.report, actor(), class_id, data["message"], keys=data["keys"],
            child=data["child"], kind=data["kind"], first_day=data["first_day"],
            last_day=data["last_day"],
        )  # fmt: skip
        _announce(done, "absence")
        return ok({"id": done.message}, 201)

    @api.operation(
        "POST",
        f"/classes/<id:class_id>/absences/{_MESSAGE_ID}/seen",
        summary="Mark an absence note as seen (teacher)",
        tag="absences",
    )
    async def mark_seen(class_id: int, message_id: str) -> Any:
        await call(absences.mark_seen, actor(), class_id, message_id)
        return ok({"ok": True})

    @api.operation(
        "DELETE",
        f"/classes/<id:class_id>/absences/{_MESSAGE_ID}",
        summary="Withdraw my absence note before its first day (guardian)",
        tag="absences",
    )
    async def withdraw(class_id: int, message_id: str) -> Any:
        _announce(await call(absences.withdraw, actor(), class_id, message_id), "absence_withdrawn")
        return ok({"ok": True})


def _announce(done: absences.Reported, kind: str) -> None:
    """Tell the teacher's open pages (server-sent events); ids only, never content."""
    publish = current_app.extensions.get("carnet_live_publish")
    if publish is not None and done.recipients:
        publish(done.recipients, {"type": kind, "class_id": done.class_id, "message": done.message})
