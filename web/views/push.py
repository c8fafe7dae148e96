"""The service worker, served from the site's root so that it may control every page."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, send_file

from web import STATIC_DIR

blueprint = Blueprint("push", __name__)


@blueprint.get("/sw.js")
async def service_worker() -> Any:
    """``web/static/sw.js`` at ``/sw.js``: its scope is the whole site (``/``)."""
    response = await send_file(STATIC_DIR / "sw.js", mimetype="text/javascript")
    # Browsers look for a new worker at each navigation; never let a cache answer.
    response.headers["Cache-Control"] = "no-cache"
    return response
