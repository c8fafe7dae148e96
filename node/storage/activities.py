"""Federation: the activity log (the outbox), per-peer cursors and batches, and what was received.

Sender side: ``fed_stream`` hands out gap-free sequence numbers in the same
transaction that stores the activity; ``fed_activity_dest`` says which peers
an activity is for; a peer's queue is computed from its cursors, never stored
per message.  Receiver side: ``fed_received`` makes applying idempotent,
``fed_remote_stream.applied_seq`` keeps order, ``fed_pending`` holds what
arrived after a gap.
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


class FedPending(BaseModel):
    remote_stream = peewee.ForeignKeyField(FedRemoteStream, on_delete="CASCADE")
    remote_stream_id: int
    activity_id = peewee.CharField(max_length=400)
    seq = peewee.IntegerField()
    body = peewee.TextField()
    received_at = peewee.DateTimeField()

    class Meta:
        table_name = "fed_pending"


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
