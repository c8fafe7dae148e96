"""Joining a class of this node from another school's node: the signed endpoints (class side).

The interactive steps are request/answer, because a parent is waiting at a
screen on the other node and must be told at once that a code is wrong:

* ``POST /np/join`` ``{follow, actor, code, sign_pk, enc_pk, locale}``:
  checks the access code and texts an SMS code → ``201 {join_id, masked_phone}``;
* ``POST /np/join/{join_id}/code`` ``{sms_code}`` → ``200 {join_id, school_name,
  class_name, child_first_name}``: the guardian is linked; the teacher approves;
* ``POST /np/join/{join_id}/resend`` ``{locale}``: a new SMS code.

The teacher's approval comes later and travels as a durable ``Accept``
activity on this node's stream for that peer (``events.py``).  Refusals are
``{"error", "message", "field", "params"}`` with the domain error's status;
the other node shows its own translation of ``error``.
"""

from __future__ import annotations

import json
from typing import Any

from quart import Blueprint, Response

from federation.activity import Activity
from federation.encoding import load_json_object
from federation.errors import ActivityError, TransactionError
from federation.runtime.routes import Federation, Inbound, signed
from node.errors import CarnetError
from node.services import remote_join
from node.services.context import ServiceContext

MAX_JOIN_BODY = 4096


def _body(inbound: Inbound) -> dict[str, Any]:
    return dict(
        load_json_object(inbound.body, max_bytes=MAX_JOIN_BODY, what="body", error=TransactionError)
    )


def _answer(value: Any, status: int = 200) -> Response:
    return Response(json.dumps(value), status=status, content_type="application/json")


def _refused(error: CarnetError) -> Response:
    params = {k: v for k, v in error.params.items() if isinstance(v, int | str)}
    return _answer(
        {
            "error": error.code,
            "message": error.message.format(**params) if params else error.message,
            "field": error.field,
            "params": params,
        },
        error.status,
    )


def _locale(value: Any) -> str:
    return value if value in ("fr", "en") else "fr"


def _undo(ctx: ServiceContext, peer_id: int, activity: Activity) -> None:
    if not isinstance(activity.object, str) or not remote_join.left(ctx, peer_id, activity.object):
        raise ActivityError(f"{activity.object!r} is not a request of yours to join a class here")


#: Activities of other nodes about their guardians' requests (wired into the inbox).
HANDLERS = {"Undo": _undo}


def register(blueprint: Blueprint, fed: Federation) -> set[str]:
    """Add the join endpoints; returns their endpoint names (signed: no CSRF)."""

    @blueprint.post("/np/join")
    @signed
    async def join_start(inbound: Inbound) -> Response:
        body = _body(inbound)
        try:
            started = await fed.storage.run(
                remote_join.start, fed.ctx, peer_id=inbound.peer_id, peer_origin=inbound.origin,
                follow_id=body.get("follow"), actor=body.get("actor"), code=body.get("code"),
                sign_pk=body.get("sign_pk"), enc_pk=body.get("enc_pk"),
                locale=_locale(body.get("locale")),
            )  # fmt: skip
        except CarnetError as error:
            return _refused(error)
        return _answer({"join_id": started.join_id, "masked_phone": started.masked_phone}, 201)

    @blueprint.post("/np/join/<join_id>/code")
    @signed
    async def join_code(inbound: Inbound, join_id: str) -> Response:
        body = _body(inbound)
        try:
            linked = await fed.storage.run(
                remote_join.confirm, fed.ctx, peer_id=inbound.peer_id,
                peer_origin=inbound.origin, join_id=join_id, sms_code=body.get("sms_code"),
            )  # fmt: skip
        except CarnetError as error:
            return _refused(error)
        return _answer(
            {
                "join_id": linked.join_id,
                "school_name": linked.school_name,
                "class_name": linked.class_name,
                "child_first_name": linked.child_first_name,
            }
        )

    @blueprint.post("/np/join/<join_id>/resend")
    @signed
    async def join_resend(inbound: Inbound, join_id: str) -> Response:
        body = _body(inbound)
        try:
            started = await fed.storage.run(
                remote_join.resend, fed.ctx, peer_id=inbound.peer_id,
                peer_origin=inbound.origin, join_id=join_id, locale=_locale(body.get("locale")),
            )  # fmt: skip
        except CarnetError as error:
            return _refused(error)
        return _answer({"join_id": started.join_id, "masked_phone": started.masked_phone})

    return {"np.join_start", "np.join_code", "np.join_resend"}
