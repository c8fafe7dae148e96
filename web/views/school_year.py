"""The admin's "New school year" page: next year's classes, who goes up, last year archived.

The view turns the form into a plan and calls ``node.services.school_year``,
which holds every rule.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, current_app, render_template, request

from node.errors import CarnetError
from node.services import school_year
from web.errors import error_message
from web.views.common import call, require_actor

blueprint = Blueprint("school_year", __name__)


async def _page(error: str | None = None, sent: Any = None, status: int = 200) -> Any:
    plan = await call(school_year.plan, require_actor())
    html = await render_template("admin/year.html", plan=plan, error=error, sent=sent)
    return html, status


@blueprint.get("/admin/year")
async def index() -> Any:
    return await _page()


def _int(raw: str) -> int | str:
    return int(raw) if raw.isdigit() and len(raw) < 12 else raw


@blueprint.post("/admin/year")
async def start() -> Any:
    actor = require_actor()
    data = await request.form
    classes = [_int(v) for v in data.getlist("class")[: school_year.MAX_CLASSES + 1]]
    moves = [
        {
            "from": class_id,
            "name": data.get(f"name_{class_id}", "")[:200].strip(),
            "teacher_id": _int(data.get(f"teacher_{class_id}", "")),
            "children": [_int(v) for v in data.getlist(f"children_{class_id}")[:1000]],
        }
        for class_id in classes
    ]
    try:
        done = await call(
            school_year.start_new_year, actor, data.get("school_year", "")[:20].strip(), moves
        )
    except CarnetError as error:
        return await _page(error_message(current_app, error), data, error.status)
    return await render_template("admin/year_done.html", done=done)
