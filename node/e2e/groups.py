"""Group membership logs and epoch keys (carnet-e2e-1, docs/protocol/e2e-groups.md §2–§4, §7).

A group (a class, or a school's "all guardians" group) is defined by a
hash-chained list of entries signed by one of its admins (the teacher, or the
school's emergency-role keys).  The node stores and orders the entries but
cannot write one; :func:`verify_log` replays a list from the first entry and
returns the membership and epochs it establishes, or raises
:class:`GroupLogError`.  Epoch keys are random, committed to in the signed
``rotate`` entry, sealed to each member with HPKE, and linked backwards to the
last school-year cut.  In a school group, a member with the role ``admin``
(who may send emergency alerts) must hold one of the group's admin keys when
added.  An ``admins`` entry replaces the admin keys (the emergency role); the
next ``rotate`` settles it, and each epoch records the admins in force when
its ``rotate`` was applied (:attr:`Epoch.admins`).
Layer rule: sans-IO (no network, database, files or clock); bytes and dicts
in, bytes and dicts out.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from federation.canonical import CanonicalJSONError, canonical_json
from node.e2e import primitives as p
from node.e2e.encoding import b64url_decode, b64url_encode
from node.e2e.hpke import HpkeError, hpke_open, hpke_seal
from node.e2e.keys import sign_object, verify_object

SUITE = "carnet-e2e-1"
CONTEXT_ENTRY = "carnet-e2e-1/group-entry"
_ENTRY_HASH_LABEL = b"carnet-e2e-1/group-entry-hash\x00"
_COMMIT_LABEL = b"carnet-e2e-1/epoch-commit\x00"
_LINK_INFO = b"carnet-e2e-1/history-link"
EPOCH_KEY_INFO = b"carnet-e2e-1/epoch-key"
OPS = ("create", "add", "remove", "rotate", "admins")
MAX_ADMINS = 16
HISTORY_POLICIES = ("school_year", "from_join")
ROLES = ("teacher", "guardian", "admin")
_ID_RE = re.compile(r"[A-Za-z0-9._@:-]{1,128}")
_ENTRY_KEYS = {"at", "body", "by", "group", "op", "prev", "seq", "suite", "type"}


class GroupLogError(ValueError):
    """A log entry is malformed, badly signed, unauthorized, or breaks the chain."""


class EpochKeyError(ValueError):
    """An epoch key does not open, or does not match its signed commitment."""


def new_group_id() -> str:
    return b64url_encode(secrets.token_bytes(16))


def new_epoch_key() -> bytes:
    return secrets.token_bytes(32)


def check_id(value: Any, what: str) -> str:
    if not isinstance(value, str) or _ID_RE.fullmatch(value) is None:
        raise GroupLogError(f"{what} must be 1-128 characters of A-Z a-z 0-9 . _ @ : -")
    return value


# --------------------------------------------------------------------------- entries


def entry_hash(entry: dict[str, Any]) -> str:
    """The chain hash of a signed entry (all members, ``sig`` included)."""
    return b64url_encode(hashlib.sha256(_ENTRY_HASH_LABEL + canonical_json(entry)).digest())


def make_entry(
    sign_sk: bytes,
    sign_pk: bytes,
    group: str,
    seq: int,
    prev: str | None,
    op: str,
    body: dict[str, Any],
    at: int,
) -> dict[str, Any]:
    """Build and sign one log entry; ``prev`` is the previous entry's hash (None for seq 0)."""
    entry: dict[str, Any] = {
        "suite": SUITE,
        "type": "group-entry",
        "group": group,
        "seq": seq,
        "prev": prev,
        "op": op,
        "by": b64url_encode(sign_pk),
        "body": body,
        "at": at,
    }
    return {**entry, "sig": sign_object(sign_sk, CONTEXT_ENTRY, entry)}


def create_body(admins: list[bytes], history: str = "school_year") -> dict[str, Any]:
    return {"admins": [b64url_encode(a) for a in admins], "history": history}


