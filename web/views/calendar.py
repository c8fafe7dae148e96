"""The private calendar feed (``/calendar/<token>.ics``): no login, the link is the key.

Calendar apps fetch it without a session; the token (random, stored hashed,
replaceable on the account page) is the only credential.  The node writes
generic titles only: the events' titles are end-to-end encrypted.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response

from node.services import calendar
from web.views.common import call

blueprint = Blueprint("calendar", __name__)


@blueprint.get("/calendar/<token>.ics")
async def feed(token: str) -> Any:
    text = await call(calendar.feed, token)
    response = Response(text, 200, mimetype="text/calendar")
    response.headers["Content-Type"] = "text/calendar; charset=utf-8"
    response.headers["Content-Disposition"] = 'inline; filename="carnet.ics"'
    # the feed names the reader's classes: no shared cache keeps it
    response.headers["Cache-Control"] = "private, no-store"
    return response
