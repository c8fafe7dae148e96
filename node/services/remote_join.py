"""A guardian of another school's node joins a class of this node (NP/1 §9.2, class side).

The same proofs as a local first login, in the same order: the teacher's
access code (which names one child of one class and one phone number), then
the SMS code this node texts to that number — so the other node never learns
the number, and nobody joins with a code alone.  Then the teacher approves
their keys on the class page, as anyone's.  Rules:

- requests come from a verified peer only; its user is named by the actor
  id on the peer's origin (``{origin}/users/{id}``), and becomes the member
  ``{id}@{peer host}`` of the class's log;
- wrong codes count per peer node (the failures-per-address limit), never
  per number, so a peer cannot lock a family out, and a peer sending wrong
  codes is slowed down;
- the access code dies when the SMS code is confirmed;
- once confirmed, the guardian is a ``remote`` account linked to the child:
  the teacher sees them to approve, and approving them sends the peer an
  Accept (``append_entries`` → ``joins_approved``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from node.errors import N_, Conflict, Gone, Invalid, NotFound, Unauthenticated
from node.phone import mask_phone
from node.secrets_util import keyed_hash, new_token, normalize_access_code
from node.services import families, onboarding, ratelimit
from node.services.context import ServiceContext
from node.services.credentials import b64url_bytes
from node.services.directory import ACCESS_CODE_PURPOSE
from node.storage import accounts as account_store
from node.storage import directory as directory_store
from node.storage import onboarding as attempt_store
from node.storage import remote_join as store
from node.storage.db import write_transaction

_ACTOR_PATH = re.compile(r"/users/([1-9][0-9]{0,15})")


@dataclass(frozen=True)
class JoinStarted:
    #: the handle of this request on this node (the other node keeps it)
    join_id: str
    #: the number the code went to, masked: the parent recognizes their own
    masked_phone: str


@dataclass(frozen=True)
class JoinLinked:
    join_id: str
    school_name: str
    class_name: str
    child_first_name: str


@dataclass(frozen=True)
class ApprovedJoin:
    """A join the teacher just approved: the peer must be told (Accept)."""

    peer_id: int
    follow_id: str
    actor: str
    class_id: int
    #: the child the teacher's access code named (its guardian's node labels posts with it)
    child_id: int | None


def member_of_actor(peer_origin: str, actor: Any) -> str:
    """``{id}@{host}`` for ``{peer_origin}/users/{id}``; Invalid for anything else."""
    if not isinstance(actor, str) or not actor.startswith(peer_origin + "/"):
        raise Invalid(N_("The guardian must be a user of the requesting school."), field="actor")
    match = _ACTOR_PATH.fullmatch(actor[len(peer_origin) :])
    if match is None:
        raise Invalid(N_("The guardian must be a user of the requesting school."), field="actor")
    return f"{match[1]}@{peer_origin.split('://', 1)[1]}"


def _bucket(peer_origin: str) -> str:
    return f"peer:{peer_origin}"[:64]


def _fail(ctx: ServiceContext, peer_origin: str, error: Exception) -> Exception:
    with write_transaction():
        ratelimit.hit(ctx, ratelimit.ip_bucket(_bucket(peer_origin)))
    return error


def start(
    ctx: ServiceContext,
    *,
    peer_id: int,
    peer_origin: str,
    follow_id: Any,
    actor: Any,
    code: Any,
    sign_pk: Any,
    enc_pk: Any,
    locale: str,
) -> JoinStarted:
    """Check the access code, then text an SMS code to the number the teacher registered."""
    member = member_of_actor(peer_origin, actor)
    if not isinstance(follow_id, str) or not follow_id.startswith(peer_origin + "/"):
        raise Invalid(N_("The request id must be on the requesting school."), field="follow")
    if len(follow_id) > 400:
        raise Invalid(N_("The request id is too long."), field="follow")
    b64url_bytes(sign_pk, 32, "sign_pk")
    b64url_bytes(enc_pk, 32, "enc_pk")
    if not isinstance(code, str) or not code.strip() or len(code) > 80:
        raise Invalid(N_("Enter the access code printed on your slip."), field="code")
    ratelimit.check_ip(ctx, _bucket(peer_origin))
    code_hash = keyed_hash(ctx.node_secret, ACCESS_CODE_PURPOSE, normalize_access_code(code))
    invitation = directory_store.select_invitation_by_code_hash(code_hash)
    now = ctx.now()
    if invitation is None:
        raise _fail(ctx, peer_origin, Unauthenticated(
            N_("This access code is not valid here. Check it, or ask the teacher for a new code."),
            field="code",
        ))  # fmt: skip
    if invitation.used_at is not None:
        raise _fail(ctx, peer_origin, Gone(
            N_("This access code was already used. If you did not use it, tell the teacher."),
            field="code",
        ))  # fmt: skip
    if invitation.expires_at is None or invitation.expires_at <= now:
        raise _fail(ctx, peer_origin, Gone(
            N_("This access code has expired. Ask the teacher for a new one."), field="code"
        ))  # fmt: skip
    with write_transaction():
        if store.select_by_follow_id(follow_id) is not None:
            raise Conflict(N_("This request was already made."), field="follow")
        attempt = attempt_store.LoginAttempt.create(
            public_id=new_token(), invitation=invitation, client_ip=_bucket(peer_origin),
            created_at=now, expires_at=now + onboarding.ATTEMPT_LIFETIME,
        )  # fmt: skip
        attempt.invitation = invitation
        store.RemoteFollow.create(
            follow_id=follow_id, peer=peer_id, actor=actor, member=member,
            school_class=invitation.child.school_class_id, invitation=invitation, attempt=attempt,
            sign_pk=sign_pk, enc_pk=enc_pk, state="code_sent", created_at=now, updated_at=now,
        )  # fmt: skip
        onboarding.send_new_code(ctx, attempt, locale)
    return JoinStarted(attempt.public_id, mask_phone(invitation.phone))


@dataclass(frozen=True)
class _Pending:
    follow: store.RemoteFollow
    attempt: attempt_store.LoginAttempt
    invitation: directory_store.GuardianInvitation


def _pending(ctx: ServiceContext, peer_id: int, join_id: Any) -> _Pending:
    """The request, still waiting for its SMS code, with its attempt and invitation (locked)."""
    follow = (
        store.select_by_attempt(peer_id, join_id, lock=True)
        if isinstance(join_id, str) and 0 < len(join_id) <= 64
        else None
    )
    if follow is None or follow.attempt is None:
        raise NotFound(N_("This request to join does not exist. Start again."))
    if follow.state != "code_sent":
        raise Conflict(N_("This phone number is already confirmed."), field="sms_code")
    if follow.attempt.expires_at <= ctx.now():
        raise Gone(N_("This request has expired. Start again with your access code."))
    invitation = follow.invitation
    if invitation is None or invitation.revoked_at is not None or invitation.used_at is not None:
        raise Gone(N_("This access code is no longer valid. Ask the teacher for a new one."))
    attempt = follow.attempt
    attempt.invitation = invitation
    return _Pending(follow, attempt, invitation)


def resend(
    ctx: ServiceContext, *, peer_id: int, peer_origin: str, join_id: Any, locale: str
) -> JoinStarted:
    ratelimit.check_ip(ctx, _bucket(peer_origin))
    with write_transaction():
        pending = _pending(ctx, peer_id, join_id)
        if pending.attempt.codes_sent >= onboarding.MAX_CODES_PER_ATTEMPT:
            raise Gone(N_("No more codes can be sent for this attempt. Start again later."))
        onboarding.send_new_code(ctx, pending.attempt, locale)
    return JoinStarted(pending.attempt.public_id, mask_phone(pending.invitation.phone))


def confirm(
    ctx: ServiceContext, *, peer_id: int, peer_origin: str, join_id: Any, sms_code: Any
) -> JoinLinked:
    """Check the SMS code; link the guardian to the child, for the teacher to approve."""
    code = onboarding.normalize_sms_code(sms_code)
    ratelimit.check_ip(ctx, _bucket(peer_origin))
    error: Exception | None = None
    with write_transaction():
        pending = _pending(ctx, peer_id, join_id)
        error = onboarding.check_sms_code(ctx, pending.attempt, code)
        if error is not None:
            pending.attempt.save()
            ratelimit.hit(ctx, ratelimit.ip_bucket(_bucket(peer_origin)))
        else:
            linked = _link(ctx, pending)
    if error is not None:
        raise error
    return linked


def _link(ctx: ServiceContext, pending: _Pending) -> JoinLinked:
    now = ctx.now()
    follow, attempt, invitation = pending.follow, pending.attempt, pending.invitation
    login = directory_store.REMOTE_LOGIN_PREFIX + follow.member
    account = account_store.select_account_by_login(login)
    if account is None:
        account = account_store.insert_remote_guardian(
            login, invitation.display_name, follow.sign_pk, follow.enc_pk, follow.peer_id, now
        )
    else:  # a guardian with a child in two classes here, or new keys after a reset
        account.sign_pk, account.enc_pk = follow.sign_pk, follow.enc_pk
        account.home_peer_id = follow.peer_id  # the node they live on says who they are
        account.display_name = invitation.display_name
        account.save()
    if not directory_store.is_guardian_of(account.id, invitation.child_id):
        directory_store.Guardianship.create(
            child=invitation.child_id, account=account, invitation=invitation, created_at=now
        )
        # already approved (a second child of the class): in the child's family at once
        families.tell(ctx, families.approved_links(ctx, account.id, invitation.child_id))
    invitation.used_at, invitation.account = now, account
    invitation.save()
    attempt.completed_at = now
    attempt.save()
    follow.state, follow.account, follow.updated_at = "linked", account, now
    follow.save()
    child = invitation.child
    return JoinLinked(
        attempt.public_id, ctx.config.school_name, child.school_class.name, child.first_name
    )


def left(ctx: ServiceContext, peer_id: int, follow_id: str) -> bool:
    """The guardian left (their node sent Undo): unlink them; the teacher's page then
    asks to remove them from the class's log.  False if no such request of that peer."""
    follow = store.select_by_follow_id(follow_id)
    if follow is None or follow.peer_id != peer_id:
        return False
    if follow.state in ("linked", "accepted") and follow.account_id and follow.invitation:
        child_id = follow.invitation.child_id
        changed = families.approved_links(ctx, follow.account_id, child_id)
        directory_store.delete_guardianship(child_id, follow.account_id)
        follow.state, follow.updated_at = "left", ctx.now()
        follow.save()
        families.tell(ctx, changed)  # they leave the child's family before the teacher's removal
    return True


def joins_approved(ctx: ServiceContext, class_id: int, members: list[str]) -> list[ApprovedJoin]:
    """Mark linked requests of members the teacher just added as accepted (inside their write)."""
    approved = []
    for follow in store.linked_for_members(class_id, members):
        follow.state, follow.updated_at = "accepted", ctx.now()
        follow.save()
        invitation = follow.invitation
        child_id = invitation.child_id if invitation is not None else None
        approved.append(
            ApprovedJoin(follow.peer_id, follow.follow_id, follow.actor, class_id, child_id)
        )
    return approved
