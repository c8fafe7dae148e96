"""Classes of other schools on a guardian's home node (NP/1 §6.1, home side): wire → services.

Receiving: ``Create``/``Update``/``Delete`` on a class stream of a peer are
applied to that class's mirror (``node.services.mirrors``), by object type
(``GroupEntry``, ``EpochKey``, ``Note``, ``Tombstone``).

Sending: our guardian's comment, reaction, share, delete and read on a
mirrored class are forwarded to the class's node on our peer stream for it
(``Create`` of a ``Note`` on our origin with ``inReplyTo`` the post there,
``Delete`` of it, ``Read`` of the post); the class's node stores them and
announces them to every school of the class, ours included.
"""

from __future__ import annotations

import json
from typing import Any

import peewee

from federation.activity import Activity
from federation.encoding import format_timestamp
from federation.errors import ActivityError
from federation.runtime import alert_mirror, chat_stream, class_replies, outbox
from federation.runtime.outbox import peer_stream
from federation.runtime.peers import unix
from node.errors import CarnetError
from node.services import mirrors
from node.services.context import ServiceContext
from node.storage import directory as directory_store
from node.storage import feed as feed_store
from node.storage import groups as group_store
from node.storage import peers as peer_store

_APPLY = {
    "Class": mirrors.apply_class,
    "GroupEntry": mirrors.apply_entry,
    "EpochKey": mirrors.apply_key,
    "Note": mirrors.apply_note,
    "Tombstone": mirrors.apply_tombstone,
}


def _is_class_stream(activity: Activity) -> bool:
    path = activity.stream.split("://", 1)[1].partition("/")[2]
    return path.startswith("classes/")


def _apply(ctx: ServiceContext, peer_id: int, activity: Activity) -> None:
    obj = activity.object
    if not isinstance(obj, dict):
        raise ActivityError(f"{activity.type} needs an embedded object")
    apply = _APPLY.get(obj.get("type", ""))
    if apply is None:
        raise ActivityError(f"this node does not handle {obj.get('type')!r} objects")
    try:
        apply(ctx, peer_id, activity.stream, dict(obj))
    except CarnetError as refused:
        raise ActivityError(str(refused)) from refused
    except (peewee.IntegrityError, peewee.DataError) as refused:  # a value the tables refuse
        raise ActivityError(f"this {obj.get('type')} cannot be stored here") from refused


def handle(ctx: ServiceContext, peer_id: int, activity: Activity) -> None:
    """Content on a class stream (a class we mirror) or an alerts stream (another school's
    alerts), or a reply forwarded on a peer stream by a guardian's home node (a class of ours)."""
    if alert_mirror.is_alerts_stream(activity):
        alert_mirror.apply(ctx, peer_id, activity)
    elif _is_class_stream(activity):
        _apply(ctx, peer_id, activity)
    else:
        class_replies.handle(ctx, peer_id, activity)


def read(ctx: ServiceContext, peer_id: int, activity: Activity) -> None:
    """A guardian of another node read a post of ours, or acknowledged one of our alerts."""
    if alert_mirror.our_alert(ctx, activity.object) is not None:
        alert_mirror.acknowledged(ctx, peer_id, activity)
    else:
        class_replies.handle(ctx, peer_id, activity)


def remind(ctx: ServiceContext, peer_id: int, activity: Activity) -> None:
    """The class's teacher reminded our guardians who have not read a post."""
    if not _is_class_stream(activity):
        raise ActivityError("a reminder comes on the class's stream")
    try:
        mirrors.remind(ctx, peer_id, activity.stream, activity.object, activity.to)
    except CarnetError as refused:
        raise ActivityError(str(refused)) from refused


#: wired into the inbox by ``create_app``
HANDLERS = {
    "Create": handle,
    "Update": handle,
    "Delete": handle,
    "Read": read,
    "View": alert_mirror.viewed,
    "Remind": remind,
}


# -- forwarding our guardians' messages ------------------------------------------------------


def _target(ctx: ServiceContext, message_id: int) -> tuple[Any, Any, Any] | None:
    """(message, its mirrored class, the class's peer), or None if it is not a mirror's."""
    row = feed_store.Message.get_or_none(feed_store.Message.id == message_id)
    group = group_store.select_group(row.group_id) if row else None
    school_class = directory_store.select_class(group.school_class_id) if group else None
    if school_class is None or school_class.peer_id is None:
        return None
    peer = peer_store.select_peer(school_class.peer_id)
    if peer is None:
        return None
    return row, school_class, peer


def _send(
    ctx: ServiceContext, peer: Any, school_class: Any, actor: str, type_: str, obj: Any
) -> None:
    outbox.publish(
        ctx, stream=peer_stream(ctx, peer.origin), kind="peer", type=type_, actor=actor,
        audience=actor, object=obj, recipients={peer.origin: [school_class.remote_url]},
    )  # fmt: skip


def _our_url(ctx: ServiceContext, public_id: str) -> str:
    return f"{ctx.config.origin}/np/messages/{public_id}"


def forward_reply(ctx: ServiceContext, payload: dict[str, Any]) -> None:
    found = _target(ctx, payload["message_id"])
    if found is None:
        return
    row, school_class, peer = found
    actor = f"{ctx.config.origin}/users/{row.author_id}"
    keys = [json.loads(k.sealed) for k in feed_store.MessageKey.select().where(
        feed_store.MessageKey.message == row.id)]  # fmt: skip
    obj = {
        "id": _our_url(ctx, row.public_id), "type": "Note", "version": 1, "attributedTo": actor,
        "kind": row.kind, "message": {"header": json.loads(row.header), "ct": row.ct, "sig": row.sig},
        "keys": keys,
    }  # fmt: skip
    if row.parent_id:
        obj["inReplyTo"] = f"{school_class.remote_url}/messages/{row.parent.public_id}"
    obj.update(chat_stream.forward_fields(row, school_class))  # conversations, absence notes
    _send(ctx, peer, school_class, actor, "Create", obj)


def forward_delete(ctx: ServiceContext, payload: dict[str, Any]) -> None:
    found = _target(ctx, payload["message_id"])
    if found is None:
        return
    row, school_class, peer = found
    actor = f"{ctx.config.origin}/users/{row.author_id}"
    tombstone = {
        "id": _our_url(ctx, row.public_id), "type": "Tombstone", "formerType": "Note",
        "version": 2, "deleted": format_timestamp(unix(ctx.now())),
        "context": f"{school_class.remote_url}/messages/{row.public_id}",
    }  # fmt: skip
    _send(ctx, peer, school_class, actor, "Delete", tombstone)


def forward_read(ctx: ServiceContext, payload: dict[str, Any]) -> None:
    found = _target(ctx, payload["message_id"])
    if found is None:
        return
    row, school_class, peer = found
    actor = f"{ctx.config.origin}/users/{payload['account_id']}"
    _send(
        ctx,
        peer,
        school_class,
        actor,
        "Read",
        f"{school_class.remote_url}/messages/{row.public_id}",
    )


TRANSLATORS = {
    "mirror_reply": forward_reply,
    "mirror_delete": forward_delete,
    "mirror_read": forward_read,
}
