"""Plain helpers that build class logs, epoch keys and messages with the reference client.

A :class:`ClassGroup` records everything a node would store for one class:
the signed log, every envelope it was handed and every message (with the
sealed keys of recipient-mode ones).  The epoch keys themselves are kept
apart, as only the teacher's client knows them all.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field
from typing import Any

from node.e2e import groups as grp
from node.e2e import messages as msg
from node.e2e.encoding import b64url_decode
from node.e2e.keys import AccountKeys, generate_account_keys

_ids = itertools.count(1)


@dataclass
class Person:
    member: str
    role: str
    keys: AccountKeys


@dataclass
class ClassGroup:
    group: str
    teacher: Person
    log: list[dict[str, Any]] = field(default_factory=list)
    #: known to the teacher's client only
    epoch_keys: list[bytes] = field(default_factory=list)
    #: everything below is what the node stores
    envelopes: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)


def person(role: str = "guardian") -> Person:
    return Person(f"{next(_ids)}@school.test", role, generate_account_keys())


def append(
    c: ClassGroup, op: str, body: dict[str, Any], signer: AccountKeys | None = None
) -> dict[str, Any]:
    """Sign (by the teacher unless ``signer``) and append one entry; returns it."""
    s = signer or c.teacher.keys
    prev = grp.entry_hash(c.log[-1]) if c.log else None
    entry = grp.make_entry(s.sign_sk, s.sign_pk, c.group, len(c.log), prev, op, body, len(c.log))
    c.log.append(entry)
    return entry


def next_entry(
    c: ClassGroup, op: str, body: dict[str, Any], signer: AccountKeys | None = None
) -> dict[str, Any]:
    """The entry that would come next, without appending it."""
    s = signer or c.teacher.keys
    prev = grp.entry_hash(c.log[-1])
    return grp.make_entry(s.sign_sk, s.sign_pk, c.group, len(c.log), prev, op, body, len(c.log))


def state(c: ClassGroup) -> grp.GroupState:
    return grp.verify_log(copy.deepcopy(c.log))


def seal_current(c: ClassGroup, p: Person) -> dict[str, Any]:
    """Seal the current epoch key to ``p`` and store the envelope."""
    epoch = len(c.epoch_keys) - 1
    env = grp.seal_epoch_key(c.group, epoch, c.epoch_keys[epoch], p.member, p.keys.enc_pk)
    c.envelopes.append(env)
    return env


def rotate(c: ClassGroup, *, cut: bool = False) -> bytes:
    """A new epoch key: rotate entry (linked unless a cut) and one envelope per member."""
    key = grp.new_epoch_key()
    members = state(c).active_members()
    previous = None if cut or not c.epoch_keys else c.epoch_keys[-1]
    append(c, "rotate", grp.rotate_body(c.group, len(c.epoch_keys), key, members, previous))
    c.epoch_keys.append(key)
    st = state(c)
    for m in members:
        enc_pk = b64url_decode(st.members[m].enc_pk)
        c.envelopes.append(grp.seal_epoch_key(c.group, len(c.epoch_keys) - 1, key, m, enc_pk))
    return key


def add(c: ClassGroup, p: Person) -> Person:
    """The teacher approves ``p`` and seals the current epoch key to them."""
    append(c, "add", grp.add_body(p.member, p.role, p.keys.sign_pk, p.keys.enc_pk))
    if c.epoch_keys:
        seal_current(c, p)
    return p


def remove(c: ClassGroup, p: Person) -> None:
    append(c, "remove", grp.remove_body(p.member))


def new_class(guardians: int = 3) -> tuple[ClassGroup, list[Person]]:
    """Create, add the teacher and ``guardians`` guardians, rotate epoch 0 (a cut)."""
    teacher = person("teacher")
    c = ClassGroup(grp.new_group_id(), teacher)
    append(c, "create", grp.create_body([teacher.keys.sign_pk]))
    add(c, teacher)
    people = [add(c, person()) for _ in range(guardians)]
    rotate(c, cut=True)
    return c, people


def post(
    c: ClassGroup,
    author: Person,
    text: str,
    *,
    epoch: int | None = None,
    kind: str = "post",
    parent: str | None = None,
) -> dict[str, Any]:
    """An epoch-mode message under ``epoch`` (the current one by default), stored."""
    e = len(c.epoch_keys) - 1 if epoch is None else epoch
    mid = msg.new_message_id()
    body: dict[str, Any] = {"text": text}
    if kind == "post":
        body["attachments"] = []
    if kind == "reaction":
        body = {"emoji": text}
    sealed = msg.encrypt_message(
        sign_sk=author.keys.sign_sk,
        sign_pk=author.keys.sign_pk,
        author=author.member,
        group=c.group,
        kind=kind,
        body=body,
        message_key=msg.message_key_from_epoch(c.epoch_keys[e], c.group, e, mid),
        epoch=e,
        parent=parent,
        message_id=mid,
    )
    wire = sealed.wire()
    c.messages.append(wire)
    return wire


def direct_post(
    c: ClassGroup, author: Person, to: list[Person], text: str, *, kind: str = "post"
) -> dict[str, Any]:
    """A recipient-mode message: a fresh key sealed to each of ``to``, stored."""
    mid, key = msg.new_message_id(), grp.new_epoch_key()
    body: dict[str, Any] = {"text": text, "attachments": []}
    sealed = msg.encrypt_message(
        sign_sk=author.keys.sign_sk,
        sign_pk=author.keys.sign_pk,
        author=author.member,
        group=c.group,
        kind=kind,
        body=body,
        message_key=key,
        epoch=None,
        to=[p.member for p in to],
        message_id=mid,
    )
    keys = [msg.seal_message_key(c.group, mid, key, p.member, p.keys.enc_pk) for p in to]
    wire = {**sealed.wire(), "keys": keys}
    c.messages.append(wire)
    return wire


def epoch_keys_of(c: ClassGroup, p: Person) -> dict[int, bytes]:
    """What ``p``'s client recovers: its newest envelope, checked, then links back to a cut."""
    st = state(c)
    mine = [e for e in c.envelopes if e["member"] == p.member]
    if not mine:
        return {}
    env = max(mine, key=lambda e: e["epoch"])
    commit = st.epochs[env["epoch"]].commit
    key = grp.open_epoch_key(c.group, env, p.member, p.keys.enc_sk, p.keys.enc_pk, commit)
    return grp.epoch_keys_from(st, env["epoch"], key)


def read(
    st: grp.GroupState, p: Person, wire: dict[str, Any], epoch_keys: dict[int, bytes]
) -> dict[str, Any]:
    """Decrypt as ``p`` would: message key (epoch or sealed), signer check, then the body."""
    header = wire["header"]
    if header["epoch"] is not None:
        if header["epoch"] not in epoch_keys:
            raise msg.MessageError("no key for this epoch")
        key = msg.message_key_from_epoch(
            epoch_keys[header["epoch"]], st.group, header["epoch"], header["id"]
        )
    else:
        mine = [k for k in wire.get("keys", []) if k["member"] == p.member]
        if not mine:
            raise msg.MessageError("not a recipient")
        key = msg.open_message_key(
            st.group, header["id"], mine[0], p.member, p.keys.enc_sk, p.keys.enc_pk
        )
    if not st.signer_is_member(header["author"], header["by"]):
        raise msg.MessageError("signed by a key the log does not give to the author")
    return msg.decrypt_message(wire, key)
