"""Classes, children, guardians and their access codes.

Who may do what:
- a teacher creates classes and manages their own; an admin manages every class;
- a class manager adds children, registers guardians (name + phone), issues
  access codes and slips, and removes guardians;
- a guardian sees only the children they are linked to, and their classes.
Phone numbers leave this module masked, teachers included.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from node.errors import N_, Conflict, Invalid
from node.phone import mask_phone, normalize_phone
from node.secrets_util import (
    format_access_code,
    generate_access_code,
    keyed_hash,
    normalize_access_code,
)
from node.services import audit, families, policy
from node.services.accounts import clean_name
from node.services.context import Actor, ServiceContext
from node.services.keyring import fingerprint_of
from node.storage import accounts as account_store
from node.storage import directory as store
from node.storage import peers as peer_store
from node.storage import remote_join as remote_store
from node.storage.db import write_transaction

# fullmatch and [0-9]: "$" would accept a trailing newline and "\d" Arabic-Indic digits.
_YEAR = re.compile(r"([0-9]{4})-([0-9]{4})")
_TYPED_CODE = re.compile(r"[A-Z0-9]{8,32}")
MAX_GUARDIANS_PER_CHILD = 8
ACCESS_CODE_PURPOSE = "access-code"


@dataclass(frozen=True)
class ClassView:
    id: int
    name: str
    school_year: str
    teacher_name: str


@dataclass(frozen=True)
class ChildView:
    id: int
    first_name: str
    last_name: str
    class_id: int
    class_name: str
    school_year: str
    teacher_name: str
    #: a class of another school (mirrored here for its guardians): that school's name
    school: str | None = None


@dataclass(frozen=True)
class GuardianEntry:
    invitation_id: int
    display_name: str
    phone_masked: str
    #: ``invited`` (code issued, not used), ``expired``, ``active`` (joined), ``disabled``.
    status: str
    expires_at: dt.datetime | None
    #: a guardian of another school's node (a "remote" account): that school's name
    remote_school: str | None = None


@dataclass(frozen=True)
class RosterChild:
    child: ChildView
    guardians: list[GuardianEntry]


@dataclass(frozen=True)
class Slip:
    """Everything printed on an access-code slip; the code exists only here, once."""

    invitation_id: int
    class_id: int
    school_name: str
    node_url: str
    class_name: str
    school_year: str
    child_name: str
    guardian_name: str
    phone_masked: str
    code: str
    expires_at: dt.datetime
    teacher_name: str
    teacher_fingerprint: str
    #: The guardian joined already: this code lets them choose a new passphrase.
    is_reset: bool = False


def current_school_year(today: dt.date) -> str:
    """French calendar: the school year turns over in August."""
    start = today.year if today.month >= 8 else today.year - 1
    return f"{start}-{start + 1}"


def school_year_now(ctx: ServiceContext) -> str:
    """The school year of the school's date now: at 00:30 on 1 August in Paris,
    UTC still says 31 July, and the year has turned over all the same."""
    return current_school_year(ctx.today())


def _class_view(c: store.SchoolClass) -> ClassView:
    return ClassView(c.id, c.name, c.school_year, c.teacher.display_name)


def _child_view(child: store.Child) -> ChildView:
    c = child.school_class
    peer = peer_store.select_peer(c.peer_id) if c.peer_id is not None else None
    return ChildView(
        child.id,
        child.first_name,
        child.last_name,
        c.id,
        c.name,
        c.school_year,
        c.teacher.display_name,
        peer.name if peer else None,
    )


def create_class(
    ctx: ServiceContext,
    actor: Actor,
    name: Any,
    school_year: Any = None,
    teacher_id: int | None = None,
) -> ClassView:
    """A teacher creates their own class; an admin may create one for a teacher."""
    policy.require_teacher(actor)
    clean = clean_name(name, "name", 80)
    year = school_year or school_year_now(ctx)
    match = _YEAR.fullmatch(year) if isinstance(year, str) else None
    if not match or int(match[2]) != int(match[1]) + 1 or not 2000 <= int(match[1]) <= 2100:
        raise Invalid(N_("The school year looks like 2026-2027."), field="school_year")
    owner = actor.account_id
    if teacher_id is not None and teacher_id != actor.account_id:
        policy.require_admin(actor)
        teacher = account_store.select_account(teacher_id)
        if teacher is None or teacher.role != "teacher" or teacher.status == "disabled":
            raise Invalid(N_("Choose a teacher of this school."), field="teacher_id")
        owner = teacher.id
    with write_transaction():
        created = store.SchoolClass.create(
            name=clean, school_year=year, teacher=owner, created_at=ctx.now()
        )
    return _class_view(store.select_class(created.id))  # type: ignore[arg-type]


def list_classes(ctx: ServiceContext, actor: Actor) -> list[ClassView]:
    policy.require_teacher(actor)
    if actor.is_admin:
        return [_class_view(c) for c in store.select_all_classes()]
    return [_class_view(c) for c in store.select_classes_of_teacher(actor.account_id)]


def get_class(ctx: ServiceContext, actor: Actor, class_id: int) -> ClassView:
    return _class_view(policy.require_class_manager(actor, store.select_class(class_id)))


def add_child(
    ctx: ServiceContext, actor: Actor, class_id: int, first_name: Any, last_name: Any
) -> ChildView:
    with write_transaction():
        school_class = policy.require_class_manager(actor, store.select_class(class_id))
        child = store.Child.create(
            school_class=school_class,
            first_name=clean_name(first_name, "first_name", 60),
            last_name=clean_name(last_name, "last_name", 60),
            created_at=ctx.now(),
        )
    return _child_view(store.select_child(child.id))  # type: ignore[arg-type]


def _managed_child(actor: Actor, child_id: int) -> store.Child:
    child = store.select_child(child_id)
    policy.require_class_manager(actor, child.school_class if child else None, N_("No such child."))
    assert child is not None
    return child


def _managed_invitation(actor: Actor, invitation_id: int) -> store.GuardianInvitation:
    inv = store.select_invitation(invitation_id)
    live = inv is not None and inv.revoked_at is None
    school_class = inv.child.school_class if inv is not None and live else None
    policy.require_class_manager(actor, school_class, N_("No such guardian."))
    assert inv is not None
    return inv


def _guardian_status(inv: store.GuardianInvitation, now: dt.datetime) -> str:
    if inv.account_id is not None:  # joined (perhaps with a reset code pending)
        account = inv.account
        return "disabled" if account is not None and account.status == "disabled" else "active"
    if inv.expires_at is not None and inv.expires_at > now:
        return "invited"
    return "expired"


def class_roster(ctx: ServiceContext, actor: Actor, class_id: int) -> list[RosterChild]:
    """Children of a class with their guardians' names, masked numbers and statuses."""
    school_class = policy.require_class_manager(actor, store.select_class(class_id))
    now = ctx.now()
    by_child: dict[int, list[GuardianEntry]] = {}
    invitations = store.select_invitations_of_class(school_class.id)
    # guardians of another school's node ("remote" accounts) → their node's peer id
    homes = {
        inv.id: inv.account.home_peer_id
        for inv in invitations
        if inv.account_id is not None
        and inv.account is not None
        and inv.account.status == "remote"
        and inv.account.home_peer_id
    }
    schools = {p.id: p.name for p in peer_store.select_peers()} if homes else {}
    for inv in invitations:
        home = homes.get(inv.id)
        by_child.setdefault(inv.child_id, []).append(
            GuardianEntry(
                inv.id,
                inv.display_name,
                mask_phone(inv.phone),
                _guardian_status(inv, now),
                inv.expires_at,
                schools.get(home) if home else None,
            )
        )
    roster = []
    for child in store.select_children_of_class(school_class.id):
        child.school_class = school_class
        roster.append(RosterChild(_child_view(child), by_child.get(child.id, [])))
    return roster


