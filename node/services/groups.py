"""A class's encrypted group: its signed membership log, members and sealed epoch keys.

Who may do what:
- only the class's teacher (who holds the keys named on the access slips)
  creates the group and signs entries: approving a guardian (``add``),
  removing one (``remove`` then ``rotate``), starting a new school year;
- the node checks every entry with the reference verifier before storing
  it, appends only at the head, accepts an ``add`` only for the account's
  current keys and only for the teacher or a guardian of a child of the class,
  and requires the epoch key to be sealed to every member who should hold it;
- a guardian of the class reads the log and their own envelopes once the
  teacher has approved them; before that they see only that they wait.
The node never sees an epoch key: envelopes are HPKE ciphertext.
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from node.e2e import groups as e2e
from node.e2e.encoding import b64url_decode, canonical_text
from node.errors import N_, Conflict, Invalid, NotFound, PermissionDenied
from node.services import audit, policy, remote_join
from node.services.context import Actor, ServiceContext
from node.services.keyring import fingerprint_of
from node.storage import accounts as account_store
from node.storage import directory as directory_store
from node.storage import groups as store
from node.storage import mirrors as mirror_store
from node.storage import peers as peer_store
from node.storage.db import write_transaction

MAX_ENTRIES_PER_CALL = 200
CLASS_LOG_REFUSED = N_("The class log was refused: %(reason)s")
#: the form member_id writes: no sign, no leading zero, within the ids a database can hold
_ACCOUNT_ID = re.compile(r"[1-9][0-9]{0,15}")
#: Account statuses that may be members: local guardians and staff, and guardians
#: of another node (``remote``: their keys came with their request to join).
USABLE = ("active", "remote")


def _is_group_id(value: str) -> bool:
    try:
        b64url_decode(value, length=16, what="group id")
    except ValueError:
        return False
    return True


def member_id(ctx: ServiceContext, account_id: int) -> str:
    """The account's id inside groups: ``<account id>@<node host>``."""
    return f"{account_id}@{ctx.config.origin.split('://', 1)[1]}"


def member_of(ctx: ServiceContext, account: Any) -> str:
    """The member id of an account row: its own for a guardian of another node."""
    return directory_store.remote_member_of(account.login) or member_id(ctx, account.id)


def link_member(ctx: ServiceContext, link: directory_store.GuardianLink) -> str:
    """The member id of a (child, guardian) link's guardian."""
    return link.remote_member or member_id(ctx, link.account_id)


def _local_account(ctx: ServiceContext, member: str) -> int | None:
    local, _, host = member.partition("@")
    if host != ctx.config.origin.split("://", 1)[1] or _ACCOUNT_ID.fullmatch(local) is None:
        return None
    return int(local)


def accounts_of_members(ctx: ServiceContext, members: Iterable[str]) -> dict[str, int | None]:
    """member id → the account on this node it names (a remote guardian's shadow
    account for another node's member), or None; one query for all remote ones."""
    found: dict[str, int | None] = {}
    remote = []
    for member in members:
        found[member] = _local_account(ctx, member)
        if found[member] is None:
            remote.append(member)
    prefix = directory_store.REMOTE_LOGIN_PREFIX
    by_login = account_store.account_ids_by_login(prefix + m for m in remote)
    for member in remote:
        found[member] = by_login.get(prefix + member)
    return found


def account_of_member(ctx: ServiceContext, member: str) -> int | None:
    """The account on this node a member id names, or None (not a member this node knows)."""
    return accounts_of_members(ctx, [member])[member]


@dataclass(frozen=True)
class Candidate:
    """A person the teacher's client should sign for: approve (add) or remove."""

    account_id: int
    member: str
    display_name: str
    role: str
    sign_pk: str
    enc_pk: str
    fingerprint: str | None
    children: list[str]
    #: for a guardian of another school's node ("remote" account): that school's name
    school: str | None = None


@dataclass(frozen=True)
class ChildMembers:
    """For the teacher's composer: who a post about one child is sealed to."""

    id: int
    name: str
    members: list[str]


