"""Federation: the activity log (the outbox), per-peer cursors and batches, and what was received.

Sender side: ``fed_stream`` hands out gap-free sequence numbers in the same
transaction that stores the activity; ``fed_activity_dest`` says which peers
an activity is for; a peer's queue is computed from its cursors, never stored
per message.  Receiver side: ``fed_received`` makes applying idempotent,
``fed_remote_stream.applied_seq`` keeps order; after a gap the receiver pulls
the range instead of buffering what arrived.
"""

from __future__ import annotations

from typing import Any

import peewee

from node.storage.db import BaseModel, locked
from node.storage.peers import Peer


def _pk(model: type[BaseModel]) -> Any:
    return model._meta.primary_key


class FedStream(BaseModel):
    stream = peewee.CharField(max_length=400, unique=True)
    #: class | alerts | peer
    kind = peewee.CharField(max_length=8)
    head_seq = peewee.IntegerField(default=0)

    class Meta:
        table_name = "fed_stream"


class FedActivity(BaseModel):
    activity_id = peewee.CharField(max_length=400, unique=True)
    stream = peewee.ForeignKeyField(FedStream, on_delete="CASCADE")
    stream_id: int
    seq = peewee.IntegerField()
    type = peewee.CharField(max_length=16)
    #: the signed activity, canonical JSON, without "to"
    body = peewee.TextField()
    created_at = peewee.DateTimeField()
    #: the object a Create/Update/Delete announces (purged with it)
    object_id = peewee.CharField(max_length=400, null=True)

    class Meta:
        table_name = "fed_activity"


class FedActivityDest(BaseModel):
    activity = peewee.ForeignKeyField(FedActivity, on_delete="CASCADE")
    activity_id: int
    peer = peewee.ForeignKeyField(Peer, on_delete="CASCADE")
    peer_id: int
    #: JSON list of recipient ids on that peer
    recipients = peewee.TextField()

    class Meta:
        table_name = "fed_activity_dest"


class FedCursor(BaseModel):
    peer = peewee.ForeignKeyField(Peer, on_delete="CASCADE")
    peer_id: int
    stream = peewee.ForeignKeyField(FedStream, on_delete="CASCADE")
    stream_id: int
    acked_seq = peewee.IntegerField(default=0)

    class Meta:
        table_name = "fed_cursor"


class FedTxnOut(BaseModel):
    peer = peewee.ForeignKeyField(Peer, unique=True, on_delete="CASCADE")
    peer_id: int
    txn_id = peewee.CharField(max_length=26)
    #: the transaction body as it will be sent, canonical JSON
    body = peewee.TextField()
    #: JSON {stream id (row): through seq}: cursors to advance on success
    ranges = peewee.TextField()
    created_at = peewee.DateTimeField()
    attempts = peewee.IntegerField(default=0)

    class Meta:
        table_name = "fed_txn_out"


class FedDeadLetter(BaseModel):
    peer = peewee.ForeignKeyField(Peer, null=True, on_delete="CASCADE")
    peer_id: int | None
    #: out: our activity refused by the peer; in: theirs refused by us
    direction = peewee.CharField(max_length=3)
    txn_id = peewee.CharField(max_length=26, null=True)
    activity_id = peewee.CharField(max_length=400, null=True)
    reason = peewee.CharField(max_length=32)
    message = peewee.TextField()
    created_at = peewee.DateTimeField()
    resolved_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "fed_dead_letter"


class FedRemoteStream(BaseModel):
    peer = peewee.ForeignKeyField(Peer, on_delete="CASCADE")
    peer_id: int
    stream = peewee.CharField(max_length=400, unique=True)
    applied_seq = peewee.IntegerField(default=0)
    gap_since = peewee.DateTimeField(null=True)
    pulled_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "fed_remote_stream"


class FedReceived(BaseModel):
    activity_id = peewee.CharField(max_length=400, unique=True)
    remote_stream = peewee.ForeignKeyField(FedRemoteStream, on_delete="CASCADE")
    seq = peewee.IntegerField()
    received_at = peewee.DateTimeField()

    class Meta:
        table_name = "fed_received"


class FedTxnIn(BaseModel):
    peer = peewee.ForeignKeyField(Peer, on_delete="CASCADE")
    peer_id: int
    txn_id = peewee.CharField(max_length=26)
    response = peewee.TextField()
    received_at = peewee.DateTimeField()

    class Meta:
        table_name = "fed_txn_in"


# -- counts for the admin page ---------------------------------------------------------


def backlog_of(peer_id: int) -> int:
    """Activities for this peer beyond what it acknowledged."""
    query = (
        FedActivityDest.select(peewee.fn.COUNT(_pk(FedActivityDest)))
        .join(FedActivity)
        .join(
            FedCursor,
            on=(FedCursor.stream == FedActivity.stream) & (FedCursor.peer == FedActivityDest.peer),
        )
        .where((FedActivityDest.peer == peer_id) & (FedActivity.seq > FedCursor.acked_seq))
    )
    return int(query.scalar() or 0)


def open_dead_letters(peer_id: int) -> list[FedDeadLetter]:
    query = FedDeadLetter.select().where(
        (FedDeadLetter.peer == peer_id) & FedDeadLetter.resolved_at.is_null()
    )
    return list(query.order_by(_pk(FedDeadLetter).desc()))


def select_txn_out(peer_id: int, lock: bool = False) -> FedTxnOut | None:
    return locked(FedTxnOut.select().where(FedTxnOut.peer == peer_id), lock).first()


