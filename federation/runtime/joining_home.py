"""Joining a class of another school's node from this one: the requests and the answers (home side).

``start``, ``send_code`` and ``resend`` talk to the class's node while the
parent waits (``POST /np/join…``, NP/1 §9.2); its refusals become this
node's own errors, in the parent's language.  ``HANDLERS`` apply its later
Accept or Reject, which arrive as activities on its stream for this node.
"""

from __future__ import annotations

import json
import time
from typing import Any

from federation.activity import Activity
from federation.errors import ActivityError
from federation.runtime import outbox, peers
from federation.runtime.client import Answer, FetchError
from federation.runtime.routes import Federation
from node.errors import (
    N_,
    CarnetError,
    Conflict,
    Gone,
    Invalid,
    RateLimited,
    Unauthenticated,
    Unreachable,
)
from node.services import joins, policy
from node.services.context import Actor, ServiceContext


def _refusal(answer: Answer, step: str) -> CarnetError:
    """The class's node's refusal, as this node's own (translated) error."""
    try:
        body = json.loads(answer.body)
        params = body.get("params") or {}
    except (ValueError, AttributeError):
        body, params = {}, {}
    field = "code" if step == "start" else "sms_code"
    if answer.status == 401 and step == "code":
        return Unauthenticated(
            N_("Wrong code. Tries left: {left}."), field=field, left=int(params.get("left", 0))
        )
    if answer.status == 401:
        return Unauthenticated(
            N_("The other school does not recognize this access code. Check it, or ask the teacher for a new one."),
            field=field,
        )  # fmt: skip
    if answer.status == 410:
        return Gone(
            N_("This code can no longer be used. Start again, or ask the teacher for a new access code."),
            field=field,
        )  # fmt: skip
    if answer.status == 429:
        return RateLimited(N_("Too many tries. Wait a few minutes and try again."), retry_after=900)
    if answer.status == 403:
        return Conflict(
            N_("The other school has not added your school as a partner yet. Ask its admin."),
            field="school",
        )
    if answer.status == 400 and body.get("field") == "sms_code":
        return Invalid(N_("The code has 6 digits."), field="sms_code")
    return Unreachable(
        N_("The other school's Carnet refused the request: {reason}"),
        field="school",
        reason=str(body.get("message") or f"HTTP {answer.status}")[:200],
    )


async def _post(fed: Federation, origin: str, path: str, body: dict[str, Any]) -> Answer:
    data = json.dumps(body).encode()
    try:
        return await fed.client.signed("POST", origin, path, data, created=int(time.time()))
    except FetchError as error:
        raise Unreachable(
            N_("The other school's Carnet could not be reached: {reason}"),
            field="school",
            reason=str(error),
        ) from None


async def start(
    fed: Federation, actor: Actor, school: object, code: object, locale: str
) -> joins.JoinView:
    """Send the access code to the class's node; it texts an SMS code to the parent."""
    policy.require_guardian(actor)  # before anything about the address: staff learn nothing
    origin = peers.normalize_origin(fed.ctx, school)
    if not isinstance(code, str) or not code.strip() or len(code) > 80:
        raise Invalid(N_("Enter the access code printed on your slip."), field="code")
    target = await fed.storage.run(
        joins.prepare, fed.ctx, actor, origin, outbox.new_id(fed.ctx, "joins")
    )
    answer = await _post(fed, target.origin, "/np/join", {
        "follow": target.follow_id, "actor": target.actor, "code": code,
        "sign_pk": target.sign_pk, "enc_pk": target.enc_pk, "locale": locale,
    })  # fmt: skip
    if answer.status != 201:
        raise _refusal(answer, "start")
    started = json.loads(answer.body)
    view: joins.JoinView = await fed.storage.run(
        joins.started, fed.ctx, actor, target, str(started["join_id"]),
        str(started.get("masked_phone", "")),
    )  # fmt: skip
    return view


async def send_code(
    fed: Federation, actor: Actor, request_id: int, sms_code: object
) -> joins.JoinView:
    """Send the SMS code; once it is right, the class's teacher decides."""
    origin, join_id = await fed.storage.run(joins.waiting_for_code, fed.ctx, actor, request_id)
    answer = await _post(fed, origin, f"/np/join/{join_id}/code", {"sms_code": sms_code})
    if answer.status != 200:
        raise _refusal(answer, "code")
    linked = json.loads(answer.body)
    view: joins.JoinView = await fed.storage.run(
        joins.linked, fed.ctx, actor, request_id, str(linked.get("school_name", "")),
        str(linked.get("class_name", "")), str(linked.get("child_first_name", "")),
    )  # fmt: skip
    return view


async def resend(fed: Federation, actor: Actor, request_id: int, locale: str) -> None:
    origin, join_id = await fed.storage.run(joins.waiting_for_code, fed.ctx, actor, request_id)
    answer = await _post(fed, origin, f"/np/join/{join_id}/resend", {"locale": locale})
    if answer.status != 200:
        raise _refusal(answer, "code")


def _answer(outcome: str) -> Any:
    def apply(ctx: ServiceContext, peer_id: int, activity: Activity) -> None:
        # Accept and Reject name our request; Remove names the guardian and
        # carries the request in "follow"
        follow = activity.raw.get("follow") if activity.type == "Remove" else activity.object
        target = activity.raw.get("target")
        group = activity.stream if activity.type == "Remove" else target
        try:
            known = isinstance(follow, str) and joins.answered(
                ctx, peer_id, follow, outcome, group if isinstance(group, str) else None,
                activity.raw.get("class"),
            )  # fmt: skip
        except CarnetError as refused:  # what it says of the class is wrong
            raise ActivityError(str(refused)) from refused
        if not known:
            raise ActivityError(f"{follow!r} is not a request this node sent you")

    return apply


#: Activities of the class's node about our requests (wired into the inbox by ``create_app``).
HANDLERS = {
    "Accept": _answer("accepted"),
    "Reject": _answer("rejected"),
    "Remove": _answer("removed"),
}
