"""Events services publish for other schools, turned into signed activities (domain → wire).

``publish`` is the ``ServiceContext.publisher``: a service calls it inside
its own write transaction, so the activity is in the log exactly when the
change it announces is committed (the transactional outbox).
"""

from __future__ import annotations

from typing import Any

from federation.runtime import (
    action_answers,
    alert_mirror,
    alert_stream,
    class_mirror,
    class_stream,
    erasure,
    outbox,
)
from federation.runtime.class_stream import class_info, class_url
from federation.runtime.outbox import peer_stream
from node.services.context import ServiceContext
from node.storage import peers as peer_store


def _join_accepted(ctx: ServiceContext, payload: dict[str, Any]) -> None:
    peer = peer_store.select_peer(payload["peer_id"])
    if peer is None:
        return  # the peer was removed since: nobody to tell
    group = class_url(ctx, payload["class_id"])
    outbox.publish(
        ctx, stream=peer_stream(ctx, peer.origin), kind="peer", type="Accept", actor=group,
        audience=group + "#members", object=payload["follow_id"],
        recipients={peer.origin: [payload["actor"]]},
        extra={"target": group, "class": class_info(ctx, payload["class_id"], payload["child_id"])},
    )  # fmt: skip


def _join_rejected(ctx: ServiceContext, payload: dict[str, Any]) -> None:
    peer = peer_store.select_peer(payload["peer_id"])
    if peer is None:
        return
    group = class_url(ctx, payload["class_id"])
    outbox.publish(
        ctx, stream=peer_stream(ctx, peer.origin), kind="peer", type="Reject", actor=group,
        audience=group + "#members", object=payload["follow_id"],
        recipients={peer.origin: [payload["actor"]]},
    )  # fmt: skip


def _member_removed(ctx: ServiceContext, payload: dict[str, Any]) -> None:
    peer = peer_store.select_peer(payload["peer_id"])
    if peer is None:
        return
    group = class_url(ctx, payload["class_id"])
    outbox.publish(  # on the class's stream: what it carries next is no longer for them
        ctx, stream=group, kind="class", type="Remove", actor=group,
        audience=group + "#members", object=payload["actor"],
        recipients={peer.origin: [payload["actor"]]},
        extra={"target": group + "#members", "follow": payload["follow_id"]},
    )  # fmt: skip


def _join_undone(ctx: ServiceContext, payload: dict[str, Any]) -> None:
    """One of our guardians leaves a class of another school (NP/1 §9.2 step 6)."""
    peer = peer_store.select_peer(payload["peer_id"])
    if peer is None:
        return
    outbox.publish(
        ctx, stream=peer_stream(ctx, peer.origin), kind="peer", type="Undo",
        actor=payload["actor"], audience=payload["actor"], object=payload["follow_id"],
        recipients={peer.origin: [payload["class_url"]]},
    )  # fmt: skip


TRANSLATORS = {
    "join_accepted": _join_accepted,
    "join_rejected": _join_rejected,
    "member_removed": _member_removed,
    "join_undone": _join_undone,
    **class_stream.TRANSLATORS,
    **class_mirror.TRANSLATORS,
    **alert_stream.TRANSLATORS,
    **alert_mirror.TRANSLATORS,
    **action_answers.TRANSLATORS,
    **erasure.TRANSLATORS,
}


def publish(ctx: ServiceContext, kind: str, payload: dict[str, Any]) -> None:
    translate = TRANSLATORS.get(kind)
    if translate is None:
        raise ValueError(f"no activity for the event {kind!r}")
    translate(ctx, payload)
