"""This node's own key statements waiting for (or delivered to) each peer (NP/1 §2.5).

One row per statement and peer.  A row is open until the peer accepted it
(``delivered_at``) or it was dropped (``dropped_at``: the retiring key's
window closed, or a revocation made the statement meaningless).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import peewee

from node.storage.db import BaseModel, locked
from node.storage.peers import Peer


class KeyStatementOut(BaseModel):
    peer = peewee.ForeignKeyField(Peer, on_delete="CASCADE")
    peer_id: int
    kind = peewee.CharField(max_length=16)
    body = peewee.TextField()
    #: the key that transport-signs it (the retiring key of a rotation)
    key_name = peewee.CharField(max_length=64)
    created_at = peewee.DateTimeField()
    send_until = peewee.DateTimeField()
    attempts = peewee.IntegerField(default=0)
    last_attempt_at = peewee.DateTimeField(null=True)
    next_attempt_at = peewee.DateTimeField(null=True)
    last_error = peewee.TextField(null=True)
    delivered_at = peewee.DateTimeField(null=True)
    dropped_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "key_statement_out"


def _open() -> peewee.Expression:
    return KeyStatementOut.delivered_at.is_null() & KeyStatementOut.dropped_at.is_null()


def insert(
    peer_id: int,
    kind: str,
    body: str,
    key_name: str,
    now: dt.datetime,
    send_until: dt.datetime,
    *,
    next_attempt_at: dt.datetime | None = None,
) -> int:
    row = KeyStatementOut.create(
        peer=peer_id, kind=kind, body=body, key_name=key_name, created_at=now,
        send_until=send_until, next_attempt_at=next_attempt_at,
    )  # fmt: skip
    return int(row.id)


def select(statement_id: int, lock: bool = False) -> KeyStatementOut | None:
    query = KeyStatementOut.select().where(KeyStatementOut._meta.primary_key == statement_id)
    found: KeyStatementOut | None = locked(query, lock).first()
    return found


def select_open() -> list[KeyStatementOut]:
    """Open statements, oldest first (a peer gets an older rotation before a newer one)."""
    return list(KeyStatementOut.select().where(_open()).order_by(KeyStatementOut.id))


def select_all() -> list[KeyStatementOut]:
    return list(KeyStatementOut.select().order_by(KeyStatementOut.id))


def drop_open(now: dt.datetime, reason: str) -> int:
    """Drop every open statement (a revocation replaced them)."""
    return int(KeyStatementOut.update(dropped_at=now, last_error=reason).where(_open()).execute())


def drop(statement_ids: list[int], now: dt.datetime, reason: str) -> None:
    primary_key: Any = KeyStatementOut._meta.primary_key
    KeyStatementOut.update(dropped_at=now, last_error=reason).where(
        primary_key.in_(statement_ids) & _open()
    ).execute()
