"""A guardian's export: everything the node holds about them, as the node holds it.

The node cannot read what families write, so the export it serves is the
same ciphertext, sealed keys and ids its pages serve; the guardian's browser
decrypts it and writes the zip (``web/static/js/pages/export.js``).

Rules:
- only a guardian exports here; a teacher's or an admin's records (posts to
  classes, rosters, alerts) are the school's, and leaving the school is
  handled by the school admin, so staff get 403;
- nothing is widened: every part comes from the read path the guardian's own
  pages use (the timeline, chat overviews and conversations, absence notes,
  alerts), with the same checks, so the export holds exactly what the guardian
  can already read, plus their own account rows (profile with their own phone
  and e-mail, sessions, devices with the push service's host only, settings,
  notifications);
- the posts and the messages of each conversation come in pages (``posts``,
  ``conversation``) so a big family's export never sits in one response;
- reading the export changes nothing the guardian can see (an alert it lists
  is not marked delivered: the guardian's alert page does that); it is
  audited (``export``, with counts only) when it starts, and refused
  attempts by staff are audited too.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from node.errors import N_, PermissionDenied
from node.services import absences, accounts, alerts, audit, chat_views, directory, feed, groups
from node.services import notifications as notification_service
from node.services.absences import AbsenceView
from node.services.accounts import SessionView
from node.services.chat_views import ConversationPage, Summary
from node.services.context import Actor, ServiceContext
from node.services.directory import ChildView
from node.services.feed import FeedPage
from node.services.keyring import fingerprint_of
from node.services.notifications import SettingsView
from node.storage import accounts as account_store
from node.storage import alerts as alert_store
from node.storage import export as store
from node.storage import notifications as notification_store
from node.storage.db import write_transaction

FORMAT = "carnet-export-1"
#: the node keeps notifications for days, alerts for the school year: bounded anyway
MAX_NOTIFICATIONS = 2000
MAX_ALERTS = 500


@dataclass(frozen=True)
class Profile:
    id: int
    display_name: str
    role: str
    status: str
    #: the guardian's own phone number and e-mail address: theirs to see
    phone: str | None
    email: str | None
    fingerprint: str | None
    created_at: dt.datetime
    activated_at: dt.datetime | None
    #: the language the export was asked in (the pages' language)
    locale: str


@dataclass(frozen=True)
class ClassEntry:
    id: int
    name: str
    school_year: str
    teacher_name: str
    #: a class of another school: that school's name
    school: str | None
    #: the guardian's member id in the class's encrypted group
    member: str
    #: the teacher approved their keys: the class's posts and chat are theirs to read
    approved: bool


@dataclass(frozen=True)
class Device:
    id: int
    device: str
    #: the push service's host only: the full endpoint is a bearer address
    endpoint_host: str
    created_at: dt.datetime
    last_success_at: dt.datetime | None


@dataclass
class ClassAbsences:
    class_id: int
    class_name: str
    notes: list[AbsenceView]


@dataclass
class ClassChat:
    class_id: int
    class_name: str
    #: the conversations the guardian is in (the class's room before joining it is not)
    conversations: list[Summary]


@dataclass(frozen=True)
class AlertMessage:
    id: str
    template: str
    at: dt.datetime
    message: dict[str, Any]


@dataclass
class AlertEntry:
    id: str
    template: str
    drill: bool
    state: str
    sent_by: str | None
    created_at: dt.datetime
    sent_at: dt.datetime | None
    closed_at: dt.datetime | None
    acknowledged_at: dt.datetime | None
    school: str | None
    #: the school group it is encrypted to (``GET /api/v1/school-group?group=…``)
    group: str | None
    messages: list[AlertMessage] = field(default_factory=list)


@dataclass
class Export:
    format: str
    generated_at: dt.datetime
    profile: Profile
    children: list[ChildView]
    classes: list[ClassEntry]
    sessions: list[SessionView]
    devices: list[Device]
    notification_settings: SettingsView
    notifications: list[store.NotificationRow]
    absences: list[ClassAbsences]
    conversations: list[ClassChat]
    alerts: list[AlertEntry]


def require_exporter(actor: Actor) -> None:
    if not actor.is_guardian:
        raise PermissionDenied(
            N_("The data export is for parents and guardians: staff records belong to the school.")
        )


def check_exporter(ctx: ServiceContext, actor: Actor) -> None:
    """The export page's check: the same rule as the export itself."""
    require_exporter(actor)


