"""NP/1 transactions, pull pages and membership digests. Sans-IO.

A **transaction** is the body of ``PUT {peer}/np/inbox/txn/{txn_id}``
(``docs/protocol/np1.md`` §5): at most 50 activities from one sender to
one destination, retried with the same ``txn_id`` until acknowledged::

    {"np": 1, "txn_id": "01J…", "origin": "https://a…", "destination": "https://b…",
     "activities": [...],
     "streams": {"https://a…/classes/c": {"after": 100, "through": 150}},
     "membership": [{"stream": "https://a…/classes/c", "digest": "…64 hex…", "url": "https://a…/np/…"}]}

``streams`` states, per stream, that the batch holds *every* activity with
``after < seq ≤ through`` addressed to the destination. Activities addressed
to nobody there are never sent, so the receiver cannot find gaps by counting
seqs; it compares ``after`` with its own cursor instead (§5.3).

A **pull page** answers ``GET {peer}/np/streams/{stream}?after=N`` with the
same guarantee for ``after < seq ≤ next_after``.

The envelope is checked here as a whole (a bad one is a 400, a foreign id a
403); each activity is then checked on its own, so one bad activity becomes
one error result and does not block the rest of its batch.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from federation.activity import (
    Activity,
    ProofKeyLookup,
    parse_activity,
    verify_activity_proof,
)
from federation.canonical import canonical_json
from federation.encoding import check_url, load_json_object, origin_of
from federation.errors import (
    ActivityError,
    EncodingError,
    OriginMismatch,
    TooLarge,
    TransactionError,
)

MAX_ACTIVITIES = 50
MAX_BODY_BYTES = 8 * 1024 * 1024
#: senders cut batches and pull pages here, so one activity of the maximum size always fits
BATCH_BYTES = 2 * 1024 * 1024
MAX_MEMBERSHIP_ENTRIES = 500
MAX_STREAMS = 500
"""Most stream ranges declared by one transaction."""
MAX_PULL_LIMIT = 100
_ULID_RE = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")
_HEX64_RE = re.compile(r"[0-9a-f]{64}")


def is_txn_id(text: str) -> bool:
    """Whether ``text`` is a transaction id (a ULID): checked before it reaches a query."""
    return _ULID_RE.fullmatch(text) is not None


@dataclass(frozen=True)
class StreamRange:
    """The batch holds every activity of ``stream`` with ``after < seq ≤ through`` for the destination."""

    stream: str
    after: int
    through: int


@dataclass(frozen=True)
class MembershipDigest:
    """The class host's digest of the destination's members of ``stream``, and where to reconcile."""

    stream: str
    digest: str
    url: str


@dataclass(frozen=True)
class Transaction:
    """A checked transaction envelope; ``activities`` are still unchecked objects."""

    txn_id: str
    origin: str
    destination: str
    activities: tuple[Mapping[str, Any], ...]
    streams: tuple[StreamRange, ...]
    membership: tuple[MembershipDigest, ...]


@dataclass(frozen=True)
class ActivityResult:
    """The outcome for one activity of a batch: checked and proven, or an error."""

    id: str
    activity: Activity | None
    error: ActivityError | None


def membership_digest(member_ids: Iterable[str]) -> str:
    """Hex XOR of SHA-256(member id) over the *set* of ids (order-free, 64 zeros if empty)."""
    acc = 0
    for member in set(member_ids):
        acc ^= int.from_bytes(hashlib.sha256(member.encode("utf-8")).digest(), "big")
    return acc.to_bytes(32, "big").hex()


def _body(data: bytes | Mapping[str, Any]) -> Mapping[str, Any]:
    return load_json_object(
        data, max_bytes=MAX_BODY_BYTES, what="body", error=TransactionError, too_large=TooLarge
    )


def _url(value: object, origin: str, what: str) -> str:
    try:
        url = check_url(value, what=what)
    except EncodingError as exc:
        raise TransactionError(str(exc)) from None
    if origin_of(url) != origin:
        raise OriginMismatch(f"{what} {url} is not on {origin}")
    return url


def _count(value: object, what: str, minimum: int = 0) -> int:
    if type(value) is not int or value < minimum:
        raise TransactionError(f"{what} must be an integer ≥ {minimum}")
    return value


def _activities(raw: object, sender: str, limit: int) -> tuple[Mapping[str, Any], ...]:
    if not isinstance(raw, list):
        raise TransactionError("activities must be a list")
    if len(raw) > limit:
        raise TransactionError(f"{len(raw)} activities; a batch holds at most {limit}")
    ids = []
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise TransactionError(f"activities[{i}] must be an object")
        # The same-origin rule is checked for the whole batch before anything
        # else: a node sending ids of another node is misbehaving (403).
        ids.append(_url(item.get("id"), sender, f"activities[{i}].id"))
    if len(set(ids)) != len(ids):
        raise TransactionError("an activity id appears twice in the batch")
    return tuple(raw)


def _check_order(
    activities: Sequence[Mapping[str, Any]], ranges: Mapping[str, StreamRange]
) -> None:
    last: dict[str, int] = {}
    for i, item in enumerate(activities):
        stream, seq = item.get("stream"), item.get("seq")
        if not isinstance(stream, str) or stream not in ranges:
            raise TransactionError(f"activities[{i}] is in a stream the batch does not declare")
        if type(seq) is not int or not ranges[stream].after < seq <= ranges[stream].through:
            raise TransactionError(f"activities[{i}].seq is outside its stream's declared range")
        if seq <= last.get(stream, 0):
            raise TransactionError(f"activities[{i}] is out of seq order in its stream")
        last[stream] = seq


def check_transaction(
    data: bytes | Mapping[str, Any], *, txn_id: str, sender: str, destination: str
) -> Transaction:
    """Check a transaction body received from ``sender`` (transport-verified).

    Args:
        data: The request body.
        txn_id: The ``{txn_id}`` of the request path.
        sender: The origin of the verified signature key.
        destination: This node's origin.

    Raises:
        TooLarge: Body over 256 KiB.
        TransactionError: Bad envelope, > 50 activities, undeclared stream,
            out-of-order or out-of-range seq, duplicate ids.
        OriginMismatch: An id or stream is not on ``sender`` (answer 403).
    """
    body = _body(data)
    if body.get("np") != 1 or type(body.get("np")) is not int:
        raise TransactionError(f"unsupported np version {body.get('np')!r}; this node speaks 1")
    if _ULID_RE.fullmatch(txn_id) is None or body.get("txn_id") != txn_id:
        raise TransactionError("txn_id must be a ULID and match the request path")
    if body.get("origin") != sender:
        raise OriginMismatch(
            f"transaction origin {body.get('origin')!r} is not the signer {sender}"
        )
    if body.get("destination") != destination:
        raise TransactionError(f"transaction is for {body.get('destination')!r}, not {destination}")
    activities = _activities(body.get("activities"), sender, MAX_ACTIVITIES)
    raw_streams = body.get("streams")
    if not isinstance(raw_streams, Mapping) or len(raw_streams) > MAX_STREAMS:
        raise TransactionError("streams must be an object of stream ranges")
    ranges = {}
    for stream, span in raw_streams.items():
        _url(stream, sender, "stream")
        if not isinstance(span, Mapping) or set(span) != {"after", "through"}:
            raise TransactionError(f"range of {stream} must be {{after, through}}")
        after = _count(span["after"], f"{stream} after")
        ranges[stream] = StreamRange(
            stream, after, _count(span["through"], f"{stream} through", after)
        )
    _check_order(activities, ranges)
    raw_membership = body.get("membership", [])
    if not isinstance(raw_membership, list) or len(raw_membership) > MAX_MEMBERSHIP_ENTRIES:
        raise TransactionError(
            f"membership must be a list of at most {MAX_MEMBERSHIP_ENTRIES} digests"
        )
    membership = []
    for i, entry in enumerate(raw_membership):
        if not isinstance(entry, Mapping) or set(entry) != {"stream", "digest", "url"}:
            raise TransactionError(f"membership[{i}] must be {{stream, digest, url}}")
        if not isinstance(entry["digest"], str) or _HEX64_RE.fullmatch(entry["digest"]) is None:
            raise TransactionError(f"membership[{i}].digest must be 64 lower-case hex digits")
        membership.append(
            MembershipDigest(
                _url(entry["stream"], sender, f"membership[{i}].stream"),
                entry["digest"],
                _url(entry["url"], sender, f"membership[{i}].url"),
            )
        )
    return Transaction(
        txn_id, sender, destination, activities, tuple(ranges.values()), tuple(membership)
    )


def build_transaction(
    *,
    txn_id: str,
    origin: str,
    destination: str,
    activities: Sequence[Mapping[str, Any]],
    streams: Mapping[str, tuple[int, int]],
    membership: Sequence[MembershipDigest] = (),
) -> bytes:
    """Serialize a transaction body (canonical JSON) for ``PUT …/np/inbox/txn/{txn_id}``.

    Args:
        streams: For each stream in the batch, ``(after, through)``: the receiver's
            acknowledged seq and the highest seq this batch accounts for.

    Raises:
        TransactionError: If the result would not pass :func:`check_transaction`.
    """
    body = {
        "np": 1,
        "txn_id": txn_id,
        "origin": origin,
        "destination": destination,
        "activities": list(activities),
        "streams": {stream: {"after": a, "through": t} for stream, (a, t) in streams.items()},
        "membership": [{"stream": m.stream, "digest": m.digest, "url": m.url} for m in membership],
    }
    data = canonical_json(body)
    check_transaction(data, txn_id=txn_id, sender=origin, destination=destination)
    return data


def check_activities(
    activities: Sequence[Mapping[str, Any]],
    *,
    sender: str,
    destination: str,
    lookup: ProofKeyLookup,
) -> list[ActivityResult]:
    """Check each activity of a batch (fields, same-origin rule, addressing, proof)."""
    results = []
    for item in activities:
        try:
            activity = parse_activity(item, sender=sender, destination=destination)
            verify_activity_proof(activity, lookup)
        except ActivityError as exc:
            results.append(ActivityResult(str(item.get("id")), None, exc))
        else:
            results.append(ActivityResult(activity.id, activity, None))
    return results


def results_body(results: Iterable[ActivityResult]) -> dict[str, Any]:
    """The 200 response body: ``{"results": {id: {} | {"error": reason, "message": text}}}``."""
    return {
        "results": {
            r.id: {} if r.error is None else {"error": r.error.reason, "message": str(r.error)}
            for r in results
        }
    }


@dataclass(frozen=True)
class PullPage:
    """A checked page of ``GET …/np/streams/{stream}?after=N``."""

    stream: str
    after: int
    next_after: int
    head_seq: int
    activities: tuple[Mapping[str, Any], ...]


def check_pull_page(
    data: bytes | Mapping[str, Any], *, stream: str, sender: str, after: int
) -> PullPage:
    """Check a pull response: ``{"activities": [...], "next_after": n, "head_seq": h}``.

    The page accounts for every activity with ``after < seq ≤ next_after``
    addressed to the puller, in seq order, at most :data:`MAX_PULL_LIMIT`;
    ``next_after == after`` means nothing more is available now.

    Raises:
        TransactionError: On a bad shape, order, range or size.
        OriginMismatch: If an id or the stream is not on ``sender``.
    """
    body = _body(data)
    _url(stream, sender, "stream")
    next_after = _count(body.get("next_after"), "next_after", after)
    head_seq = _count(body.get("head_seq"), "head_seq", next_after)
    activities = _activities(body.get("activities"), sender, MAX_PULL_LIMIT)
    _check_order(activities, {stream: StreamRange(stream, after, next_after)})
    return PullPage(stream, after, next_after, head_seq, activities)
