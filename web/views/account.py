"""Every person's own account page: identity, key fingerprint, sessions and notifications."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, current_app, redirect, render_template

from node.errors import CarnetError
from node.services import accounts, notifications
from web.errors import error_message
from web.views.common import call, field, form, require_actor

blueprint = Blueprint("account", __name__)


async def _page(
    notifications_error: str | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
    digest_error: str | None = None,
) -> Any:
    actor = require_actor()
    me = await call(accounts.me, actor)
    sessions = await call(accounts.my_sessions, actor)
    settings = await call(notifications.get_settings, actor)
    devices = await call(notifications.my_subscriptions, actor)
    html = await render_template(
        "account.html",
        me=me,
        sessions=sessions,
        settings=settings,
        devices=devices,
        vapid_key=current_app.config["CARNET_KEYS"].vapid_public_key,
        notifications_error=notifications_error,
        values=values,
        digest_error=digest_error,
        default_digest_time=notifications.DEFAULT_DIGEST_TIME,
    )
    return html, status


@blueprint.get("/account")
async def index() -> Any:
    return await _page()


@blueprint.post("/account/sessions/<id:session_id>/end")
async def end_session(session_id: int) -> Any:
    await call(accounts.end_session, require_actor(), session_id)
    return redirect("/account#sessions")


@blueprint.post("/account/sessions/end-others")
async def end_other_sessions() -> Any:
    await call(accounts.end_other_sessions, require_actor())
    return redirect("/account#sessions")


@blueprint.post("/account/notifications/quiet-hours")
async def quiet_hours() -> Any:
    actor = require_actor()
    data = await form()
    if "clear" in data:
        data = {"quiet_start": "", "quiet_end": ""}
    try:
        await call(
            notifications.set_quiet_hours,
            actor,
            field(data, "quiet_start", 8),
            field(data, "quiet_end", 8),
        )
    except CarnetError as error:
        return await _page(error_message(current_app, error), data, error.status)
    return redirect("/account#notifications")


@blueprint.post("/account/notifications/digest")
async def digest() -> Any:
    """Information posts: at once, or in one daily digest."""
    actor = require_actor()
    data = await form()
    try:
        await call(
            notifications.set_digest, actor, field(data, "mode", 8), field(data, "digest_time", 8)
        )
    except CarnetError as error:
        return await _page(status=error.status, digest_error=error_message(current_app, error))
    return redirect("/account#notifications")


@blueprint.post("/account/notifications/devices/<id:subscription_id>/remove")
async def remove_device(subscription_id: int) -> Any:
    await call(notifications.remove_device, require_actor(), subscription_id)
    return redirect("/account#notifications")
