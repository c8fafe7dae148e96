"""Feed pages: a class's posts (teacher and guardians); the guardian's timeline is on /home.

The pages are shells: the browser fetches ciphertext from /api/v1, decrypts
it with the keys it holds, and renders (web/static/js/pages/feed.js).
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, render_template

from node.services import feed
from web.views.common import call, require_actor

blueprint = Blueprint("feed", __name__)


@blueprint.get("/classes/<id:class_id>/feed")
async def class_feed(class_id: int) -> Any:
    actor = require_actor()
    page = await call(feed.class_page, actor, class_id)
    return await render_template("feed/class.html", page=page)
