"""Emergency alerts: sending, follow-ups until "all clear", acknowledgements, escalation to SMS.

Who may do what:
- only the emergency role sends an alert or a follow-up: a school admin, or
  a member of staff the admins named, holding an emergency-role key of the
  school group; with two-person approval switched on, a
  real (not drill) alert waits until another admin approves it, and either
  may cancel it before then;
- an alert is committed once: the alert, its first message, one row per
  guardian and per child, and one high-urgency push notice per guardian, in
  one transaction; the push worker fans the notices out;
- every guardian of the school's children it was for reads it and says
  "I have read this"; admins see the reach dashboard;
- guardians who have not acknowledged after the school's delay get an SMS
  (at once if they have no push device); the text is content-free unless
  the school opted in; a drill never sends SMS (the report says who would
  have got one).
The node checks what it can of the ciphertext: the header's kind, group,
epoch and thread, that its author holds an emergency-role key, and the
signature.  Guardians' browsers check the same before showing anything.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from node.e2e import messages as e2e_messages
from node.e2e.encoding import canonical_text
from node.errors import N_, Conflict, Invalid, NotFound, PermissionDenied
from node.services import audit, notifications, sms_outbox
from node.services.context import Actor, ServiceContext
from node.services.groups import member_id
from node.storage import accounts as account_store
from node.storage import alerts as store
from node.storage import notifications as notification_store
from node.storage import school_group as group_store
from node.storage.db import write_transaction

TEMPLATES = ("lockdown", "evacuation", "shelter", "all_clear", "do_not_come", "free")
#: Largest encrypted alert accepted (a text of 2,000 characters is ~3 KiB of ciphertext).
MAX_WIRE_BYTES = 32 * 1024
#: Longest SMS text a school may send with an alert (two SMS segments).
MAX_SMS_TEXT = 300
SMS_DELAY_RANGE = (30, 3600)
#: Messages in one alert thread (its first, follow-ups, all clear).
MAX_MESSAGES = 12


@dataclass(frozen=True)
class Policy:
    sms_delay_seconds: int
    sms_with_text: bool
    two_person: bool


@dataclass(frozen=True)
class Sent:
    """What the routes need after a write: the alert, and whom to tell live."""

    alert_id: str
    state: str
    #: this node's guardians to tell live (those of other nodes are told by theirs)
    recipients: list[int] = field(default_factory=list)
    admins: list[int] = field(default_factory=list)
    #: every guardian the alert is for, on this node or another
    total: int = 0


def _policy_row() -> Any:
    return store.select_policy()


def policy(ctx: ServiceContext, actor: Actor) -> Policy:
    """The policy, for whoever sends alerts (only admins change it)."""
    if not in_emergency_role(actor):
        raise PermissionDenied(N_("Only the school's admins set the alert policy."))
    return _as_policy(_policy_row())


def _as_policy(row: Any) -> Policy:
    if row is None:
        return Policy(120, False, False)
    return Policy(row.sms_delay_seconds, row.sms_with_text, row.two_person)


def set_policy(
    ctx: ServiceContext, actor: Actor, sms_delay_seconds: Any, sms_with_text: Any, two_person: Any
) -> Policy:
    if not actor.is_admin:
        raise PermissionDenied(N_("Only the school's admins set the alert policy."))
    low, high = SMS_DELAY_RANGE
    if type(sms_delay_seconds) is not int or not low <= sms_delay_seconds <= high:
        raise Invalid(
            N_("The SMS delay is a whole number of seconds from %(low)s to %(high)s."),
            field="sms_delay_seconds", low=low, high=high,
        )  # fmt: skip
    for name, value in (("sms_with_text", sms_with_text), ("two_person", two_person)):
        if type(value) is not bool:
            raise Invalid(N_("Choose yes or no."), field=name)
    with write_transaction():
        row = _policy_row() or store.AlertPolicy(updated_at=ctx.now())
        row.sms_delay_seconds, row.sms_with_text, row.two_person = (
            sms_delay_seconds,
            sms_with_text,
            two_person,
        )
        row.updated_at = ctx.now()
        row.save()
        audit.record(ctx, "alert_policy_changed", actor, None, two_person=two_person)
        return _as_policy(row)


# --------------------------------------------------------------------------- checks


def _check_template(template: Any) -> str:
    if template not in TEMPLATES:
        raise Invalid(N_("Choose one of the alert templates."), field="template")
    return str(template)


def _check_wire(
    ctx: ServiceContext, actor: Actor, group: Any, wire: Any, parent: str | None
) -> dict[str, Any]:
    """The encrypted alert as far as the node can check it without keys."""
    if not isinstance(wire, dict) or set(wire) != {"header", "ct", "sig"}:
        raise Invalid(N_("The encrypted alert is malformed."), field="message")
    try:
        text = canonical_text(wire)
        header = e2e_messages.check_header(wire["header"])
    except (ValueError, TypeError, e2e_messages.MessageError) as exc:
        raise Invalid(
            N_("The encrypted alert is malformed: %(reason)s"), field="message", reason=str(exc)
        ) from exc
    if len(text.encode()) > MAX_WIRE_BYTES:
        raise Invalid(N_("The alert is too long."), field="message")
    me = member_id(ctx, actor.account_id)
    mine = group_store.select_member(group.id, me)
    admins = json.loads(group.admins)
    if mine is None or not mine.active or mine.role != "admin" or mine.sign_pk not in admins:
        raise PermissionDenied(N_("Your keys are not in the school's emergency role."))
    if header["kind"] != "alert" or header["group"] != group.public_id or header["to"] is not None:
        raise Invalid(N_("This is not an alert of this school."), field="message")
    if header["author"] != me or header["by"] != mine.sign_pk or header["version"] != 1:
        raise Invalid(N_("An alert must be signed with your own current key."), field="message")
    if header["parent"] != parent:
        raise Invalid(N_("This message belongs to another alert."), field="message")
    if group.pending_removals or group.pending_admins or header["epoch"] != group.current_epoch:
        raise Conflict(
            N_("The alert keys changed since the page was loaded. Reload and send again.")
        )
    if not e2e_messages.verify_signature(wire):
        raise Invalid(N_("The alert's signature does not verify."), field="message")
    if store.AlertMessage.get_or_none(store.AlertMessage.public_id == header["id"]) is not None:
        raise Conflict(N_("This alert was already sent."))
    return header


def _sms_text(ctx: ServiceContext, policy: Policy, sms_text: Any) -> str:
    """What an SMS copy says: the alert's text only where the school opted in."""
    notice = ctx.translate(
        ctx.config.default_locale, N_("Urgent message from {school}: open Carnet now.")
    ).format(school=ctx.config.school_name)
    if not policy.sms_with_text or sms_text in (None, ""):
        return notice
    if not isinstance(sms_text, str) or len(sms_text) > MAX_SMS_TEXT:
        raise Invalid(
            N_("The SMS text is at most %(max)s characters."), field="sms_text", max=MAX_SMS_TEXT
        )
    return f"{ctx.config.school_name}: {sms_text.strip()}"[:320]


