"""The audit log (admins) and erasing one's own account (guardians)."""

from __future__ import annotations

from typing import Any

from quart import current_app, jsonify, request

from node.api import Api, actor, call, ok
from node.api.schema import Body, string
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
    )
    async def audit_log() -> Any:
        return ok(
            await call(
                audit.list_events,
                actor(),
                request.args.get("action"),
                request.args.get("page"),
                request.args.get("pseudonym"),
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
