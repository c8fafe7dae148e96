"""Delivering the activity log to peers: batches, cursors, backoff, dead letters (NP/1 §9.1).

Per peer: at most one transaction in flight, stored (``fed_txn_out``) before
it is sent and retried byte for byte, with the same txn id, until the peer
answers.  A 200 moves the peer's cursors to the ranges the batch declared;
activities the peer refused are dead letters, shown to the admin, not
retried.  A transient failure (network, timeout, 5xx, 408, 425, 429, 401
``unknown_key``/``stale_signature``) backs off per peer: 10 s, 30 s, 1, 2,
5, 10, 20, 40 min, then hourly, each ×U(0.8, 1.25) (× the configured
``federation_backoff_factor``), ``Retry-After`` honoured up to an hour (as
the peer sent it: the factor shortens our schedule, not the peer's wait).
A permanent one (403, 400, 413, 422) quarantines the batch and lets later
batches go.

The functions here run in a storage thread; ``DeliveryWorker`` does the I/O.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
from dataclasses import dataclass
from typing import Any

from federation.encoding import ulid
from federation.runtime.membership import digests_for
from federation.runtime.peers import unix
from federation.transaction import BATCH_BYTES, MAX_ACTIVITIES, build_transaction
from node.services import action_mirrors, mirrors
from node.services.context import ServiceContext
from node.storage import activities as store
from node.storage import peers as peer_store
from node.storage.db import write_transaction

BACKOFF_SECONDS = (10, 30, 60, 120, 300, 600, 1200, 2400, 3600)
MAX_RETRY_AFTER = 3600
#: consecutive failures after which only a probe of the node document runs
BREAKER_AFTER = 5
#: continuous failure after which a peer is reported unreachable
UNREACHABLE_AFTER = dt.timedelta(hours=72)


@dataclass(frozen=True)
class Batch:
    peer_id: int
    origin: str
    txn_id: str
    body: bytes
    attempts: int
    #: the peer has failed this many times in a row (circuit breaker)
    fail_count: int


def backoff(fail_count: int, factor: float = 1.0, rng: random.Random | None = None) -> float:
    """Seconds before the next try after ``fail_count`` consecutive failures (≥ 1)."""
    base = BACKOFF_SECONDS[min(fail_count, len(BACKOFF_SECONDS)) - 1]
    return base * (rng or random).uniform(0.8, 1.25) * factor


def due_peers(ctx: ServiceContext) -> list[int]:
    """Active peers with work whose backoff has ended."""
    now = ctx.now()
    return [
        peer.id
        for peer in peer_store.select_peers_by_id(store.peers_with_work())
        if peer.state == "active" and (peer.next_attempt_at is None or peer.next_attempt_at <= now)
    ]


def next_batch(ctx: ServiceContext, peer_id: int) -> Batch | None:
    """The peer's batch in flight, or a new one (≤ 50 activities, alerts first), stored."""
    with write_transaction():
        peer = peer_store.select_peer(peer_id, lock=True)
        if peer is None or peer.state != "active":
            return None
        existing = store.select_txn_out(peer_id, lock=True)
        if existing is not None:
            existing.attempts += 1
            existing.save()
            return Batch(
                peer_id, peer.origin, existing.txn_id, existing.body.encode(),
                existing.attempts, peer.fail_count,
            )  # fmt: skip
        rows = store.pending_for(peer_id, MAX_ACTIVITIES)
        if not rows:
            return None
        size, kept = 0, 0
        for row in rows:  # and at BATCH_BYTES, so the body stays under the receiver's limit
            size += len(row[6]) + len(row[7])
            if kept and size > BATCH_BYTES:
                break
            kept += 1
        cut = kept < len(rows) or len(rows) == MAX_ACTIVITIES
        rows = rows[:kept]
        activities: list[Any] = []
        ranges: dict[str, tuple[int, int]] = {}
        through: dict[int, int] = {}
        for stream_id, stream, _kind, _head, acked, seq, body, recipients in rows:
            activity = json.loads(body)
            activity["to"] = json.loads(recipients)
            activities.append(activity)
            ranges[stream] = (acked, seq)
            through[stream_id] = seq
        for stream_id, stream, _kind, head, acked, *_ in rows:
            # every activity of the stream for this peer is in the batch: the
            # batch accounts for the stream up to its head (skipped seqs were
            # for other schools); a cut batch only up to its last activity
            if not (cut and stream_id == rows[-1][0]):
                ranges[stream] = (acked, head)
                through[stream_id] = head
        now = ctx.now()
        txn_id = ulid(unix(now) * 1000 + now.microsecond // 1000, os.urandom(10))
        data = build_transaction(
            txn_id=txn_id, origin=ctx.config.origin, destination=peer.origin,
            activities=activities, streams=ranges, membership=digests_for(ctx, peer_id),
        )  # fmt: skip
        store.FedTxnOut.create(
            peer=peer_id, txn_id=txn_id, body=data.decode(),
            ranges=json.dumps({str(k): v for k, v in through.items()}), created_at=now, attempts=1,
        )  # fmt: skip
        return Batch(peer_id, peer.origin, txn_id, data, 1, peer.fail_count)


def record_success(
    ctx: ServiceContext, peer_id: int, txn_id: str, results: dict[str, Any]
) -> list[str]:
    """The peer answered 200: advance cursors, dead-letter refused activities; returns their ids."""
    now = ctx.now()
    refused = []
    with write_transaction():
        txn = store.select_txn_out(peer_id, lock=True)
        if txn is None or txn.txn_id != txn_id:
            return []
        store.advance_cursors(peer_id, {int(k): v for k, v in json.loads(txn.ranges).items()})
        sent = {a["id"]: a for a in json.loads(txn.body)["activities"]}
        for activity_id, result in results.items():
            if isinstance(result, dict) and result.get("error"):
                refused.append(activity_id)
                _withdraw_refused_reply(ctx, peer_id, sent.get(activity_id))
                store.FedDeadLetter.create(
                    peer=peer_id, direction="out", txn_id=txn_id, activity_id=activity_id[:400],
                    reason=str(result["error"])[:32], message=str(result.get("message", ""))[:2000],
                    created_at=now,
                )  # fmt: skip
        txn.delete_instance()
        peer_store.Peer.update(
            fail_count=0, next_attempt_at=None, failing_since=None, last_error=None,
            last_contact_at=now, asked_wait_until=None,
        ).where(peer_store.Peer._meta.primary_key == peer_id).execute()  # fmt: skip
    return refused


def record_failure(
    ctx: ServiceContext,
    peer_id: int,
    txn_id: str | None,
    error: str,
    *,
    permanent: bool = False,
    retry_after: int | None = None,
) -> None:
    """A try failed.  Transient: back off.  Permanent: quarantine the batch, go on."""
    now = ctx.now()
    with write_transaction():
        peer = peer_store.select_peer(peer_id, lock=True)
        if peer is None:
            return
        txn = store.select_txn_out(peer_id, lock=True)
        if not permanent and txn_id is not None and (txn is None or txn.txn_id != txn_id):
            # that batch was settled meanwhile (another worker process delivered it, or it
            # was rebuilt): this late failure says nothing about the peer now
            return
        peer.last_error = error[:2000]
        if permanent and txn is not None and txn.txn_id == txn_id:
            for activity in json.loads(txn.body)["activities"]:
                store.FedDeadLetter.create(
                    peer=peer_id, direction="out", txn_id=txn_id, activity_id=activity["id"],
                    reason="refused", message=error[:2000], created_at=now,
                )  # fmt: skip
            store.advance_cursors(peer_id, {int(k): v for k, v in json.loads(txn.ranges).items()})
            txn.delete_instance()
            peer.save()
            return
        peer.fail_count += 1
        peer.failing_since = peer.failing_since or now
        delay = backoff(peer.fail_count, ctx.config.federation_backoff_factor)
        if retry_after is not None:  # the peer's own wait, in real seconds: never scaled down
            asked = min(retry_after, MAX_RETRY_AFTER)
            delay = max(delay, asked)
            peer.asked_wait_until = now + dt.timedelta(seconds=asked)
        peer.next_attempt_at = now + dt.timedelta(seconds=delay)
        peer.save()


def _withdraw_refused_reply(ctx: ServiceContext, peer_id: int, activity: Any) -> None:
    """A reply or an answer of our guardian the class's node refused exists only here:
    withdraw it."""
    obj = activity.get("object") if isinstance(activity, dict) else None
    if activity is None or activity.get("type") != "Create" or not isinstance(obj, dict):
        return
    prefix = f"{ctx.config.origin}/np/messages/"
    if obj.get("type") == "Note" and str(obj.get("id", "")).startswith(prefix):
        mirrors.reply_refused(ctx, peer_id, obj["id"][len(prefix) :])
    elif obj.get("type") == "Answer" and str(obj.get("id", "")).startswith(
        f"{ctx.config.origin}/np/answers/"
    ):
        action_mirrors.answer_refused(ctx, peer_id, obj)


def peer_is_back(ctx: ServiceContext, peer_id: int) -> bool:
    """An authenticated request came from the peer: clear our backoff (it is up), but not
    a wait it asked for itself (``Retry-After``), which still runs to its end."""
    with write_transaction():
        peer = peer_store.select_peer(peer_id, lock=True)
        if peer is None or peer.next_attempt_at is None:
            return False
        asked = peer.asked_wait_until
        wait = asked if asked is not None and asked > ctx.now() else None
        if peer.next_attempt_at == wait:
            return False
        peer.next_attempt_at = wait
        peer.fail_count = min(peer.fail_count, BREAKER_AFTER - 1)
        peer.save()
        return wait is None
