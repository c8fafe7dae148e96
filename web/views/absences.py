"""The absence notes page of a class: a guardian reports, the teacher reads a day's notes.

A shell like the feed: the browser fetches the notes from /api/v1, decrypts
them with its keys, and seals new ones (web/static/js/pages/absences.js).
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, render_template, request

from node.services import feed
from node.urlids import parse_id
from web.views.common import call, require_actor

blueprint = Blueprint("absences", __name__)


@blueprint.get("/classes/<id:class_id>/absences")
async def class_absences(class_id: int) -> Any:
    actor = require_actor()
    page = await call(feed.class_page, actor, class_id)  # NotFound for strangers
    raw = request.args.get("child", "")
    wanted = parse_id(raw)
    child_id = wanted if any(c.id == wanted for c in page.children) else None
    return await render_template("absences/page.html", page=page, child_id=child_id)
