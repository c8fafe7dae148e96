"""Emergency alerts: the admins' Alerts page and one alert's page (admins and guardians).

The pages are shells: the browser fetches the school group and the encrypted
alerts from /api/v1, sets up and keeps the group current (admins), decrypts
and checks every alert with the keys it holds (web/static/js/pages/alerts.js).
The services decide who may open what: ``alerts.policy`` is for admins only,
``alerts.in_emergency_role`` says who else sends alerts (a teacher the admins
put in the role: the composer, the list, alert pages and the dashboard, no
policy, worklist or role section), ``alerts.get_alert`` is for them and the
alert's guardians.  The nav's "Alerts" link asks the same service.

The worklist of families no alert reaches in the app (/alerts/reach) is
rendered here from ``alert_reach.worklist`` (admins only): its actions are
the teachers' page forms (a new access code, the class's slips).
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, g, render_template

from node.errors import N_, PermissionDenied
from node.services import alert_reach, alerts
from node.services.context import Actor, ServiceContext
from web.views.common import call, require_actor

blueprint = Blueprint("alerts", __name__)


def _in_role(ctx: ServiceContext, actor: Actor) -> bool:
    return alerts.in_emergency_role(actor)


async def sends_alerts(actor: Actor | None) -> bool:
    """Admins, and the staff the school put in the emergency role (the service decides)."""
    if actor is None or not (actor.is_admin or actor.is_teacher):
        return False
    return bool(actor.is_admin or await call(_in_role, actor))


@blueprint.app_context_processor
async def _nav() -> dict[str, Any]:
    """``alerts_link``: the nav shows "Alerts" to whoever may send them."""
    return {"alerts_link": await sends_alerts(g.get("actor"))}


@blueprint.get("/alerts")
async def index() -> Any:
    actor = require_actor()
    if not await sends_alerts(actor):
        raise PermissionDenied(N_("Only the school's admins and named staff send alerts."))
    # named staff read the policy (the SMS text field, two-person approval); admins set it
    policy = await call(alerts.policy, actor)
    return await render_template("alerts/index.html", policy=policy, manages=actor.is_admin)


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
    # get_alert lets in the alert's guardians and the emergency role: anyone else here sends
    return await render_template("alerts/alert.html", alert=found, sender=not actor.is_guardian)
