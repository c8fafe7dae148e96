"""Emergency alerts: the admins' Alerts page and one alert's page (admins and guardians).

The pages are shells: the browser fetches the school group and the encrypted
alerts from /api/v1, sets up and keeps the group current (admins), decrypts
and checks every alert with the keys it holds (web/static/js/pages/alerts.js).
The services decide who may open what: ``alerts.policy`` is for admins only,
``alerts.get_alert`` for admins and the alert's guardians.

The worklist of families no alert reaches in the app (/alerts/reach) is
rendered here from ``alert_reach.worklist`` (admins only): its actions are
the teachers' page forms (a new access code, the class's slips).
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, render_template

from node.services import alert_reach, alerts
from web.views.common import call, require_actor

blueprint = Blueprint("alerts", __name__)


@blueprint.get("/alerts")
async def index() -> Any:
    actor = require_actor()
    policy = await call(alerts.policy, actor)  # admins only
    return await render_template("alerts/index.html", policy=policy)


@blueprint.get("/alerts/reach")
async def worklist() -> Any:
    actor = require_actor()
    families = await call(alert_reach.worklist, actor)  # admins only
    classes: dict[int, dict[str, Any]] = {}
    for family in families:
        klass = classes.setdefault(
            family.class_id, {"id": family.class_id, "name": family.class_name, "families": []}
        )
        klass["families"].append(family)
    for klass in classes.values():
        klass["not_joined"] = sum(
            1 for f in klass["families"] for g in f.guardians if g.problem == "not_joined"
        )
    ordered = sorted(classes.values(), key=lambda c: str(c["name"]).casefold())
    return await render_template("alerts/reach.html", classes=ordered, count=len(families))


@blueprint.get("/alerts/<alert_id>")
async def alert(alert_id: str) -> Any:
    actor = require_actor()
    found = await call(alerts.get_alert, actor, alert_id)  # NotFound unless it is yours to read
    return await render_template("alerts/alert.html", alert=found)
