"""Emergency alerts across real nodes, over their HTTP APIs as the browsers send them.

Plain functions for multi-node tests, next to :mod:`tests.multinode.classes`
(whose sessions, schools and families they use). The admin's and guardians'
browsers are the Python reference client (``node.refclient_groups``), acting
as ``web/static/js/pages/alerts.js`` does:

* :func:`set_up_school_group` (the admin's first visit to the Alerts page:
  the school's "all guardians" group, then :func:`sync_members`, which adds
  everyone the node lists in ``add``, guardians on other nodes included),
  :func:`set_policy`;
* :func:`send_alert`, :func:`follow_up`, :func:`all_clear`;
* a guardian on their own node: :func:`my_alerts`, :func:`read_alert` (the
  alert and its messages, decrypted with the keys of the group it names),
  :func:`wait_alert`, :func:`acknowledge`;
* the school's dashboard: :func:`reach`;
* the SMS copies a node's console gateway wrote: :func:`alert_texts`, and
  :func:`flush_sms` (wait until the node's SMS worker has made a full pass).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from node import refclient_groups as rc
from tests.multinode.classes import (
    DELIVERY,
    Guardian,
    Session,
    browser,
    texted_codes,
)
from tests.multinode.nodes import Node
from tests.multinode.waiting import wait_until
from tests.push_factories import fake_browser

_CODE = re.compile(r"\b\d{6}\b")


# --------------------------------------------------------------------------- the school's admin


@dataclass
class AlertSchool:
    """A school admin with keys in the emergency role of their school's alert group."""

    admin: Session
    #: the group's current epoch key (the admin's page keeps it in memory)
    epoch_key: bytes
    #: the admin's member id in the group
    me: str

    @property
    def node(self) -> Node:
        return self.admin.node


def group_view(session: Session, group: str | None = None) -> dict[str, Any]:
    """``GET /api/v1/school-group`` (``group``: another school's group, mirrored here)."""
    path = "/api/v1/school-group" + (f"?group={group}" if group else "")
    found: dict[str, Any] = session.get(path)
    return found


def set_up_school_group(admin: Session) -> AlertSchool:
    """The admin's first visit to the Alerts page: the group, then every guardian listed."""
    assert admin.keys is not None
    me = group_view(admin)["me"]
    log, envelopes, key = rc.setup_school_group(admin.keys, me)
    admin.post("/api/v1/school-group", {"entries": log, "envelopes": envelopes})
    school = AlertSchool(admin, key, me)
    sync_members(school)
    return school


def sync_members(school: AlertSchool) -> list[str]:
    """Add everyone the node says is missing (as the page does before each send); who was added."""
    keys = school.admin.keys
    assert keys is not None
    view = group_view(school.admin)
    assert view["remove"] == [], view["remove"]  # nobody left in these scenarios
    if not view["add"]:
        return []
    new, envelopes = rc.add_guardians(keys, view["entries"], view["add"], school.epoch_key)
    school.admin.post(
        "/api/v1/school-group/entries", {"entries": new, "envelopes": envelopes}, expect=200
    )
    return [c["member"] for c in view["add"]]


def guardian_members(school: AlertSchool) -> list[str]:
    """The member ids (``<id>@<host>``) the group's log adds as guardians, in log order."""
    entries = group_view(school.admin)["entries"]
    return [
        e["body"]["member"] for e in entries if e["op"] == "add" and e["body"]["role"] == "guardian"
    ]


def set_policy(
    school: AlertSchool,
    sms_delay_seconds: int = 120,
    sms_with_text: bool = False,
    two_person: bool = False,
) -> dict[str, Any]:
    body = {
        "sms_delay_seconds": sms_delay_seconds,
        "sms_with_text": sms_with_text,
        "two_person": two_person,
    }
    found: dict[str, Any] = school.admin.send("PUT", "/api/v1/alerts/policy", body)
    return found


def _message(school: AlertSchool, template: str, text: str, drill: bool, parent: str | None) -> Any:
    keys = school.admin.keys
    assert keys is not None
    state, epoch_keys = rc.open_epoch_keys(group_view(school.admin), keys)
    made = rc.encrypt_alert(keys, school.me, state, epoch_keys, template, text, drill, parent)
    return made["message"]


def send_alert(
    school: AlertSchool,
    template: str = "lockdown",
    text: str = "Confinement : restez à l'abri.",
    *,
    drill: bool = False,
    sms_text: str | None = None,
) -> str:
    """The admin syncs the group, then sends the alert (``POST /api/v1/alerts``); its id."""
    sync_members(school)
    body: dict[str, Any] = {
        "message": _message(school, template, text, drill, None),
        "template": template,
        "drill": drill,
    }
    if sms_text is not None:
        body["sms_text"] = sms_text
    made = school.admin.post("/api/v1/alerts", body)
    assert made["state"] == "active", made
    return str(made["alert"])


def follow_up(school: AlertSchool, alert_id: str, template: str, text: str) -> str:
    """A follow-up in the alert's thread; its state after (``closed`` after ``all_clear``)."""
    body = {"message": _message(school, template, text, False, alert_id), "template": template}
    made = school.admin.post(f"/api/v1/alerts/{alert_id}/messages", body)
    return str(made["state"])


