"""A guardian joins a class of another school's node, from their own school's node (NP/1 §9.2).

Three steps: the other school's address and the access code its teacher gave;
the code that school texts to the phone the teacher registered; then the
teacher's approval, which arrives later as an Accept or a Reject.  The
network steps go through ``federation.runtime.joining_home``, which checks
that the actor is a guardian and that the school is a partner first.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, current_app, g, redirect, render_template, request

from federation.runtime import joining_home
from federation.runtime.routes import runtime
from node.errors import N_, CarnetError, NotFound
from node.services import joins
from web.errors import error_message
from web.views.common import call, field, form, require_actor

blueprint = Blueprint("joins", __name__)


def _refused(error: CarnetError) -> bool:
    """Errors that are the whole answer (not a guardian, no such request), not a form message.

    A wrong SMS code is a 401 too, but it names its field: it belongs on the form.
    """
    return error.field is None and error.status in (401, 403, 404)


async def _list_page(
    error: str | None = None, values: dict[str, str] | None = None, status: int = 200
) -> Any:
    requests = await call(joins.my_joins, require_actor())
    html = await render_template(
        "guardian/joins.html", requests=requests, error=error, values=values or {}
    )
    return html, status


async def _request_page(
    request_id: int, error: str | None = None, resent: bool = False, status: int = 200
) -> Any:
    mine = await call(joins.my_joins, require_actor())
    view = next((j for j in mine if j.id == request_id), None)
    if view is None:
        raise NotFound(N_("No such request to join."))
    html = await render_template("guardian/join.html", join=view, error=error, resent=resent)
    return html, status


@blueprint.get("/joins")
async def index() -> Any:
    return await _list_page()


@blueprint.post("/joins")
async def start() -> Any:
    """Send the access code to the other school: it texts a code to the parent."""
    actor = require_actor()
    data = await form()
    try:
        view = await joining_home.start(
            runtime(), actor, field(data, "school", 255), field(data, "code", 80), g.locale
        )
    except CarnetError as error:
        if _refused(error):
            raise
        return await _list_page(error_message(current_app, error), data, error.status)
    return redirect(f"/joins/{view.id}")


@blueprint.get("/joins/<id:request_id>")
async def detail(request_id: int) -> Any:
    return await _request_page(request_id, resent=request.args.get("resent") == "1")


@blueprint.post("/joins/<id:request_id>/code")
async def code(request_id: int) -> Any:
    actor = require_actor()
    data = await form()
    try:
        await joining_home.send_code(runtime(), actor, request_id, field(data, "sms_code", 20))
    except CarnetError as error:
        if _refused(error):
            raise
        return await _request_page(
            request_id, error=error_message(current_app, error), status=error.status
        )
    return redirect(f"/joins/{request_id}")


@blueprint.post("/joins/<id:request_id>/resend")
async def resend(request_id: int) -> Any:
    actor = require_actor()
    try:
        await joining_home.resend(runtime(), actor, request_id, g.locale)
    except CarnetError as error:
        if _refused(error):
            raise
        return await _request_page(
            request_id, error=error_message(current_app, error), status=error.status
        )
    return redirect(f"/joins/{request_id}?resent=1")


@blueprint.post("/joins/<id:request_id>/leave")
async def leave(request_id: int) -> Any:
    """Leave the class (or withdraw a request waiting for the teacher): their node is told."""
    actor = require_actor()
    try:
        await call(joins.leave, actor, request_id)
    except CarnetError as error:
        if _refused(error):
            raise
        return await _request_page(
            request_id, error=error_message(current_app, error), status=error.status
        )
    runtime().wake_delivery()
    return redirect(f"/joins/{request_id}")
