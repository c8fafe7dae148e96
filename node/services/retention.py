"""Forgetting families who left: their accounts, what they wrote, then their children's records.

Definitions (docs/security.md, "Retention"):
- a guardian account has *left* when it is linked to no child of any class
  on this node (this school's or another school's mirrored here) and has no
  request to join a class of another school waiting or accepted.  The
  account of a guardian of another school (a shadow here) counts the same;
- a child has *left* when no guardian is linked to them and every guardian
  invitation the teacher made for them was withdrawn (a child whose teacher
  has not invited anyone yet never counts);
- *since when*: the first housekeeping pass (hourly) that finds them so
  writes a ``departure`` row; one that finds them back in a class deletes it;
- ``departed_family_retention_days`` (default 92, three months) after that,
  housekeeping erases the account (``erasure.erase_account``) or the child
  (their record, its invitations with names and phone numbers, answers,
  absence notes, labels and family threads), each in its own transaction,
  and logs it (``family_purged``, ``child_purged``).

A guardian with one child still in a class has not left: nothing of theirs
goes, whatever happened to their other children.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from node.services import audit, erasure
from node.services.context import ServiceContext
from node.storage import retention as store
from node.storage.db import write_transaction

log = logging.getLogger("carnet.retention")


@dataclass(frozen=True)
class Purged:
    accounts: int
    children: int
    #: erasures that failed (logged; retried at the next pass)
    failed: int = 0


def _mark(ctx: ServiceContext) -> list[store.Departure]:
    """Bring the departure rows up to date; returns them."""
    now = ctx.now()
    with write_transaction():
        accounts, children = store.guardians_in_no_class(), store.children_without_family()
        rows = store.departures()
        # a child once gone stays gone until a guardian or a live invitation is back (its
        # guardians' erasure blanks their invitations: it no longer looks "invited")
        children_back = store.children_back({r.child_id for r in rows if r.child_id})
        back = {
            r.id
            for r in rows
            if (r.account_id is not None and r.account_id not in accounts)
            or (r.child_id is not None and r.child_id in children_back)
        }
        store.delete_departures(back)
        known_accounts = {r.account_id for r in rows if r.account_id is not None}
        known_children = {r.child_id for r in rows if r.child_id is not None}
        store.add_departures(now, accounts - known_accounts, children - known_children)
        return store.departures()


def _erase_child(ctx: ServiceContext, child_id: int) -> list[str]:
    openings = store.family_thread_openings(child_id)
    files = store.blob_ids_of_threads(openings)
    store.delete_messages(openings)
    store.delete_child(child_id)
    return files


def purge_departed(ctx: ServiceContext) -> Purged:
    """Erase the guardians and children who left more than the retention period ago."""
    cutoff = ctx.now() - dt.timedelta(days=ctx.config.departed_family_retention_days)
    due = [r for r in _mark(ctx) if r.since <= cutoff]
    accounts = children = failed = 0
    # accounts first: a child's record goes after the guardians who wrote about them
    for row in sorted(due, key=lambda r: r.account_id is None):
        try:
            erased = _erase_due(ctx, row)
        except Exception:  # one row the erasure cannot delete must not hold back the others
            log.exception("erasing departure %s failed; retried at the next pass", row.id)
            failed += 1
            continue
        if erased is None:
            continue
        accounts += row.account_id is not None
        children += row.child_id is not None
        erasure.delete_files(ctx, erased)
    return Purged(accounts, children, failed)


def _erase_due(ctx: ServiceContext, row: store.Departure) -> erasure.Erased | None:
    """One departed account or child, in its own transaction (None: back in a class)."""
    with write_transaction():
        if row.account_id is not None and store.guardians_in_no_class(row.account_id):
            erased = erasure.erase_account(ctx, row.account_id)
            audit.record(ctx, "family_purged", None, row.account_id, messages=erased.messages)
            return erased
        if row.child_id is not None and not store.children_back({row.child_id}):
            erased = erasure.Erased(0, _erase_child(ctx, row.child_id))
            audit.record(ctx, "child_purged", None, child=row.child_id)
            return erased
        return None


def purge_audit(ctx: ServiceContext) -> int:
    """Audit events past ``audit_retention_days``."""
    with write_transaction():
        return audit.purge(ctx)
