"""Every person's own account page: identity, key fingerprint and open sessions."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, redirect, render_template

from node.services import accounts
from web.views.common import call, require_actor

blueprint = Blueprint("account", __name__)


@blueprint.get("/account")
async def index() -> Any:
    actor = require_actor()
    me = await call(accounts.me, actor)
    sessions = await call(accounts.my_sessions, actor)
    return await render_template("account.html", me=me, sessions=sessions)


@blueprint.post("/account/sessions/<id:session_id>/end")
async def end_session(session_id: int) -> Any:
    await call(accounts.end_session, require_actor(), session_id)
    return redirect("/account#sessions")


@blueprint.post("/account/sessions/end-others")
async def end_other_sessions() -> Any:
    await call(accounts.end_other_sessions, require_actor())
    return redirect("/account#sessions")