def all_clear(school: AlertSchool, alert_id: str, text: str = "Fin de l'alerte.") -> str:
    return follow_up(school, alert_id, "all_clear", text)


def reach(school: AlertSchool, alert_id: str) -> dict[str, Any]:
    """The reach dashboard: ``guardians``, ``acknowledged``, ``children_reached``, per class…"""
    found: dict[str, Any] = school.admin.get(f"/api/v1/alerts/{alert_id}/reach")
    return found


def guardian_states(dashboard: dict[str, Any]) -> dict[str, str]:
    """Each guardian's state on the dashboard, by name (a guardian of two children counted once)."""
    states: dict[str, str] = {}
    for school_class in dashboard["classes"]:
        for child in school_class["children"]:
            for guardian in child["guardians"]:
                states[guardian["name"]] = guardian["state"]
    return states


# --------------------------------------------------------------------------- guardians


@dataclass(frozen=True)
class ReadAlert:
    """An alert as a guardian's page shows it: its view, and each message decrypted."""

    id: str
    template: str
    state: str
    school: str | None
    acknowledged: bool
    #: (template, text) of each message, oldest first
    messages: tuple[tuple[str, str], ...]

    @property
    def texts(self) -> list[str]:
        return [text for _, text in self.messages]


def my_alerts(guardian: Session) -> list[dict[str, Any]]:
    """``GET /api/v1/alerts`` on the guardian's own node: the alerts sent to them, newest first."""
    found: list[dict[str, Any]] = guardian.get("/api/v1/alerts")["alerts"]
    return found


def read_alert(guardian: Session, alert_id: str) -> ReadAlert:
    """Open the alert on the guardian's own node and decrypt every message, as their page does."""
    assert guardian.keys is not None
    view = guardian.get(f"/api/v1/alerts/{alert_id}")
    group = group_view(guardian, view["group"])
    assert group["is_member"], f"{guardian.login} is not in the group of alert {alert_id}"
    state, epoch_keys = rc.open_epoch_keys(group, guardian.keys)
    bodies = [rc.decrypt_alert(m, state, epoch_keys) for m in view["messages"]]
    return ReadAlert(
        view["id"],
        view["template"],
        view["state"],
        view["school"],
        view["acknowledged_at"] is not None,
        tuple((str(b["template"]), str(b["text"])) for b in bodies),
    )


def wait_alert(
    guardian: Session, alert_id: str, messages: int = 1, *logs: Node, timeout: float = DELIVERY
) -> ReadAlert:
    """Wait until the guardian's node lists the alert and it decrypts with ``messages`` messages."""

    def readable() -> ReadAlert | None:
        if not any(a["id"] == alert_id for a in my_alerts(guardian)):
            return None
        found = read_alert(guardian, alert_id)
        return found if len(found.messages) >= messages else None

    return wait_until(
        readable, timeout=timeout,
        what=f"{guardian.login} reads alert {alert_id} ({messages} message(s)) on {guardian.node.name}",
        logs=[guardian.node, *logs],
    )  # fmt: skip


def acknowledge(guardian: Session, alert_id: str) -> None:
    """ "I have read this", on the guardian's own node."""
    done = guardian.post(f"/api/v1/alerts/{alert_id}/ack", expect=200)
    assert done["acknowledged"] is True, done


# --------------------------------------------------------------------------- SMS copies


def turn_on_notifications(guardian: Session) -> None:
    """The guardian turns notifications on: a device whose push service never answers
    (a loopback port where nothing listens), so pushes fail and the SMS escalation runs."""
    device = fake_browser()
    guardian.post(
        "/api/v1/push/subscriptions",
        {"endpoint": device.endpoint, "p256dh": device.p256dh, "auth": device.auth},
    )


def alert_texts(node: Node, phone: str | None = None) -> list[dict[str, Any]]:
    """The alert SMS copies ``node``'s console gateway wrote (to ``phone``), oldest first.

    Every other text a node sends carries a 6-digit code; an alert's copy never does.
    """
    path = node.data_dir / "sms-outbox.jsonl"
    found = []
    for line in path.read_text(encoding="utf-8").splitlines() if path.exists() else []:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a line being written right now
            continue
        if (phone is None or record["to"] == phone) and not _CODE.search(record["text"]):
            found.append(record)
    return found


def flush_sms(node: Node, slip: Guardian) -> None:
    """Wait until ``node``'s SMS worker has made a whole pass that began after this call.

    The worker escalates due alerts, then sends every queued text, one pass at a time.
    ``slip`` (a guardian registered on ``node``, not yet onboarded) asks for a login code
    three times, each once the previous one has been texted. The pass that sent the
    first may have begun before this call; the second began after it had ended (so
    after this call), and the third after the second had ended: once the third code
    is written, everything the second pass escalated and sent has been written too.
    Uses all three login codes the node texts one number per hour.
    """
    session = browser(node)

    def texted(before: int) -> bool:
        return len(texted_codes(node, slip.phone)) > before

    for _ in range(3):
        before = len(texted_codes(node, slip.phone))
        session.post("/api/v1/onboarding/start", {"phone": slip.phone, "code": slip.code})
        wait_until(
            lambda: texted(before),  # noqa: B023 (called before the loop moves on)
            timeout=DELIVERY, what=f"{node.name} texts a login code to {slip.phone}", logs=[node],
        )  # fmt: skip