@dataclass(frozen=True)
class GroupView:
    class_id: int
    group: str | None
    #: ``none`` (no group yet), ``waiting`` (not approved yet), ``member``, ``manager``,
    #: ``keys_changed`` (the teacher's keys are not the ones that signed the class log),
    #: ``outside`` (an admin: manages the class, is not a member of its encrypted feed)
    status: str
    me: str
    entries: list[dict[str, Any]]
    envelopes: list[dict[str, Any]]
    teacher_fingerprint: str | None
    to_approve: list[Candidate]
    to_remove: list[Candidate]
    children: list[ChildMembers] = field(default_factory=list)


def _class_for(
    actor: Actor, class_id: int, children: list[directory_store.Child] | None = None
) -> tuple[directory_store.SchoolClass, bool]:
    """The class and whether the actor is its teacher; NotFound for strangers.

    ``children``: the actor's children, when the caller has them already.
    """
    school_class = directory_store.select_class(class_id)
    if school_class is None:
        raise NotFound(N_("No such class."))
    if policy.can_manage_class(actor, school_class):
        return school_class, school_class.teacher_id == actor.account_id
    if children is None:
        children = directory_store.select_children_of_guardian(actor.account_id)
    if actor.is_guardian and any(c.school_class_id == class_id for c in children):
        return school_class, False
    raise NotFound(N_("No such class."))


def _guardians_of_class(class_id: int) -> dict[int, list[str]]:
    """account id → first names of their children in this class."""
    names = {c.id: c.first_name for c in directory_store.select_children_of_class(class_id)}
    found: dict[int, list[str]] = {}
    for link in directory_store.guardian_links_of_class(class_id):
        found.setdefault(link.account_id, []).append(names[link.child_id])
    return found


def _home_schools(accounts: Iterable[Any]) -> dict[int, str]:
    """Peer id → school name, for the remote guardians among ``accounts`` (one query, if any)."""
    if not any(a.status == "remote" and a.home_peer_id for a in accounts):
        return {}
    return {peer.id: peer.name for peer in peer_store.select_peers()}


def _candidates(
    ctx: ServiceContext, school_class: Any, group: Any
) -> tuple[list[Candidate], list[Candidate]]:
    members = {m.member: m for m in store.select_members(group.id)} if group else {}
    wanted = _guardians_of_class(school_class.id)
    wanted.setdefault(school_class.teacher_id, [])
    # every account involved in one query: this runs before each post and reply
    owners = accounts_of_members(ctx, members)
    held = set(owners.values())
    accounts = account_store.select_accounts({*wanted, *(i for i in held if i)})
    approve, remove = [], []
    schools = _home_schools(accounts.values())
    for account_id, children in sorted(wanted.items()):
        account = accounts.get(account_id)
        if (
            account is None
            or account.status not in USABLE
            or not account.sign_pk
            or not account.enc_pk
        ):
            continue
        mid = member_of(ctx, account)
        current = members.get(mid)
        if (
            current is None
            or not current.active
            or current.sign_pk != account.sign_pk
            or current.enc_pk != account.enc_pk
        ):
            role = "teacher" if account_id == school_class.teacher_id else "guardian"
            approve.append(
                Candidate(account_id, mid, account.display_name, role, account.sign_pk, account.enc_pk,
                          fingerprint_of(account.sign_pk), sorted(children),
                          schools.get(account.home_peer_id or 0))
            )  # fmt: skip
    for mid, m in members.items():
        member_account = owners[mid]
        account = accounts.get(member_account) if member_account else None
        gone = account is None or account.status not in USABLE or member_account not in wanted
        if m.active and gone:
            name = account.display_name if account else mid
            remove.append(
                Candidate(
                    member_account or 0,
                    mid,
                    name,
                    m.role,
                    m.sign_pk,
                    m.enc_pk,
                    fingerprint_of(m.sign_pk),
                    [],
                )
            )
    return approve, remove


def removal_pending(ctx: ServiceContext, school_class: Any, group: Any) -> bool:
    """A member left the class (or the log says so) and the key has not changed yet.

    A class of another school's node knows only its own guardians' links: there
    the log alone says so (its node signs removals and their new key).
    """
    if group.pending_removals:
        return True
    return school_class.peer_id is None and bool(_candidates(ctx, school_class, group)[1])


