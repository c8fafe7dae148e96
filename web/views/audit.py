"""The admin's audit log page, and a guardian deleting their own account.

Views parse forms and call services; who may read the log or delete an
account is decided in ``node.services.audit`` and ``node.services.erasure``.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, current_app, g, render_template, request

from node.errors import CarnetError
from node.security import delete_cookie
from node.services import audit, erasure
from web.errors import error_message
from web.views.common import call, field, form, require_actor

blueprint = Blueprint("audit", __name__)


async def _log_page(
    pseudonym: str | None = None, lookup_error: str | None = None, status: int = 200
) -> Any:
    actor = require_actor()
    who = pseudonym if pseudonym is not None else request.args.get("pseudonym")
    page = await call(
        audit.list_events, actor, request.args.get("action"), request.args.get("page"), who
    )
    html = await render_template(
        "admin/audit.html",
        page=page,
        actions=audit.ACTIONS,
        lookup_error=lookup_error,
        retention_days=current_app.config["CARNET"].audit_retention_days,
    )
    return html, status


@blueprint.get("/admin/audit")
async def index() -> Any:
    return await _log_page()


@blueprint.post("/admin/audit/pseudonym")
async def pseudonym() -> Any:
    """Whose events: the pseudonym of a login (a POST: the login stays out of URLs and logs)."""
    actor = require_actor()
    data = await form()
    try:
        found = await call(audit.pseudonym_for_login, actor, field(data, "login", 254))
    except CarnetError as error:
        return await _log_page("", error_message(current_app, error), error.status)
    g.no_store = True
    return await _log_page(found)


async def _erase_page(error: str | None = None, status: int = 200) -> Any:
    actor = require_actor()
    await call(erasure.require_may_erase, actor)
    html = await render_template("account_erase.html", error=error)
    return html, status


@blueprint.get("/account/erase")
async def erase_form() -> Any:
    return await _erase_page()


@blueprint.post("/account/erase")
async def erase() -> Any:
    actor = require_actor()
    data = await form()
    try:
        await call(erasure.request_erasure, actor, field(data, "confirm", 20))
    except CarnetError as error:
        return await _erase_page(error_message(current_app, error), error.status)
    g.actor = None  # the account is gone: the page shows no menu of it
    response = Response(await render_template("account_erased.html"), content_type="text/html")
    delete_cookie(current_app._get_current_object(), response, "carnet_session")  # type: ignore[attr-defined]
    return response
