"""The audit log: who did what security-relevant thing, pseudonymously, for a limited time.

Rules:
- ``record`` is called by the service doing the action, inside its write
  transaction, so the event is logged exactly when the action commits (a
  refused login logs in its own small transaction);
- people are named by a pseudonym, an HMAC of their account id under a key
  derived from the node secret: the log links the events of one person without
  naming them, and a stolen copy of the log names nobody.  An admin resolves a
  pseudonym by computing it for a known account (``pseudonym_for_login``);
- details are ids, counts and short codes (a role, a kind), never a name, a
  phone number, an e-mail address or anything a family wrote; ``record``
  refuses any other value;
- only admins read the log; events older than ``audit_retention_days`` are
  deleted by housekeeping.

Action names other modules pass (docs/security.md lists them): see ``ACTIONS``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from node.errors import N_, Invalid
from node.secrets_util import keyed_hash
from node.services import policy
from node.services.context import Actor, ServiceContext
from node.storage import audit as store

#: action → its label on the admin page (translated there)
ACTIONS = {
    "login": N_("Login"),
    "access_code_issued": N_("Access code issued"),
    "guardian_approved": N_("Guardian approved"),
    "guardian_removed": N_("Guardian removed"),
    "staff_created": N_("Staff account created"),
    "setup_link_issued": N_("Setup link issued"),
    "account_disabled": N_("Account disabled"),
    "alert_role_changed": N_("Emergency role changed"),
    "alert_policy_changed": N_("Alert policy changed"),
    "alert_sent": N_("Alert sent"),
    "alert_approved": N_("Alert approved"),
    "alert_cancelled": N_("Alert cancelled"),
    "export": N_("Export"),
    "erasure_requested": N_("Account deleted on request"),
    "erasure_received": N_("Erasure from another school"),
    "family_purged": N_("Departed family erased"),
    "child_purged": N_("Departed child erased"),
    "school_year_started": N_("New school year started"),
}
OUTCOMES = ("ok", "failed", "refused")
PAGE_SIZE = 50
#: detail values: ids, counts, roles, kinds; no spaces, "@" or "+" (no address, no number)
_DETAIL_TEXT = re.compile(r"[A-Za-z0-9_.:/-]{0,64}")


def _key(ctx: ServiceContext) -> bytes:
    """The pseudonym key: derived from the node secret, used for nothing else."""
    return bytes.fromhex(keyed_hash(ctx.node_secret, "audit-pseudonym-key", "v1"))


def pseudonym(ctx: ServiceContext, account_id: int | None) -> str | None:
    """The log's name for an account: 16 hex digits, stable for the node's lifetime."""
    if account_id is None:
        return None
    return keyed_hash(_key(ctx), "account", str(int(account_id)))[:16]


def _details(details: dict[str, Any]) -> str:
    for name, value in details.items():
        if isinstance(value, bool | int):
            continue
        if isinstance(value, str) and _DETAIL_TEXT.fullmatch(value):
            continue
        raise ValueError(f"audit detail {name}={value!r}: only ids, counts and short codes")
    return json.dumps(details, sort_keys=True, separators=(",", ":"))


def record(
    ctx: ServiceContext,
    action: str,
    actor: Actor | int | None,
    target: int | None = None,
    outcome: str = "ok",
    **details: Any,
) -> None:
    """Log one action.  Call it inside the acting service's write transaction.

    ``actor``: who acted (an Actor or an account id; None for nobody logged in or
    the node itself); ``target``: the account acted upon.
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}; add it to audit.ACTIONS")
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown audit outcome {outcome!r}")
    actor_id = actor.account_id if isinstance(actor, Actor) else actor
    store.insert_event(
        ctx.now(),
        action,
        pseudonym(ctx, actor_id),
        pseudonym(ctx, target),
        outcome,
        _details(details),
    )


def record_membership(
    ctx: ServiceContext,
    actor: Actor,
    class_id: int,
    entries: list[dict[str, Any]],
    account_of: Callable[[ServiceContext, str], int | None],
) -> None:
    """A teacher's log entries: each member added (approved) or removed is one event."""
    for entry in entries:
        if entry.get("op") in ("add", "remove"):
            account_id = account_of(ctx, entry["body"]["member"])
            if entry["op"] == "add":
                record(ctx, "guardian_approved", actor, account_id, class_id=class_id)
            else:
                record(ctx, "guardian_removed", actor, account_id, class_id=class_id, keys=True)


@dataclass(frozen=True)
class EventView:
    id: int
    created_at: dt.datetime
    action: str
    actor: str | None
    target: str | None
    outcome: str
    details: dict[str, Any]


@dataclass(frozen=True)
class EventPage:
    events: list[EventView]
    page: int
    pages: int
    total: int
    action: str | None
    pseudonym: str | None


def _page_number(raw: Any) -> int:
    if raw is None or raw == "":
        return 1
    if isinstance(raw, int) and not isinstance(raw, bool):
        number = raw
    elif isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) < 7:
        number = int(raw)
    else:
        raise Invalid(N_("The page must be a number."), field="page")
    if number < 1:
        raise Invalid(N_("The page must be a number."), field="page")
    return number


def _action_filter(raw: Any) -> str | None:
    if raw is None or raw == "":
        return None
    if raw not in ACTIONS:
        raise Invalid(N_("There is no such action in the audit log."), field="action")
    return str(raw)


def _pseudonym_filter(raw: Any) -> str | None:
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or not re.fullmatch(r"[0-9a-f]{16}", raw.strip().lower()):
        raise Invalid(N_("A pseudonym is 16 characters, 0-9 and a-f."), field="pseudonym")
    return raw.strip().lower()


def list_events(
    ctx: ServiceContext, actor: Actor, action: Any = None, page: Any = None, who: Any = None
) -> EventPage:
    """One page of the log, newest first, for an admin; optionally one action, one person."""
    policy.require_admin(actor)
    wanted, number, person = _action_filter(action), _page_number(page), _pseudonym_filter(who)
    total = store.count_events(wanted, person)
    pages = max(1, -(-total // PAGE_SIZE))
    rows = store.select_events(wanted, person, (number - 1) * PAGE_SIZE, PAGE_SIZE)
    events = [
        EventView(r.id, r.created_at, r.action, r.actor, r.target, r.outcome, json.loads(r.details))
        for r in rows
    ]
    return EventPage(events, number, pages, total, wanted, person)


def pseudonym_for_login(ctx: ServiceContext, actor: Actor, login: Any) -> str:
    """An admin answering a legal request: the pseudonym of the account with this login."""
    from node.services import accounts  # accounts records logins here: import at call time

    policy.require_admin(actor)
    account_id = accounts.find_account_id(ctx, login)
    found = pseudonym(ctx, account_id)
    assert found is not None
    return found


def purge(ctx: ServiceContext) -> int:
    """Delete events older than ``audit_retention_days`` (housekeeping, in its transaction)."""
    cutoff = ctx.now() - dt.timedelta(days=ctx.config.audit_retention_days)
    return store.delete_events_before(cutoff)
