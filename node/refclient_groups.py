"""The class-feed half of the Python reference client: what a teacher's or parent's browser does.

The demo seeding, the tests and the benchmarks use these functions to act
exactly as ``web/static/js/pages/feed.js`` does: set up a class's group,
approve and remove members, open epoch keys, and encrypt or decrypt posts,
comments and reactions.  They work on the JSON the node's API returns.
The school's "all guardians" group and its emergency alerts
(docs/protocol/e2e-groups.md §7) have their own helpers: setup_school_group,
add_guardians, change_admins, encrypt_alert and decrypt_alert.
Layer rule: no I/O (no network, database or files); the clock is read for
the informative ``at`` fields only.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from node.e2e import groups as g
from node.e2e import messages as m
from node.e2e.encoding import b64url_decode
from node.e2e.keys import AccountKeys


def _now() -> int:
    return int(time.time())


def _append(
    keys: AccountKeys,
    log: list[dict[str, Any]],
    op: str,
    body: dict[str, Any],
    group: str | None = None,
) -> dict[str, Any]:
    """Sign the next entry of ``log`` and append it (``group`` only for the first)."""
    group = log[0]["group"] if log else group
    assert group is not None
    prev = g.entry_hash(log[-1]) if log else None
    entry = g.make_entry(keys.sign_sk, keys.sign_pk, group, len(log), prev, op, body, _now())
    log.append(entry)
    return entry


def setup_group(
    keys: AccountKeys, me: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], bytes]:
    """The teacher's first visit: create, add themselves, epoch 0 (a cut), their envelope."""
    group, key = g.new_group_id(), g.new_epoch_key()
    log: list[dict[str, Any]] = []
    _append(keys, log, "create", g.create_body([keys.sign_pk]), group)
    _append(keys, log, "add", g.add_body(me, "teacher", keys.sign_pk, keys.enc_pk))
    _append(keys, log, "rotate", g.rotate_body(group, 0, key, [me], None))
    return log, [g.seal_epoch_key(group, 0, key, me, keys.enc_pk)], key