def group_view(ctx: ServiceContext, actor: Actor, class_id: int) -> GroupView:
    school_class, is_teacher = _class_for(actor, class_id)
    group = store.select_group_of_class(class_id)
    me = member_id(ctx, actor.account_id)
    account = account_store.select_account(actor.account_id)
    teacher = account_store.select_account(school_class.teacher_id)
    teacher_fp = fingerprint_of(teacher.sign_pk) if teacher else None
    if group is None:
        approve, remove = _candidates(ctx, school_class, None) if is_teacher else ([], [])
        return GroupView(class_id, None, "none", me, [], [], teacher_fp, approve, remove)
    mine = store.select_member(group.id, me)
    is_member = (
        mine is not None and mine.active and account is not None and mine.enc_pk == account.enc_pk
    )
    if not is_member and not is_teacher:
        # an admin manages the class but is not a member: the feed is not theirs to read
        status = "waiting" if actor.is_guardian else "outside"
        return GroupView(class_id, group.public_id, status, me, [], [], teacher_fp, [], [])
    if is_teacher and (account is None or account.sign_pk not in json.loads(group.admins)):
        # a passphrase reset gave the teacher new keys: the class's log names the old ones
        return GroupView(class_id, group.public_id, "keys_changed", me, [], [], teacher_fp, [], [])
    entries = [json.loads(text) for text in store.select_entries(group.id)]
    envelopes = (
        [json.loads(text) for text in store.select_envelopes(group.id, me, mine.enc_pk)]
        if mine
        else []
    )
    approve, remove = _candidates(ctx, school_class, group) if is_teacher else ([], [])
    status = "manager" if is_teacher else "member"
    children = _child_members(ctx, school_class, group) if is_teacher else []
    return GroupView(
        class_id,
        group.public_id,
        status,
        me,
        entries,
        envelopes,
        teacher_fp,
        approve,
        remove,
        children,
    )


def _child_members(ctx: ServiceContext, school_class: Any, group: Any) -> list[ChildMembers]:
    """Each child of the class with the member ids of their approved guardians."""
    active = {m.member for m in store.select_members(group.id) if m.active}
    links = directory_store.guardian_links_of_class(school_class.id)
    out = []
    for child in directory_store.select_children_of_class(school_class.id):
        members = [link_member(ctx, link) for link in links if link.child_id == child.id]
        name = f"{child.first_name} {child.last_name}"
        out.append(ChildMembers(child.id, name, sorted(m for m in members if m in active)))
    return out


# --------------------------------------------------------------------------- writing


def as_entries(raw: Any, most: int = MAX_ENTRIES_PER_CALL) -> list[dict[str, Any]]:
    """A request's log entries: a list of 1 to ``most`` objects (the log checks the rest)."""
    if (
        not isinstance(raw, list)
        or not 1 <= len(raw) <= most
        or not all(isinstance(e, dict) for e in raw)
    ):
        raise Invalid(
            N_("Send between 1 and %(most)s log entries, each an object."),
            field="entries", most=most,
        )  # fmt: skip
    return raw


def as_envelopes(raw: Any, most: int = 5000) -> list[dict[str, Any]]:
    """A request's sealed epoch keys, each of the envelope's exact shape."""
    if not isinstance(raw, list) or len(raw) > most:
        raise Invalid(N_("Envelopes must be a list."), field="envelopes")
    for env in raw:
        if not isinstance(env, dict) or set(env) != {"epoch", "member", "enc", "ct"}:
            raise Invalid(N_("An envelope is malformed."), field="envelopes")
    return raw


def verify_log(entries: list[dict[str, Any]]) -> e2e.GroupState:
    try:
        return e2e.verify_log(entries)
    except e2e.GroupLogError as exc:
        raise Invalid(CLASS_LOG_REFUSED, field="entries", reason=str(exc)) from exc


#: Verified states of mirrored logs by (group id, head seq, head hash): a log another
#: school sends one entry at a time is then checked once, not again from its start at
#: every entry (a school group of 2,000 guardians is 2,000 entries).
_VERIFIED: OrderedDict[tuple[str, int, str], e2e.GroupState] = OrderedDict()
_VERIFIED_LOCK = threading.Lock()
_VERIFIED_MAX = 64


