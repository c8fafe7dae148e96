"""Emergency alerts of other schools, for their guardians living on this node (NP/1 §6.5, home side).

What another school's node (S) sends on its alerts stream is applied here:
its "all guardians" group (the signed log, checked from its first entry,
and the key sealed to our members), and each alert thread.  Rules:
- an alert's every message must be an alert of that group, signed by one of
  its emergency-role keys (the same check a browser makes);
- the alert goes to our guardians of that school's children (as this node
  knows them from the classes it mirrors, not as S says), by high-urgency
  push at once, and by our own SMS gateway to those who have not
  acknowledged after S's delay, and at once those with no device to push
  to (drills never);
- a newer version (more messages) replaces what we hold; an older one or the
  same is ignored, so a replay changes nothing.
Acknowledgements go back to S (``alert_ack``, published by ``alerts.acknowledge``).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from node.e2e import messages as e2e_messages
from node.e2e.encoding import canonical_text
from node.errors import N_, Invalid
from node.services import groups, notifications, school_group
from node.services.alerts import MAX_MESSAGES, MAX_WIRE_BYTES, TEMPLATES, send_texts
from node.services.context import ServiceContext
from node.storage import alerts as store
from node.storage import directory as directory_store
from node.storage import notifications as notification_store
from node.storage import school_group as group_store


def _group(peer_id: int, lock: bool = False) -> Any:
    return group_store.select_mirror(peer_id, lock=lock)


def apply_entry(ctx: ServiceContext, peer_id: int, stream: str, obj: dict[str, Any]) -> None:
    """One entry of S's school group log, in order; a new group id starts over from entry 0."""
    entry = obj.get("entry")
    if not isinstance(entry, dict) or type(entry.get("seq")) is not int:
        raise Invalid(N_("A log entry is malformed."))
    group = _group(peer_id, lock=True)
    if group is not None and entry["seq"] == 0 and entry.get("group") != group.public_id:
        group.delete_instance(recursive=True)  # the school set up new alert keys
        group = None
    if group is None:
        if entry["seq"] != 0:
            raise Invalid(N_("The alert group's log must start with its first entry."))
        state = school_group.verify([entry])
        if group_store.select_by_public_id(state.group) is not None:
            raise Invalid(N_("This group id is already used."))
        group = group_store.SchoolGroup.create(
            public_id=state.group, peer_id=peer_id, remote_url=stream,
            admins=json.dumps(state.admins), head_seq=0, head_hash="", created_at=ctx.now(),
        )  # fmt: skip
        school_group.store_log(ctx, group, state, [entry])
        return
    if entry["seq"] <= group.head_seq:
        return  # sent again (our first member of that school, again): already here
    if entry["seq"] != group.head_seq + 1:
        raise Invalid(N_("The alert group's log has a gap."))
    state = groups.extend_log(
        group,
        lambda: [json.loads(text) for text in group_store.select_entries(group.id)],
        entry,
        school_group.LOG_REFUSED,
    )
    school_group.store_log(ctx, group, state, [entry])


def apply_key(ctx: ServiceContext, peer_id: int, stream: str, obj: dict[str, Any]) -> None:
    """The group key sealed to one of our members."""
    env = obj.get("envelope")
    group = _group(peer_id)
    if (
        not isinstance(env, dict)
        or set(env) != {"epoch", "member", "enc", "ct"}
        or type(env["epoch"]) is not int
        or not isinstance(env["member"], str)
        or group is None
    ):
        raise Invalid(N_("An epoch key is malformed."))
    member = group_store.select_member(group.id, env["member"])
    if member is None or not member.active or member.account_id is None:
        raise Invalid(N_("An epoch key must be sealed to a member of this school."))
    if (env["member"], member.enc_pk) in group_store.envelope_holders(group.id, env["epoch"]):
        return
    group_store.insert_envelopes(
        group.id, [(env["epoch"], env["member"], member.enc_pk, canonical_text(env))], ctx.now()
    )


