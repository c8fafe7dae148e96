"""Who an alert reached: the admins' live dashboard, per class and per child.

Who may see it: the school's admins only.  A guardian's state is the best
thing known of them: acknowledged, delivered (a push service took the
notice or their page opened the alert), texted (an SMS copy left), or not
reached (no active account, no device and no SMS that went out).  A child
counts as reached when any of their guardians acknowledged.  Names only:
no phone number or e-mail address ever appears here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from node.errors import N_, PermissionDenied
from node.services.alerts import AlertView, get_alert
from node.services.context import Actor, ServiceContext
from node.storage import alerts as store

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
    if not actor.is_admin:
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
