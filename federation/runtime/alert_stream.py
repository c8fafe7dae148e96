"""The school's emergency alerts on its alerts stream, for the nodes of its guardians (NP/1 §6.5).

What the alerts stream ``{origin}/alerts`` carries, as objects on this node's
origin, to every peer hosting a guardian of the school's children:

- ``GroupEntry``: the school group's signed log (a node whose first member it
  is gets it from entry 0, so its copy verifies from the start);
- ``EpochKey``: the group key sealed to that node's members only;
- ``Alert``: the whole alert thread (metadata and every signed, encrypted
  message), again at each follow-up with ``version`` = its number of
  messages, so the receiver keeps the newest and a lost Update is repaired
  by the next.

The delivery worker sends this stream before any other (the priority lane);
acknowledgements come back as ``Read`` on each peer's stream to us
(``federation.runtime.alert_mirror``).  Domain → wire only: the services
publish the events, this module turns them into activities.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from federation.encoding import format_timestamp
from federation.runtime import outbox
from federation.runtime.peers import unix
from node.services.context import ServiceContext
from node.storage import accounts as account_store
from node.storage import alerts as alert_store
from node.storage import directory as directory_store
from node.storage import peers as peer_store
from node.storage import school_group as group_store


def alerts_url(ctx: ServiceContext) -> str:
    return f"{ctx.config.origin}/alerts"


def _actors(rows: list[tuple[str, int]]) -> dict[str, dict[str, str]]:
    """(member id, home peer id) → peer origin → {member id: actor id there}."""
    peers = {p.id: p for p in peer_store.select_peers_by_id(sorted({p for _, p in rows}))}
    found: dict[str, dict[str, str]] = defaultdict(dict)
    for member, peer_id in rows:
        peer = peers.get(peer_id)
        local, _, host = member.partition("@")
        if (
            peer is not None
            and peer.state in ("active", "paused")
            and peer.origin.split("://", 1)[1] == host
        ):
            found[peer.origin][member] = f"{peer.origin}/users/{local}"
    return found


def _publish(
    ctx: ServiceContext, type_: str, obj: dict[str, Any], to: dict[str, list[str]]
) -> None:
    if to:
        au = alerts_url(ctx)
        outbox.publish(
            ctx, stream=au, kind="alerts", type=type_, actor=au, audience=au + "#guardians",
            object=obj, recipients=to,
        )  # fmt: skip


def _entry_object(au: str, group: Any, entry: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"{au}/log/{entry['seq']}", "type": "GroupEntry", "version": 1,
        "attributedTo": au, "group": group.public_id, "entry": entry,
    }  # fmt: skip


def school_entries(ctx: ServiceContext, payload: dict[str, Any]) -> None:
    """New entries of the school group, and the keys sealed with them to members elsewhere."""
    group = group_store.SchoolGroup.get_or_none(group_store.SchoolGroup.id == payload["group_id"])
    if group is None:
        return
    au = alerts_url(ctx)
    members = _actors(group_store.remote_members(group.id))
    everyone = {o: list(m.values()) for o, m in members.items()}
    new = {o for o in (peer_store.select_peer(p) for p in payload["new_peers"]) if o}
    new_origins = {p.origin for p in new if p.origin in members}
    for text in group_store.select_entries(group.id):
        entry = json.loads(text)
        if entry["seq"] >= payload["first_seq"]:
            to = everyone
        else:  # a node whose first member this is: the log from its start
            to = {o: everyone[o] for o in new_origins}
        _publish(ctx, "Create", _entry_object(au, group, entry), to)
    wanted = set(payload["members"])
    for origin, by_member in members.items():
        for member, actor in by_member.items():
            if member not in wanted:
                continue
            for row in group_store.SchoolGroupEnvelope.select().where(
                (group_store.SchoolGroupEnvelope.group == group.id)
                & (group_store.SchoolGroupEnvelope.member == member)
                & (group_store.SchoolGroupEnvelope.epoch == group.current_epoch)
            ):  # fmt: skip
                obj = {
                    "id": f"{au}/keys/{row.epoch}/{member}/{row.enc_pk}", "type": "EpochKey",
                    "version": 1, "attributedTo": au, "envelope": json.loads(row.envelope),
                }  # fmt: skip
                _publish(ctx, "Create", obj, {origin: [actor]})


def alert_object(ctx: ServiceContext, alert: Any, sms_delay: int) -> dict[str, Any]:
    """The whole alert thread as another school's node keeps it."""
    au = alerts_url(ctx)
    messages = alert_store.select_messages(alert.id)
    group = group_store.select_group()
    sender = account_store.select_account(alert.sent_by_id) if alert.sent_by_id else None
    return {
        "id": f"{au}/{alert.public_id}", "type": "Alert", "version": len(messages),
        "attributedTo": au, "group": group.public_id if group else None,
        "template": alert.template, "drill": alert.drill, "state": alert.state,
        "school": ctx.config.school_name, "sender": sender.display_name if sender else None,
        "smsText": alert.sms_text, "smsDelay": sms_delay,
        "sent": format_timestamp(unix(alert.sent_at or alert.created_at)),
        "messages": [
            {"id": m.public_id, "template": m.template, "published": format_timestamp(unix(m.created_at)),
             "message": json.loads(m.wire)}
            for m in messages
        ],
    }  # fmt: skip


def alert_changed(ctx: ServiceContext, payload: dict[str, Any]) -> None:
    """An alert or its follow-up, for every node hosting one of its guardians."""
    alert = alert_store.Alert.get_or_none(alert_store.Alert.id == payload["alert_id"])
    if alert is None or alert.peer_id is not None:
        return
    rows = []
    for _, login, peer_id in alert_store.remote_recipients(alert.id):
        member = directory_store.remote_member_of(login)
        if member:
            rows.append((member, peer_id))
    to = {o: list(m.values()) for o, m in _actors(rows).items()}
    obj = alert_object(ctx, alert, payload["sms_delay"])
    _publish(ctx, "Create" if obj["version"] == 1 else "Update", obj, to)


TRANSLATORS = {"school_entries": school_entries, "alert_changed": alert_changed}
