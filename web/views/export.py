"""The guardian's "Download all my data" page.

A shell: the browser fetches the export from /api/v1/me/export, decrypts it
with its own keys and writes the zip (web/static/js/pages/export.js); the
page itself holds no family data.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, render_template

from node.services import export
from web.views.common import call, require_actor

blueprint = Blueprint("export", __name__)


@blueprint.get("/me/export")
async def page() -> Any:
    actor = require_actor()
    await call(export.check_exporter, actor)  # staff: 403 with the reason
    return await render_template("me/export.html")
