"""Peer schools: the allow-list, pinned keys, and what the admin page shows (NP/1 §2.4).

Rules:
- only a school admin adds, confirms, re-pins or retires a peer;
- adding fetches the peer's node document (the route does the I/O) and
  stores it as *pending* with its keys' fingerprints; nothing is trusted
  until the admin confirms the fingerprints they compared out of band, and
  confirming pins exactly the keys that were shown;
- a node document fetched later may add keys only if a pinned key signed it
  (one that lists a pinned key as retired is kept, pinning nothing, so that
  the school's rotation statement signed by that key can still arrive);
  a pinned key it lists as revoked is dropped at once and the peer pauses
  until an admin re-pins;
- requests are accepted only from active peers, by a pinned key that the
  peer's document still allows (``transport_key``).

Functions run in a storage thread (``Storage.run``); they do no network I/O.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from urllib.parse import urlsplit

import nacl.signing

from federation.encoding import check_origin, parse_timestamp
from federation.errors import EncodingError, KeyStatementError, NodeDocumentError, NotAPeer
from federation.keys import decode_public_key, encode_public_key, fingerprint, key_id_origin
from federation.keystatements import verify_revocation, verify_rotation
from federation.nodedoc import NodeDocument, pin_check, verify_node_document
from node.errors import N_, Conflict, Invalid, NotFound
from node.services import policy
from node.services.context import Actor, ServiceContext
from node.storage import activities as activity_store
from node.storage import peers as store
from node.storage.db import write_transaction

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def _loopback(host: str | None) -> bool:
    """``127.0.0.1``, ``localhost``, ``::1``, or a name under ``.localhost`` (RFC 6761)."""
    return host in LOOPBACK_HOSTS or (host or "").endswith(".localhost")


def unix(moment: dt.datetime) -> int:
    return int(moment.replace(tzinfo=dt.UTC).timestamp())


def from_unix(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class PeerKeyView:
    key_id: str
    fingerprint: str
    #: pinned | new (in the document, not trusted yet) | revoked | expired
    state: str
    #: a current key of the school's document (confirming pins exactly these)
    current: bool


@dataclass(frozen=True)
class DeadLetterView:
    id: int
    direction: str
    activity_id: str | None
    reason: str
    message: str
    created_at: dt.datetime


@dataclass(frozen=True)
class PeerView:
    id: int
    origin: str
    name: str
    state: str
    keys: list[PeerKeyView]
    added_at: dt.datetime
    confirmed_at: dt.datetime | None
    last_contact_at: dt.datetime | None
    #: their clock minus ours, seconds (from their last signed request)
    clock_skew: int | None
    last_error: str | None
    fail_count: int
    next_attempt_at: dt.datetime | None
    failing_since: dt.datetime | None
    #: activities waiting for this peer
    backlog: int
    dead_letters: list[DeadLetterView]


def normalize_origin(ctx: ServiceContext, text: object) -> str:
    """The peer origin an admin typed, in canonical form; a clear error otherwise.

    ``ecole-b.example`` means ``https://ecole-b.example``.  Plain http is for
    loopback test nodes only (``*.localhost`` too, as in the compose demo), and
    only when this node is one too.
    """
    if not isinstance(text, str) or not text.strip():
        raise Invalid(N_("Enter the address of the other school's Carnet."), field="origin")
    raw = text.strip().rstrip("/")
    if "://" not in raw:
        raw = "https://" + raw
    try:
        parts = urlsplit(raw)  # ValueError for an unbalanced "[" (an IPv6 literal): was a 500
        raw = f"{parts.scheme.lower()}://{(parts.netloc or '').lower()}{parts.path}"
        origin = check_origin(raw)
    except (EncodingError, ValueError):
        raise Invalid(
            N_("Enter the school's address alone, like https://ecole-b.example."), field="origin"
        ) from None
    scheme, host = urlsplit(origin).scheme, urlsplit(origin).hostname
    local_node = _loopback(urlsplit(ctx.config.public_url).hostname)
    if scheme == "http" and not (_loopback(host) and local_node):
        raise Invalid(N_("The other school's address must start with https://."), field="origin")
    if _loopback(host) and not local_node:
        raise Invalid(N_("That address is this machine, not another school."), field="origin")
    if host not in LOOPBACK_HOSTS and "." not in (host or ""):
        # a one-word name ("intranet") can only be a machine of the local network
        raise Invalid(
            N_("Enter the school's address alone, like https://ecole-b.example."), field="origin"
        )
    if origin == ctx.config.origin:
        raise Invalid(N_("That is this school's own address."), field="origin")
    return origin


def _view(peer: store.Peer) -> PeerView:
    document = json.loads(peer.document)
    pinned = {k.key_id: k for k in store.select_peer_keys(peer.id)}
    keys = []
    for entry in document.get("keys", []):
        row = pinned.pop(entry["id"], None)
        state = "new"
        if row is not None and row.public_key == entry["publicKeyMultibase"]:
            state = "revoked" if row.revoked_at else "pinned"
        keys.append(
            PeerKeyView(
                entry["id"],
                fingerprint(decode_public_key(entry["publicKeyMultibase"])),
                state,
                True,
            )
        )
    issued = _issued_at(document)
    for row in pinned.values():  # pinned keys the stored document does not list (any more)
        state = "revoked" if row.revoked_at else "expired"
        if state == "expired" and row.expired_at is None and issued and row.pinned_at > issued:
            state = "pinned"  # by a rotation received after that document: it is the new key
        keys.append(
            PeerKeyView(row.key_id, fingerprint(decode_public_key(row.public_key)), state, False)
        )
    letters = [
        DeadLetterView(d.id, d.direction, d.activity_id, d.reason, d.message, d.created_at)
        for d in activity_store.open_dead_letters(peer.id)
    ]
    return PeerView(
        peer.id, peer.origin, peer.name, peer.state, keys, peer.added_at, peer.confirmed_at,
        peer.last_contact_at, peer.clock_skew, peer.last_error, peer.fail_count,
        peer.next_attempt_at, peer.failing_since, activity_store.backlog_of(peer.id), letters,
    )  # fmt: skip


def _issued_at(document: dict[str, object]) -> dt.datetime | None:
    try:
        return from_unix(parse_timestamp(document.get("issued_at"), what="issued_at"))
    except EncodingError:
        return None


def _verify(ctx: ServiceContext, origin: str, document: bytes) -> NodeDocument:
    try:
        return verify_node_document(document, origin=origin, now=unix(ctx.now()))
    except NodeDocumentError as error:
        raise Invalid(
            N_("The other school's node answered with an invalid node document: {reason}"),
            field="origin",
            reason=str(error),
        ) from None


def stage_peer(ctx: ServiceContext, actor: Actor, origin: str, document: bytes) -> PeerView:
    """Record a fetched, self-consistent document as a pending peer, to be confirmed."""
    policy.require_admin(actor)
    verified = _verify(ctx, origin, document)
    now = ctx.now()
    with write_transaction():
        peer = store.select_peer_by_origin(origin, lock=True)
        if peer is not None and peer.state == "active":
            pinned = {
                k.key_id: decode_public_key(k.public_key)
                for k in store.select_peer_keys(peer.id)
                if k.revoked_at is None
            }
            if not pin_check(verified, pinned).new_keys:
                raise Conflict(N_("This school is already a peer."), field="origin")
            # its keys changed without a rotation we could check (a rebuilt
            # server): federating waits until the admin compares the new ones
        if peer is None:
            peer = store.Peer(origin=origin, added_at=now, added_by=actor.account_id)
        peer.name, peer.state = verified.name, "pending"
        peer.document = json.dumps(dict(verified.raw), ensure_ascii=False)
        peer.document_until = from_unix(verified.cache_until(unix(now)))
        peer.save()
        return _view(peer)


def confirm_peer(ctx: ServiceContext, actor: Actor, peer_id: int, fingerprints: object) -> PeerView:
    """Pin the keys whose fingerprints the admin compared, and start federating.

    ``fingerprints`` must be exactly those of the stored document's current
    keys: if the document changed since the admin looked, nothing is pinned.
    """
    policy.require_admin(actor)
    if not isinstance(fingerprints, list) or not all(isinstance(f, str) for f in fingerprints):
        raise Invalid(N_("Confirm the fingerprints shown."), field="fingerprints")
    with write_transaction():
        peer = store.select_peer(peer_id, lock=True)
        if peer is None or peer.state == "retired":
            raise NotFound(N_("No such peer school."))
        document = _verify(ctx, peer.origin, peer.document.encode())
        shown = {key.fingerprint: key for key in document.keys}
        if set(fingerprints) != set(shown):
            raise Conflict(
                N_("The school's keys changed since they were shown. Add the school again."),
                field="fingerprints",
            )
        now = ctx.now()
        for key in document.keys:
            store.pin_key(peer.id, key.id, encode_public_key(key.public_key), now)
        peer.state, peer.confirmed_at = "active", now
        peer.fail_count, peer.next_attempt_at, peer.failing_since = 0, None, None
        peer.save()
        return _view(peer)


def retire_peer(ctx: ServiceContext, actor: Actor, peer_id: int) -> PeerView:
    """Stop federating with a peer: its requests are refused, nothing more is sent."""
    policy.require_admin(actor)
    with write_transaction():
        peer = store.select_peer(peer_id, lock=True)
        if peer is None:
            raise NotFound(N_("No such peer school."))
        peer.state = "retired"
        peer.save()
        store.delete_unpinned_keys(peer.id)
        return _view(peer)


def list_peers(ctx: ServiceContext, actor: Actor) -> list[PeerView]:
    policy.require_admin(actor)
    return [_view(p) for p in store.select_peers() if p.state != "retired"]


def get_peer(ctx: ServiceContext, actor: Actor, peer_id: int) -> PeerView:
    policy.require_admin(actor)
    peer = store.select_peer(peer_id)
    if peer is None:
        raise NotFound(N_("No such peer school."))
    return _view(peer)


# -- the inbox side: no actor, the node itself ------------------------------------------


@dataclass(frozen=True)
class KeyLookup:
    """What the inbox learns about a request's key id before verifying its signature."""

    peer_id: int
    origin: str
    #: the pinned key, if the peer's document still allows it now
    key: nacl.signing.VerifyKey | None
    #: an unknown key of an active peer: the document may be refetched now
    may_refetch: bool


