"""Writing activities: the stream log is the outbox (NP/1 §6).

``publish`` runs inside the caller's write transaction, next to what the
activity announces: it takes the stream's next sequence number (the stream
row is locked, so numbers have no gaps and no duplicates), signs the
activity once, and records which peers it is for and its recipients there.
Nothing is queued per message: the delivery worker computes each peer's
queue from its cursors.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from urllib.parse import urlsplit

from federation.activity import build_activity
from federation.canonical import canonical_json
from federation.encoding import ulid
from federation.runtime import identity
from federation.runtime.peers import unix
from node.services.context import ServiceContext
from node.storage import activities as store
from node.storage import peers as peer_store
from node.storage.db import locked

#: ``fed_stream.kind`` values: alerts go before everything else (NP/1 §9.1).
STREAM_KINDS = ("alerts", "class", "peer")


@dataclass(frozen=True)
class Published:
    activity_id: str
    seq: int
    #: peers to wake after the commit
    peer_ids: list[int]


def peer_stream(ctx: ServiceContext, peer_origin: str) -> str:
    """The stream of activities meant for one peer only (NP/1 §6.1)."""
    return f"{ctx.config.origin}/peers/{urlsplit(peer_origin).netloc}"


def new_id(ctx: ServiceContext, kind: str) -> str:
    """A fresh id on this node: ``{origin}/np/{kind}/{ULID}``."""
    now = ctx.now()
    now_ms = unix(now) * 1000 + now.microsecond // 1000
    return f"{ctx.config.origin}/np/{kind}/{ulid(now_ms, os.urandom(10))}"


def _stream_row(stream: str, kind: str) -> store.FedStream:
    row = locked(store.FedStream.select().where(store.FedStream.stream == stream)).first()
    if row is None:
        store.FedStream.insert(stream=stream, kind=kind, head_seq=0).on_conflict_ignore().execute()
        row = locked(store.FedStream.select().where(store.FedStream.stream == stream)).first()
    if row.kind != kind:
        raise ValueError(f"stream {stream} is a {row.kind} stream, not {kind}")
    found: store.FedStream = row
    return found


@dataclass(frozen=True)
class Outgoing:
    """One activity of ``publish_many``."""

    type: str
    object: str | dict[str, object]
    #: peer origin → the ids there it is for
    recipients: dict[str, list[str]]


def publish_many(
    ctx: ServiceContext, *, stream: str, kind: str, actor: str, audience: str,
    items: list[Outgoing],
) -> None:  # fmt: skip
    """``publish`` for many activities of one stream at once (a class as it is, for a
    school's first member): the stream locked once, rows written in bulk."""
    if not items:
        return
    row = _stream_row(stream, kind)
    key, keyid = identity.signing_key(ctx), identity.current_key_id(ctx)
    now = ctx.now()
    peers = {}
    for origin in sorted({o for item in items for o in item.recipients}):
        peer = peer_store.select_peer_by_origin(origin)
        if peer is not None and peer.state in ("active", "paused"):
            peers[origin] = peer.id
    activities, destinations = [], []
    for item in items:
        row.head_seq += 1
        activity = build_activity(
            id=new_id(ctx, "act"), type=item.type, actor=actor, stream=stream,
            seq=row.head_seq, published=unix(now), audience=audience, object=item.object,
            signing_key=key, keyid=keyid,
        )  # fmt: skip
        activity.pop("to")
        activities.append({
            "activity_id": activity["id"], "stream": row.id, "seq": row.head_seq,
            "type": item.type, "body": canonical_json(activity).decode(), "created_at": now,
            "object_id": item.object["id"] if isinstance(item.object, dict) else None,
        })  # fmt: skip
        for origin, ids in sorted(item.recipients.items()):
            if origin in peers and ids:
                destinations.append((activity["id"], peers[origin], sorted(set(ids))))
    row.save()
    store.insert_activities(activities)
    made = store.activity_row_ids([a["activity_id"] for a in activities])
    store.insert_destinations(
        [
            {"activity": made[a], "peer": p, "recipients": json.dumps(ids)}
            for a, p, ids in destinations
        ]
    )
    for peer_id in sorted({p for _, p, _ in destinations}):
        store.FedCursor.insert(
            peer=peer_id, stream=row.id, acked_seq=0
        ).on_conflict_ignore().execute()


def publish(
    ctx: ServiceContext,
    *,
    stream: str,
    kind: str,
    type: str,
    actor: str,
    audience: str,
    object: str | dict[str, object],
    recipients: dict[str, list[str]],
    extra: dict[str, object] | None = None,
) -> Published:
    """Append a signed activity to ``stream`` for ``recipients`` (peer origin → ids there).

    Must run inside a write transaction.  Recipients on origins that are not
    active peers are dropped here: nothing is sent to a school we do not trust.
    """
    if kind not in STREAM_KINDS:
        raise ValueError(f"unknown stream kind {kind}")
    row = _stream_row(stream, kind)
    row.head_seq += 1
    row.save()
    key = identity.signing_key(ctx)
    published = unix(ctx.now())
    activity = build_activity(
        id=new_id(ctx, "act"), type=type, actor=actor, stream=stream, seq=row.head_seq,
        published=published, audience=audience, object=object, signing_key=key,
        keyid=identity.current_key_id(ctx), extra=extra,
    )  # fmt: skip
    activity.pop("to")  # set per destination when sent; outside the proof
    stored = store.FedActivity.create(
        activity_id=activity["id"], stream=row.id, seq=row.head_seq, type=type,
        body=canonical_json(activity).decode(), created_at=ctx.now(),
        object_id=object["id"] if isinstance(object, dict) else None,
    )  # fmt: skip
    peer_ids = []
    for origin, ids in sorted(recipients.items()):
        peer = peer_store.select_peer_by_origin(origin)
        if peer is None or peer.state not in ("active", "paused") or not ids:
            continue
        store.FedActivityDest.create(
            activity=stored.id, peer=peer.id, recipients=json.dumps(sorted(set(ids)))
        )
        store.FedCursor.insert(
            peer=peer.id, stream=row.id, acked_seq=0
        ).on_conflict_ignore().execute()
        peer_ids.append(peer.id)
    return Published(activity["id"], row.head_seq, peer_ids)