def admins_body(admins: list[bytes]) -> dict[str, Any]:
    """The body of an ``admins`` entry: the group's new admin (emergency-role) keys."""
    return {"admins": [b64url_encode(a) for a in admins]}


def add_body(member: str, role: str, sign_pk: bytes, enc_pk: bytes) -> dict[str, Any]:
    return {
        "member": member,
        "role": role,
        "sign_pk": b64url_encode(sign_pk),
        "enc_pk": b64url_encode(enc_pk),
    }


def remove_body(member: str) -> dict[str, Any]:
    return {"member": member}


def rotate_body(
    group: str,
    epoch: int,
    key: bytes,
    to: list[str],
    previous_key: bytes | None,
    *,
    _link_nonce_for_tests: bytes | None = None,
) -> dict[str, Any]:
    """A rotate body: commitment to ``key``; a history link to ``previous_key`` unless a cut."""
    link = None
    if previous_key is not None:
        link = make_history_link(
            group, epoch, key, previous_key, _nonce_for_tests=_link_nonce_for_tests
        )
    return {
        "epoch": epoch,
        "commit": b64url_encode(epoch_commitment(group, epoch, key)),
        "cut": previous_key is None,
        "link": link,
        "to": sorted(to),
    }


# --------------------------------------------------------------------------- epoch keys


def epoch_commitment(group: str, epoch: int, key: bytes) -> bytes:
    msg = _COMMIT_LABEL + canonical_json({"epoch": epoch, "group": group})
    return hmac.new(key, msg, hashlib.sha256).digest()


def check_epoch_key(group: str, epoch: int, key: bytes, commit_b64: str) -> bytes:
    """Return ``key`` if it matches the signed commitment, else raise EpochKeyError."""
    if len(key) != 32 or not hmac.compare_digest(
        epoch_commitment(group, epoch, key), b64url_decode(commit_b64, length=32, what="commit")
    ):
        raise EpochKeyError(f"epoch {epoch} key does not match the teacher's signed commitment")
    return key


def _link_aad(group: str, epoch: int) -> bytes:
    return canonical_json({"from": epoch, "group": group, "to": epoch - 1, "type": "history-link"})


def make_history_link(
    group: str,
    epoch: int,
    key: bytes,
    previous_key: bytes,
    *,
    _nonce_for_tests: bytes | None = None,
) -> dict[str, str]:
    link_key = p.hkdf(key, b"", _LINK_INFO, 32)
    nonce = _nonce_for_tests or secrets.token_bytes(12)
    ct = p.aes256gcm_encrypt(link_key, nonce, previous_key, _link_aad(group, epoch))
    return {"nonce": b64url_encode(nonce), "ct": b64url_encode(ct)}


def open_history_link(group: str, epoch: int, key: bytes, link: dict[str, str]) -> bytes:
    link_key = p.hkdf(key, b"", _LINK_INFO, 32)
    try:
        nonce = b64url_decode(link["nonce"], length=12, what="link nonce")
        ct = b64url_decode(link["ct"], length=48, what="link ct")
        return p.aes256gcm_decrypt(link_key, nonce, ct, _link_aad(group, epoch))
    except (ValueError, KeyError, TypeError) as exc:
        raise EpochKeyError(f"history link of epoch {epoch} does not open") from exc


def _envelope_aad(group: str, epoch: int, member: str, enc_pk: bytes) -> bytes:
    return canonical_json(
        {"enc_pk": b64url_encode(enc_pk), "epoch": epoch, "group": group, "member": member}
    )