def approve(
    keys: AccountKeys, log: list[dict[str, Any]], candidates: list[dict[str, Any]], epoch_key: bytes
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``add`` entries for candidates (as the node lists them) and the current epoch key sealed to each."""
    log = list(log)
    state = g.verify_log(log)
    epoch = state.current_epoch
    assert epoch is not None
    new, envelopes = [], []
    for c in candidates:
        sign_pk, enc_pk = (
            b64url_decode(c["sign_pk"], length=32),
            b64url_decode(c["enc_pk"], length=32),
        )
        new.append(_append(keys, log, "add", g.add_body(c["member"], c["role"], sign_pk, enc_pk)))
        envelopes.append(g.seal_epoch_key(state.group, epoch.epoch, epoch_key, c["member"], enc_pk))
    return new, envelopes


def remove(
    keys: AccountKeys,
    log: list[dict[str, Any]],
    members: list[str],
    epoch_key: bytes,
    *,
    cut: bool = False,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], bytes]:
    """``remove`` entries then a ``rotate`` sealed to everyone left (also: a new school year with ``cut``)."""
    log = list(log)
    new = [_append(keys, log, "remove", g.remove_body(member)) for member in members]
    state = g.verify_log(log)
    number = len(state.epochs)
    key = g.new_epoch_key()
    to = state.active_members()
    new.append(
        _append(
            keys,
            log,
            "rotate",
            g.rotate_body(state.group, number, key, to, None if cut else epoch_key),
        )
    )
    envelopes = [
        g.seal_epoch_key(
            state.group, number, key, mid, b64url_decode(state.members[mid].enc_pk, length=32)
        )
        for mid in to
    ]
    return new, envelopes, key


def open_epoch_keys(
    view: dict[str, Any], keys: AccountKeys
) -> tuple[g.GroupState, dict[int, bytes]]:
    """Verify the log the node served and open every epoch key this member can reach."""
    state = g.verify_log(view["entries"])
    me = view["me"]
    found: dict[int, bytes] = {}
    for envelope in sorted(view["envelopes"], key=lambda e: -e["epoch"]):
        if envelope["epoch"] in found:
            continue
        commit = state.epochs[envelope["epoch"]].commit
        key = g.open_epoch_key(state.group, envelope, me, keys.enc_sk, keys.enc_pk, commit)
        found.update(g.epoch_keys_from(state, envelope["epoch"], key))
    return state, found


def encrypt(
    keys: AccountKeys, me: str, state: g.GroupState, epoch_keys: dict[int, bytes], kind: str,
    body: dict[str, Any], *, parent: str | None = None, to: list[str] | None = None,
    message_id: str | None = None, version: int = 1,
) -> dict[str, Any]:  # fmt: skip
    """The request body members ``message`` (and ``keys`` for recipient mode) for a post or reply."""
    message_id = message_id or m.new_message_id()
    if state.pending_admins:
        raise g.EpochKeyError("an admin change is waiting for a new epoch key")
    if to is None:
        epoch = state.current_epoch
        assert epoch is not None
        key = m.message_key_from_epoch(
            epoch_keys[epoch.epoch], state.group, epoch.epoch, message_id
        )
        sealed = m.encrypt_message(
            sign_sk=keys.sign_sk, sign_pk=keys.sign_pk, author=me, group=state.group, kind=kind, body=body,
            message_key=key, epoch=epoch.epoch, parent=parent, message_id=message_id, version=version, at=_now(),
        )  # fmt: skip
        return {"message": sealed.wire()}
    key = secrets.token_bytes(32)
    sealed = m.encrypt_message(
        sign_sk=keys.sign_sk, sign_pk=keys.sign_pk, author=me, group=state.group, kind=kind, body=body,
        message_key=key, epoch=None, to=to, parent=parent, message_id=message_id, version=version, at=_now(),
    )  # fmt: skip
    sealed_keys = [
        m.seal_message_key(
            state.group, message_id, key, mid, b64url_decode(state.members[mid].enc_pk, length=32)
        )
        for mid in sorted(to)
    ]
    return {"message": sealed.wire(), "keys": sealed_keys}


def decrypt(
    item: dict[str, Any],
    state: g.GroupState,
    epoch_keys: dict[int, bytes],
    keys: AccountKeys,
    me: str,
) -> dict[str, Any]:
    """Open a feed item's message (or reply) as the browser does; raises MessageError or EpochKeyError."""
    wire, header = item["message"], item["message"]["header"]
    if header["kind"] == "alert":
        m.check_alert_signer(state, header)
    elif not state.signer_is_member(header["author"], header["by"]):
        raise m.MessageError("signed by a key the class log does not give to its author")
    if header["epoch"] is not None:
        if header["epoch"] not in epoch_keys:
            raise g.EpochKeyError("no key for this epoch (before you joined this school year)")
        key = m.message_key_from_epoch(
            epoch_keys[header["epoch"]], state.group, header["epoch"], header["id"]
        )
    else:
        if item.get("key") is None:
            raise m.MessageError("this message is not addressed to you")
        key = m.open_message_key(
            state.group, header["id"], item["key"], me, keys.enc_sk, keys.enc_pk
        )
    return m.decrypt_message(wire, key)


# --------------------------------------------------------------------------- school group, alerts


def setup_school_group(
    keys: AccountKeys, me: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], bytes]:
    """A school admin's first visit: the "all guardians" group (spec §7).

    ``create`` (admins = this admin's emergency-role key, history ``from_join``),
    ``add`` of themselves with the role ``admin``, epoch 0 (a cut), their envelope.
    """
    group, key = g.new_group_id(), g.new_epoch_key()
    log: list[dict[str, Any]] = []
    _append(keys, log, "create", g.create_body([keys.sign_pk], "from_join"), group)
    _append(keys, log, "add", g.add_body(me, "admin", keys.sign_pk, keys.enc_pk))
    _append(keys, log, "rotate", g.rotate_body(group, 0, key, [me], None))
    return log, [g.seal_epoch_key(group, 0, key, me, keys.enc_pk)], key