def extend_log(
    group: Any, stored: Callable[[], list[dict[str, Any]]], entry: dict[str, Any], refusal: str
) -> e2e.GroupState:
    """The state after ``entry`` appended to ``group``'s verified log (``stored()`` loads
    the stored entries when the state at its head is not in memory).

    Raises:
        Invalid: the entry (or, reloaded, the log) does not verify: ``refusal``, a
            message with ``%(reason)s``.
    """
    key = (group.public_id, group.head_seq, group.head_hash)
    with _VERIFIED_LOCK:
        state = _VERIFIED.pop(key, None)  # popped: a failure below cannot leave it half-changed
    try:
        state = e2e.apply_entry(state if state is not None else e2e.verify_log(stored()), entry)
    except e2e.GroupLogError as exc:
        raise Invalid(refusal, field="entries", reason=str(exc)) from exc
    with _VERIFIED_LOCK:
        _VERIFIED[(state.group, state.head_seq, state.head_hash)] = state
        while len(_VERIFIED) > _VERIFIED_MAX:
            _VERIFIED.popitem(last=False)
    return state


def _check_adds(ctx: ServiceContext, school_class: Any, new_entries: list[dict[str, Any]]) -> None:
    """An ``add`` names a real account of this class with the keys it has now."""
    wanted = _guardians_of_class(school_class.id)
    for entry in new_entries:
        if entry["op"] != "add":
            continue
        body = entry["body"]
        account_id = account_of_member(ctx, body["member"])
        account = account_store.select_account(account_id) if account_id else None
        expected_role = "teacher" if account_id == school_class.teacher_id else "guardian"
        if (
            account is None
            or account.status not in USABLE
            or (account_id not in wanted and account_id != school_class.teacher_id)
            or body["role"] != expected_role
        ):
            raise Invalid(
                N_("Only this class's teacher and its children's guardians can be approved."),
                field="entries",
            )
        if body["sign_pk"] != account.sign_pk or body["enc_pk"] != account.enc_pk:
            raise Conflict(
                N_(
                    "This person's keys changed since the page was loaded. Reload and approve again."
                )
            )


def store_log(
    ctx: ServiceContext,
    entry_table: Any,
    member_table: Any,
    group: Any,
    state: e2e.GroupState,
    new: list[dict[str, Any]],
) -> None:
    """Store verified ``new`` entries of a group's log, the membership they establish and
    the group's head, in the tables of its kind (a class's, or the school's)."""
    now = ctx.now()
    for entry in new:
        entry_table.create(
            group=group, seq=entry["seq"], op=entry["op"], entry=canonical_text(entry),
            created_at=now,
        )  # fmt: skip
        if entry["op"] not in ("add", "remove"):
            continue
        mid = entry["body"]["member"]
        m = state.members[mid]
        row = member_table.get_or_none(
            (member_table.group == group.id) & (member_table.member == mid)
        )
        if row is None:
            member_table.create(
                group=group, member=mid, account=account_of_member(ctx, mid), role=m.role,
                sign_pk=m.sign_pk, enc_pk=m.enc_pk, active=m.active, added_seq=entry["seq"],
            )  # fmt: skip
            continue
        row.role, row.sign_pk, row.enc_pk, row.active = m.role, m.sign_pk, m.enc_pk, m.active
        if entry["op"] == "add":
            row.added_seq = entry["seq"]
        row.save()
    group.head_seq, group.head_hash = state.head_seq, state.head_hash
    group.current_epoch = state.current_epoch.epoch if state.current_epoch else None
    group.pending_removals = len(state.pending_removals)
    group.save()


def store_entries(
    ctx: ServiceContext, group: Any, state: e2e.GroupState, new: list[dict[str, Any]]
) -> None:
    """``store_log`` for a class's group."""
    store_log(ctx, store.GroupEntry, store.GroupMember, group, state, new)


