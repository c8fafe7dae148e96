"""The school's "all guardians" group, which emergency alerts are encrypted to.

Who may do what:
- a school admin with keys creates the group, naming the emergency-role
  keys (themselves; later ``admins`` entries put other admins or named
  staff in the role or take them out, at least one admin staying), and keeps it
  up to date: adding every guardian of the school's children (``add``),
  removing those who left (``remove`` then ``rotate``).  The sender's page
  does this before each alert, so a guardian approved by a teacher this
  morning gets this afternoon's alert;
- the node checks every entry with the reference verifier, appends only at
  the head, accepts an ``add`` only for an admin account's or a guardian's
  current keys, and requires the epoch key to be sealed to every member;
- a guardian reads the log and their own envelopes once added.
The node never sees an epoch key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from node.e2e import groups as e2e
from node.e2e.encoding import b64url_decode
from node.errors import N_, Conflict, Invalid, NotFound, PermissionDenied
from node.services import audit, groups
from node.services.context import Actor, ServiceContext
from node.services.groups import account_of_member, member_id, member_of
from node.services.keyring import fingerprint_of
from node.storage import accounts as account_store
from node.storage import alerts as alert_store
from node.storage import school_group as store
from node.storage.db import write_transaction

#: Entries per request: 1,000 adds with their envelopes stay under the 1 MiB request limit
#: (the admin's page sends a larger school in several requests).
MAX_ENTRIES_PER_CALL = 1000
LOG_REFUSED = N_("The alert group's log was refused: %(reason)s")


@dataclass(frozen=True)
class Candidate:
    member: str
    role: str
    sign_pk: str
    enc_pk: str


@dataclass(frozen=True)
class SchoolGroupView:
    group_id: str | None
    entries: list[dict[str, Any]]
    #: the caller's own sealed epoch keys (empty when not a member)
    envelopes: list[dict[str, Any]]
    me: str
    is_member: bool
    #: emergency-role keys (fingerprints), for the admin page
    admin_fingerprints: list[str] = field(default_factory=list)
    #: admins only: who to add and who to remove now
    add: list[Candidate] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)
    #: admins only: the staff who may be in the emergency role, and who is
    staff: list[StaffMember] = field(default_factory=list)


def _wanted(ctx: ServiceContext, emergency: set[str]) -> dict[int, tuple[str, Any]]:
    """account id → (role, account), for everyone who should be a member now (with usable keys):
    the guardians of the school's children, on this node or another, and the staff whose
    key is in the emergency role (``emergency``: its signing keys)."""
    guardians = {a for _, _, a in alert_store.school_families() if a is not None}
    wanted: dict[int, tuple[str, Any]] = {}
    for account_id, account in account_store.select_accounts(guardians).items():
        if account.sign_pk and account.enc_pk and account.status in ("active", "remote"):
            wanted[account_id] = ("guardian", account)
    for account in account_store.select_staff():
        if account.status == "active" and account.enc_pk and account.sign_pk in emergency:
            wanted[account.id] = ("admin", account)
    return wanted


def _changes(ctx: ServiceContext, group: Any) -> tuple[list[Candidate], list[str]]:
    members = {m.member: m for m in store.select_members(group.id)} if group else {}
    wanted = _wanted(ctx, set(json.loads(group.admins)) if group else set())
    add = []
    for _, (role, account) in sorted(wanted.items()):
        mid = member_of(ctx, account)
        current = members.get(mid)
        if (
            current is None
            or not current.active
            or (current.role, current.sign_pk, current.enc_pk)
            != (role, account.sign_pk, account.enc_pk)
        ):
            add.append(Candidate(mid, role, account.sign_pk, account.enc_pk))
    remove = sorted(
        mid
        for mid, m in members.items()
        if m.active and (m.account_id not in wanted or m.role != wanted[m.account_id][0])
    )
    return add, remove


@dataclass(frozen=True)
class StaffMember:
    """A member of staff the admin may put in (or out of) the emergency role."""

    account_id: int
    name: str
    role: str
    sign_pk: str
    fingerprint: str
    in_role: bool


def _staff(group: Any) -> list[StaffMember]:
    emergency = set(json.loads(group.admins)) if group else set()
    return [
        StaffMember(a.id, a.display_name, a.role, a.sign_pk, fingerprint_of(a.sign_pk) or "",
                    a.sign_pk in emergency)
        for a in account_store.select_staff()
        if a.status == "active" and a.sign_pk and a.enc_pk
    ]  # fmt: skip


def view(ctx: ServiceContext, actor: Actor, group_id: str | None = None) -> SchoolGroupView:
    """The group as the caller may see it: admins get what to change, guardians their keys.

    ``group_id``: another school's group, mirrored here (a guardian reading that
    school's alert); by default, this school's own.
    """
    if not (actor.is_admin or actor.is_guardian or actor.is_teacher):
        raise PermissionDenied(N_("Only the school's admins and guardians use the alert keys."))
    if group_id is not None:
        found = store.select_by_public_id(group_id) if isinstance(group_id, str) else None
        if found is None or (found.peer_id is not None and not actor.is_guardian):
            raise NotFound(N_("No such alert group."))
        if found.peer_id is not None:
            return _member_view(ctx, actor, found)
    group = store.select_group()
    me = member_id(ctx, actor.account_id)
    account = account_store.select_account(actor.account_id)
    if group is None:
        add = _changes(ctx, None)[0] if actor.is_admin else []
        return SchoolGroupView(None, [], [], me, False, add=add)
    mine = store.select_member(group.id, me)
    is_member = bool(mine and mine.active and account is not None and mine.enc_pk == account.enc_pk)
    entries = (
        [json.loads(text) for text in store.select_entries(group.id)]
        if is_member or actor.is_admin
        else []
    )
    envelopes = (
        [json.loads(t) for t in store.select_envelopes(group.id, me, mine.enc_pk)]
        if is_member and mine is not None
        else []
    )
    prints = [fingerprint_of(k) or k for k in json.loads(group.admins)]
    add, remove = _changes(ctx, group) if actor.is_admin else ([], [])
    staff = _staff(group) if actor.is_admin else []
    return SchoolGroupView(
        group.public_id, entries, envelopes, me, is_member, prints, add, remove, staff
    )


def _member_view(ctx: ServiceContext, actor: Actor, group: Any) -> SchoolGroupView:
    """Another school's group as its member here reads it: the log and their own keys."""
    account = account_store.select_account(actor.account_id)
    me = member_of(ctx, account) if account else member_id(ctx, actor.account_id)
    mine = store.select_member(group.id, me)
    if mine is None or not mine.active or account is None or mine.enc_pk != account.enc_pk:
        return SchoolGroupView(group.public_id, [], [], me, False)
    entries = [json.loads(text) for text in store.select_entries(group.id)]
    envelopes = [json.loads(t) for t in store.select_envelopes(group.id, me, mine.enc_pk)]
    prints = [fingerprint_of(k) or k for k in json.loads(group.admins)]
    return SchoolGroupView(group.public_id, entries, envelopes, me, True, prints)


