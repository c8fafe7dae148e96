"""This node changes its own key and tells its peers (NP/1 §2.5, §2.6).

The operator drives it with ``carnet keys`` (``node/cli.py``); the seeds
live in the data folder, the database records the public halves and their
life (``node_key``), and the node document (``identity``) follows the
database at once, also in a server that is still running.

**Planned rotation**, in two steps at least 24 h apart:

1. ``announce_next``: a new key is written to ``node-signing.next.key`` and
   the document lists it as ``next_key`` (a peer that fetches it will accept
   a rotation to that key only).
2. ``record_rotation``: the current key retires (``old_keys``, ``expired_at``
   = now + ``ROTATION_GRACE``), the next key becomes current, and a
   ``RotateKey`` statement signed by both is queued for every active peer.
   ``send_statements`` posts it to ``/np/keys`` transport-signed by the
   retiring key (which those peers have pinned); a peer that cannot be
   reached is retried by the delivery worker with the delivery backoff, at
   once when it contacts us again, until the retiring key stops being valid
   for requests (``expired_at`` + 24 h). Its seed stays in the data folder
   (``node-signing.NAME.key``) for that long.

**Emergency revocation** (``record_revocation``): the current key is listed
in ``revoked``, a fresh key becomes current, and a ``RevokeKey`` signed by
the leaked key goes to every active peer, once: a peer that missed it learns
it from the document (``revoked``) the first time our new key makes it
refetch it, and pauses just the same.

Functions without ``async`` run in a storage thread (``Storage.run``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nacl.signing

from federation.keys import encode_public_key, key_id
from federation.nodedoc import OLD_KEY_TRANSPORT_GRACE
from federation.runtime.client import Answer, FederationClient, FetchError
from federation.runtime.delivery import backoff
from federation.runtime.identity import key_name
from node.datafolder import (
    SIGNING_KEY_FILE,
    DataFolderError,
    read_signing_key,
    retired_key_file,
)
from node.services.context import ServiceContext
from node.storage import key_statements as statements
from node.storage import peers as store
from node.storage.db import Storage, write_transaction

#: How long a retired key stays valid after a planned rotation (``expired_at``):
#: long enough for a school closed for the holidays to come back and be told.
ROTATION_GRACE = dt.timedelta(days=14)
#: NP/1 §2.5: the next key is announced at least this long before the switch.
NOTICE = dt.timedelta(hours=24)
KEYS_PATH = "/np/keys"
#: The command sends first; the server's worker waits this long before it tries too.
FIRST_TRY_BY_COMMAND = dt.timedelta(seconds=90)


class KeyChangeError(RuntimeError):
    """The key change asked for does not fit the node's keys as they are (message says why)."""


@dataclass(frozen=True)
class Outcome:
    """What one peer answered to one statement."""

    peer_id: int
    origin: str
    kind: str
    accepted: bool
    #: ``accepted``, or why not (network error, the peer's refusal)
    reason: str


@dataclass(frozen=True)
class Pending:
    id: int
    peer_id: int
    origin: str
    kind: str
    body: bytes
    key_name: str


def _rows_by_state(state: str) -> list[store.NodeKeyRow]:
    return [r for r in store.select_node_keys() if r.state == state]


# -- the database side ------------------------------------------------------------


def announced_next(ctx: ServiceContext) -> store.NodeKeyRow | None:
    rows = _rows_by_state("next")
    return rows[0] if rows else None


def announce_next(ctx: ServiceContext, public: nacl.signing.VerifyKey) -> str:
    """Record ``public`` as the announced next key; returns its name."""
    with write_transaction():
        if _rows_by_state("next"):
            raise KeyChangeError("a next key is already announced")
        name = key_name(public)
        store.insert_node_key(name, encode_public_key(public), "next", ctx.now())
        if announced_next(ctx) is None:
            raise KeyChangeError(f"the key {name} is already one of this node's keys")
        return name