REFETCH_EVERY = dt.timedelta(seconds=60)


def transport_key(ctx: ServiceContext, keyid: str) -> KeyLookup:
    """Resolve a request's key id; ``NotAPeer`` for anyone not on the allow-list."""
    origin = key_id_origin(keyid)
    peer = store.select_peer_by_origin(origin)
    if peer is None or peer.state not in ("active", "paused"):
        raise NotAPeer(f"{origin} is not a peer of this school")
    now = ctx.now()
    if peer.state == "paused":  # a pinned key was revoked: nothing counts until an admin re-pins
        return KeyLookup(peer.id, origin, None, False)
    key = None
    pinned = {k.key_id: k for k in store.select_peer_keys(peer.id) if k.revoked_at is None}
    if keyid in pinned:
        document = _stored_document(ctx, peer)
        allowed = document.transport_key(keyid, unix(now)) if document else None
        if allowed is not None and encode_public_key(allowed) == pinned[keyid].public_key:
            key = allowed
    may_refetch = key is None and (
        peer.refetched_at is None or now - peer.refetched_at >= REFETCH_EVERY
    )
    return KeyLookup(peer.id, origin, key, may_refetch)


def _stored_document(ctx: ServiceContext, peer: store.Peer) -> NodeDocument | None:
    try:
        return verify_node_document(peer.document.encode(), origin=peer.origin, now=unix(ctx.now()))
    except NodeDocumentError:  # expired: the inbox refetches it
        return None