def add_guardians(
    keys: AccountKeys, log: list[dict[str, Any]], candidates: list[dict[str, Any]], epoch_key: bytes
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``add`` entries for ``{"member", "sign_pk", "enc_pk"}`` candidates and the current
    epoch key sealed to each: the whole school in one call.

    A candidate's optional ``"role"`` is ``"guardian"`` (the default) or ``"admin"``
    (a staff member who may sign alerts: their ``sign_pk`` must be one of the
    group's current admins, see :func:`change_admins`).
    """
    state = g.verify_log(list(log))
    epoch = state.current_epoch
    assert epoch is not None, "the school group has no epoch yet"
    g.check_epoch_key(state.group, epoch.epoch, epoch_key, epoch.commit)
    group, seq, prev = state.group, state.head_seq + 1, state.head_hash
    at = _now()
    new, envelopes = [], []
    for c in candidates:
        member = g.check_id(c["member"], "member")
        sign_pk = b64url_decode(c["sign_pk"], length=32, what="sign_pk")
        enc_pk = b64url_decode(c["enc_pk"], length=32, what="enc_pk")
        role = c.get("role", "guardian")
        if role not in ("guardian", "admin"):
            raise ValueError("a school group member is a guardian or an admin")
        if role == "admin" and c["sign_pk"] not in state.admins:
            raise ValueError("an admin's signing key must be one of the group's admins")
        body = g.add_body(member, role, sign_pk, enc_pk)
        entry = g.make_entry(keys.sign_sk, keys.sign_pk, group, seq, prev, "add", body, at)
        new.append(entry)
        envelopes.append(g.seal_epoch_key(group, epoch.epoch, epoch_key, member, enc_pk))
        seq, prev = seq + 1, g.entry_hash(entry)
    return new, envelopes


def change_admins(
    keys: AccountKeys,
    log: list[dict[str, Any]],
    new_admins: list[bytes],
    epoch_key: bytes,
    members_enc: dict[str, bytes] | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], bytes]:
    """Change who may sign alerts (spec §2 ``admins``, §7): the ``admins`` entry, then a
    ``rotate`` (a cut: the school group is ``from_join``) sealed to every active member.

    ``keys`` must hold one of the current admins; ``epoch_key`` is the current
    epoch's key (checked against its commitment).  ``members_enc`` optionally
    gives members' encryption keys (member id → 32 bytes) to seal to instead of
    the keys in the log; it must agree with the log.  Returns the two new
    entries, one envelope per active member and the new epoch key.  Members with
    the role ``admin`` whose key is no longer an admin stay members (they read
    alerts) but sign none in the new epoch.
    """
    log = list(log)
    state = g.verify_log(log)
    epoch = state.current_epoch
    assert epoch is not None, "the group has no epoch yet"
    g.check_epoch_key(state.group, epoch.epoch, epoch_key, epoch.commit)
    new = [_append(keys, log, "admins", g.admins_body(new_admins))]
    state = g.verify_log(log)
    number, key, to = len(state.epochs), g.new_epoch_key(), state.active_members()
    new.append(_append(keys, log, "rotate", g.rotate_body(state.group, number, key, to, None)))
    envelopes = []
    for mid in to:
        enc_pk = b64url_decode(state.members[mid].enc_pk, length=32)
        if members_enc is not None and mid in members_enc and members_enc[mid] != enc_pk:
            raise ValueError(f"the encryption key given for {mid} is not the one in the log")
        envelopes.append(g.seal_epoch_key(state.group, number, key, mid, enc_pk))
    return new, envelopes, key


def encrypt_alert(
    keys: AccountKeys,
    me: str,
    state: g.GroupState,
    epoch_keys: dict[int, bytes],
    template: str,
    text: str,
    drill: bool,
    parent: str | None = None,
) -> dict[str, Any]:
    """The request body member ``message`` of an alert (``parent``: the thread's first alert).

    Refuses, before sending, a body or a signer that recipients would refuse.
    """
    body = m.check_alert_body({"template": template, "text": text, "drill": drill})
    epoch = state.current_epoch
    assert epoch is not None, "the school group has no epoch yet"
    if state.pending_removals:
        raise g.EpochKeyError("a removal is waiting for a new epoch key")
    if state.pending_admins:
        raise g.EpochKeyError("an admin change is waiting for a new epoch key")
    message_id = m.new_message_id()
    key = m.message_key_from_epoch(epoch_keys[epoch.epoch], state.group, epoch.epoch, message_id)
    sealed = m.encrypt_message(
        sign_sk=keys.sign_sk, sign_pk=keys.sign_pk, author=me, group=state.group, kind="alert",
        body=body, message_key=key, epoch=epoch.epoch, parent=parent, message_id=message_id,
        at=_now(),
    )  # fmt: skip
    m.check_alert_signer(state, sealed.header)
    return {"message": sealed.wire()}


def decrypt_alert(
    item: dict[str, Any], state: g.GroupState, epoch_keys: dict[int, bytes]
) -> dict[str, Any]:
    """Open an alert as a guardian's browser does: emergency-role signer, then the
    ciphertext, then the body; raises MessageError or EpochKeyError."""
    wire = item["message"]
    header = m.check_header(wire["header"] if isinstance(wire, dict) else None)
    if header["kind"] != "alert":
        raise m.MessageError("this is not an alert")
    m.check_alert_signer(state, header)
    epoch = header["epoch"]
    if epoch not in epoch_keys:
        raise g.EpochKeyError("no key for this alert (sent before you were added)")
    key = m.message_key_from_epoch(epoch_keys[epoch], state.group, epoch, header["id"])
    return m.decrypt_message(wire, key, state=state)