def _check_typed_code(raw: Any) -> str:
    if not isinstance(raw, str):
        raise Invalid(N_("The access code must be text."), field="code")
    code = normalize_access_code(raw)
    if not _TYPED_CODE.fullmatch(code):
        raise Invalid(
            N_(
                "A typed access code needs 8 to 32 letters and digits (spaces and dashes are ignored)."
            ),
            field="code",
        )
    return format_access_code(code)


def _issue_code(ctx: ServiceContext, inv: store.GuardianInvitation, typed: Any) -> str:
    code = _check_typed_code(typed) if typed else generate_access_code()
    now = ctx.now()
    inv.code_hash = keyed_hash(ctx.node_secret, ACCESS_CODE_PURPOSE, normalize_access_code(code))
    inv.code_issued_at = now
    inv.expires_at = now + dt.timedelta(days=ctx.config.access_code_days)
    inv.save()
    return code


def _slip(ctx: ServiceContext, inv: store.GuardianInvitation, code: str) -> Slip:
    child = store.select_child(inv.child_id)
    # A slip is built only right after a code was issued: the child and the expiry exist.
    assert child is not None and inv.expires_at is not None
    school_class = child.school_class
    teacher = school_class.teacher
    return Slip(
        invitation_id=inv.id,
        class_id=school_class.id,
        school_name=ctx.config.school_name,
        node_url=ctx.config.public_url,
        class_name=school_class.name,
        school_year=school_class.school_year,
        child_name=f"{child.first_name} {child.last_name}",
        guardian_name=inv.display_name,
        phone_masked=mask_phone(inv.phone),
        code=code,
        expires_at=inv.expires_at,
        teacher_name=teacher.display_name,
        teacher_fingerprint=fingerprint_of(teacher.sign_pk) or "",
        is_reset=inv.account_id is not None,
    )