def _checked_messages(group: Any, raw: Any) -> list[tuple[str, str, dict[str, Any]]]:
    """(id, template, wire) of each message, each an alert of ``group`` by an emergency-role key."""
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_MESSAGES:
        raise Invalid(N_("An alert has 1 to 12 messages."))
    state = school_group.verify([json.loads(t) for t in group_store.select_entries(group.id)])
    found = []
    for index, item in enumerate(raw):
        wire = item.get("message") if isinstance(item, dict) else None
        try:
            if not isinstance(wire, dict) or set(wire) != {"header", "ct", "sig"}:
                raise e2e_messages.MessageError("malformed")
            header = e2e_messages.check_header(wire["header"])
            e2e_messages.check_alert_signer(state, header)
        except (e2e_messages.MessageError, ValueError, TypeError) as exc:
            raise Invalid(N_("An alert message was refused: %(reason)s"), reason=str(exc)) from exc
        first = raw[0].get("id") if isinstance(raw[0], dict) else None
        if (
            header["kind"] != "alert"
            or header["group"] != group.public_id
            or header["id"] != item.get("id")
            or header["parent"] != (None if index == 0 else first)
            or item.get("template") not in TEMPLATES
            or len(canonical_text(wire).encode()) > MAX_WIRE_BYTES
            or not e2e_messages.verify_signature(wire)
        ):
            raise Invalid(N_("An alert message does not belong to this alert."))
        found.append((header["id"], item["template"], wire))
    return found


def _our_guardians(peer_id: int) -> list[int]:
    """Our active guardians of children in that school's classes we mirror."""
    return directory_store.local_guardians_of_peer(peer_id)


def apply_alert(ctx: ServiceContext, peer_id: int, stream: str, obj: dict[str, Any]) -> list[int]:
    """An alert thread of S, whole; returns the guardians notified now."""
    group = _group(peer_id)
    if group is None:
        raise Invalid(N_("The alert group's log has not arrived yet."))
    messages = _checked_messages(group, obj.get("messages"))
    version, template, drill, state = (
        obj.get("version"), obj.get("template"), obj.get("drill"), obj.get("state")
    )  # fmt: skip
    if (
        obj.get("id") != f"{stream}/{messages[0][0]}"
        or version != len(messages)
        or template not in TEMPLATES
        or type(drill) is not bool
        or state not in ("active", "closed")
    ):
        raise Invalid(N_("An alert is malformed."))
    alert = store.Alert.get_or_none(store.Alert.remote_url == obj["id"])
    held = (
        store.AlertMessage.select().where(store.AlertMessage.alert == alert).count() if alert else 0
    )
    if alert is not None and (alert.peer_id != peer_id or version <= held):
        return []  # as new as ours (a replay, or an Update overtaken by a newer one)
    now = ctx.now()
    delay = obj.get("smsDelay")
    if type(delay) is not int or not 0 <= delay <= 3600:
        raise Invalid(N_("An alert is malformed."))
    if alert is None:
        alert = store.Alert.create(
            public_id=messages[0][0], peer_id=peer_id, remote_url=obj["id"],
            school=_text(obj.get("school")), sender=_text(obj.get("sender")),
            template=template, drill=drill, state="active", sms_text=_sms(obj.get("smsText")),
            created_at=now, sent_at=now,
            escalate_at=None if drill else now + dt.timedelta(seconds=delay),
        )  # fmt: skip
    if state == "closed":
        alert.state, alert.closed_at, alert.escalate_at = "closed", alert.closed_at or now, None
    alert.save()
    for seq, (public_id, tmpl, wire) in enumerate(messages):
        if seq >= held:
            store.AlertMessage.create(
                alert=alert, seq=seq, public_id=public_id, template=tmpl,
                wire=canonical_text(wire), created_at=now,
            )  # fmt: skip
    known = set(store.recipient_accounts(alert.id))
    guardians = _our_guardians(peer_id)
    new = [a for a in guardians if a not in known]
    store.insert_recipients(alert.id, new)
    if alert.state == "active":  # no device to push to: the SMS goes now, as at the school
        devices = notification_store.accounts_with_devices()
        waiting = [a for a in new if a not in devices]
        send_texts(ctx, alert, waiting, store.select_account_facts(waiting))
    notifications.enqueue(
        ctx, kind="alert", account_ids=guardians, class_id=None, message_id=None,
        urgency="high", alert_id=alert.id,
    )  # fmt: skip
    return guardians


def _text(value: Any) -> str | None:
    return value.strip()[:120] or None if isinstance(value, str) else None


def _sms(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Invalid(N_("An alert is malformed."))
    return value.strip()[:320]