def in_emergency_role(actor: Actor) -> bool:
    """An admin, or a member of staff whose key the school put in the emergency role."""
    if actor.is_admin:
        return True
    if not actor.is_teacher:
        return False
    group = group_store.select_group()
    account = account_store.select_account(actor.account_id)
    return bool(group and account and account.sign_pk in json.loads(group.admins))


def _require_sender(actor: Actor) -> Any:
    if not in_emergency_role(actor):
        raise PermissionDenied(N_("Only the school's admins and named staff send alerts."))
    group = group_store.select_group(lock=True)
    if group is None:
        raise Conflict(N_("Set up the school's alert keys first (open the Alerts page)."))
    return group


def _admin_ids() -> list[int]:
    return [a.id for a in account_store.select_admins() if a.status == "active"]


# --------------------------------------------------------------------------- sending


def send(
    ctx: ServiceContext,
    actor: Actor,
    message: Any,
    template: Any,
    drill: Any,
    sms_text: Any = None,
) -> Sent:
    """A new alert thread; sent at once, or awaiting a second admin's approval."""
    template = _check_template(template)
    if template == "all_clear":
        raise Invalid(N_("'All clear' ends an alert; it cannot start one."), field="template")
    if type(drill) is not bool:
        raise Invalid(N_("Say whether this is a drill."), field="drill")
    with write_transaction():
        group = _require_sender(actor)
        header = _check_wire(ctx, actor, group, message, None)
        rules = _as_policy(_policy_row())
        waits = rules.two_person and not drill and len(_admin_ids()) > 1
        now = ctx.now()
        alert = store.Alert.create(
            public_id=header["id"], template=template, drill=drill, sent_by=actor.account_id,
            state="awaiting_approval" if waits else "active",
            sms_text=_sms_text(ctx, rules, sms_text), created_at=now,
        )  # fmt: skip
        store.AlertMessage.create(
            alert=alert, seq=0, public_id=header["id"], template=template,
            wire=canonical_text(message), sent_by=actor.account_id, created_at=now,
        )  # fmt: skip
        audit.record(ctx, "alert_sent", actor, None, alert=alert.public_id, drill=drill, wait=waits)
        if waits:
            return Sent(alert.public_id, alert.state, [], _admin_ids())
        recipients = _dispatch(ctx, alert, rules)
        total = len(store.recipient_accounts(alert.id))
        return Sent(alert.public_id, alert.state, recipients, _admin_ids(), total)