def new_envelopes(
    state: e2e.GroupState, envelopes: list[dict[str, Any]], holders_of: Callable[[int], set[Any]]
) -> tuple[list[tuple[int, str, str, str]], dict[int, set[Any]]]:
    """The envelopes not yet held, as (epoch, member, enc_pk, envelope text) rows, and the
    holders per epoch once they are stored (``holders_of(epoch)``: one query per epoch).

    Raises:
        Invalid: an envelope for someone who is not an active member, or no such epoch.
    """
    held: dict[int, set[Any]] = {}
    rows = []
    for env in envelopes:
        member = state.members.get(env["member"]) if isinstance(env["member"], str) else None
        epoch = env["epoch"]
        if (
            member is None
            or not member.active
            or type(epoch) is not int
            or not 0 <= epoch < len(state.epochs)
        ):
            raise Invalid(
                N_("An envelope is addressed to someone who is not a member."), field="envelopes"
            )
        holders = held.get(epoch)
        if holders is None:
            holders = held[epoch] = holders_of(epoch)
        if (env["member"], member.enc_pk) in holders:
            continue
        holders.add((env["member"], member.enc_pk))
        rows.append((epoch, env["member"], member.enc_pk, canonical_text(env)))
    return rows, held


def unsealed(
    state: e2e.GroupState, held: dict[int, set[Any]], holders_of: Callable[[int], set[Any]]
) -> list[str]:
    """Active members without the current epoch key (all of them must hold it)."""
    epoch = state.current_epoch
    assert epoch is not None
    holders = held.get(epoch.epoch) or holders_of(epoch.epoch)
    return [m for m in state.active_members() if (m, state.members[m].enc_pk) not in holders]


def _store_envelopes(
    ctx: ServiceContext, group: Any, state: e2e.GroupState, envelopes: list[dict[str, Any]]
) -> None:
    def holders_of(epoch: int) -> set[Any]:
        return store.envelope_holders(group.id, epoch)

    rows, held = new_envelopes(state, envelopes, holders_of)
    now = ctx.now()
    for epoch, member, enc_pk, text in rows:
        store.EpochEnvelope.create(
            group=group, epoch=epoch, member=member, enc_pk=enc_pk, envelope=text, created_at=now
        )
    if state.current_epoch is None:
        raise Invalid(N_("A class log needs its first key."), field="entries")
    missing = unsealed(state, held, holders_of)
    if missing:
        raise Invalid(N_("The class key must be sealed to every member: %(members)s"), field="envelopes",
                      members=", ".join(missing))  # fmt: skip


def create_group(
    ctx: ServiceContext, actor: Actor, class_id: int, entries: Any, envelopes: Any
) -> str:
    """The teacher's first visit: ``create``, ``add`` of the teacher, ``rotate`` 0 and their envelope."""
    entries, envelopes = as_entries(entries), as_envelopes(envelopes)
    with write_transaction():
        school_class, is_teacher = _class_for(actor, class_id)
        if not is_teacher:
            raise PermissionDenied(N_("Only the class's teacher can set up its encryption keys."))
        account = account_store.select_account(actor.account_id)
        if store.select_group_of_class(class_id, lock=True) is not None:
            raise Conflict(N_("This class already has its keys."))
        state = verify_log(entries)
        if not _is_group_id(state.group):
            raise Invalid(N_("A group id is 16 random bytes in base64url."), field="entries")
        if state.history != "school_year":  # from_join is for parent chats, not classes
            raise Invalid(
                N_("A class shares its school year's history with new members."), field="entries"
            )
        if account is None or state.admins != [account.sign_pk]:
            raise Invalid(
                N_("The class log must be signed by the teacher's own key."), field="entries"
            )
        if store.E2eGroup.get_or_none(store.E2eGroup.public_id == state.group) is not None:
            raise Conflict(N_("This group id is already used."))
        _check_adds(ctx, school_class, entries)
        group = store.E2eGroup.create(
            public_id=state.group, school_class=school_class, admins=json.dumps(state.admins),
            head_seq=0, head_hash="", created_at=ctx.now(),
        )  # fmt: skip
        store_entries(ctx, group, state, entries)
        _store_envelopes(ctx, group, state, envelopes)
        return state.group