def refresh_document(ctx: ServiceContext, origin: str, document: bytes | None) -> None:
    """Take a peer's freshly fetched document (or note the failed fetch).

    New keys are pinned only if a pinned key signed the document; pinned keys
    it lists as revoked are marked revoked and the peer pauses for an admin.
    """
    now = ctx.now()
    with write_transaction():
        peer = store.select_peer_by_origin(origin, lock=True)
        if peer is None:
            return
        peer.refetched_at = now
        if document is None:
            peer.save()
            return
        try:
            verified = verify_node_document(document, origin=origin, now=unix(now))
        except NodeDocumentError as error:
            peer.last_error = f"node document refused: {error}"
            peer.save()
            return
        pinned = {
            k.key_id: decode_public_key(k.public_key)
            for k in store.select_peer_keys(peer.id)
            if k.revoked_at is None
        }
        check = pin_check(verified, pinned)
        if check.revoked_pinned:
            store.mark_keys(peer.id, list(check.revoked_pinned), revoked_at=now)
            if peer.state == "active":
                peer.state = "paused"
                peer.last_error = "a pinned key was revoked: confirm the school's new key"
        if check.authenticated:
            for key in check.new_keys:
                store.pin_key(peer.id, key.id, encode_public_key(key.public_key), now)
        if check.authenticated or _rotated_away(verified, pinned):
            peer.document = json.dumps(dict(verified.raw), ensure_ascii=False)
            peer.document_until = from_unix(verified.cache_until(unix(now)))
            peer.name = verified.name
        peer.save()