def _dispatch(ctx: ServiceContext, alert: Any, rules: Policy) -> list[int]:
    """Commit every recipient, their push notices and the first SMS copies (inside the caller's transaction)."""
    now = ctx.now()
    rows = store.school_families_with_facts()
    families = [(child, klass, account) for child, klass, account, _, _ in rows]
    facts = {account: (status or "", phone) for _, _, account, status, phone in rows if account}
    reachable = sorted({a for a, (status, _) in facts.items() if status == "active"})
    # guardians living on another school's node: their node pushes and texts them
    elsewhere = sorted({a for a, (status, _) in facts.items() if status == "remote"})
    store.insert_recipients(alert.id, reachable + elsewhere)
    store.set_sms_state(alert.id, elsewhere, "remote", now)
    store.insert_children(alert.id, families)
    notifications.enqueue(
        ctx, kind="alert", account_ids=reachable, class_id=None, message_id=None,
        urgency="high", alert_id=alert.id,
    )  # fmt: skip
    alert.sent_at = now
    alert.escalate_at = None if alert.drill else now + dt.timedelta(seconds=rules.sms_delay_seconds)
    alert.save()
    # no device to push to: the SMS goes now, not after the delay
    devices = notification_store.accounts_with_devices()
    send_texts(ctx, alert, [a for a in reachable if a not in devices], facts)
    _tell_schools(ctx, alert, rules)
    return reachable


def _tell_schools(ctx: ServiceContext, alert: Any, rules: Policy) -> None:
    """The nodes of the alert's guardians from other schools get it on the priority lane."""
    if store.remote_recipients(alert.id):
        ctx.publish("alert_changed", {"alert_id": alert.id, "sms_delay": rules.sms_delay_seconds})


def send_texts(
    ctx: ServiceContext,
    alert: Any,
    account_ids: list[int],
    facts: dict[int, tuple[str, str | None]],
) -> None:
    """Queue the SMS copy for these recipients (a drill only records who would have got one)."""
    if not account_ids:
        return
    now = ctx.now()
    by_state: dict[str, list[int]] = {}
    for account_id in account_ids:
        phone = facts.get(account_id, ("", None))[1]
        if alert.drill:
            by_state.setdefault("drill", []).append(account_id)
        elif not phone:
            by_state.setdefault("no_phone", []).append(account_id)
        else:
            reference = sms_outbox.enqueue(ctx, phone, "alert", alert.sms_text)
            store.AlertRecipient.update(
                sms_state="queued", sms_reference=reference, sms_at=now
            ).where(
                (store.AlertRecipient.alert == alert.id)
                & (store.AlertRecipient.account == account_id)
            ).execute()
    for state, ids in by_state.items():
        store.set_sms_state(alert.id, ids, state, now)


def approve(ctx: ServiceContext, actor: Actor, alert_id: str) -> Sent:
    """A second admin approves an alert waiting for them: it goes out now."""
    if not actor.is_admin:
        raise PermissionDenied(N_("Only the school's admins approve alerts."))
    with write_transaction():
        alert = _alert(alert_id, lock=True)
        if alert.state != "awaiting_approval":
            raise Conflict(N_("This alert is not waiting for approval."))
        if alert.sent_by_id == actor.account_id:
            raise PermissionDenied(N_("Another admin must approve your alert."))
        alert.state, alert.approved_by = "active", actor.account_id
        audit.record(ctx, "alert_approved", actor, alert.sent_by_id, alert=alert.public_id)
        recipients = _dispatch(ctx, alert, _as_policy(_policy_row()))
        total = len(store.recipient_accounts(alert.id))
        return Sent(alert.public_id, alert.state, recipients, _admin_ids(), total)