def record_rotation(
    ctx: ServiceContext,
    *,
    old: nacl.signing.VerifyKey,
    new: nacl.signing.VerifyKey,
    statement: dict[str, object],
    published: dt.datetime,
    expired_at: dt.datetime,
) -> list[int]:
    """Switch to the announced next key and queue ``statement`` for every active peer."""
    with write_transaction():
        rows = {r.public_key: r for r in store.select_node_keys()}
        old_row, new_row = rows.get(encode_public_key(old)), rows.get(encode_public_key(new))
        if old_row is None or old_row.state != "current":
            raise KeyChangeError("the data folder's key is not this node's current key")
        if new_row is None or new_row.state != "next":
            raise KeyChangeError("node-signing.next.key is not the announced next key")
        old_row.state, old_row.expired_at = "old", expired_at
        old_row.save()
        new_row.state, new_row.valid_from = "current", published
        new_row.save()
        body = json.dumps(statement, ensure_ascii=False, separators=(",", ":"))
        now = ctx.now()
        send_until = expired_at + dt.timedelta(seconds=OLD_KEY_TRANSPORT_GRACE)
        ids = []
        for peer in store.select_peers():
            if peer.state == "active":
                ids.append(
                    statements.insert(
                        peer.id,
                        "RotateKey",
                        body,
                        old_row.name,
                        now,
                        send_until,
                        next_attempt_at=now + FIRST_TRY_BY_COMMAND,
                    )  # fmt: skip
                )
        return ids


def record_revocation(
    ctx: ServiceContext,
    *,
    revoked: nacl.signing.VerifyKey,
    replacement: nacl.signing.VerifyKey,
    revoked_at: dt.datetime,
) -> list[tuple[int, str]]:
    """List the current key as revoked, make ``replacement`` current; the active peers.

    An announced next key is forgotten (it was made on the same machine), and
    rotation statements still waiting are dropped: they would vouch for a key
    that is no longer trusted.
    """
    with write_transaction():
        rows = {r.public_key: r for r in store.select_node_keys()}
        row = rows.get(encode_public_key(revoked))
        if row is None or row.state != "current":
            raise KeyChangeError("the data folder's key is not this node's current key")
        row.state, row.revoked_at = "revoked", revoked_at
        row.save()
        store.NodeKeyRow.delete().where(store.NodeKeyRow.state == "next").execute()
        store.insert_node_key(
            key_name(replacement), encode_public_key(replacement), "current", revoked_at
        )
        statements.drop_open(ctx.now(), "the node's key was revoked")
        return [(p.id, p.origin) for p in store.select_peers() if p.state == "active"]


def open_statements(ctx: ServiceContext, ids: list[int] | None = None) -> list[Pending]:
    """Statements to send now: those ``ids``, or every open one that is due.

    Due: its backoff ended, or the peer contacted us since the last try (it is
    back).  One whose retiring key no longer signs requests is dropped.  Read
    only, unless something is dropped: the worker asks on every pass.
    """
    now = ctx.now()
    found, closed = [], []
    for row in statements.select_open():
        if ids is not None and row.id not in ids:
            continue
        if now > row.send_until:
            closed.append(row.id)
            continue
        peer = store.select_peer(row.peer_id)
        if peer is None or peer.state != "active":
            continue
        back = (
            peer.last_contact_at is not None
            and row.last_attempt_at is not None
            and peer.last_contact_at > row.last_attempt_at
        )
        if ids is not None or row.next_attempt_at is None or row.next_attempt_at <= now or back:
            found.append(
                Pending(row.id, row.peer_id, peer.origin, row.kind, row.body.encode(), row.key_name)
            )
    if closed:
        with write_transaction():
            statements.drop(closed, now, "the retired key's window closed")
    return found