# --------------------------------------------------------------------------- writing


def verify(entries: list[dict[str, Any]]) -> e2e.GroupState:
    try:
        return e2e.verify_log(entries)
    except e2e.GroupLogError as exc:
        raise Invalid(LOG_REFUSED, field="entries", reason=str(exc)) from exc


def _check_adds(ctx: ServiceContext, state: e2e.GroupState, new: list[dict[str, Any]]) -> None:
    """An ``add`` names a guardian of this school or a member of staff in the emergency role,
    with the keys they have now; an ``admins`` entry names only this school's staff, and
    keeps at least one admin in the role (else no admin could change it again)."""
    staff = {a.sign_pk: a for a in account_store.select_staff() if a.status == "active"}
    for entry in new:
        if entry["op"] != "admins":
            continue
        keys = entry["body"]["admins"]
        if not set(keys) <= set(staff) or not any(staff[k].role == "admin" for k in keys):
            raise Invalid(
                N_("The emergency role may name only this school's staff, and at least one admin."),
                field="entries",
            )
    wanted = _wanted(ctx, set(state.admins))
    for entry in new:
        if entry["op"] != "add":
            continue
        body = entry["body"]
        account_id = account_of_member(ctx, body["member"])
        role, account = wanted.get(account_id or 0, (None, None))
        if account is None or body["role"] != role:
            raise Invalid(
                N_("Only the school's admins and its children's guardians can be added."),
                field="entries",
            )
        if (body["sign_pk"], body["enc_pk"]) != (account.sign_pk, account.enc_pk):
            raise Conflict(
                N_("This person's keys changed since the page was loaded. Reload and try again.")
            )


def store_log(
    ctx: ServiceContext, group: Any, state: e2e.GroupState, new: list[dict[str, Any]]
) -> None:
    """``groups.store_log`` in the school group's tables, and its emergency role."""
    groups.store_log(ctx, store.SchoolGroupEntry, store.SchoolGroupMember, group, state, new)
    group.admins = json.dumps(state.admins)
    group.pending_admins = state.pending_admins
    group.save()