# -- delivery ---------------------------------------------------------------------------


def pending_for(peer_id: int, limit: int) -> list[tuple[Any, ...]]:
    """The peer's queue, alerts first: (stream row id, stream, kind, head_seq, acked_seq,
    seq, activity body, recipients) of activities beyond its cursors, in stream order."""
    # alerts first; then the peer's own stream, so an Accept arrives before the class
    # content it lets in
    priority = peewee.Case(FedStream.kind, (("alerts", 0), ("peer", 1)), 2)
    query: Any = (
        FedActivityDest.select(
            FedStream.id,
            FedStream.stream,
            FedStream.kind,
            FedStream.head_seq,
            FedCursor.acked_seq,
            FedActivity.seq,
            FedActivity.body,
            FedActivityDest.recipients,
        )  # fmt: skip
        .join(FedActivity)
        .join(FedStream)
        .join(
            FedCursor,
            on=(FedCursor.stream == FedStream.id) & (FedCursor.peer == FedActivityDest.peer),
        )
        .where((FedActivityDest.peer == peer_id) & (FedActivity.seq > FedCursor.acked_seq))
        .order_by(priority, FedStream.id, FedActivity.seq)
        .limit(limit)
        .tuples()
    )
    return list(query)


def insert_activities(rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), 100):  # under SQLite's bound-variable limit
        FedActivity.insert_many(rows[start : start + 100]).execute()


def activity_row_ids(activity_ids: list[str]) -> dict[str, int]:
    """activity id → its row id."""
    found: dict[str, int] = {}
    for start in range(0, len(activity_ids), 500):
        query = FedActivity.select(_pk(FedActivity), FedActivity.activity_id).where(
            FedActivity.activity_id.in_(activity_ids[start : start + 500])
        )
        found.update({a.activity_id: a.id for a in query})
    return found


def insert_destinations(rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), 200):
        FedActivityDest.insert_many(rows[start : start + 200]).execute()


def advance_cursors(peer_id: int, through: dict[int, int]) -> None:
    """Move the peer's cursors forward (never back) to ``through`` (stream row id → seq)."""
    for stream_id, seq in through.items():
        FedCursor.update(acked_seq=seq).where(
            (FedCursor.peer == peer_id)
            & (FedCursor.stream == stream_id)
            & (FedCursor.acked_seq < seq)
        ).execute()


def peers_with_work() -> list[int]:
    """Peers with a batch in flight or activities beyond a cursor."""
    waiting = (
        FedActivityDest.select(FedActivityDest.peer)
        .join(FedActivity)
        .join(
            FedCursor,
            on=(FedCursor.stream == FedActivity.stream) & (FedCursor.peer == FedActivityDest.peer),
        )
        .where(FedActivity.seq > FedCursor.acked_seq)
        .distinct()
    )
    in_flight = FedTxnOut.select(FedTxnOut.peer)
    found = {row.peer_id for row in waiting} | {row.peer_id for row in in_flight}
    return sorted(found)


# -- pull (serving our log) ---------------------------------------------------------------


def select_stream(stream: str) -> FedStream | None:
    return FedStream.get_or_none(FedStream.stream == stream)


def has_cursor(peer_id: int, stream_id: int) -> bool:
    query = FedCursor.select().where((FedCursor.peer == peer_id) & (FedCursor.stream == stream_id))
    return bool(query.exists())


def page_for(peer_id: int, stream_id: int, after: int, limit: int) -> list[tuple[int, str, str]]:
    """(seq, body, recipients) of the stream's activities for the peer after ``after``."""
    query: Any = (
        FedActivityDest.select(FedActivity.seq, FedActivity.body, FedActivityDest.recipients)
        .join(FedActivity)
        .where(
            (FedActivityDest.peer == peer_id)
            & (FedActivity.stream == stream_id)
            & (FedActivity.seq > after)
        )
        .order_by(FedActivity.seq)
        .limit(limit)
        .tuples()
    )
    return list(query)


# -- receiving -----------------------------------------------------------------------------


def remote_stream(peer_id: int, stream: str, lock: bool = False) -> FedRemoteStream:
    """The receiver's state of a peer's stream, created at 0 the first time."""
    FedRemoteStream.insert(
        peer=peer_id, stream=stream, applied_seq=0
    ).on_conflict_ignore().execute()
    row = locked(FedRemoteStream.select().where(FedRemoteStream.stream == stream), lock).first()
    found: FedRemoteStream = row
    return found


def was_received(activity_id: str) -> bool:
    return bool(FedReceived.select().where(FedReceived.activity_id == activity_id).exists())


def select_txn_in(peer_id: int, txn_id: str) -> FedTxnIn | None:
    return FedTxnIn.get_or_none((FedTxnIn.peer == peer_id) & (FedTxnIn.txn_id == txn_id))


def followed_streams() -> list[tuple[int, str, str]]:
    """(peer id, peer origin, stream) of every stream received from an active peer, each
    peer's alerts stream first (NP/1 §9.1: alerts go before any backlog, pulled too)."""
    alerts_first = peewee.Case(None, [(FedRemoteStream.stream.endswith("/alerts"), 0)], 1)
    query: Any = (
        FedRemoteStream.select(FedRemoteStream.peer, Peer.origin, FedRemoteStream.stream)
        .join(Peer)
        .where(Peer.state == "active")
        .order_by(FedRemoteStream.peer, alerts_first, FedRemoteStream.stream)
        .tuples()
    )
    return list(query)
