"""Alerts between schools (NP/1 §6.5): wire → services, both ways.

Home side (a node hosting guardians of another school): ``Create``/``Update``
on that school's alerts stream are applied by object type (``GroupEntry``,
``EpochKey``, ``Alert``) to its mirror (``node.services.alert_mirrors``); our
guardian's "I have read this" goes back as ``Read`` of the alert on our peer
stream to that school (``alert_ack``), and its delivery as ``View``
(``alert_delivered``).

School side: a ``View`` of one of our alerts, from the home node of one of
its guardians, says it reached them; a ``Read`` is that guardian's acknowledgement (their shadow account
acknowledges it through ``node.services.alerts``, like a guardian of ours).
"""

from __future__ import annotations

import re
from typing import Any

import peewee

from federation.activity import Activity
from federation.errors import ActivityError
from federation.runtime import outbox
from federation.runtime.class_replies import guardian_of
from federation.runtime.outbox import peer_stream
from node.errors import CarnetError
from node.services import alert_mirrors, alerts
from node.services.context import ServiceContext
from node.storage import alerts as alert_store
from node.storage import peers as peer_store

_APPLY = {
    "GroupEntry": alert_mirrors.apply_entry,
    "EpochKey": alert_mirrors.apply_key,
    "Alert": alert_mirrors.apply_alert,
}
_ALERT = re.compile(r"/alerts/([A-Za-z0-9_-]{22})")


def is_alerts_stream(activity: Activity) -> bool:
    return activity.stream.split("://", 1)[1].partition("/")[2] == "alerts"


def apply(ctx: ServiceContext, peer_id: int, activity: Activity) -> None:
    """Content of another school's alerts stream."""
    obj = activity.object
    if not isinstance(obj, dict) or activity.type not in ("Create", "Update"):
        raise ActivityError(f"this node does not handle {activity.type} on an alerts stream")
    apply_one = _APPLY.get(obj.get("type", ""))
    if apply_one is None:
        raise ActivityError(f"this node does not handle {obj.get('type')!r} objects")
    try:
        apply_one(ctx, peer_id, activity.stream, dict(obj))
    except CarnetError as refused:
        raise ActivityError(str(refused)) from refused
    except (peewee.IntegrityError, peewee.DataError) as refused:  # a value the tables refuse
        raise ActivityError(f"this {obj.get('type')} cannot be stored here") from refused


def our_alert(ctx: ServiceContext, url: Any) -> str | None:
    """The public id of one of our alerts named by ``url``, or None."""
    prefix = ctx.config.origin
    if not isinstance(url, str) or not url.startswith(prefix):
        return None
    match = _ALERT.fullmatch(url[len(prefix) :])
    return match[1] if match else None


def acknowledged(ctx: ServiceContext, peer_id: int, activity: Activity) -> None:
    """A guardian of another node read one of our alerts."""
    public_id = our_alert(ctx, activity.object)
    assert public_id is not None
    actor = guardian_of(ctx, peer_id, activity.actor)
    try:
        alerts.acknowledge(ctx, actor, public_id)
    except CarnetError as refused:
        raise ActivityError(str(refused)) from refused


def viewed(ctx: ServiceContext, peer_id: int, activity: Activity) -> None:
    """One of our alerts reached a guardian of another node (``View``)."""
    public_id = our_alert(ctx, activity.object)
    if public_id is None:
        raise ActivityError(f"{activity.object!r} is not an alert of this node")
    actor = guardian_of(ctx, peer_id, activity.actor)
    try:
        alerts.delivered(ctx, actor, public_id)
    except CarnetError as refused:
        raise ActivityError(str(refused)) from refused


def _tell(ctx: ServiceContext, alert_id: int, type_: str, account_ids: list[int]) -> None:
    """Tell the school that sent an alert what our guardians did with it (on our peer stream)."""
    alert = alert_store.Alert.get_or_none(alert_store.Alert.id == alert_id)
    peer = peer_store.select_peer(alert.peer_id) if alert and alert.peer_id else None
    if alert is None or peer is None or not alert.remote_url:
        return
    for account_id in account_ids:
        actor = f"{ctx.config.origin}/users/{account_id}"
        outbox.publish(
            ctx, stream=peer_stream(ctx, peer.origin), kind="peer", type=type_, actor=actor,
            audience=actor, object=alert.remote_url,
            recipients={peer.origin: [f"{peer.origin}/alerts"]},
        )  # fmt: skip


def forward_ack(ctx: ServiceContext, payload: dict[str, Any]) -> None:
    """Our guardian acknowledged another school's alert: tell that school."""
    _tell(ctx, payload["alert_id"], "Read", [payload["account_id"]])


def forward_delivered(ctx: ServiceContext, payload: dict[str, Any]) -> None:
    """Another school's alert reached our guardians: tell that school."""
    _tell(ctx, payload["alert_id"], "View", payload["account_ids"])


TRANSLATORS = {"alert_ack": forward_ack, "alert_delivered": forward_delivered}
