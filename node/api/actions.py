"""Actionable posts over the JSON API: answers, the teacher's per-family status and
reminders, and a guardian's private calendar link.  The rules live in
``node.services.actions``, ``action_status`` and ``calendar``."""

from __future__ import annotations

from typing import Any

from quart import current_app

from node.api import Api, actor, call, ok
from node.api.schema import Body, array, integer, string
from node.services import action_status, actions, calendar

_POST = "/classes/<id:class_id>/posts/<pubid:message_id>"

ANSWER = Body(
    "ActionAnswer",
    {
        "child": integer(1, 2**53 - 1, description="the child answered for"),
        "choice": array(
            "event: yes|no|maybe; slip: agree|decline; sign-up: one slot id, none to withdraw; "
            "poll: one option id, several if the poll allows",
            required=False,
            max_items=26,
        ),
        "signature": string(
            86,
            required=False,
            description="permission slips: Ed25519 signature (base64url) by the guardian's identity "
            "key over carnet-e2e-1/slip-answer (docs/protocol/e2e-groups.md §8)",
        ),
        "at": integer(
            0, 2**53 - 1, required=False, description="slips: the signed time, Unix seconds"
        ),
    },
)

#: nothing to say: the node makes the token (an empty object keeps POSTs JSON and CSRF-checked)
NEW_LINK = Body("NewCalendarLink", {})


def register(api: Api) -> None:
    @api.operation(
        "POST",
        f"{_POST}/answer",
        summary="Answer an event, sign-up, permission slip or poll for my child",
        body=ANSWER,
        tag="actions",
    )
    async def answer_action(class_id: int, message_id: str, data: dict[str, Any]) -> Any:
        view = await call(
            actions.answer, actor(), class_id, message_id, data["child"], data["choice"],
            signature=data["signature"], at=data["at"],
        )  # fmt: skip
        publish = current_app.extensions.get("carnet_live_publish")
        if publish is not None:  # the teacher's and the other guardians' open pages
            watchers = await call(action_status.answer_watchers, actor(), class_id, data["child"])
            publish(watchers, {"type": "answer", "class_id": class_id, "message": message_id})
        return ok(view)

    @api.operation(
        "GET",
        f"{_POST}/answers",
        summary="Every family's answer, by child (teacher; the CSV export's rows)",
        tag="actions",
    )
    async def action_answers(class_id: int, message_id: str) -> Any:
        return ok(await call(action_status.status, actor(), class_id, message_id))

    @api.operation(
        "POST",
        f"{_POST}/answers/remind",
        summary="Remind the guardians of children without an answer (teacher)",
        tag="actions",
    )
    async def remind_action(class_id: int, message_id: str) -> Any:
        reminded = await call(action_status.remind, actor(), class_id, message_id)
        return ok({"reminded": len(reminded)})

    @api.operation(
        "GET",
        "/account/calendar",
        summary="Whether I have a private calendar link, and since when",
        tag="actions",
    )
    async def calendar_info() -> Any:
        return ok(await call(calendar.link_info, actor()))

    @api.operation(
        "POST",
        "/account/calendar",
        summary="A new private calendar link (the previous one stops working)",
        body=NEW_LINK,
        tag="actions",
    )
    async def calendar_new(data: dict[str, Any]) -> Any:
        return ok(await call(calendar.new_link, actor()), 201)
