"""Emergency alerts and the school's "all guardians" group (``/api/v1/alerts``, ``/school-group``)."""

from __future__ import annotations

from typing import Any

from quart import current_app

from node.api import Api, actor, call, ok
from node.api.schema import Body, Param, array, boolean, integer, obj, string
from node.errors import N_
from node.services import alert_reach, alerts, school_group

GROUP_WRITE = Body(
    "SchoolGroupEntries",
    {
        "entries": array(
            "signed log entries (docs/protocol/e2e-groups.md §2, §7)",
            max_items=school_group.MAX_ENTRIES_PER_CALL,
        ),
        "envelopes": array("the epoch key sealed to members (§3)", max_items=10000),
    },
)
NEW_ALERT = Body(
    "NewAlert",
    {
        "message": obj("the signed, encrypted alert (e2e-groups.md §7)"),
        "template": string(16, description="lockdown, evacuation, shelter, do_not_come or free"),
        "drill": boolean("an exercise: labelled as such everywhere, no SMS"),
        "sms_text": string(
            alerts.MAX_SMS_TEXT,
            nullable=True,
            required=False,
            description="the SMS copy's text, used only where the school opted in (not end-to-end encrypted)",
        ),
    },
)
FOLLOW_UP = Body(
    "AlertFollowUp",
    {
        "message": obj("the signed, encrypted follow-up; parent = the alert's id"),
        "template": string(16, description="a template; all_clear ends the alert"),
    },
)
POLICY = Body(
    "AlertPolicy",
    {
        "sms_delay_seconds": integer(*alerts.SMS_DELAY_RANGE),
        "sms_with_text": boolean("SMS copies carry the alert's text (not end-to-end encrypted)"),
        "two_person": boolean("a real alert waits for a second admin's approval"),
    },
)


def _tell(sent: alerts.Sent, kind: str) -> None:
    """After the commit: guardians' and admins' open pages learn of it (ids only)."""
    publish = current_app.extensions.get("carnet_live_publish")
    if publish is None:
        return
    if sent.recipients:
        publish(sent.recipients, {"type": kind, "alert": sent.alert_id})
    publish(sent.admins, {"type": "alert_update", "alert": sent.alert_id})


