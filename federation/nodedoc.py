"""The node document and key statements (rotation, revocation). Sans-IO.

Every node serves a self-signed node document at ``/.well-known/carnet-node``
(``docs/protocol/np1.md`` §2). It names the node's origin, its current keys,
its retired keys with ``expired_at``, an announced ``next_key``, revoked keys,
and a validity window of at most 7 days. It is signed with an
``eddsa-jcs-2022`` proof by *every* current key.

Trust does not come from the self-signature (anyone can sign their own
document) but from *pinning*: an admin confirmed a key fingerprint when the
peer was added. :func:`pin_check` compares a verified document with the keys
a node has pinned for that peer; :func:`verify_rotation` accepts a new key
only when the pinned key and the new key both sign the hand-over, and
a revocation can only take trust away (both in :mod:`federation.keystatements`).

Functions here take bytes or dicts and Unix seconds and return dataclasses or
raise :class:`~federation.errors.NodeDocumentError`; fetching, caching and
storing are the caller's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import nacl.signing

from federation.encoding import (
    check_origin,
    check_url,
    format_timestamp,
    load_json_object,
    origin_of,
    parse_timestamp,
)
from federation.errors import EncodingError, NodeDocumentError, ProofError
from federation.keys import decode_public_key, encode_public_key, fingerprint, key_id, key_id_origin
from federation.proof import create_proof, proof_set, verify_proof

MAX_VALIDITY = 7 * 24 * 3600
"""A node document is valid for at most 7 days after ``issued_at``."""
MAX_DOCUMENT_BYTES = 65536
MAX_CURRENT_KEYS = 4
MAX_LISTED_KEYS = 32
"""Most entries in ``old_keys`` and in ``revoked``."""
OLD_KEY_TRANSPORT_GRACE = 24 * 3600
"""Transport signatures by a retired key are accepted this long after ``expired_at``."""
MAX_SKEW = 300
MAX_NAME_LENGTH = 200
DOCUMENT_TYPE = "CarnetNode"


@dataclass(frozen=True)
class NodeKey:
    """One key listed in a node document or a key statement."""

    id: str
    public_key: nacl.signing.VerifyKey
    since: int | None = None
    """``valid_from`` (current), ``expired_at`` (old) or ``revoked_at`` (revoked)."""

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_key)


@dataclass(frozen=True)
class NodeDocument:
    """A verified node document."""

    origin: str
    name: str
    inbox: str
    streams: str
    keys: tuple[NodeKey, ...]
    old_keys: tuple[NodeKey, ...]
    next_key: NodeKey | None
    revoked: tuple[NodeKey, ...]
    issued_at: int
    valid_until: int
    raw: Mapping[str, Any] = field(repr=False)

    def cache_until(self, now: int) -> int:
        """Refetch no later than this (Matrix rule: ``min(valid_until, now + 7 d)``)."""
        return min(self.valid_until, now + MAX_VALIDITY)

    def transport_key(self, keyid: str, now: int) -> nacl.signing.VerifyKey | None:
        """The key that may sign a request *now*, or ``None``.

        Current keys, and retired keys until 24 h after their ``expired_at``.
        A revoked key never.
        """
        for key in self.keys:
            if key.id == keyid:
                return key.public_key
        for key in self.old_keys:
            if (
                key.id == keyid
                and key.since is not None
                and now <= key.since + OLD_KEY_TRANSPORT_GRACE
            ):
                return key.public_key
        return None

    def proof_key(self, keyid: str, proof_created: int) -> nacl.signing.VerifyKey | None:
        """The key that may have made an object proof created at ``proof_created``.

        Current keys, and retired keys for proofs made before their
        ``expired_at`` (stored activities stay verifiable). A revoked key never.
        """
        for key in self.keys:
            if key.id == keyid:
                return key.public_key
        for key in self.old_keys:
            if key.id == keyid and key.since is not None and proof_created < key.since:
                return key.public_key
        return None


def key_entry(key: NodeKey, stamp: str | None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": key.id,
        "type": "Multikey",
        "publicKeyMultibase": encode_public_key(key.public_key),
    }
    if stamp is not None:
        if key.since is None:
            raise ValueError(f"{key.id} needs a {stamp} time")
        entry[stamp] = format_timestamp(key.since)
    return entry


def build_node_document(
    *,
    origin: str,
    name: str,
    signing_keys: Mapping[str, nacl.signing.SigningKey],
    valid_from: Mapping[str, int],
    issued_at: int,
    valid_until: int,
    old_keys: Sequence[NodeKey] = (),
    next_key: NodeKey | None = None,
    revoked: Sequence[NodeKey] = (),
) -> dict[str, Any]:
    """Build and self-sign a node document.

    Args:
        origin: The node's public URL (``scheme://host[:port]``).
        name: The school's display name.
        signing_keys: Current keys by key name (the part after ``#``); each signs.
        valid_from: For each key name, when it became current.
        issued_at: Unix seconds; also the ``created`` of every proof.
        valid_until: At most :data:`MAX_VALIDITY` after ``issued_at``.
        old_keys: Retired keys with ``since`` = ``expired_at``.
        next_key: The announced next key, if any.
        revoked: Revoked keys with ``since`` = ``revoked_at``.

    Returns:
        The signed document, ready to serve as JSON.
    """
    check_origin(origin)
    current = [
        NodeKey(key_id(origin, kname), sk.verify_key, valid_from[kname])
        for kname, sk in signing_keys.items()
    ]
    document: dict[str, Any] = {
        "np": 1,
        "type": DOCUMENT_TYPE,
        "origin": origin,
        "name": name,
        "inbox": f"{origin}/np/inbox",
        "streams": f"{origin}/np/streams",
        "keys": [key_entry(key, "valid_from") for key in current],
        "old_keys": [key_entry(key, "expired_at") for key in old_keys],
        "revoked": [key_entry(key, "revoked_at") for key in revoked],
        "issued_at": format_timestamp(issued_at),
        "valid_until": format_timestamp(valid_until),
    }
    if next_key is not None:
        document["next_key"] = key_entry(next_key, None)
    document["proof"] = [
        create_proof(document, signing_key=sk, verification_method=key.id, created=issued_at)
        for key, sk in zip(current, signing_keys.values(), strict=True)
    ]
    return document


def load_document(
    data: bytes | Mapping[str, Any], error: type[NodeDocumentError]
) -> Mapping[str, Any]:
    """Read a node document or key statement: at most 64 KiB of strict JSON."""
    return load_json_object(data, max_bytes=MAX_DOCUMENT_BYTES, what="document", error=error)


def parse_key_entry(
    entry: object, origin: str, stamp: str | None, what: str, error: type[NodeDocumentError]
) -> NodeKey:
    expected = {"id", "type", "publicKeyMultibase"} | ({stamp} if stamp else set())
    if not isinstance(entry, Mapping) or set(entry) != expected:
        raise error(f"{what} must be an object with exactly {', '.join(sorted(expected))}")
    if entry["type"] != "Multikey":
        raise error(f"{what} must have type Multikey")
    try:
        if key_id_origin(entry["id"]) != origin:
            raise error(f"{what} {entry['id']} is not a key of {origin}")
        public_key = decode_public_key(
            entry["publicKeyMultibase"], what=f"{what} publicKeyMultibase"
        )
        since = parse_timestamp(entry[stamp], what=f"{what} {stamp}") if stamp else None
    except EncodingError as exc:
        raise error(str(exc)) from None
    return NodeKey(entry["id"], public_key, since)


def _key_list(
    document: Mapping[str, Any], name: str, origin: str, stamp: str, limit: int
) -> tuple[NodeKey, ...]:
    entries = document.get(name, [])
    if not isinstance(entries, list) or len(entries) > limit:
        raise NodeDocumentError(f"{name} must be a list of at most {limit} keys")
    return tuple(
        parse_key_entry(e, origin, stamp, f"{name}[{i}]", NodeDocumentError)
        for i, e in enumerate(entries)
    )


def check_proofs(
    document: Mapping[str, Any],
    signers: Sequence[NodeKey],
    created: int,
    error: type[NodeDocumentError],
) -> None:
    # Every listed signer must sign, and nobody else: a proof set with one
    # proof missing is exactly the "signed by only one key" forgery.
    try:
        proofs = proof_set(document)
        by_id = {proof.verification_method: proof for proof in proofs}
        expected = {key.id for key in signers}
        if len(by_id) != len(proofs) or set(by_id) != expected:
            raise error(
                f"must carry exactly one proof by each of {', '.join(sorted(expected))}; "
                f"found {', '.join(sorted(by_id)) or 'none'}"
            )
        for key in signers:
            if by_id[key.id].created != created:
                raise error(f"proof by {key.id} must be created at {format_timestamp(created)}")
            verify_proof(document, by_id[key.id], key.public_key)
    except ProofError as exc:
        raise error(str(exc)) from None


def read_timestamp(document: Mapping[str, Any], name: str, error: type[NodeDocumentError]) -> int:
    try:
        return parse_timestamp(document.get(name), what=name)
    except EncodingError as exc:
        raise error(str(exc)) from None


def verify_node_document(data: bytes | Mapping[str, Any], *, origin: str, now: int) -> NodeDocument:
    """Check a fetched node document completely.

    Args:
        data: The response body (preferred: its size is checked before parsing)
            or an already parsed object.
        origin: The origin it was fetched from / the peer's configured origin.
        now: The verifier's clock, Unix seconds.

    Raises:
        NodeDocumentError: On strict-JSON, size, field, origin, key, window
            (expired, issued in the future, valid > 7 days) or proof errors.
    """
    document = load_document(data, NodeDocumentError)
    if (
        document.get("np") != 1
        or document.get("np") is True
        or document.get("type") != DOCUMENT_TYPE
    ):
        raise NodeDocumentError(
            f'not an NP/1 node document (need "np": 1, "type": "{DOCUMENT_TYPE}")'
        )
    if document.get("origin") != origin:
        raise NodeDocumentError(
            f"document is for {document.get('origin')!r}, fetched from {origin}"
        )
    name = document.get("name")
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME_LENGTH:
        raise NodeDocumentError(f"name must be 1-{MAX_NAME_LENGTH} characters")
    urls = {}
    for field_name in ("inbox", "streams"):
        try:
            url = check_url(document.get(field_name), what=field_name)
        except EncodingError as exc:
            raise NodeDocumentError(str(exc)) from None
        if origin_of(url) != origin:
            raise NodeDocumentError(f"{field_name} {url} is not on {origin}")
        urls[field_name] = url
    keys = _key_list(document, "keys", origin, "valid_from", MAX_CURRENT_KEYS)
    if not keys:
        raise NodeDocumentError("keys must list at least one current key")
    old_keys = _key_list(document, "old_keys", origin, "expired_at", MAX_LISTED_KEYS)
    revoked = _key_list(document, "revoked", origin, "revoked_at", MAX_LISTED_KEYS)
    next_key = None
    if document.get("next_key") is not None:
        next_key = parse_key_entry(
            document["next_key"], origin, None, "next_key", NodeDocumentError
        )
    listed = [*keys, *old_keys, *revoked, *([next_key] if next_key else [])]
    if len({k.id for k in listed}) != len(listed) or len(
        {bytes(k.public_key) for k in listed}
    ) != len(listed):
        raise NodeDocumentError(
            "a key id or public key is listed twice (e.g. both current and revoked)"
        )
    issued_at = read_timestamp(document, "issued_at", NodeDocumentError)
    valid_until = read_timestamp(document, "valid_until", NodeDocumentError)
    if not issued_at < valid_until <= issued_at + MAX_VALIDITY:
        raise NodeDocumentError("valid_until must be after issued_at and at most 7 days later")
    if issued_at > now + MAX_SKEW:
        raise NodeDocumentError(
            f"document is issued {issued_at - now} s in the future; check clocks"
        )
    if valid_until <= now:
        raise NodeDocumentError(f"document expired at {format_timestamp(valid_until)}")
    check_proofs(document, keys, issued_at, NodeDocumentError)
    return NodeDocument(
        origin,
        name,
        urls["inbox"],
        urls["streams"],
        keys,
        old_keys,
        next_key,
        revoked,
        issued_at,
        valid_until,
        document,
    )


@dataclass(frozen=True)
class PinCheck:
    """How a verified node document relates to the keys pinned for its peer.

    ``authenticated``: at least one current key is pinned (its proof verified,
    so the document speaks for the pinned node); ``new_keys``: current keys
    not pinned yet, which may be pinned only if ``authenticated`` (a pinned
    key vouched for them) — otherwise they need a :func:`verify_rotation`
    statement or an admin; ``revoked_pinned``: pinned key ids the document
    lists as revoked, to drop at once (losing trust is always safe).
    """

    authenticated: bool
    new_keys: tuple[NodeKey, ...]
    revoked_pinned: tuple[str, ...]


def pin_check(document: NodeDocument, pinned: Mapping[str, nacl.signing.VerifyKey]) -> PinCheck:
    """Compare a verified document with the keys pinned for its origin (id → key)."""

    def is_pinned(key: NodeKey) -> bool:
        return key.id in pinned and bytes(pinned[key.id]) == bytes(key.public_key)

    return PinCheck(
        authenticated=any(is_pinned(key) for key in document.keys),
        new_keys=tuple(key for key in document.keys if not is_pinned(key)),
        revoked_pinned=tuple(key.id for key in document.revoked if key.id in pinned),
    )