def _rotated_away(document: NodeDocument, pinned: dict[str, nacl.signing.VerifyKey]) -> bool:
    """The school retired a pinned key in a rotation we were not told about yet.

    Its document is then signed by a key we have not pinned: it pins nothing,
    but it is the school's own word (fetched from its origin) on how long our
    pinned key stays valid (``old_keys``, ``expired_at`` + 24 h) — long enough
    for its ``RotateKey``, transport-signed by that key, to reach us.
    """
    return any(
        key.id in pinned and bytes(pinned[key.id]) == bytes(key.public_key)
        for key in document.old_keys
    )


def record_contact(ctx: ServiceContext, peer_id: int, created: int) -> None:
    """A peer's signed request was verified: note when, and how far apart our clocks are."""
    now = ctx.now()
    store.Peer.update(last_contact_at=now, clock_skew=created - unix(now)).where(
        store.Peer._meta.primary_key == peer_id
    ).execute()


def apply_key_statement(ctx: ServiceContext, peer_id: int, body: bytes) -> str:
    """A peer's signed ``RotateKey`` or ``RevokeKey`` (NP/1 §2.5, §2.6); returns its type.

    A rotation signed by a pinned key and by the new key pins the new key
    (the old one stays usable as the peer's document says).  A revocation,
    signed by the revoked key, drops that key at once and pauses the peer
    until an admin confirms a new key; its ``replacement`` is only shown.
    """
    now = ctx.now()
    with write_transaction():
        peer = store.select_peer(peer_id, lock=True)
        if peer is None or peer.state != "active":
            raise NotAPeer("this peer is not active")
        rows = [k for k in store.select_peer_keys(peer.id) if k.revoked_at is None]
        pinned = {k.key_id: decode_public_key(k.public_key) for k in rows}
        kind = _statement_type(body)
        if kind == "RotateKey":
            document = _stored_document(ctx, peer)
            rotation = verify_rotation(
                body, origin=peer.origin, pinned=pinned, now=unix(now),
                announced_next=document.next_key if document else None,
            )  # fmt: skip
            store.pin_key(
                peer.id, rotation.new_key.id, encode_public_key(rotation.new_key.public_key), now
            )
            store.mark_keys(
                peer.id, [rotation.old_key.id], expired_at=from_unix(rotation.expired_at)
            )
            return kind
        revocation = verify_revocation(body, origin=peer.origin, known=pinned, now=unix(now))
        store.mark_keys(peer.id, [revocation.revoked_key.id], revoked_at=now)
        peer.state = "paused"
        replacement = revocation.replacement
        peer.last_error = (
            "The school revoked its key "
            + fingerprint(revocation.revoked_key.public_key)
            + ". Confirm its new key with the school before federating again"
            + (f" (announced: {replacement.fingerprint})." if replacement else ".")
        )
        peer.save()
        return kind


def _statement_type(body: bytes) -> str:
    try:
        kind = json.loads(body).get("type")
    except (ValueError, AttributeError):
        kind = None
    if kind not in ("RotateKey", "RevokeKey"):
        raise KeyStatementError("expected a RotateKey or RevokeKey statement")
    return str(kind)