def cancel(ctx: ServiceContext, actor: Actor, alert_id: str) -> Sent:
    """Withdraw an alert that is still waiting for approval."""
    if not actor.is_admin:
        raise PermissionDenied(N_("Only the school's admins cancel alerts."))
    with write_transaction():
        alert = _alert(alert_id, lock=True)
        if alert.state != "awaiting_approval":
            raise Conflict(N_("Only an alert waiting for approval can be cancelled."))
        alert.state, alert.closed_at = "cancelled", ctx.now()
        alert.save()
        audit.record(ctx, "alert_cancelled", actor, alert.sent_by_id, alert=alert.public_id)
        return Sent(alert.public_id, alert.state, [], _admin_ids())


def follow_up(
    ctx: ServiceContext, actor: Actor, alert_id: str, message: Any, template: Any
) -> Sent:
    """Instructions in the same thread; "all clear" ends the alert and its escalation."""
    template = _check_template(template)
    with write_transaction():
        group = _require_sender(actor)
        alert = _alert(alert_id, lock=True)
        if alert.state != "active":
            raise Conflict(N_("This alert has ended; send a new one."))
        header = _check_wire(ctx, actor, group, message, alert.public_id)
        count = store.AlertMessage.select().where(store.AlertMessage.alert == alert.id).count()
        if count >= MAX_MESSAGES:  # the whole thread travels as one activity between schools
            raise Conflict(N_("This alert has 12 messages already: send a new alert."))
        now = ctx.now()
        store.AlertMessage.create(
            alert=alert, seq=count, public_id=header["id"], template=template,
            wire=canonical_text(message), sent_by=actor.account_id, created_at=now,
        )  # fmt: skip
        if template == "all_clear":
            alert.state, alert.closed_at, alert.escalate_at = "closed", now, None
            alert.save()
        elsewhere = {a for a, _, _ in store.remote_recipients(alert.id)}
        recipients = [a for a in store.recipient_accounts(alert.id) if a not in elsewhere]
        notifications.enqueue(
            ctx, kind="alert", account_ids=recipients, class_id=None, message_id=None,
            urgency="high", alert_id=alert.id,
        )  # fmt: skip
        _tell_schools(ctx, alert, _as_policy(_policy_row()))
        return Sent(alert.public_id, alert.state, recipients, _admin_ids())


def _alert(public_id: Any, lock: bool = False, *, ours: bool = True) -> Any:
    """One alert by id; ``ours``: only this school's (not another school's, mirrored here)."""
    alert = store.select_alert(public_id, lock=lock) if isinstance(public_id, str) else None
    if alert is None or (ours and alert.peer_id is not None):
        raise NotFound(N_("No such alert."))
    return alert


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class AlertMessageView:
    id: str
    template: str
    at: dt.datetime
    message: dict[str, Any]


@dataclass(frozen=True)
class AlertView:
    id: str
    template: str
    drill: bool
    state: str
    sent_by: str | None
    created_at: dt.datetime
    sent_at: dt.datetime | None
    closed_at: dt.datetime | None
    #: the guardian's own acknowledgement (None for admins)
    acknowledged_at: dt.datetime | None
    messages: list[AlertMessageView] = field(default_factory=list)
    can_approve: bool = False
    #: another school's alert (mirrored for its guardians here): that school's name
    school: str | None = None
    #: the group it is encrypted to (``GET /api/v1/school-group?group=…``)
    group: str | None = None


def _names(ids: set[int]) -> dict[int, str]:
    return {i: a.display_name for i, a in account_store.select_accounts(ids).items()}


def _groups() -> dict[int | None, str]:
    """peer id (None: ours) → public id of the school group alerts from there are encrypted to."""
    return {g.peer_id: g.public_id for g in group_store.SchoolGroup.select()}


