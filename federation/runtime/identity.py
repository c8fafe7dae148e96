"""This node in the federation: its signing keys and its signed node document (NP/1 §2).

The private key is the data folder's ``node-signing.key``; the database
records its public half, its name and since when it is current (and the
announced next key, retired and revoked keys: ``keyrotation``), so the
document stays the same across restarts.  The document is re-signed when
asked for after half its cache time, or at once when the keys changed,
never per request.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import nacl.signing

from federation.keys import decode_public_key, encode_public_key, fingerprint, key_id
from federation.nodedoc import NodeKey, build_node_document
from node.datafolder import SIGNING_KEY_FILE, DataFolderError, read_signing_key
from node.services.context import ServiceContext
from node.storage import peers as store

#: How long a served document is valid (NP/1 allows at most 7 days).
DOCUMENT_DAYS = 7
#: A cached document is re-signed once it is this old.
RESIGN_AFTER = dt.timedelta(hours=12)


def _unix(moment: dt.datetime) -> int:
    return int(moment.replace(tzinfo=dt.UTC).timestamp())


def key_name(public_key: nacl.signing.VerifyKey) -> str:
    """A stable name for a key: ``k`` + the first 8 hex digits of its fingerprint."""
    return "k" + fingerprint(public_key).replace(" ", "")[:8].lower()


def signing_key(ctx: ServiceContext) -> nacl.signing.SigningKey:
    if ctx.signing_key is None:
        raise RuntimeError("the node's signing key is not loaded")
    return ctx.signing_key


def current_key_id(ctx: ServiceContext) -> str:
    return key_id(ctx.config.origin, key_name(signing_key(ctx).verify_key))


def register_key(ctx: ServiceContext) -> None:
    """Record the data folder's key as current the first time the node runs with it."""
    public = signing_key(ctx).verify_key
    store.insert_node_key(key_name(public), encode_public_key(public), "current", ctx.now())


@dataclass
class DocumentCache:
    """The signed document as served (canonical text), when it was signed, and from which keys."""

    text: str = ""
    signed_at: dt.datetime | None = None
    #: the ``node_key`` rows it was built from: a change (``carnet keys``) re-signs at once
    keys: tuple[tuple[object, ...], ...] = ()


def _key_rows_state(rows: list[store.NodeKeyRow]) -> tuple[tuple[object, ...], ...]:
    return tuple((r.name, r.state, r.valid_from, r.expired_at, r.revoked_at) for r in rows)


def _document_key(
    ctx: ServiceContext, rows: list[store.NodeKeyRow]
) -> tuple[nacl.signing.SigningKey, list[store.NodeKeyRow]]:
    """The key that signs the document: the current one in the database.

    After ``carnet keys rotate`` or ``revoke`` the database and the data
    folder's ``node-signing.key`` hold the new key while this process still
    has the old one loaded until it restarts: the document then comes from
    the data folder's key (and says at once that the old key retired or was
    revoked).  A key file swapped by hand is recorded as current instead.
    """
    key = signing_key(ctx)
    current = {r.public_key for r in rows if r.state == "current"}
    if encode_public_key(key.verify_key) in current:
        return key, rows
    try:
        on_disk = read_signing_key(ctx.config.data_dir / SIGNING_KEY_FILE)
    except DataFolderError:
        on_disk = None
    if on_disk is not None and encode_public_key(on_disk.verify_key) in current:
        return on_disk, rows
    register_key(ctx)
    return key, store.select_node_keys()


def node_document(ctx: ServiceContext, cache: DocumentCache) -> str:
    """The node document, JSON text, signed by the current key (re-signed when stale)."""
    now = ctx.now().replace(microsecond=0)
    rows = store.select_node_keys()
    if (
        cache.signed_at is not None
        and now - cache.signed_at < RESIGN_AFTER
        and cache.keys == _key_rows_state(rows)
    ):
        return cache.text
    key, rows = _document_key(ctx, rows)
    public_text = encode_public_key(key.verify_key)
    current = [r for r in rows if r.state == "current" and r.public_key == public_text]
    if not current:  # a key recorded in another state: this one is the node's key now
        current = [r for r in rows if r.public_key == public_text]
    origin = ctx.config.origin
    old = [
        NodeKey(key_id(origin, r.name), decode_public_key(r.public_key), _unix(r.expired_at))
        for r in rows
        if r.state == "old" and r.expired_at is not None and r.public_key != public_text
    ]
    revoked = [
        NodeKey(key_id(origin, r.name), decode_public_key(r.public_key), _unix(r.revoked_at))
        for r in rows
        if r.state == "revoked" and r.revoked_at is not None and r.public_key != public_text
    ]
    announced = [
        NodeKey(key_id(origin, r.name), decode_public_key(r.public_key))
        for r in rows
        if r.state == "next" and r.public_key != public_text
    ]
    issued = _unix(now)
    document = build_node_document(
        origin=origin,
        name=ctx.config.school_name,
        signing_keys={current[0].name: key},
        valid_from={current[0].name: _unix(current[0].valid_from)},
        issued_at=issued,
        valid_until=issued + DOCUMENT_DAYS * 86400,
        old_keys=old,
        next_key=announced[0] if announced else None,
        revoked=revoked,
    )
    cache.text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    cache.signed_at = now
    cache.keys = _key_rows_state(rows)
    return cache.text
