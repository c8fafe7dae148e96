"""NP/1 activities: build, sign, and strictly check untrusted ones. Sans-IO.

An activity is one event in a stream (``docs/protocol/np1.md`` §4): a post
created, edited or deleted, a follow request and its answer, a removal.
It carries an ``eddsa-jcs-2022`` proof by its origin node's key over the
activity *without* ``proof`` and without ``to`` (the recipients on one
destination node, which differ per destination), so the same signed
activity is sent to every peer and stays verifiable when stored or pulled.

The **same-origin rule**: ``id``, ``actor``, ``stream``, ``audience``, the
proof's key, and an embedded object's ``id``, ``attributedTo`` and
attachment ``url`` all share the sending node's origin. A bare object
reference is typed: it points at the destination node for ``Follow``,
``Accept``, ``Reject``, ``Remove`` and ``Read``, and at the sender for
``Undo``. Recipients (``to``) are all on the destination node. Anything
addressed to the public is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import nacl.signing

from federation.encoding import (
    check_url,
    format_timestamp,
    load_json_object,
    origin_of,
    parse_timestamp,
)
from federation.errors import (
    ActivityError,
    EncodingError,
    OriginMismatch,
    ProofError,
    PublicAddressing,
    TooLarge,
)
from federation.keys import key_id_origin
from federation.proof import Proof, create_proof, parse_proof, verify_proof

NP_VERSION = 1
#: a post's ciphertext (≤ 200,000 characters) with its header and sealed keys fits
MAX_ACTIVITY_BYTES = 512 * 1024
"""Largest activity, as canonical JSON."""
MAX_DEPTH = 32
MAX_RECIPIENTS = 5000
UNSIGNED_FIELDS = ("to",)
"""Top-level fields outside the object proof: set per destination."""

CONTENT_TYPES = frozenset({"Create", "Update", "Delete"})
REFERENCE_TARGET = {
    # type → where the object reference must point: the peer receiving the
    # activity ("destination") or the sending node itself ("sender").
    "Follow": "destination",
    "Accept": "destination",
    "Reject": "destination",
    "Remove": "destination",
    "Read": "destination",
    "View": "destination",
    "Remind": "sender",
    "Undo": "sender",
}
ACTIVITY_TYPES = CONTENT_TYPES | frozenset(REFERENCE_TARGET)
PUBLIC_ADDRESSES = frozenset(
    {"as:Public", "Public", "https://www.w3.org/ns/activitystreams#Public", "*"}
)

ProofKeyLookup = Callable[[str, int], nacl.signing.VerifyKey | None]
"""(keyid, proof created) → key, e.g. :meth:`federation.nodedoc.NodeDocument.proof_key`."""


@dataclass(frozen=True)
class Activity:
    """A checked activity (its proof is checked separately by :func:`verify_activity_proof`)."""

    id: str
    type: str
    actor: str
    stream: str
    seq: int
    published: int
    audience: str
    to: tuple[str, ...]
    object: str | Mapping[str, Any]
    version: int | None
    """The object's version for Create/Update/Delete, else ``None``."""
    proof: Proof
    raw: Mapping[str, Any]


