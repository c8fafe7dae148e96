"""This node's guardians joining classes of other schools' nodes (NP/1 §9.2, home side).

Rules:
- only a guardian with keys asks, for themself, and only through a school
  this node's admin has peered with (an active peer);
- the class's node decides everything (codes, the teacher's approval); this
  node records where each request stands, and takes an answer (Accept or
  Reject) only from the node the request was sent to.
The network steps are done by ``federation.runtime.joining_home``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from node.errors import N_, Conflict, Invalid, NotFound
from node.services import mirrors, policy
from node.services.context import Actor, ServiceContext
from node.storage import accounts as account_store
from node.storage import peers as peer_store
from node.storage import remote_join as store
from node.storage.db import write_transaction


@dataclass(frozen=True)
class JoinTarget:
    """What the request to the class's node carries."""

    peer_id: int
    origin: str
    follow_id: str
    actor: str
    sign_pk: str
    enc_pk: str


@dataclass(frozen=True)
class JoinView:
    id: int
    school: str
    #: code_sent | linked (waiting for the teacher) | accepted | rejected | removed | left
    state: str
    masked_phone: str
    school_name: str
    class_name: str
    child_first_name: str
    created_at: dt.datetime


def _view(row: store.JoinRequest, origin: str | None = None) -> JoinView:
    return JoinView(
        row.id, origin or row.peer.origin, row.state, row.masked_phone, row.school_name, row.class_name,
        row.child_first_name, row.created_at,
    )  # fmt: skip


def prepare(ctx: ServiceContext, actor: Actor, origin: str, follow_id: str) -> JoinTarget:
    """Check who asks and through which school, before anything is sent."""
    policy.require_guardian(actor)
    account = account_store.select_account(actor.account_id)
    if account is None or not account.sign_pk or not account.enc_pk:
        raise Conflict(N_("Set up your keys first: log out and in again."))
    peer = peer_store.select_peer_by_origin(origin)
    if peer is None or peer.state != "active":
        raise Invalid(
            N_(
                "This school is not a partner of your school yet. Ask your school's admin to add it."
            ),
            field="school",
        )
    actor_url = f"{ctx.config.origin}/users/{account.id}"
    return JoinTarget(peer.id, peer.origin, follow_id, actor_url, account.sign_pk, account.enc_pk)


def started(
    ctx: ServiceContext, actor: Actor, target: JoinTarget, join_id: str, masked_phone: str
) -> JoinView:
    """The class's node texted a code: remember the request."""
    now = ctx.now()
    with write_transaction():
        row = store.JoinRequest.create(
            account=actor.account_id, peer=target.peer_id, follow_id=target.follow_id,
            join_id=join_id[:64], state="code_sent", masked_phone=masked_phone[:40],
            created_at=now, updated_at=now,
        )  # fmt: skip
        return _view(row, target.origin)


def waiting_for_code(ctx: ServiceContext, actor: Actor, request_id: int) -> tuple[str, str]:
    """(school origin, the class node's join id) of my request that waits for its SMS code."""
    policy.require_guardian(actor)
    row = store.select_join_request(request_id, actor.account_id)
    if row is None:
        raise NotFound(N_("No such request to join."))
    if row.state != "code_sent" or not row.join_id:
        raise Conflict(N_("This request does not wait for a code any more."))
    return row.peer.origin, row.join_id


def linked(
    ctx: ServiceContext,
    actor: Actor,
    request_id: int,
    school_name: str,
    class_name: str,
    child_first_name: str,
) -> JoinView:
    """The code was right: now the teacher of that class must approve."""
    with write_transaction():
        row = store.select_join_request(request_id, actor.account_id, lock=True)
        if row is None:
            raise NotFound(N_("No such request to join."))
        row.state, row.updated_at = "linked", ctx.now()
        row.school_name, row.class_name = school_name[:200], class_name[:200]
        row.child_first_name = child_first_name[:200]
        row.save()
        return _view(row)