def register_guardian(
    ctx: ServiceContext,
    actor: Actor,
    child_id: int,
    display_name: Any,
    phone: Any,
    code: Any = None,
) -> Slip:
    """Authorize one phone number as a guardian of one child and issue its access code."""
    name = clean_name(display_name)
    number = normalize_phone(phone, ctx.config.default_country_code)
    with write_transaction():
        child = _managed_child(actor, child_id)
        existing = store.select_live_invitations_of_child(child.id)
        if any(inv.phone == number for inv in existing):
            raise Conflict(N_("This number is already registered for this child."), field="phone")
        if len(existing) >= MAX_GUARDIANS_PER_CHILD:
            raise Conflict(N_("This child already has the most guardians allowed."))
        inv = store.GuardianInvitation.create(
            child=child,
            issued_by=actor.account_id,
            display_name=name,
            phone=number,
            created_at=ctx.now(),
        )
        issued = _issue_code(ctx, inv, code)
        audit.record(ctx, "access_code_issued", actor, None, invitation=inv.id)
        return _slip(ctx, inv, issued)


def reissue_code(ctx: ServiceContext, actor: Actor, invitation_id: int, code: Any = None) -> Slip:
    """A new code; the old one dies.

    For a guardian who has not joined, it replaces a lost or expired slip.
    For one who joined and forgot their passphrase, it is the reset: with it
    (and the SMS code) they choose a new passphrase and new keys, and their
    sessions end.  The child stays linked meanwhile.
    """
    with write_transaction():
        inv = _managed_invitation(actor, invitation_id)
        inv.used_at = None
        issued = _issue_code(ctx, inv, code)
        audit.record(ctx, "access_code_issued", actor, inv.account_id, invitation=inv.id)
        return _slip(ctx, inv, issued)


def reissue_codes_for_class(ctx: ServiceContext, actor: Actor, class_id: int) -> list[Slip]:
    """New codes for every guardian of the class who has not joined yet, for one print run.

    Earlier codes of those guardians die; guardians who joined are untouched.
    """
    with write_transaction():
        school_class = policy.require_class_manager(actor, store.select_class(class_id))
        slips = []
        for inv in store.select_invitations_of_class(school_class.id):
            if inv.account_id is None:
                slips.append(_slip(ctx, inv, _issue_code(ctx, inv, None)))
        audit.record(ctx, "access_code_issued", actor, None, class_id=class_id, codes=len(slips))
        return slips


def remove_guardian(ctx: ServiceContext, actor: Actor, invitation_id: int) -> None:
    """Withdraw an invitation, or unlink a guardian who joined, from the child."""
    with write_transaction():
        inv = _managed_invitation(actor, invitation_id)
        inv.revoked_at = ctx.now()
        inv.code_hash = None
        inv.save()
        audit.record(ctx, "guardian_removed", actor, inv.account_id, invitation=inv.id)
        if inv.account_id is not None:
            # an approved guardian leaves the child's family at once (no log change):
            # the schools of the child's other guardians must seal to it without them
            changed = families.approved_links(ctx, inv.account_id, inv.child_id)
            store.delete_guardianship(inv.child_id, inv.account_id)
            _tell_their_node(ctx, inv)
            families.tell(ctx, changed)


def _tell_their_node(ctx: ServiceContext, inv: store.GuardianInvitation) -> None:
    """A guardian of another school's node was unlinked: their node must know.

    Before the teacher approved them, their request is refused (Reject);
    after, they are removed from the class (Remove).
    """
    assert inv.account_id is not None
    follow = remote_store.select_live_follow(inv.child.school_class_id, inv.account_id)
    if follow is None:
        return
    kind = "join_rejected" if follow.state == "linked" else "member_removed"
    follow.state, follow.updated_at = (
        "rejected" if kind == "join_rejected" else "removed",
        ctx.now(),
    )
    follow.save()
    ctx.publish(kind, {
        "peer_id": follow.peer_id, "follow_id": follow.follow_id, "actor": follow.actor,
        "class_id": follow.class_id,
    })  # fmt: skip


def my_children(ctx: ServiceContext, actor: Actor) -> list[ChildView]:
    """A guardian's children across every class of this node, in one list."""
    policy.require_guardian(actor)
    return [_child_view(c) for c in store.select_children_of_guardian(actor.account_id)]
