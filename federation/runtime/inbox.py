"""Receiving a peer's activities: transactions and pulled pages, applied once and in order (NP/1 §5.3, §7).

For each of the peer's streams the node keeps ``applied_seq``, the highest
sequence number it has accounted for.  A batch whose declared range starts
after it means activities were never received: nothing of that stream is
applied, and the caller pulls ``(applied_seq, …]`` from the peer, which
returns the missing ones and those of the batch, in order.  Otherwise each
activity beyond ``applied_seq`` is applied in sequence order, at most once
(``fed_received``), in a savepoint so a refused one undoes only itself.

A handler gets the checked, proven activity inside the write transaction
and raises ``ActivityError`` to refuse it.  Activities of a type this node
has no handler for are refused with a clear message, and the sender keeps
them as dead letters.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import nacl.signing

from federation.activity import Activity
from federation.errors import ActivityError, NodeDocumentError, TransactionError
from federation.keys import decode_public_key
from federation.nodedoc import verify_node_document
from federation.runtime.membership import drifted
from federation.runtime.peers import unix
from federation.transaction import (
    ActivityResult,
    check_activities,
    check_transaction,
    is_txn_id,
)
from node.services.context import ServiceContext
from node.storage import activities as store
from node.storage import peers as peer_store
from node.storage.db import database_proxy, write_transaction

#: (context, peer id, activity) → None; raises ActivityError to refuse
Handler = Callable[[ServiceContext, int, Activity], None]


@dataclass(frozen=True)
class Received:
    #: the 200 body: {"results": {activity id: {} | {"error", "message"}}}
    response: dict[str, Any]
    #: streams with a gap, to pull from their applied_seq
    gaps: list[str] = field(default_factory=list)
    #: member lists to fetch: the sender's membership digests disagree with ours
    drift: list[str] = field(default_factory=list)


def _proof_lookup(ctx: ServiceContext, peer: peer_store.Peer) -> Any:
    """keyid, created → key: pinned, not revoked, and allowed then by the peer's document."""
    pinned = {
        k.key_id: k.public_key for k in peer_store.select_peer_keys(peer.id) if k.revoked_at is None
    }
    try:
        document = verify_node_document(
            peer.document.encode(), origin=peer.origin, now=unix(ctx.now())
        )
    except NodeDocumentError:  # expired since the request was verified: pinned keys decide
        document = None

    def lookup(keyid: str, created: int) -> nacl.signing.VerifyKey | None:
        if keyid not in pinned:
            return None
        key = document.proof_key(keyid, created) if document else None
        if key is None:  # pinned through a rotation, not in the stored document yet
            return decode_public_key(pinned[keyid])
        return key if bytes(key) == bytes(decode_public_key(pinned[keyid])) else None

    return lookup


def _error(result: ActivityError) -> dict[str, str]:
    return {"error": result.reason, "message": str(result)}


def _apply(
    ctx: ServiceContext,
    handlers: Mapping[str, Handler],
    peer_id: int,
    stream_row: store.FedRemoteStream,
    result: ActivityResult,
    seq: int,
) -> dict[str, str]:
    now = ctx.now()
    if result.activity is None:
        assert result.error is not None
        error = result.error
    elif store.was_received(result.activity.id):
        return {}  # a duplicate: already applied, same answer
    else:
        handler = handlers.get(result.activity.type)
        if handler is None:
            error = ActivityError(f"this node does not handle {result.activity.type} activities")
        else:
            try:
                with database_proxy.obj.atomic():  # a savepoint: a refusal undoes only itself
                    handler(ctx, peer_id, result.activity)
                    store.FedReceived.create(
                        activity_id=result.activity.id, remote_stream=stream_row.id, seq=seq,
                        received_at=now,
                    )  # fmt: skip
                return {}
            except ActivityError as refused:
                error = refused
    store.FedDeadLetter.create(
        peer=peer_id, direction="in", activity_id=result.id[:400], reason=error.reason[:32],
        message=str(error)[:2000], created_at=now,
    )  # fmt: skip
    return _error(error)