def record_attempt(ctx: ServiceContext, statement_id: int, accepted: bool, reason: str) -> None:
    now = ctx.now()
    with write_transaction():
        row = statements.select(statement_id, lock=True)
        if row is None:
            return
        row.attempts += 1
        row.last_attempt_at = now
        if accepted:
            row.delivered_at, row.last_error, row.next_attempt_at = now, None, None
        else:
            row.last_error = reason
            row.next_attempt_at = now + dt.timedelta(seconds=backoff(row.attempts))
        row.save()


@dataclass(frozen=True)
class StatementView:
    origin: str
    kind: str
    key_name: str
    state: str
    attempts: int
    last_error: str | None
    next_attempt_at: dt.datetime | None


def statement_views(ctx: ServiceContext) -> list[StatementView]:
    """Every statement and how far it got, for ``carnet keys status``."""
    peers = {p.id: p.origin for p in store.select_peers()}
    views = []
    for row in statements.select_all():
        state = "accepted" if row.delivered_at else "dropped" if row.dropped_at else "waiting"
        views.append(
            StatementView(
                peers.get(row.peer_id, "?"),
                row.kind,
                row.key_name,
                state,
                row.attempts,
                row.last_error,
                row.next_attempt_at,
            )  # fmt: skip
        )
    return views


# -- the network side ---------------------------------------------------------------


def _reason(answer: Answer) -> str:
    try:
        body = json.loads(answer.body)
        return f"HTTP {answer.status} {body.get('error', '')}: {body.get('message', '')}".strip()
    except (ValueError, AttributeError):
        return f"HTTP {answer.status}"


async def post_statement(
    client: FederationClient, origin: str, body: bytes, key: nacl.signing.SigningKey, keyid: str
) -> tuple[bool, str]:
    """POST one statement to a peer, transport-signed by ``key``; (accepted, reason)."""
    try:
        answer = await client.signed(
            "POST", origin, KEYS_PATH, body, created=int(time.time()), as_key=(key, keyid)
        )
    except FetchError as error:
        return False, str(error)
    if answer.status == 200:
        return True, "accepted"
    return False, _reason(answer)


KeyLoader = Callable[[str], nacl.signing.SigningKey | None]


def data_folder_keys(data_dir: Path, loaded: nacl.signing.SigningKey | None = None) -> KeyLoader:
    """Find one of this node's seeds by key name: loaded, current or retired file."""

    def load(name: str) -> nacl.signing.SigningKey | None:
        if loaded is not None and key_name(loaded.verify_key) == name:
            return loaded
        for file in (retired_key_file(name), SIGNING_KEY_FILE):
            try:
                key = read_signing_key(data_dir / file)
            except DataFolderError:
                continue
            if key_name(key.verify_key) == name:
                return key
        return None

    return load


async def send_statements(
    storage: Storage,
    ctx: ServiceContext,
    client: FederationClient,
    keys: KeyLoader,
    ids: list[int] | None = None,
) -> list[Outcome]:
    """Send the open statements (``ids``, or those due), each peer's in order; record each try."""
    pending = await storage.run(open_statements, ctx, ids)
    by_peer: dict[int, list[Pending]] = {}
    for item in pending:
        by_peer.setdefault(item.peer_id, []).append(item)

    async def one_peer(items: list[Pending]) -> list[Outcome]:
        outcomes = []
        for item in items:
            key = keys(item.key_name)
            if key is None:
                accepted, reason = (
                    False,
                    f"the seed of key {item.key_name} is not in the data folder",
                )
            else:
                accepted, reason = await post_statement(
                    client, item.origin, item.body, key, key_id(ctx.config.origin, item.key_name)
                )
            await storage.run(record_attempt, ctx, item.id, accepted, reason)
            outcomes.append(Outcome(item.peer_id, item.origin, item.kind, accepted, reason))
            if not accepted:
                break  # a later statement waits for the earlier one
        return outcomes

    results = await asyncio.gather(*(one_peer(items) for items in by_peer.values()))
    return [outcome for group in results for outcome in group]
