"""Daily digests: one push a day that counts a guardian's information posts, per class.

A guardian who chose a digest (``notifications.set_digest``) gets no push for
each information-level post: ``notifications.enqueue`` holds it until their
digest time.  The push worker calls ``form_due`` before each pass; it turns
every account's held rows that are due into one ``digest`` notification, which
the same pass sends like any other (``push_delivery.claim_due``), and the
held rows count as delivered.  Action-needed and urgent posts are never held.

What a digest says: how many new posts, and the names of their classes
("3 new posts: CE1 A (2), CM2 B (1)"); never content, never authors.  Posts
deleted since, and classes the guardian has left, are not counted; a digest
left with nothing to count is cancelled.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable, Sequence
from typing import Any

from node.errors import N_
from node.services.context import ServiceContext
from node.services.notifications import after_quiet_hours
from node.storage import accounts as account_store
from node.storage import digests as store
from node.storage import notifications as notification_store
from node.storage.db import write_transaction

#: Held rows read per transaction; the rest wait for the next pass (a few seconds).
MAX_ROWS = 5000

_ONE = N_("1 new post: {classes}")
_MANY = N_("{count} new posts: {classes}")


def form_due(ctx: ServiceContext) -> int:
    """Form the digests whose time has come; returns how many were formed.

    Idempotent: the held rows become ``sent`` in the transaction that inserts
    their digest, so running twice (two workers, a retried pass) forms each
    digest once.  The digest itself still waits out the guardian's quiet hours.
    """
    now = ctx.now()
    zone = zoneinfo.ZoneInfo(ctx.config.timezone)
    with write_transaction():
        held = store.select_due_held(now, MAX_ROWS)
        if not held:
            return 0
        by_account: dict[int, list[int]] = {}
        for row_id, account_id in held:
            by_account.setdefault(account_id, []).append(row_id)
        if len(held) == MAX_ROWS and len(by_account) > 1:
            # the last account's rows may go on past the limit: its digest waits for the next pass
            by_account.pop(held[-1][1])
        accounts = sorted(by_account)
        settings = notification_store.select_settings_of(accounts)
        rows = []
        for account_id in accounts:
            s = settings.get(account_id)
            when = after_quiet_hours(now, zone, s.quiet_start, s.quiet_end) if s else now
            rows.append((account_id, when))
        ids = notification_store.insert_notifications(rows, "digest", None, None, "normal", now)
        for account_id, digest_id in zip(accounts, ids, strict=True):
            store.mark_digested(by_account[account_id], digest_id, now)
        return len(accounts)


def summaries(rows: Iterable[Any]) -> dict[int, list[tuple[str, int]]]:
    """Digest notification id → [(class name, posts)], for the ``digest`` rows among ``rows``.

    Counts only posts still there, in classes a guardian is still in.
    """
    digests = {r.id: r.account_id for r in rows if r.kind == "digest"}
    counts = store.digest_counts(digests)
    roles = account_store.select_roles(set(digests.values()))
    guardians = {a for a in digests.values() if roles.get(a) == "guardian"}
    classes_of = notification_store.select_guardian_classes(guardians)
    names = notification_store.select_class_names(
        c for per_class in counts.values() for c in per_class
    )
    out: dict[int, list[tuple[str, int]]] = {}
    for digest_id, account_id in digests.items():
        kept = [
            (names[c], n)
            for c, n in counts.get(digest_id, {}).items()
            if c in names and (account_id not in guardians or c in classes_of.get(account_id, ()))
        ]
        if kept:
            out[digest_id] = sorted(kept)
    return out


def digest_payload(
    ctx: ServiceContext,
    notification_id: int,
    summary: Sequence[tuple[str, int]],
    locales: Sequence[str],
) -> dict[str, Any]:
    """The push payload of a digest: counts and class names in every language, a link home."""
    total = sum(n for _, n in summary)
    classes = ", ".join(f"{name} ({n})" for name, n in summary)
    body = {
        locale: ctx.translate(locale, _ONE if total == 1 else _MANY).format(
            count=total, classes=classes
        )
        for locale in locales
    }
    return {
        "v": 1,
        "kind": "digest",
        "class": None,
        "author": None,
        "title": ctx.config.school_name,
        "body": body,
        "lang": ctx.config.default_locale,
        "url": "/",
        "tag": f"digest-{notification_id}",
    }