def build_activity(
    *,
    id: str,
    type: str,
    actor: str,
    stream: str,
    seq: int,
    published: int,
    audience: str,
    object: str | Mapping[str, Any],
    signing_key: nacl.signing.SigningKey,
    keyid: str,
    to: Sequence[str] = (),
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Build and sign an activity.

    ``to`` may be left empty here and set per destination with
    :func:`with_recipients`; it is outside the proof either way. ``extra``
    adds signed fields (for example ``target`` on ``Remove``).
    """
    activity: dict[str, Any] = {
        "np": NP_VERSION,
        "id": id,
        "type": type,
        "actor": actor,
        "stream": stream,
        "seq": seq,
        "published": format_timestamp(published),
        "audience": audience,
        "object": object,
        **(extra or {}),
    }
    activity["proof"] = create_proof(
        activity,
        signing_key=signing_key,
        verification_method=keyid,
        created=published,
        unsigned=UNSIGNED_FIELDS,
    )
    activity["to"] = list(to)
    return activity


def with_recipients(activity: Mapping[str, Any], to: Sequence[str]) -> dict[str, Any]:
    """A copy of a signed activity addressed to ``to`` (the proof stays valid)."""
    return {**activity, "to": list(to)}


def _depth(value: Any, level: int = 0) -> int:
    if isinstance(value, Mapping):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


def load_activity_json(data: bytes | Mapping[str, Any]) -> Mapping[str, Any]:
    """Strict-parse (bytes) or check (object) an activity's JSON: size, depth, no floats."""
    data = load_json_object(
        data, max_bytes=MAX_ACTIVITY_BYTES, what="activity", error=ActivityError, too_large=TooLarge
    )
    if _depth(data) > MAX_DEPTH:
        raise ActivityError(f"activity nests deeper than {MAX_DEPTH} levels")
    return data


def _url_on(value: object, origin: str, what: str) -> str:
    if isinstance(value, str) and value in PUBLIC_ADDRESSES:
        raise PublicAddressing(f"{what} is the public address; NP/1 carries nothing public")
    try:
        url = check_url(value, what=what)
    except EncodingError as exc:
        raise ActivityError(str(exc)) from None
    if origin_of(url) != origin:
        raise OriginMismatch(f"{what} {url} is not on {origin}")
    return url


def _check_object(kind: str, obj: Mapping[str, Any], sender: str) -> int:
    _url_on(obj.get("id"), sender, "object.id")
    version = obj.get("version")
    if type(version) is not int or version < 1:
        raise ActivityError("object.version must be a positive integer")
    object_type = obj.get("type")
    if not isinstance(object_type, str) or not object_type:
        raise ActivityError("object.type must be a string")
    if kind == "Delete":
        if object_type != "Tombstone" or not isinstance(obj.get("formerType"), str):
            raise ActivityError("Delete needs a Tombstone object with formerType")
        try:
            parse_timestamp(obj.get("deleted"), what="object.deleted")
        except EncodingError as exc:
            raise ActivityError(str(exc)) from None
    else:
        if object_type == "Tombstone":
            raise ActivityError(f"{kind} cannot carry a Tombstone")
        _url_on(obj.get("attributedTo"), sender, "object.attributedTo")
    # The origin assigns versions (np1.md §4.5): a Create is version 1 and an
    # Update is later (≥ 2), so an edit can never be mistaken for the
    # original. A Tombstone carries the object's last version + 1, which only
    # the origin knows; ≥ 1 also covers deleting an actor or a stream.
    if kind == "Create" and version != 1:
        raise ActivityError("Create must have object.version 1")
    if kind == "Update" and version < 2:
        raise ActivityError("Update must have object.version ≥ 2")
    attachments = obj.get("attachment", [])
    if not isinstance(attachments, list):
        raise ActivityError("object.attachment must be a list")
    for i, item in enumerate(attachments):
        if not isinstance(item, Mapping):
            raise ActivityError(f"object.attachment[{i}] must be an object")
        _url_on(item.get("url"), sender, f"object.attachment[{i}].url")
    return version


def parse_activity(data: bytes | Mapping[str, Any], *, sender: str, destination: str) -> Activity:
    """Check an untrusted activity from ``sender`` delivered to ``destination``.

    Args:
        data: The activity (raw bytes, or an object taken from a parsed transaction).
        sender: The origin that signed the request or page (transport-verified).
        destination: This node's origin.

    Returns:
        The checked :class:`Activity`; its proof is parsed but not yet verified.

    Raises:
        ActivityError: Malformed, oversize, unknown type or version.
        OriginMismatch: A field breaks the same-origin rule.
        PublicAddressing: The activity is addressed to the public.
    """
    activity = load_activity_json(data)
    if activity.get("np") != NP_VERSION or type(activity.get("np")) is not int:
        raise ActivityError(f"unsupported np version {activity.get('np')!r}; this node speaks 1")
    kind = activity.get("type")
    if kind not in ACTIVITY_TYPES:
        raise ActivityError(f"unknown activity type {kind!r}")
    assert isinstance(kind, str)
    activity_id = _url_on(activity.get("id"), sender, "id")
    actor = _url_on(activity.get("actor"), sender, "actor")
    stream = _url_on(activity.get("stream"), sender, "stream")
    audience = _url_on(activity.get("audience"), sender, "audience")
    seq = activity.get("seq")
    if type(seq) is not int or seq < 1:
        raise ActivityError("seq must be a positive integer")
    try:
        published = parse_timestamp(activity.get("published"), what="published")
    except EncodingError as exc:
        raise ActivityError(str(exc)) from None
    to = activity.get("to")
    if not isinstance(to, list) or not 0 < len(to) <= MAX_RECIPIENTS:
        raise ActivityError(f"to must list 1-{MAX_RECIPIENTS} recipients on {destination}")
    recipients = tuple(_url_on(r, destination, f"to[{i}]") for i, r in enumerate(to))
    if len(set(recipients)) != len(recipients):
        raise ActivityError("to lists a recipient twice")
    obj = activity.get("object")
    value: str | Mapping[str, Any]
    version = None
    if kind in CONTENT_TYPES:
        if not isinstance(obj, Mapping):
            raise ActivityError(f"{kind} needs an embedded object")
        version = _check_object(kind, obj, sender)
        value = obj
    else:
        where = destination if REFERENCE_TARGET[kind] == "destination" else sender
        value = _url_on(obj, where, "object")
    if kind == "Remove" and activity.get("target") != stream + "#members":
        raise ActivityError("Remove needs target = the stream's #members collection")
    try:
        proof = parse_proof(activity.get("proof"))
        if key_id_origin(proof.verification_method) != sender:
            raise OriginMismatch(f"proof key {proof.verification_method} is not a key of {sender}")
    except (ProofError, EncodingError) as exc:
        raise ActivityError(f"proof: {exc}") from None
    return Activity(
        activity_id,
        kind,
        actor,
        stream,
        seq,
        published,
        audience,
        recipients,
        value,
        version,
        proof,
        activity,
    )


def verify_activity_proof(activity: Activity, lookup: ProofKeyLookup) -> None:
    """Verify the activity's object proof with a key of its origin node.

    Raises:
        ActivityError: If no key of the origin may have made the proof at its
            ``created`` time (unknown, retired before it, or revoked), or the
            proof does not verify (a forged or altered activity).
    """
    key = lookup(activity.proof.verification_method, activity.proof.created)
    if key is None:
        raise ActivityError(
            f"proof key {activity.proof.verification_method} is unknown, revoked or retired "
            f"before {format_timestamp(activity.proof.created)}"
        )
    try:
        verify_proof(activity.raw, activity.proof, key, unsigned=UNSIGNED_FIELDS)
    except ProofError as exc:
        raise ActivityError(str(exc)) from None
