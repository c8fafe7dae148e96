"""Log-in, first login with an access code, staff setup, log-out.

These pages hold no secrets themselves: their ES modules derive the login
secret and open or create the key vault in the browser, then call the API.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, current_app, g, redirect, render_template

from node.errors import CarnetError
from node.security import delete_cookie
from node.services import accounts
from web.views.common import call, home_path

blueprint = Blueprint("auth", __name__)


@blueprint.get("/login")
async def login() -> Any:
    actor = g.get("actor")
    if actor is not None:
        return redirect(home_path(actor.role))
    return await render_template("auth/login.html")


@blueprint.get("/welcome")
async def welcome() -> Any:
    return await render_template("auth/welcome.html")


@blueprint.get("/setup/<token>")
async def setup(token: str) -> Any:
    try:
        info = await call(accounts.inspect_setup_link, token)
    except CarnetError as error:
        from web.errors import render_error

        return await render_error(current_app._get_current_object(), error)  # type: ignore[attr-defined]
    return await render_template("auth/setup.html", info=info)


@blueprint.post("/logout")
async def logout() -> Any:
    actor = g.get("actor")
    if actor is not None:
        await call(accounts.logout, actor)
    response = redirect("/login?bye=1")
    delete_cookie(current_app._get_current_object(), response, "carnet_session")  # type: ignore[attr-defined, arg-type]
    return response