def seal_epoch_key(
    group: str,
    epoch: int,
    key: bytes,
    member: str,
    enc_pk: bytes,
    *,
    _ikm_e_for_tests: bytes | None = None,
) -> dict[str, Any]:
    """An envelope: the epoch key sealed (HPKE) to one member's encryption key."""
    enc, ct = hpke_seal(
        enc_pk,
        EPOCH_KEY_INFO,
        _envelope_aad(group, epoch, member, enc_pk),
        key,
        _ikm_e_for_tests=_ikm_e_for_tests,
    )
    return {"epoch": epoch, "member": member, "enc": b64url_encode(enc), "ct": b64url_encode(ct)}


def open_epoch_key(
    group: str, envelope: dict[str, Any], member: str, enc_sk: bytes, enc_pk: bytes, commit_b64: str
) -> bytes:
    """Open an envelope addressed to ``member`` and check it against the signed commitment."""
    epoch = envelope.get("epoch")
    if type(epoch) is not int or epoch < 0 or envelope.get("member") != member:
        raise EpochKeyError("this envelope is not addressed to this member")
    try:
        key = hpke_open(
            enc_sk,
            b64url_decode(envelope["enc"], length=32, what="envelope enc"),
            EPOCH_KEY_INFO,
            _envelope_aad(group, epoch, member, enc_pk),
            b64url_decode(envelope["ct"], length=48, what="envelope ct"),
        )
    except (HpkeError, ValueError, KeyError, TypeError) as exc:
        raise EpochKeyError(f"the epoch {epoch} envelope does not open") from exc
    return check_epoch_key(group, epoch, key, commit_b64)


# --------------------------------------------------------------------------- verification


@dataclass
class Member:
    member: str
    role: str
    sign_pk: str
    enc_pk: str
    active: bool = True
    #: every signing key the log ever gave this member (old messages stay verifiable)
    past_sign_pks: set[str] = field(default_factory=set)


@dataclass
class Epoch:
    epoch: int
    commit: str
    cut: bool
    link: dict[str, str] | None
    to: list[str]
    seq: int
    #: the group's admins when this epoch's rotate was applied (who may sign its alerts)
    admins: list[str] = field(default_factory=list)


@dataclass
class GroupState:
    group: str
    admins: list[str]
    history: str
    members: dict[str, Member]
    epochs: list[Epoch]
    head_seq: int
    head_hash: str
    #: members removed since the last rotate: content must wait for a new epoch
    pending_removals: list[str]
    #: an ``admins`` entry since the last rotate: content must wait for a new epoch
    pending_admins: bool = False
    #: the admins named by ``create``: the root of trust that ``pinned_admins`` checks
    root_admins: list[str] = field(default_factory=list)

    @property
    def current_epoch(self) -> Epoch | None:
        return self.epochs[-1] if self.epochs else None

    @property
    def pending(self) -> bool:
        """True while a removal or an admin change waits for the next rotate:
        a client must not encrypt under the current epoch."""
        return bool(self.pending_removals) or self.pending_admins

    def epoch_admins(self, epoch: Any) -> list[str] | None:
        """The admins in force for ``epoch`` (None if the log has no such epoch)."""
        if type(epoch) is not int or not 0 <= epoch < len(self.epochs):
            return None
        return self.epochs[epoch].admins

    def active_members(self) -> list[str]:
        return sorted(m.member for m in self.members.values() if m.active)

    def signer_is_member(self, member: str, sign_pk: str) -> bool:
        m = self.members.get(member)
        return m is not None and (sign_pk == m.sign_pk or sign_pk in m.past_sign_pks)


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise GroupLogError(message)


def _b64_key(value: Any, what: str) -> str:
    try:
        b64url_decode(value, length=32, what=what)
    except (ValueError, TypeError) as exc:
        raise GroupLogError(f"{what} must be 32 bytes of base64url") from exc
    return str(value)


