"""A guardian's private calendar feed: the events of their children's classes, as iCalendar.

Who may do what: a logged-in guardian creates (or replaces) their own feed
link; whoever holds the link reads the feed, which is why the token is long,
random, stored hashed, and replaced on demand (the old link stops working).
The feed lists the events of the classes where the guardian is an approved
member, whole-class ones and those for their own children.

Event titles and places are end-to-end encrypted: the node cannot put them
in the feed.  SUMMARY says "Class event — <class>" and links to the post; the
browser's "Add to my calendar" gives the full, decrypted event instead.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from node.errors import N_, NotFound, PermissionDenied
from node.secrets_util import new_token, token_hash
from node.services import groups
from node.services.context import Actor, ServiceContext
from node.storage import accounts as account_store
from node.storage import actions as store
from node.storage import directory as directory_store
from node.storage.db import write_transaction

#: events that ended longer ago than this are left out of the feed
KEEP_PAST = dt.timedelta(days=30)
SUMMARY = N_("Class event — %(class)s")
DESCRIPTION = N_("The details are end-to-end encrypted: open the post in Carnet.")


@dataclass(frozen=True)
class CalendarLink:
    #: the link itself: only when just created (the node keeps its hash only)
    url: str | None
    created_at: dt.datetime | None


def _guardian(actor: Actor) -> None:
    if not actor.is_guardian:
        raise PermissionDenied(N_("Calendar feeds are for parents."))


def link_info(ctx: ServiceContext, actor: Actor) -> CalendarLink:
    """Whether the guardian has a feed link, and since when (the link is shown once)."""
    _guardian(actor)
    row = store.calendar_token_of(actor.account_id)
    return CalendarLink(None, row.created_at if row else None)


def new_link(ctx: ServiceContext, actor: Actor) -> CalendarLink:
    """A new private feed link; the previous one stops working."""
    _guardian(actor)
    token = new_token()
    now = ctx.now()
    with write_transaction():
        store.replace_calendar_token(actor.account_id, token_hash(token), now)
    return CalendarLink(f"{ctx.config.origin}/calendar/{token}.ics", now)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def fold(line: str) -> str:
    """RFC 5545 §3.1: lines of at most 75 octets, continued with CRLF and a space."""
    out: list[str] = []
    current = b""
    for ch in line:
        encoded = ch.encode("utf-8")
        limit = 75 if not out else 74  # continuation lines start with a space
        if len(current) + len(encoded) > limit:
            out.append(current.decode("utf-8"))
            current = b""
        current += encoded
    out.append(current.decode("utf-8"))
    return "\r\n ".join(out)


def _stamp(value: dt.datetime) -> str:
    return value.strftime("%Y%m%dT%H%M%SZ")


def _event_lines(
    ctx: ServiceContext, m: Any, a: Any, class_name: str, class_id: int, locale: str
) -> list[str]:
    host = ctx.config.origin.split("://", 1)[1]
    lines = ["BEGIN:VEVENT", f"UID:{m.public_id}@{host}", f"DTSTAMP:{_stamp(m.updated_at)}"]
    if a.all_day:
        first = a.starts_at.date()
        last = (a.ends_at or a.starts_at).date()
        lines.append(f"DTSTART;VALUE=DATE:{first:%Y%m%d}")
        lines.append(f"DTEND;VALUE=DATE:{last + dt.timedelta(days=1):%Y%m%d}")  # exclusive
    else:
        start = a.starts_at
        lines.append(f"DTSTART:{_stamp(start)}")
        lines.append(f"DTEND:{_stamp(a.ends_at or start + dt.timedelta(hours=1))}")
    summary = ctx.translate(locale, SUMMARY) % {"class": class_name}
    url = f"{ctx.config.origin}/classes/{class_id}/feed#m-{m.public_id}"
    lines += [
        f"SUMMARY:{_escape(summary)}",
        f"DESCRIPTION:{_escape(ctx.translate(locale, DESCRIPTION))}",
        f"URL:{url}",
        "END:VEVENT",
    ]
    return lines


def feed(ctx: ServiceContext, token: str) -> str:
    """The iCalendar text of the feed a token opens; NotFound for an unknown token."""
    row = store.select_calendar_token(token_hash(token)) if 20 <= len(token) <= 64 else None
    account = account_store.select_account(row.account_id) if row else None
    if row is None or account is None or account.status != "active":
        raise NotFound(N_("No such calendar."))
    actor = Actor(account.id, account.role, account.display_name)
    children = directory_store.select_children_of_guardian(account.id)
    classes: dict[int, groups.Access] = {}
    for class_id in sorted({c.school_class_id for c in children}):
        a = groups.access(ctx, actor, class_id, children=children)
        if a.group is not None and a.is_member:
            classes[a.group.id] = a
    locale = ctx.config.default_locale
    since = ctx.now() - KEEP_PAST
    lines = [
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Carnet//Class events//EN",
        "CALSCALE:GREGORIAN", f"X-WR-CALNAME:{_escape(ctx.config.school_name)}",
    ]  # fmt: skip
    for message, action in store.events_of_groups(sorted(classes), [c.id for c in children], since):
        a = classes[message.group_id]
        lines += _event_lines(ctx, message, action, a.school_class.name, a.school_class.id, locale)
    lines.append("END:VCALENDAR")
    return "".join(fold(line) + "\r\n" for line in lines)
