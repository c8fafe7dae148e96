"""The audit log (admins) and erasing one's own account (guardians)."""

from __future__ import annotations

from typing import Any

from quart import current_app, jsonify

from node.api import Api, actor, call, ok
from node.api.schema import Body, Param, string
from node.errors import N_
from node.security import delete_cookie
from node.services import audit, erasure

ERASURE = Body(
    "Erasure",
    {"confirm": string(20, description="DELETE or SUPPRIMER: the person typed it to confirm")},
)


def register(api: Api) -> None:
    @api.operation(
        "GET",
        "/admin/audit",
        summary="The audit log, newest first (admins; ?action=, ?pseudonym=, ?page=)",
        tag="audit",
        query={
            "action": Param(
                "string",
                "Only the events of this action (default: every action)",
                enum=tuple(sorted(audit.ACTIONS)),
                message=N_("There is no such action in the audit log."),
            ),
            "pseudonym": Param(
                "string",
                "Only the events of this person: their pseudonym in the log",
                pattern="[0-9a-fA-F]{16}",
                message=N_("A pseudonym is 16 characters, 0-9 and a-f."),
            ),
            "page": Param(
                "integer",
                f"The page, from 1 (the newest {audit.PAGE_SIZE} events)",
                minimum=1,
                maximum=999_999,
                message=N_("The page must be a number."),
            ),
        },
    )
    async def audit_log(query: dict[str, Any]) -> Any:
        return ok(
            await call(
                audit.list_events, actor(), query["action"], query["page"], query["pseudonym"]
            )
        )

    @api.operation(
        "POST",
        "/me/erasure",
        summary="Delete my account and what I wrote, here and at the other schools (guardians)",
        body=ERASURE,
        tag="auth",
    )
    async def erase_me(data: dict[str, Any]) -> Any:
        erased = await call(erasure.request_erasure, actor(), data["confirm"])
        response = jsonify({"erased": True, "messages": erased.messages})
        # the session died with the account: the browser forgets its cookie too
        delete_cookie(current_app._get_current_object(), response, "carnet_session")  # type: ignore[attr-defined]
        return response