def _seq(item: Mapping[str, Any]) -> int:
    seq = item.get("seq")
    return seq if type(seq) is int else 0


def receive_transaction(
    ctx: ServiceContext,
    handlers: Mapping[str, Handler],
    peer_id: int,
    origin: str,
    txn_id: str,
    body: bytes,
) -> Received:
    """Check and apply a transaction from a verified peer; a repeated one gets the same answer."""
    with write_transaction():
        peer = peer_store.select_peer(peer_id, lock=True)  # one transaction of a peer at a time
        assert peer is not None
        if not is_txn_id(txn_id):  # PostgreSQL refuses a NUL in the lookup below: a 500
            raise TransactionError("txn_id must be a ULID and match the request path")
        known = store.select_txn_in(peer_id, txn_id)
        if known is not None:
            return Received(json.loads(known.response))
        txn = check_transaction(body, txn_id=txn_id, sender=origin, destination=ctx.config.origin)
        results = check_activities(
            txn.activities, sender=origin, destination=ctx.config.origin,
            lookup=_proof_lookup(ctx, peer),
        )  # fmt: skip
        outcome: dict[str, Any] = {}
        gaps: list[str] = []
        # streams in the order the sender put their activities (an Accept on its peer
        # stream before the class content it lets in); the declared ranges are sorted
        first: dict[Any, int] = {}
        for position, item in enumerate(txn.activities):
            first.setdefault(item.get("stream"), position)
        spans = sorted(txn.streams, key=lambda span: first.get(span.stream, len(first)))
        for span in spans:
            row = store.remote_stream(peer_id, span.stream, lock=True)
            items = [
                (_seq(item), result)
                for item, result in zip(txn.activities, results, strict=True)
                if item.get("stream") == span.stream
            ]
            # a gap: the pull brings these again, in order; and the streams after it
            # too (what they carry may need what the gap holds, such as an Accept)
            if gaps or span.after > row.applied_seq:
                gaps.append(span.stream)
                outcome.update({r.id: {} if r.error is None else _error(r.error) for _, r in items})
                continue
            for seq, result in sorted(items, key=lambda pair: pair[0]):
                if seq <= row.applied_seq:
                    outcome[result.id] = {}
                    continue
                outcome[result.id] = _apply(ctx, handlers, peer_id, row, result, seq)
            row.applied_seq = max(row.applied_seq, span.through)
            row.save()
        response = {"results": outcome}
        store.FedTxnIn.create(
            peer=peer_id, txn_id=txn_id, response=json.dumps(response), received_at=ctx.now()
        )
        return Received(response, gaps, drifted(ctx, peer_id, txn.membership))


def applied_seq(ctx: ServiceContext, peer_id: int, stream: str) -> int:
    return store.remote_stream(peer_id, stream).applied_seq


def apply_pulled(
    ctx: ServiceContext,
    handlers: Mapping[str, Handler],
    peer_id: int,
    stream: str,
    after: int,
    next_after: int,
    activities: Sequence[Mapping[str, Any]],
) -> int:
    """Apply a checked pull page (``after < seq ≤ next_after``); returns the new applied_seq."""
    with write_transaction():
        peer = peer_store.select_peer(peer_id, lock=True)
        assert peer is not None
        row = store.remote_stream(peer_id, stream, lock=True)
        if after > row.applied_seq:  # pages must follow each other: ask again from here
            return row.applied_seq
        results = check_activities(
            activities, sender=peer.origin, destination=ctx.config.origin,
            lookup=_proof_lookup(ctx, peer),
        )  # fmt: skip
        for item, result in zip(activities, results, strict=True):
            seq = _seq(item)
            if seq > row.applied_seq:
                _apply(ctx, handlers, peer_id, row, result, seq)
        row.applied_seq = max(row.applied_seq, next_after)
        row.pulled_at = ctx.now()
        row.save()
        return row.applied_seq
