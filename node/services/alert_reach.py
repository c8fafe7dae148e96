"""Who an alert reached (the admins' live dashboard), who no alert would reach, and how fast.

Who may see it: the school's admins only.  A guardian's state is the best
thing known of them: acknowledged, delivered (a push service took the
notice or their page opened the alert), texted (an SMS copy left), or not
reached (no active account, no device and no SMS that went out).  A child
counts as reached when any of their guardians acknowledged.  Names only:
no phone number or e-mail address ever appears here.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

from node.errors import N_, NotFound, PermissionDenied
from node.services.alerts import AlertView, get_alert, in_emergency_role
from node.services.context import Actor, ServiceContext
from node.storage import alerts as store
from node.storage import notifications as notification_store

#: SMS outbox statuses that mean the text left for the phone.
_TEXT_LEFT = ("sent", "delivered")


@dataclass(frozen=True)
class GuardianReach:
    name: str
    #: acknowledged | delivered | texted | waiting | not_reached
    state: str


@dataclass
class ChildReach:
    child_id: int
    name: str
    reached: bool
    guardians: list[GuardianReach]


@dataclass(frozen=True)
class ClassReach:
    class_id: int
    name: str
    children: list[ChildReach] = field(default_factory=list)

    @property
    def reached(self) -> int:
        return sum(1 for c in self.children if c.reached)


@dataclass(frozen=True)
class Reach:
    alert: AlertView
    classes: list[ClassReach]
    #: guardians counted once each, whatever their number of children
    guardians: int
    acknowledged: int
    delivered: int
    texted: int
    not_reached: int

    @property
    def children(self) -> int:
        return sum(len(c.children) for c in self.classes)

    @property
    def children_reached(self) -> int:
        return sum(c.reached for c in self.classes)


def _state(row: dict[str, object]) -> str:
    if row["account_id"] is None or row["sms_state"] is None:
        return "not_reached"  # no account yet, or not an active one: nobody to send to
    if row["acknowledged_at"] is not None:
        return "acknowledged"
    if row["delivered_at"] is not None:
        return "delivered"
    if row["sms_status"] in _TEXT_LEFT:
        return "texted"
    if row["sms_state"] in ("failed", "no_phone") or row["sms_status"] == "failed":
        return "not_reached"
    return "waiting"  # a push or an SMS on its way


def dashboard(ctx: ServiceContext, actor: Actor, alert_id: str) -> Reach:
    if not in_emergency_role(actor):
        raise PermissionDenied(N_("Only the school's admins see who an alert reached."))
    alert = get_alert(ctx, actor, alert_id)
    classes: dict[int, ClassReach] = {}
    children: dict[int, ChildReach] = {}
    per_guardian: dict[int, str] = {}
    found = store.select_alert(alert.id)
    assert found is not None  # get_alert found it
    for row in store.reach_rows(found.id):
        klass = classes.get(row["class_id"])
        if klass is None:
            klass = classes[row["class_id"]] = ClassReach(row["class_id"], row["class_name"])
        child = children.get(row["child_id"])
        if child is None:
            name = f"{row['first_name']} {row['last_name']}".strip()
            child = children[row["child_id"]] = ChildReach(row["child_id"], name, False, [])
            klass.children.append(child)
        state = _state(row)
        if row["account_id"] is not None:
            per_guardian[row["account_id"]] = state
            child.guardians.append(GuardianReach(row["display_name"] or "?", state))
        child.reached = child.reached or state == "acknowledged"
    states = list(per_guardian.values())
    return Reach(
        alert, list(classes.values()), len(states), states.count("acknowledged"),
        states.count("delivered"), states.count("texted"), states.count("not_reached"),
    )  # fmt: skip


# --------------------------------------------------------------------------- who cannot be reached


@dataclass(frozen=True)
class GuardianProblem:
    invitation_id: int
    name: str
    #: not_joined | disabled | no_device | sms_failed
    problem: str


@dataclass(frozen=True)
class FamilyToReach:
    class_id: int
    class_name: str
    child_id: int
    child_name: str
    #: sms (no guardian gets notifications: SMS only, after the delay or at once) | none
    reach: str
    guardians: list[GuardianProblem]


#: How far back an alert SMS that failed counts.
FAILED_TEXTS_WINDOW = dt.timedelta(days=60)


def worklist(ctx: ServiceContext, actor: Actor) -> list[FamilyToReach]:
    """Families an alert would not reach in the app: the admin's list of people to call.

    A family is listed when none of its guardians gets notifications on a
    device: ``sms`` if an active guardian can still be texted, ``none`` if
    no guardian has joined (or all are disabled).  Each guardian's problem
    says what to do: a new access code for one who never joined, help turning
    notifications on, checking a number an alert SMS failed to reach.
    Guardians living on another school's node are reached by their node.
    """
    if not actor.is_admin:
        raise PermissionDenied(N_("Only the school's admins see who cannot be reached."))
    devices = notification_store.accounts_with_devices()
    failed = store.accounts_with_failed_alert_texts(ctx.now() - FAILED_TEXTS_WINDOW)
    children: dict[int, list[dict[str, Any]]] = {}
    for row in store.school_invitations():
        children.setdefault(row["child_id"], []).append(row)
    found = []
    for rows in children.values():
        problems, in_app, textable = [], False, False
        for row in rows:
            account, status = row["account_id"], row["status"]
            if status == "remote":  # a guardian living on another node: theirs reaches them
                in_app = True
                continue
            if account is None:
                problem = "not_joined"
            elif status != "active":
                problem = "disabled"
            elif account in failed:
                problem = "sms_failed"
            elif account not in devices:
                problem, textable = "no_device", True
            else:
                in_app = True
                continue
            problems.append(GuardianProblem(row["invitation_id"], row["display_name"], problem))
        if in_app:
            continue
        first = rows[0]
        found.append(
            FamilyToReach(
                first["class_id"], first["class_name"], first["child_id"],
                f"{first['first_name']} {first['last_name']}".strip(),
                "sms" if textable else "none", problems,
            )
        )  # fmt: skip
    return found


# --------------------------------------------------------------------------- timing (drills)


@dataclass(frozen=True)
class Timing:
    """How fast an alert reached people: seconds after it was sent."""

    recipients: int
    delivered: int
    acknowledged: int
    #: seconds until the first, the median, 90 % and the last acknowledgement (None: not reached)
    first_ack: float | None
    median_ack: float | None
    p90_ack: float | None
    last_ack: float | None
    #: seconds until 90 % of the recipients had it delivered
    p90_delivered: float | None
    #: SMS copies sent, or (a drill) that a real alert would have sent
    texts: int


def _after(sent: dt.datetime, moments: list[dt.datetime], share: float, total: int) -> float | None:
    """Seconds after ``sent`` when ``share`` of ``total`` people had done it (None: not yet)."""
    need = max(1, math.ceil(share * total))
    if len(moments) < need:
        return None
    return round((sorted(moments)[need - 1] - sent).total_seconds(), 1)


def timing(ctx: ServiceContext, actor: Actor, alert_id: str) -> Timing:
    """The drill report (and a real alert's): delivery and acknowledgement times."""
    if not in_emergency_role(actor):
        raise PermissionDenied(N_("Only the school's admins see who an alert reached."))
    alert = store.select_alert(alert_id) if isinstance(alert_id, str) else None
    if alert is None or alert.peer_id is not None:
        raise NotFound(N_("No such alert."))
    rows = store.recipient_times(alert.id)
    sent = alert.sent_at or alert.created_at
    delivered = [d for d, _, _ in rows if d is not None]
    acks = [a for _, a, _ in rows if a is not None]
    total = len(rows)
    texts = sum(1 for _, _, s in rows if s in ("queued", "sent", "failed", "drill"))
    return Timing(
        total, len(delivered), len(acks),
        _after(sent, acks, 0, total) if acks else None, _after(sent, acks, 0.5, total),
        _after(sent, acks, 0.9, total), _after(sent, acks, 1.0, total),
        _after(sent, delivered, 0.9, total), texts,
    )  # fmt: skip