def _check_shape(entry: Any, seq: int, group: str | None) -> dict[str, Any]:
    _require(isinstance(entry, dict), f"entry {seq} is not an object")
    try:
        canonical_json(entry)  # signatures and hashes need it; refuse floats, huge integers
    except CanonicalJSONError as exc:
        raise GroupLogError(f"entry {seq} is not canonical JSON: {exc}") from exc
    _require(set(entry) == _ENTRY_KEYS | {"sig"}, f"entry {seq} has unexpected or missing members")
    _require(
        entry["suite"] == SUITE and entry["type"] == "group-entry",
        f"entry {seq}: wrong suite or type",
    )
    _require(
        entry["seq"] == seq and type(entry["seq"]) is int,
        f"entry {seq}: sequence number out of order",
    )
    _require(entry["op"] in OPS, f"entry {seq}: unknown operation")
    _require(type(entry["at"]) is int, f"entry {seq}: 'at' must be an integer")
    _require(isinstance(entry["body"], dict), f"entry {seq}: body must be an object")
    check_id(entry["group"], "group")
    if group is not None:
        _require(entry["group"] == group, f"entry {seq} belongs to another group")
    return dict(entry)


def apply_entry(state: GroupState | None, entry: Any) -> GroupState:
    """Check one entry against the state before it; return the state after it."""
    seq = 0 if state is None else state.head_seq + 1
    e = _check_shape(entry, seq, None if state is None else state.group)
    unsigned = {k: v for k, v in e.items() if k != "sig"}
    by = _b64_key(e["by"], "signer key")
    _require(
        verify_object(b64url_decode(by), CONTEXT_ENTRY, unsigned, e["sig"])
        if isinstance(e["sig"], str)
        else False,
        f"entry {seq}: bad signature",
    )
    body = e["body"]
    if state is None:
        _require(
            e["op"] == "create" and e["prev"] is None, "the log must start with a create entry"
        )
        _require(set(body) == {"admins", "history"}, "create: unexpected members")
        admins = body["admins"]
        _require(isinstance(admins, list) and 1 <= len(admins) <= 16, "create: 1-16 admins")
        admins = [_b64_key(a, "admin key") for a in admins]
        _require(by in admins, "create must be signed by one of its admins")
        _require(body["history"] in HISTORY_POLICIES, "create: unknown history policy")
        return GroupState(
            e["group"], admins, body["history"], {}, [], 0, entry_hash(e), [], False, list(admins)
        )
    _require(
        e["prev"] == state.head_hash, f"entry {seq}: does not follow the previous entry (fork)"
    )
    _require(
        by in state.admins, f"entry {seq}: signed by someone who is not an admin of this group"
    )
    op = e["op"]
    if op == "create":
        raise GroupLogError(f"entry {seq}: a second create")
    if op == "add":
        _require(set(body) == {"member", "role", "sign_pk", "enc_pk"}, "add: unexpected members")
        mid = check_id(body["member"], "member")
        _require(body["role"] in ROLES, "add: unknown role")
        sign_pk, enc_pk = _b64_key(body["sign_pk"], "sign_pk"), _b64_key(body["enc_pk"], "enc_pk")
        _require(
            body["role"] != "admin" or sign_pk in state.admins,
            f"entry {seq}: add: a member with the role admin must hold one of the group's"
            " admin (emergency-role) keys",
        )
        old = state.members.get(mid)
        past = set() if old is None else old.past_sign_pks | {old.sign_pk}
        state.members[mid] = Member(mid, body["role"], sign_pk, enc_pk, True, past)
        if mid in state.pending_removals:
            state.pending_removals.remove(mid)
    elif op == "admins":
        _require(set(body) == {"admins"}, "admins: unexpected members")
        admins = body["admins"]
        _require(
            isinstance(admins, list) and 1 <= len(admins) <= MAX_ADMINS,
            f"entry {seq}: admins: 1-{MAX_ADMINS} admins",
        )
        admins = [_b64_key(a, "admin key") for a in admins]
        _require(len(set(admins)) == len(admins), f"entry {seq}: admins: a key is listed twice")
        state.admins = admins
        state.pending_admins = True
    elif op == "remove":
        _require(set(body) == {"member"}, "remove: unexpected members")
        mid = check_id(body["member"], "member")
        _require(mid in state.members and state.members[mid].active, "remove: not a member")
        state.members[mid].active = False
        state.pending_removals.append(mid)
    else:
        _require(
            set(body) == {"epoch", "commit", "cut", "link", "to"}, "rotate: unexpected members"
        )
        number = len(state.epochs)
        _require(
            body["epoch"] == number and type(body["epoch"]) is int,
            f"rotate: expected epoch {number}",
        )
        _b64_key(body["commit"], "commit")
        _require(type(body["cut"]) is bool, "rotate: cut must be true or false")
        _require(number > 0 or body["cut"], "rotate: the first epoch must be a cut")
        if body["cut"]:
            _require(body["link"] is None, "rotate: a cut has no history link")
        else:
            link = body["link"]
            _require(
                isinstance(link, dict) and set(link) == {"nonce", "ct"}, "rotate: bad history link"
            )
        _require(isinstance(body["to"], list), "rotate: 'to' must be a list")
        _require(body["to"] == state.active_members(), "rotate: recipients differ from the members")
        epoch = Epoch(number, body["commit"], body["cut"], body["link"], list(body["to"]), seq)
        epoch.admins = list(state.admins)
        state.epochs.append(epoch)
        state.pending_removals = []
        state.pending_admins = False
    state.head_seq, state.head_hash = seq, entry_hash(e)
    return state


