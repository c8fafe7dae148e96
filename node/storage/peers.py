"""Federation: this node's public keys, its peer schools and the keys pinned for them.

Private keys never enter the database (they live in the data folder); a
peer's node document is kept as received (canonical JSON text) next to the
fields the admin page and the inbox need.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import peewee

from node.storage.accounts import Account
from node.storage.db import BaseModel, locked

#: ``peer.state`` values (see the migration).
PEER_STATES = ("pending", "active", "paused", "retired")


class NodeKeyRow(BaseModel):
    name = peewee.CharField(max_length=64, unique=True)
    public_key = peewee.CharField(max_length=64, unique=True)
    #: current | next | old | revoked
    state = peewee.CharField(max_length=8)
    valid_from = peewee.DateTimeField()
    expired_at = peewee.DateTimeField(null=True)
    revoked_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "node_key"


class Peer(BaseModel):
    origin = peewee.CharField(max_length=255, unique=True)
    name = peewee.CharField(max_length=200)
    state = peewee.CharField(max_length=8)
    document = peewee.TextField()
    document_until = peewee.DateTimeField()
    added_by = peewee.ForeignKeyField(
        Account, null=True, on_delete="SET NULL", column_name="added_by"
    )
    added_at = peewee.DateTimeField()
    confirmed_at = peewee.DateTimeField(null=True)
    last_contact_at = peewee.DateTimeField(null=True)
    #: their clock minus ours, in seconds, from the last signed request they sent
    clock_skew = peewee.IntegerField(null=True)
    last_error = peewee.TextField(null=True)
    fail_count = peewee.IntegerField(default=0)
    auth_failures = peewee.IntegerField(default=0)
    next_attempt_at = peewee.DateTimeField(null=True)
    #: the end of a wait the peer asked for (``Retry-After``): kept when it wakes us
    asked_wait_until = peewee.DateTimeField(null=True)
    failing_since = peewee.DateTimeField(null=True)
    #: last time an unknown key id made us fetch their document again
    refetched_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "peer"


class PeerKey(BaseModel):
    peer = peewee.ForeignKeyField(Peer, on_delete="CASCADE")
    peer_id: int
    key_id = peewee.CharField(max_length=400)
    public_key = peewee.CharField(max_length=64)
    pinned_at = peewee.DateTimeField()
    expired_at = peewee.DateTimeField(null=True)
    revoked_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "peer_key"
        indexes = ((("peer", "key_id"), True),)


# -- this node's keys ------------------------------------------------------------


def select_node_keys() -> list[NodeKeyRow]:
    return list(NodeKeyRow.select().order_by(NodeKeyRow.valid_from, NodeKeyRow.name))


def insert_node_key(name: str, public_key: str, state: str, valid_from: dt.datetime) -> None:
    NodeKeyRow.insert(
        name=name, public_key=public_key, state=state, valid_from=valid_from
    ).on_conflict_ignore().execute()


# -- peers -----------------------------------------------------------------------


def select_peer(peer_id: int, lock: bool = False) -> Peer | None:
    return locked(Peer.select().where(Peer._meta.primary_key == peer_id), lock).first()


def select_peer_by_origin(origin: str, lock: bool = False) -> Peer | None:
    return locked(Peer.select().where(Peer.origin == origin), lock).first()


def select_peer_by_host(host: str) -> Peer | None:
    """The peer at ``host[:port]`` (a member id names its node by host)."""
    found: Peer | None = (
        Peer.select().where(Peer.origin.in_([f"https://{host}", f"http://{host}"])).first()
    )
    return found


def select_peers_by_id(peer_ids: list[int]) -> list[Peer]:
    """Those peers, in id order, in one query."""
    if not peer_ids:
        return []
    primary_key: Any = Peer._meta.primary_key
    return list(Peer.select().where(primary_key.in_(peer_ids)).order_by(primary_key))


def select_peers() -> list[Peer]:
    return list(Peer.select().order_by(Peer.name, Peer.origin))


def select_peer_keys(peer_id: int) -> list[PeerKey]:
    return list(PeerKey.select().where(PeerKey.peer == peer_id).order_by(PeerKey.pinned_at))


def pin_key(peer_id: int, key_id: str, public_key: str, now: dt.datetime) -> None:
    """Pin a key (again): a re-pinned key loses any earlier revocation mark."""
    existing = PeerKey.get_or_none((PeerKey.peer == peer_id) & (PeerKey.key_id == key_id))
    if existing is None:
        PeerKey.create(peer=peer_id, key_id=key_id, public_key=public_key, pinned_at=now)
    else:
        existing.public_key, existing.pinned_at, existing.revoked_at = public_key, now, None
        existing.expired_at = None
        existing.save()


def mark_keys(peer_id: int, key_ids: list[str], **fields: Any) -> None:
    if key_ids:
        PeerKey.update(**fields).where(
            (PeerKey.peer == peer_id) & PeerKey.key_id.in_(key_ids)
        ).execute()


def delete_unpinned_keys(peer_id: int) -> None:
    PeerKey.delete().where(PeerKey.peer == peer_id).execute()