def _host(endpoint: str) -> str:
    return urlsplit(endpoint).hostname or ""


def _alerts(ctx: ServiceContext, actor: Actor) -> list[AlertEntry]:
    """The alerts sent to the guardian with their encrypted messages, as the alert page reads them."""
    out = []
    for view in alerts.list_alerts(ctx, actor, MAX_ALERTS):  # the guardian's own alerts only
        row = alert_store.select_alert(view.id)
        messages = alert_store.select_messages(row.id) if row is not None else []
        out.append(
            AlertEntry(
                view.id, view.template, view.drill, view.state, view.sent_by, view.created_at,
                view.sent_at, view.closed_at, view.acknowledged_at, view.school, view.group,
                [AlertMessage(m.public_id, m.template, m.created_at, json.loads(m.wire)) for m in messages],
            )
        )  # fmt: skip
    return out


def summary(ctx: ServiceContext, actor: Actor, locale: str = "en") -> Export:
    """Everything but the posts and conversation messages (``posts``, ``conversation``).

    The start of an export: audited, a refusal included.
    """
    if not actor.is_guardian:
        with write_transaction():
            audit.record(ctx, "export", actor, actor.account_id, "refused", role=actor.role)
    require_exporter(actor)
    account = account_store.select_account(actor.account_id)
    assert account is not None  # an authenticated actor's account exists
    profile = Profile(
        account.id, account.display_name, account.role, account.status, account.phone,
        account.email, fingerprint_of(account.sign_pk), account.created_at,
        account.activated_at, locale,
    )  # fmt: skip
    children = directory.my_children(ctx, actor)
    classes, chats, notes = [], [], []
    for class_id in sorted({c.class_id for c in children}):
        a = groups.access(ctx, actor, class_id)
        kid = next(c for c in children if c.class_id == class_id)
        approved = a.group is not None and a.is_member
        classes.append(
            ClassEntry(
                class_id, kid.class_name, kid.school_year, kid.teacher_name, kid.school, a.me,
                approved,
            )
        )  # fmt: skip
        if not approved:  # nothing of the class was sealed to them yet
            continue
        overview = chat_views.overview(ctx, actor, class_id)
        chats.append(
            ClassChat(class_id, kid.class_name, [s for s in overview.conversations if s.joined])
        )
        notes.append(
            ClassAbsences(class_id, kid.class_name, absences.list_notes(ctx, actor, class_id).notes)
        )
    hosts = {
        s.id: _host(s.endpoint) for s in notification_store.select_subscriptions(actor.account_id)
    }
    devices = [
        Device(d.id, d.device, hosts.get(d.id, ""), d.created_at, d.last_success_at)
        for d in notification_service.my_subscriptions(ctx, actor)
    ]
    with write_transaction():
        audit.record(ctx, "export", actor, actor.account_id, classes=len(classes),
                     children=len(children))  # fmt: skip
    return Export(
        FORMAT, ctx.now(), profile, children, classes, accounts.my_sessions(ctx, actor), devices,
        notification_service.get_settings(ctx, actor),
        store.select_notifications_of(actor.account_id, MAX_NOTIFICATIONS),
        notes, chats, _alerts(ctx, actor),
    )  # fmt: skip


def posts(ctx: ServiceContext, actor: Actor, before: int | None = None) -> FeedPage:
    """A page of the guardian's timeline (every class, every child), largest pages first."""
    require_exporter(actor)
    return feed.my_feed(ctx, actor, before=before, limit=feed.MAX_PAGE)


def conversation(
    ctx: ServiceContext, actor: Actor, class_id: int, conversation_id: str, before: Any = None
) -> ConversationPage:
    """A page of one conversation the guardian is in (its older messages with ``before``)."""
    require_exporter(actor)
    return chat_views.conversation(ctx, actor, class_id, conversation_id, before)