def verify_log(
    entries: list[Any],
    *,
    pinned_admins: list[str] | None = None,
    known_head: tuple[int, str] | None = None,
) -> GroupState:
    """Replay a whole log.

    Args:
        pinned_admins: admin keys remembered from an earlier visit (trust on first
            use, checked against the slip's fingerprint); a log naming others fails.
            They must be the ``create`` admins (:attr:`GroupState.root_admins`,
            the root every later ``admins`` entry descends from) or, with
            ``known_head``, the admins in force at that head (what a page
            remembered with it).  Without ``admins`` entries both are the
            current admins.
        known_head: the highest ``(seq, hash)`` seen before; a log that does not
            contain it (rollback, or a rewritten history) fails.
    """
    _require(isinstance(entries, list) and len(entries) > 0, "the log is empty")
    state: GroupState | None = None
    hashes: list[str] = []
    admins_at: list[list[str]] = []
    for entry in entries:
        state = apply_entry(state, entry)
        hashes.append(state.head_hash)
        admins_at.append(list(state.admins))
    assert state is not None
    head_ok = False
    if known_head is not None:
        seq, digest = known_head
        head_ok = type(seq) is int and 0 <= seq < len(hashes) and hashes[seq] == digest
    if pinned_admins is not None:
        pinned = sorted(pinned_admins)
        _require(
            pinned == sorted(state.root_admins)
            or (head_ok and pinned == sorted(admins_at[known_head[0]])),  # type: ignore[index]
            "the class's teacher keys changed",
        )
    if known_head is not None:
        _require(head_ok, "the log was rolled back or rewritten")
    return state


def epoch_keys_from(state: GroupState, newest_epoch: int, newest_key: bytes) -> dict[int, bytes]:
    """Walk history links from a checked epoch key back to the last cut."""
    if type(newest_epoch) is not int or not 0 <= newest_epoch < len(state.epochs):
        raise EpochKeyError("no such epoch in this log")
    epoch = state.epochs[newest_epoch]
    keys = {newest_epoch: check_epoch_key(state.group, newest_epoch, newest_key, epoch.commit)}
    key = newest_key
    while not epoch.cut and epoch.link is not None:
        previous = open_history_link(state.group, epoch.epoch, key, epoch.link)
        epoch = state.epochs[epoch.epoch - 1]
        key = check_epoch_key(state.group, epoch.epoch, previous, epoch.commit)
        keys[epoch.epoch] = key
    return keys
