"""The front door, language choice and the health check."""

from __future__ import annotations

import logging
from typing import Any

from quart import Blueprint, g, redirect

from node.services import housekeeping
from web.i18n import LOCALES
from web.views.common import call, form, home_path

log = logging.getLogger("carnet.web")
blueprint = Blueprint("pages", __name__)


@blueprint.get("/")
async def index() -> Any:
    actor = g.get("actor")
    return redirect(home_path(actor.role) if actor else "/login")


def is_local_path(target: str) -> bool:
    """A path on this site.

    Browsers read ``\\`` as ``/`` and drop tabs and newlines, so ``/\\evil``
    or ``/\t/evil`` would lead to another site.
    """
    return (
        target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
        and all(ord(ch) > 32 for ch in target)
    )


@blueprint.post("/language")
async def language() -> Any:
    data = await form()
    locale = data.get("locale", "")
    target = data.get("next", "/")
    if not is_local_path(target):
        target = "/"
    response = redirect(target)
    if locale in LOCALES:
        response.set_cookie("carnet_lang", locale, max_age=365 * 86400, samesite="Lax", path="/")
    return response


@blueprint.get("/healthz")
async def healthz() -> Any:
    """Up and able to query its database (for Docker, systemd and load balancers)."""
    try:
        await call(housekeeping.database_ok)
    except Exception:  # any storage failure means "not healthy": say so, do not crash
        log.exception("health check: database unreachable")
        return {"status": "database unreachable"}, 503, {"Cache-Control": "no-store"}
    return {"status": "ok"}, 200, {"Cache-Control": "no-store"}


@blueprint.get("/favicon.ico")
async def favicon() -> Any:
    return redirect("/static/favicon.svg")
