"""A guardian's home: their children, across every class of this node."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, render_template, request

from node.services import accounts, directory, joins
from node.urlids import parse_id
from web.views.common import call, require_actor

blueprint = Blueprint("guardian", __name__)


@blueprint.get("/home")
async def home() -> Any:
    actor = require_actor()
    children = await call(directory.my_children, actor)
    me = await call(accounts.me, actor)
    requests = await call(joins.my_joins, actor)
    raw = request.args.get("child", "")
    wanted = parse_id(raw)
    child_id = wanted if any(c.id == wanted for c in children) else None
    return await render_template(
        "guardian/home.html", children=children, me=me, child_id=child_id, requests=requests
    )