def _view(
    alert: Any, names: dict[int, str], ack: Any, messages: list[Any], actor: Actor,
    groups: dict[int | None, str],
) -> AlertView:  # fmt: skip
    return AlertView(
        alert.public_id, alert.template, alert.drill, alert.state,
        alert.sender or names.get(alert.sent_by_id or 0), alert.created_at, alert.sent_at,
        alert.closed_at, ack,
        [AlertMessageView(m.public_id, m.template, m.created_at, json.loads(m.wire)) for m in messages],
        actor.is_admin and alert.state == "awaiting_approval" and alert.sent_by_id != actor.account_id,
        alert.school, groups.get(alert.peer_id),
    )  # fmt: skip


def list_alerts(ctx: ServiceContext, actor: Actor, limit: int = 50) -> list[AlertView]:
    """Admins: every alert; guardians: the alerts sent to them, newest first (no messages)."""
    if in_emergency_role(actor):
        alerts = store.select_alerts(limit)
        acks: dict[int, Any] = {}
    elif actor.is_guardian:
        alerts = store.select_alerts_of(actor.account_id, limit)
        acks = store.acknowledgements_of(actor.account_id, [a.id for a in alerts])
    else:
        raise PermissionDenied(N_("Alerts go to the school's guardians and admins."))
    names = _names({a.sent_by_id for a in alerts if a.sent_by_id})
    groups = _groups()
    return [_view(a, names, acks.get(a.id), [], actor, groups) for a in alerts]


def get_alert(ctx: ServiceContext, actor: Actor, alert_id: str) -> AlertView:
    """One alert with its encrypted messages; a guardian's reading counts as delivered."""
    alert = _alert(alert_id, ours=not actor.is_guardian)
    ack = None
    if actor.is_guardian:
        with write_transaction():
            mine = store.select_recipient(alert.id, actor.account_id)
            if mine is None or alert.state == "awaiting_approval":
                raise NotFound(N_("No such alert."))
            if mine.delivered_at is None:
                mine.delivered_at = ctx.now()
                mine.save()
                if alert.peer_id is not None:  # the school that sent it counts it too
                    ctx.publish(
                        "alert_delivered", {"alert_id": alert.id, "account_ids": [actor.account_id]}
                    )
            ack = mine.acknowledged_at
    elif not in_emergency_role(actor):
        raise NotFound(N_("No such alert."))
    names = _names({alert.sent_by_id} if alert.sent_by_id else set())
    return _view(alert, names, ack, store.select_messages(alert.id), actor, _groups())


def acknowledge(ctx: ServiceContext, actor: Actor, alert_id: str) -> Sent:
    """ "I have read this": once per guardian; saying it again changes nothing."""
    with write_transaction():
        alert = _alert(alert_id, ours=False)
        mine = store.select_recipient(alert.id, actor.account_id) if actor.is_guardian else None
        if mine is None or alert.state == "awaiting_approval":
            raise NotFound(N_("No such alert."))
        if mine.acknowledged_at is None:
            now = ctx.now()
            mine.acknowledged_at = now
            mine.delivered_at = mine.delivered_at or now
            mine.save()
            if alert.peer_id is not None:  # the school that sent it counts it too
                ctx.publish("alert_ack", {"alert_id": alert.id, "account_id": actor.account_id})
        admins = _admin_ids() if alert.peer_id is None else []
        return Sent(alert.public_id, alert.state, [actor.account_id], admins)


def delivered(ctx: ServiceContext, actor: Actor, alert_id: str) -> None:
    """The alert reached this guardian (their node's push service took it, or their page
    opened it): what another school's node reports for its guardians."""
    with write_transaction():
        alert = _alert(alert_id)
        mine = store.select_recipient(alert.id, actor.account_id) if actor.is_guardian else None
        if mine is None or alert.state == "awaiting_approval":
            raise NotFound(N_("No such alert."))
        store.mark_delivered([(alert.id, actor.account_id)], ctx.now())


# --------------------------------------------------------------------------- escalation


def escalate_due(ctx: ServiceContext) -> int:
    """Text every guardian who has not acknowledged a due alert; returns how many were queued."""
    queued = 0
    with write_transaction():
        for alert in store.due_escalations(ctx.now()):
            waiting = [r.account_id for r in store.unacknowledged_without_text(alert.id)]
            facts = store.select_account_facts(waiting)
            send_texts(ctx, alert, waiting, facts)
            queued += sum(1 for a in waiting if facts.get(a, ("", None))[1])
            alert.escalate_at = None
            alert.save()
    return queued