def register(api: Api) -> None:
    @api.operation(
        "GET",
        "/school-group",
        summary="The school's alert group as I may see it",
        tag="alerts",
        query={
            "group": Param(
                "string",
                "Another school's group, by its id (a guardian here reading that school's "
                "alert); default: this school's",
                pattern="[A-Za-z0-9_-]{1,64}",
                message=N_("No such alert group."),
            )
        },
    )
    async def school_group_view(query: dict[str, Any]) -> Any:
        return ok(await call(school_group.view, actor(), query["group"]))

    @api.operation(
        "POST",
        "/school-group",
        summary="Set up the school's alert group (admin)",
        body=GROUP_WRITE,
        tag="alerts",
    )
    async def school_group_create(data: dict[str, Any]) -> Any:
        group = await call(school_group.create, actor(), data["entries"], data["envelopes"])
        return ok({"group": group}, 201)

    @api.operation(
        "POST",
        "/school-group/entries",
        summary="Add or remove members of the school's alert group (admin)",
        body=GROUP_WRITE,
        tag="alerts",
    )
    async def school_group_append(data: dict[str, Any]) -> Any:
        head = await call(school_group.append, actor(), data["entries"], data["envelopes"])
        return ok({"head_seq": head})

    @api.operation("GET", "/alerts/policy", summary="The school's alert policy", tag="alerts")
    async def alert_policy() -> Any:
        return ok(await call(alerts.policy, actor()))

    @api.operation(
        "PUT",
        "/alerts/policy",
        summary="Change the alert policy (admin)",
        body=POLICY,
        tag="alerts",
    )
    async def set_alert_policy(data: dict[str, Any]) -> Any:
        return ok(
            await call(
                alerts.set_policy,
                actor(),
                data["sms_delay_seconds"],
                data["sms_with_text"],
                data["two_person"],
            )
        )

    @api.operation("GET", "/alerts", summary="Alerts sent to me (all, for admins)", tag="alerts")
    async def list_alerts() -> Any:
        return ok({"alerts": await call(alerts.list_alerts, actor())})

    @api.operation(
        "POST", "/alerts", summary="Send an emergency alert (admin)", body=NEW_ALERT, tag="alerts"
    )
    async def send_alert(data: dict[str, Any]) -> Any:
        sent = await call(
            alerts.send,
            actor(),
            data["message"],
            data["template"],
            data["drill"],
            data.get("sms_text"),
        )
        current_app.extensions["carnet_sms"].wake()
        _tell(sent, "alert")
        return ok({"alert": sent.alert_id, "state": sent.state, "recipients": sent.total}, 201)

    @api.operation(
        "GET",
        "/alerts/worklist",
        summary="Families no alert would reach in the app, and why (admin)",
        tag="alerts",
    )
    async def worklist() -> Any:
        return ok({"families": await call(alert_reach.worklist, actor())})

    @api.operation("GET", "/alerts/<alert_id>", summary="One alert and its messages", tag="alerts")
    async def get_alert(alert_id: str) -> Any:
        return ok(await call(alerts.get_alert, actor(), alert_id))

    @api.operation(
        "POST",
        "/alerts/<alert_id>/messages",
        summary="A follow-up in the alert's thread; all_clear ends it (admin)",
        body=FOLLOW_UP,
        tag="alerts",
    )
    async def follow_up(alert_id: str, data: dict[str, Any]) -> Any:
        sent = await call(alerts.follow_up, actor(), alert_id, data["message"], data["template"])
        _tell(sent, "alert")
        return ok({"alert": sent.alert_id, "state": sent.state}, 201)

    @api.operation(
        "POST",
        "/alerts/<alert_id>/approve",
        summary="Approve another admin's alert: it goes out now",
        tag="alerts",
    )
    async def approve(alert_id: str) -> Any:
        sent = await call(alerts.approve, actor(), alert_id)
        current_app.extensions["carnet_sms"].wake()
        _tell(sent, "alert")
        return ok({"alert": sent.alert_id, "state": sent.state, "recipients": sent.total})

    @api.operation(
        "POST",
        "/alerts/<alert_id>/cancel",
        summary="Cancel an alert awaiting approval",
        tag="alerts",
    )
    async def cancel(alert_id: str) -> Any:
        sent = await call(alerts.cancel, actor(), alert_id)
        _tell(sent, "alert")
        return ok({"alert": sent.alert_id, "state": sent.state})

    @api.operation("POST", "/alerts/<alert_id>/ack", summary="I have read this alert", tag="alerts")
    async def acknowledge(alert_id: str) -> Any:
        sent = await call(alerts.acknowledge, actor(), alert_id)
        _tell(alerts.Sent(sent.alert_id, sent.state, [], sent.admins), "alert")
        return ok({"alert": sent.alert_id, "acknowledged": True})

    @api.operation(
        "GET",
        "/alerts/<alert_id>/reach",
        summary="Who the alert reached, per class and child (admin)",
        tag="alerts",
    )
    async def reach(alert_id: str) -> Any:
        found = await call(alert_reach.dashboard, actor(), alert_id)
        timing = await call(alert_reach.timing, actor(), alert_id)
        return ok(
            {
                "alert": found.alert,
                "timing": timing,
                "guardians": found.guardians,
                "acknowledged": found.acknowledged,
                "delivered": found.delivered,
                "texted": found.texted,
                "not_reached": found.not_reached,
                "children": found.children,
                "children_reached": found.children_reached,
                "classes": [
                    {"class_id": c.class_id, "name": c.name, "reached": c.reached,
                     "children": c.children}
                    for c in found.classes
                ],
            }
        )  # fmt: skip
