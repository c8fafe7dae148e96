"""The school admin's pages: staff accounts and their setup links."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, current_app, g, redirect, render_template

from node.errors import CarnetError
from node.services import accounts, directory
from web.errors import error_message
from web.views.common import call, field, form, require_actor

blueprint = Blueprint("admin", __name__)


def _setup_url(token: str) -> str:
    return accounts.setup_url(current_app.config["CARNET_CTX"], token)


async def _page(
    error: str | None = None, values: dict[str, str] | None = None, status: int = 200
) -> Any:
    actor = require_actor()
    staff = await call(accounts.list_staff, actor)
    classes = await call(directory.list_classes, actor)
    html = await render_template(
        "admin/index.html", staff=staff, classes=classes, error=error, values=values or {}
    )
    return html, status


@blueprint.get("/admin")
async def index() -> Any:
    return await _page()


@blueprint.post("/admin/staff")
async def create_staff() -> Any:
    actor = require_actor()
    data = await form()
    try:
        view, token = await call(
            accounts.create_staff,
            actor,
            field(data, "role", 16),
            field(data, "display_name"),
            field(data, "email"),
        )
    except CarnetError as error:
        return await _page(error_message(current_app, error), data, error.status)
    g.no_store = True  # the one-time link must not stay in a cache
    return await render_template("admin/setup_link.html", account=view, url=_setup_url(token))


@blueprint.post("/admin/staff/<id:account_id>/setup-link")
async def reissue(account_id: int) -> Any:
    actor = require_actor()
    token = await call(accounts.reissue_setup_link, actor, account_id)
    staff = {s.id: s for s in await call(accounts.list_staff, actor)}
    g.no_store = True
    return await render_template(
        "admin/setup_link.html", account=staff[account_id], url=_setup_url(token)
    )


@blueprint.post("/admin/accounts/<id:account_id>/disable")
async def disable(account_id: int) -> Any:
    await call(accounts.disable_account, require_actor(), account_id)
    return redirect("/admin")