def leave(ctx: ServiceContext, actor: Actor, request_id: int) -> JoinView:
    """Leave a class of another school (or withdraw a request waiting for the teacher)."""
    policy.require_guardian(actor)
    with write_transaction():
        row = store.select_join_request(request_id, actor.account_id, lock=True)
        if row is None:
            raise NotFound(N_("No such request to join."))
        if row.state not in ("linked", "accepted"):
            raise Conflict(N_("You are not in this class."))
        row.state, row.updated_at = "left", ctx.now()
        row.save()
        mirrors.forget(ctx, row.class_url, actor.account_id, row.child_url)
        ctx.publish("join_undone", {
            "peer_id": row.peer_id, "follow_id": row.follow_id,
            "actor": f"{ctx.config.origin}/users/{actor.account_id}",
            "class_url": row.class_url or f"{row.peer.origin}/classes",
        })  # fmt: skip
        return _view(row)


def my_joins(ctx: ServiceContext, actor: Actor) -> list[JoinView]:
    policy.require_guardian(actor)
    return [_view(row) for row in store.select_joins_of(actor.account_id)]


def accepted_members(ctx: ServiceContext, peer_id: int) -> dict[str, list[str]]:
    """class id on that node → actor ids of our guardians it accepted (our cache)."""
    found: dict[str, list[str]] = {}
    for row in store.select_joins_of_peer(peer_id):
        if row.state == "accepted" and row.class_url:
            found.setdefault(row.class_url, []).append(
                f"{ctx.config.origin}/users/{row.account_id}"
            )
    return found


def _child_url(info: Any) -> str | None:
    child = info.get("child") if isinstance(info, dict) else None
    url = child.get("id") if isinstance(child, dict) else None
    return url[:400] if isinstance(url, str) else None


def reconcile(
    ctx: ServiceContext,
    peer_id: int,
    class_url: str,
    members: list[str],
    pending: list[str],
    infos: dict[str, Any] | None = None,
) -> None:
    """Settle our requests by the class's own list (request ids of members and of those
    still waiting for the teacher): a lost Accept becomes accepted, a missed Remove removed.

    ``infos``: request id → what the class's node shows of the class for it (as an
    Accept carries).  A class mirrored this late reads its class stream again from
    the start: what arrived before the mirror existed was refused.
    """
    now = ctx.now()
    with write_transaction():
        for row in store.select_joins_of_peer(peer_id, lock=True):
            if row.follow_id in members and row.state in ("code_sent", "linked"):
                row.state, row.class_url, row.updated_at = "accepted", class_url, now
                row.save()
                row.child_url = _child_url((infos or {}).get(row.follow_id))
                row.save()
                if mirrors.accepted(
                    ctx, peer_id, class_url, row.account_id, (infos or {}).get(row.follow_id)
                ):
                    mirrors.read_again(peer_id, class_url)
            elif (
                row.state == "accepted"
                and row.class_url == class_url
                and row.follow_id not in members
                and row.follow_id not in pending
            ):
                row.state, row.updated_at = "removed", now
                row.save()
                mirrors.forget(ctx, class_url, row.account_id, row.child_url)


def answered(
    ctx: ServiceContext,
    peer_id: int,
    follow_id: str,
    outcome: str,
    class_url: str | None,
    info: Any = None,
) -> bool:
    """The class's node accepted, rejected or (later) removed the guardian.

    Returns False if the request is not one this node sent to that node.
    """
    if outcome not in ("accepted", "rejected", "removed"):
        raise ValueError(f"unknown outcome {outcome}")
    row = store.select_join_by_follow(follow_id, lock=True)
    if row is None or row.peer_id != peer_id:
        return False
    final = ("rejected", "removed", "left")
    if row.state not in final and row.state != outcome:  # repeated answers change nothing
        row.state = outcome
        row.class_url = class_url or row.class_url
        row.updated_at = ctx.now()
        row.save()
        # the class's mirror here follows the answer (an old request's answer, sent
        # again, changes nothing: its guardian may be in the class again by now)
        if outcome == "accepted" and row.class_url:
            row.child_url = _child_url(info)
            row.save()
            mirrors.accepted(ctx, peer_id, row.class_url, row.account_id, info)
        elif outcome == "removed":
            mirrors.forget(ctx, row.class_url, row.account_id, row.child_url)
    elif outcome == "accepted" == row.state and row.class_url:  # sent again: refresh what shows
        mirrors.accepted(ctx, peer_id, row.class_url, row.account_id, info)
    return True