def append_entries(
    ctx: ServiceContext, actor: Actor, class_id: int, entries: Any, envelopes: Any
) -> int:
    """Approvals, removals, rotations: entries continuing the head, with the envelopes they need."""
    new, envelopes = as_entries(entries), as_envelopes(envelopes)
    with write_transaction():
        school_class, is_teacher = _class_for(actor, class_id)
        if not is_teacher:
            raise PermissionDenied(N_("Only the class's teacher can approve or remove members."))
        group = store.select_group_of_class(class_id, lock=True)
        if group is None:
            raise NotFound(N_("This class has no keys yet."))
        first = new[0].get("seq") if isinstance(new[0], dict) else None
        if first != group.head_seq + 1:
            raise Conflict(
                N_("The class log changed since the page was loaded. Reload and try again.")
            )
        stored = [json.loads(text) for text in store.select_entries(group.id)]
        state = verify_log(stored + new)
        _check_adds(ctx, school_class, new)
        schools_before = {p for _, p in mirror_store.remote_active_members(group.id, class_id)}
        store_entries(ctx, group, state, new)
        _store_envelopes(ctx, group, state, envelopes)
        added = [e["body"]["member"] for e in new if e["op"] == "add"]
        audit.record_membership(ctx, actor, class_id, new, account_of_member)
        for join in remote_join.joins_approved(ctx, class_id, added):
            ctx.publish("join_accepted", dataclasses.asdict(join))
        schools_now = {p for _, p in mirror_store.remote_active_members(group.id, class_id)}
        if schools_before or schools_now:  # the schools of members must follow the log
            ctx.publish("class_entries", {
                "group_id": group.id, "first_seq": new[0]["seq"],
                "new_peers": sorted(schools_now - schools_before),
                "members": sorted({env["member"] for env in envelopes}),
            })  # fmt: skip
        return state.head_seq


def add_envelopes(ctx: ServiceContext, actor: Actor, class_id: int, envelopes: Any) -> None:
    """Re-share: seal existing epoch keys to a member again (no log change)."""
    envelopes = as_envelopes(envelopes)
    with write_transaction():
        _, is_teacher = _class_for(actor, class_id)
        if not is_teacher:
            raise PermissionDenied(N_("Only the class's teacher can share the class keys."))
        group = store.select_group_of_class(class_id, lock=True)
        if group is None:
            raise NotFound(N_("This class has no keys yet."))
        state = verify_log([json.loads(text) for text in store.select_entries(group.id)])
        _store_envelopes(ctx, group, state, envelopes)
        ctx.publish("class_envelopes", {
            "group_id": group.id, "members": sorted({env["member"] for env in envelopes}),
        })  # fmt: skip


# --------------------------------------------------------------------------- access for the feed


@dataclass(frozen=True)
class Access:
    """What an actor is in a class's group, for the feed services."""

    school_class: Any
    group: Any
    me: str
    is_teacher: bool
    #: ids of the actor's own children in this class (guardians)
    my_children: list[int]
    #: the actor is an active member holding their current keys
    is_member: bool


def access(
    ctx: ServiceContext,
    actor: Actor,
    class_id: int,
    *,
    lock: bool = False,
    children: list[directory_store.Child] | None = None,
) -> Access:
    """Raise NotFound for strangers; report membership for everyone else.

    ``lock``: writers hold the group row (PostgreSQL ``FOR UPDATE``) so a
    removal and its new key cannot commit between their checks and their insert.
    ``children``: the actor's children (``select_children_of_guardian``), when
    the caller has loaded them already.
    """
    if children is None:
        children = directory_store.select_children_of_guardian(actor.account_id)
    school_class, is_teacher = _class_for(actor, class_id, children)
    group = store.select_group_of_class(class_id, lock=lock)
    account = account_store.select_account(actor.account_id)
    # a guardian of another school acting through their node has their own member id
    me = member_of(ctx, account) if account else member_id(ctx, actor.account_id)
    mine = store.select_member(group.id, me) if group else None
    is_member = bool(mine and mine.active and account and mine.enc_pk == account.enc_pk)
    my_children = [c.id for c in children if c.school_class_id == class_id]
    return Access(school_class, group, me, is_teacher, my_children, is_member)


def require_member(
    ctx: ServiceContext, actor: Actor, class_id: int, *, lock: bool = False
) -> Access:
    found = access(ctx, actor, class_id, lock=lock)
    if found.group is None:
        raise Conflict(N_("The teacher has not set up this class's encryption keys yet."))
    if not found.is_member:
        raise PermissionDenied(N_("The teacher has not approved your keys for this class yet."))
    return found