def _store_envelopes(
    ctx: ServiceContext, group: Any, state: e2e.GroupState, envelopes: list[dict[str, Any]]
) -> None:
    def holders_of(epoch: int) -> set[Any]:
        return store.envelope_holders(group.id, epoch)

    rows, held = groups.new_envelopes(state, envelopes, holders_of)
    store.insert_envelopes(group.id, rows, ctx.now())
    if state.current_epoch is None:
        raise Invalid(N_("The alert group needs its first key."), field="entries")
    missing = groups.unsealed(state, held, holders_of)
    if missing:
        raise Invalid(
            N_("The alert key must be sealed to every member: %(members)s"),
            field="envelopes",
            members=", ".join(missing[:10]),
        )


def _tell_schools(
    ctx: ServiceContext,
    group: Any,
    peers_before: set[int],
    new: list[dict[str, Any]],
    envelopes: list[dict[str, Any]],
) -> None:
    """The nodes of members from other schools follow the log (NP/1 §6.5); a node whose
    first member this is gets the log from its start."""
    peers_now = set(store.remote_member_peers(group.id))
    if peers_before or peers_now:
        ctx.publish("school_entries", {
            "group_id": group.id, "first_seq": new[0]["seq"],
            "new_peers": sorted(peers_now - peers_before),
            "members": sorted({env["member"] for env in envelopes}),
        })  # fmt: skip


def _require_admin_keys(actor: Actor) -> Any:
    if not actor.is_admin:
        raise PermissionDenied(N_("Only the school's admins manage the alert keys."))
    account = account_store.select_account(actor.account_id)
    if account is None or not account.sign_pk:
        raise Conflict(N_("Set up your keys first: log in again in a browser."))
    return account


def create(ctx: ServiceContext, actor: Actor, entries: Any, envelopes: Any) -> str:
    """An admin's first alert set-up: ``create`` naming the emergency role, the adds, epoch 0."""
    entries, envelopes = (
        groups.as_entries(entries, MAX_ENTRIES_PER_CALL),
        groups.as_envelopes(envelopes, 10000),
    )
    with write_transaction():
        account = _require_admin_keys(actor)
        if store.select_group(lock=True) is not None:
            raise Conflict(N_("The school's alert keys are already set up. Reload the page."))
        state = verify(entries)
        try:
            b64url_decode(state.group, length=16, what="group id")
        except ValueError as exc:
            raise Invalid(
                N_("A group id is 16 random bytes in base64url."), field="entries"
            ) from exc
        if state.history != "from_join":
            raise Invalid(N_("Alerts are read from the day a guardian is added."), field="entries")
        admin_keys = {a.sign_pk for a in account_store.select_admins() if a.status == "active"}
        if account.sign_pk not in state.admins or not set(state.admins) <= admin_keys:
            raise Invalid(
                N_("The emergency role may name only this school's admins."), field="entries"
            )
        _check_adds(ctx, state, entries)
        group = store.SchoolGroup.create(
            public_id=state.group, admins=json.dumps(state.admins), head_seq=0, head_hash="",
            created_at=ctx.now(),
        )  # fmt: skip
        store_log(ctx, group, state, entries)
        audit.record(ctx, "alert_role_changed", actor, None, keys=len(state.admins))  # named
        _store_envelopes(ctx, group, state, envelopes)
        _tell_schools(ctx, group, set(), entries, envelopes)
        return state.group


def append(ctx: ServiceContext, actor: Actor, entries: Any, envelopes: Any) -> int:
    """Adds, removals and rotations continuing the head, with the envelopes they need."""
    new, envelopes = (
        groups.as_entries(entries, MAX_ENTRIES_PER_CALL),
        groups.as_envelopes(envelopes, 10000),
    )
    with write_transaction():
        _require_admin_keys(actor)
        group = store.select_group(lock=True)
        if group is None:
            raise NotFound(N_("The school's alert keys are not set up yet."))
        if new[0].get("seq") != group.head_seq + 1:
            raise Conflict(
                N_("The alert group changed since the page was loaded. Reload and try again.")
            )
        stored = [json.loads(text) for text in store.select_entries(group.id)]
        state = verify(stored + new)
        _check_adds(ctx, state, new)
        before = set(store.remote_member_peers(group.id))
        if any(e["op"] == "admins" for e in new):  # who may send alerts changed
            audit.record(ctx, "alert_role_changed", actor, None, keys=len(state.admins))
        store_log(ctx, group, state, new)
        _store_envelopes(ctx, group, state, envelopes)
        _tell_schools(ctx, group, before, new, envelopes)
        return state.head_seq
