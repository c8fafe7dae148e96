"""Notifications: queueing Web Push notices, push subscriptions, and quiet hours.

Who may do what: any logged-in person manages their own subscriptions and
quiet hours; nobody sees anyone else's.  Other services call ``enqueue``
inside their own transaction, so a post and its notifications commit
together; the push worker delivers them (``node.services.push_delivery``).

What a notification may say: its kind, the class's name, the author's display
name and a link.  Never content: the node cannot read posts anyway, and the
push services that carry the notice should learn nothing either (the payload
is encrypted to the browser, RFC 8291, but stays content-free regardless).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import ipaddress
import re
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec

from node.errors import N_, Conflict, Invalid, NotFound
from node.secrets_util import token_hash
from node.services.accounts import _device as device_name
from node.services.context import Actor, ServiceContext
from node.storage import accounts as account_store
from node.storage import notifications as store
from node.storage.db import write_transaction

#: What a notification announces.  ``alert`` is an emergency alert; ``absence`` a
#: guardian's absence note (to the teacher).
KINDS = ("post", "comment", "share", "message", "reminder", "alert", "absence", "report")
#: RFC 8030 ``Urgency``; ``high`` (emergencies) ignores quiet hours.
URGENCIES = ("normal", "high")
#: Push subscriptions one account may hold (one per browser or phone).
MAX_DEVICES = 10
#: Longest endpoint accepted; real push services use about 200 characters.
MAX_ENDPOINT = 1024

_TIME = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
_B64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
_PRIVATE_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home.arpa")


# -- enqueueing ----------------------------------------------------------------


def enqueue(
    ctx: ServiceContext,
    *,
    kind: str,
    account_ids: Iterable[int],
    class_id: int | None,
    message_id: int | None,
    urgency: str = "normal",
    alert_id: int | None = None,
    digest: bool = False,
) -> list[int]:
    """Queue one notification per recipient; call inside the caller's transaction.

    Opens no transaction of its own: the post (or alert) and its
    notifications commit or roll back together.  A recipient inside their
    quiet hours gets an ordinary notification when those hours end; ``high``
    urgency (emergency alerts) ignores quiet hours.

    Args:
        kind: one of ``KINDS``.
        account_ids: the recipients (duplicates are ignored); the caller
            leaves out the author and anyone who may not see the message.
        class_id: the class named in the notification (its title).
        message_id: the message it announces (its author is named, its
            public id makes the link).
        urgency: ``normal`` or ``high``.
        alert_id: the emergency alert announced (kind ``alert``).
        digest: an information-level post: held until the daily digest of
            a recipient who chose one (``node.services.digests``).

    Returns:
        The new notifications' ids, in recipient order.

    Raises:
        ValueError: an unknown kind or urgency (a programming error).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown notification kind {kind!r}")
    if urgency not in URGENCIES:
        raise ValueError(f"unknown urgency {urgency!r}")
    recipients = list(dict.fromkeys(account_ids))
    now = ctx.now()
    settings = store.select_settings_of(recipients) if urgency == "normal" else {}
    zone = zoneinfo.ZoneInfo(ctx.config.timezone)
    rows = []
    held = set()
    for account_id in recipients:
        quiet = settings.get(account_id)
        if digest and quiet is not None and quiet.digest_time:
            held.add(account_id)  # waits for the digest, which then follows quiet hours
            rows.append((account_id, next_digest(now, zone, quiet.digest_time)))
            continue
        when = (
            after_quiet_hours(now, zone, quiet.quiet_start, quiet.quiet_end)
            if quiet is not None
            else now
        )
        rows.append((account_id, when))
    # one INSERT per 500 rows: a post to a school of 2,000 families is 4 statements, not 2,000
    return store.insert_notifications(
        rows, kind, class_id, message_id, urgency, now, alert_id, held=held
    )


def next_digest(now: dt.datetime, zone: zoneinfo.ZoneInfo, at: str) -> dt.datetime:
    """The next ``at`` (``HH:MM`` wall clock in ``zone``) strictly after ``now``, naive UTC."""
    local = now.replace(tzinfo=dt.UTC).astimezone(zone)
    clock = _parse_time(at)
    when = _utc(dt.datetime.combine(local.date(), clock, tzinfo=zone))
    # compared in UTC: on the night clocks go back, wall-clock times of one zone
    # compare as if the hour between 02:00 and 03:00 came only once
    if when <= now:
        when = _utc(dt.datetime.combine(local.date() + dt.timedelta(days=1), clock, tzinfo=zone))
    return when


def _utc(moment: dt.datetime) -> dt.datetime:
    """An aware time as naive UTC.  A wall-clock time the spring change skips
    (02:30 in Paris) is read with the offset before it: 03:30 summer time; one
    that comes twice in autumn is its first occurrence."""
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


def after_quiet_hours(
    now: dt.datetime, zone: zoneinfo.ZoneInfo, start: str | None, end: str | None
) -> dt.datetime:
    """``now`` (naive UTC), or the end of the quiet hours ``start``–``end`` if now is inside them.

    The hours are wall-clock times in ``zone`` and may span midnight
    (``21:00``–``07:00``); the result is naive UTC, like every stored time.
    """
    if not start or not end or start == end:
        return now
    begin, finish = _parse_time(start), _parse_time(end)
    local = now.replace(tzinfo=dt.UTC).astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    end_day = local.date()
    if begin < finish:
        inside = begin <= clock < finish
    else:  # spans midnight
        inside = clock >= begin or clock < finish
        if clock >= begin:
            end_day += dt.timedelta(days=1)
    if not inside:
        return now
    wake = _utc(dt.datetime.combine(end_day, finish, tzinfo=zone))
    if wake <= now:
        # the end falls in the hour that comes twice and its first occurrence
        # has passed: the hours end at its second one
        wake = _utc(dt.datetime.combine(end_day, finish, tzinfo=zone).replace(fold=1))
    return max(wake, now)


def _parse_time(text: str) -> dt.time:
    match = _TIME.fullmatch(text)
    if match is None:
        raise ValueError(f"not an HH:MM time: {text!r}")
    return dt.time(int(match[1]), int(match[2]))


# -- subscriptions -------------------------------------------------------------


@dataclass(frozen=True)
class SubscriptionView:
    id: int
    #: "Firefox · Android": what the browser announced when it subscribed.
    device: str
    created_at: dt.datetime
    last_success_at: dt.datetime | None


def _view(sub: store.PushSubscription) -> SubscriptionView:
    return SubscriptionView(
        sub.id, device_name(sub.user_agent), sub.created_at, sub.last_success_at
    )


def endpoint_hash(endpoint: str) -> str:
    return hashlib.sha256(endpoint.encode()).hexdigest()


def _loopback_node(ctx: ServiceContext) -> bool:
    """A node served over plain HTTP on this machine: tests and the demo."""
    parts = urlsplit(ctx.config.public_url)
    return parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS


def check_endpoint(ctx: ServiceContext, endpoint: Any) -> str:
    """The push service URL a browser gave, refused unless it is a public https address.

    IP literals, ``localhost`` and private-looking names are refused so that
    a subscription cannot make the node post to its own network (SSRF);
    push services use public host names.  Only a node that itself runs on
    ``http://127.0.0.1`` (tests, the demo) accepts loopback http endpoints.
    """
    bad = Invalid(
        N_("Notifications need the https address of the browser's push service."),
        field="endpoint",
    )
    if not isinstance(endpoint, str) or not 0 < len(endpoint) <= MAX_ENDPOINT:
        raise bad
    if not endpoint.isascii() or any(ord(ch) <= 32 or ord(ch) == 127 for ch in endpoint):
        raise bad
    try:
        parts = urlsplit(endpoint)
        port = parts.port
    except ValueError:
        raise bad from None
    host = (parts.hostname or "").lower()
    if not host or parts.username is not None or parts.password is not None or parts.fragment:
        raise bad
    if parts.scheme == "http" and host in _LOOPBACK_HOSTS and _loopback_node(ctx):
        return endpoint
    if parts.scheme != "https" or port not in (None, 443):
        raise bad
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        raise bad
    if "." not in host or host == "localhost" or host.endswith(_PRIVATE_SUFFIXES):
        raise bad
    return endpoint


def _key_bytes(value: Any, field: str, message: str) -> bytes:
    if not isinstance(value, str) or len(value) > 128 or not _B64URL.fullmatch(value):
        raise Invalid(message, field=field)
    text = value.rstrip("=")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, binascii.Error):
        raise Invalid(message, field=field) from None


def check_keys(p256dh: Any, auth: Any) -> tuple[str, str]:
    """The subscription's keys, base64url without padding.

    ``p256dh`` is the browser's P-256 public key as a 65-byte uncompressed
    point (checked to lie on the curve); ``auth`` is its 16-byte secret.
    """
    bad_key = N_("The browser's notification key is not valid.")
    raw_key = _key_bytes(p256dh, "p256dh", bad_key)
    if len(raw_key) != 65 or raw_key[0] != 4:
        raise Invalid(bad_key, field="p256dh")
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw_key)
    except ValueError:
        raise Invalid(bad_key, field="p256dh") from None
    bad_auth = N_("The browser's notification secret is not valid.")
    raw_auth = _key_bytes(auth, "auth", bad_auth)
    if len(raw_auth) != 16:
        raise Invalid(bad_auth, field="auth")
    return _b64(raw_key), _b64(raw_auth)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def subscribe(
    ctx: ServiceContext, actor: Actor, endpoint: Any, p256dh: Any, auth: Any, user_agent: str = ""
) -> SubscriptionView:
    """Turn notifications on for one browser of the caller's.

    The endpoint identifies the browser: subscribing it again updates its
    keys, and a browser someone else subscribed before (a shared computer)
    now notifies the caller only.

    Raises:
        Invalid: the endpoint or a key is malformed.
        Conflict: the caller already has ``MAX_DEVICES`` devices.
    """
    url = check_endpoint(ctx, endpoint)
    key, secret = check_keys(p256dh, auth)
    digest = endpoint_hash(url)
    now = ctx.now()
    with write_transaction():
        existing = store.select_subscription_by_hash(digest)
        mine = existing is not None and existing.account_id == actor.account_id
        if not mine and store.count_subscriptions(actor.account_id) >= MAX_DEVICES:
            raise Conflict(
                N_(
                    "Notifications are already on for {limit} devices. Turn them off on one you no longer use, then try again."
                ),
                limit=MAX_DEVICES,
            )
        if existing is None:
            existing = store.PushSubscription(endpoint_hash=digest, created_at=now)
        elif not mine:
            existing.created_at = now
            existing.last_success_at = None
        existing.account_id = actor.account_id
        existing.endpoint = url
        existing.p256dh = key
        existing.auth = secret
        existing.user_agent = (user_agent or "")[:200]
        existing.failures = 0
        existing.save()
        return _view(existing)


def unsubscribe(ctx: ServiceContext, actor: Actor, endpoint: Any) -> bool:
    """Turn notifications off for one of the caller's browsers; False if it was not on."""
    if not isinstance(endpoint, str) or len(endpoint) > MAX_ENDPOINT:
        raise Invalid(
            N_("Notifications need the https address of the browser's push service."),
            field="endpoint",
        )
    with write_transaction():
        return store.delete_subscription(actor.account_id, endpoint_hash(endpoint)) > 0


def remove_device(ctx: ServiceContext, actor: Actor, subscription_id: int) -> None:
    """Turn notifications off for one of the caller's devices, by its listed id."""
    with write_transaction():
        if not store.delete_subscription_by_id(actor.account_id, subscription_id):
            raise NotFound(N_("No such device."))


def my_subscriptions(ctx: ServiceContext, actor: Actor) -> list[SubscriptionView]:
    """The caller's devices with notifications on, newest first."""
    return [_view(s) for s in store.select_subscriptions(actor.account_id)]


# -- quiet hours ---------------------------------------------------------------


@dataclass(frozen=True)
class SettingsView:
    quiet_start: str | None
    quiet_end: str | None
    #: The time zone the hours are read in (the school's).
    timezone: str
    devices: int
    #: "HH:MM": information posts come in one daily digest then; None: at once
    digest_time: str | None = None


def get_settings(ctx: ServiceContext, actor: Actor) -> SettingsView:
    settings = store.select_settings(actor.account_id)
    return SettingsView(
        settings.quiet_start if settings else None,
        settings.quiet_end if settings else None,
        ctx.config.timezone,
        store.count_subscriptions(actor.account_id),
        settings.digest_time if settings else None,
    )


#: The digest time a guardian is offered first.
DEFAULT_DIGEST_TIME = "18:00"


def set_digest(ctx: ServiceContext, actor: Actor, mode: Any, at: Any = None) -> SettingsView:
    """Information posts: notify at once (``mode`` ``now``) or in a daily digest at ``at``.

    Action-needed and urgent posts always notify at once.  Posts already
    held move to the new time; going back to "at once" sends them in one
    digest now rather than one by one.
    """
    if mode not in ("now", "digest"):
        raise Invalid(N_("Choose at once or a daily digest."), field="digest")
    if mode == "digest":
        if not isinstance(at, str) or not _TIME.fullmatch(at):
            raise Invalid(N_("Enter a time like 18:00."), field="digest_time")
    zone = zoneinfo.ZoneInfo(ctx.config.timezone)
    now = ctx.now()
    with write_transaction():
        store.upsert_digest(actor.account_id, at if mode == "digest" else None, now)
        due = next_digest(now, zone, at) if mode == "digest" else now
        store.reschedule_held(actor.account_id, due)
    return get_settings(ctx, actor)


def set_quiet_hours(ctx: ServiceContext, actor: Actor, start: Any, end: Any) -> SettingsView:
    """Set (both times, ``HH:MM`` in the school's time zone) or clear (neither) quiet hours.

    Ordinary notifications that fall inside them wait until they end;
    emergency alerts do not wait.
    """
    start = start or None
    end = end or None
    if (start is None) != (end is None):
        raise Invalid(
            N_("Give both the start and the end of quiet hours, or neither."),
            field="quiet_end" if end is None else "quiet_start",
        )
    for name, value in (("quiet_start", start), ("quiet_end", end)):
        if value is not None and (not isinstance(value, str) or not _TIME.fullmatch(value)):
            raise Invalid(N_("Enter a time like 21:30."), field=name)
    if start is not None and start == end:
        raise Invalid(N_("Quiet hours cannot start and end at the same time."), field="quiet_end")
    with write_transaction():
        store.upsert_settings(actor.account_id, start, end, ctx.now())
    return get_settings(ctx, actor)


# -- live streams --------------------------------------------------------------


def session_is_live(ctx: ServiceContext, token: str, session_id: int | None) -> bool:
    """Whether a live-update stream opened with this session may go on.

    Unlike ``accounts.authenticate`` it does not touch the session's
    last use: a tab left open is not activity, so it does not keep an idle
    session alive.  False once the session is revoked, expired or idle, or
    the account disabled.
    """
    if not token or len(token) > 64:
        return False
    now = ctx.now()
    session = account_store.select_live_session(token_hash(token), now)
    if session is None or session.id != session_id or session.account.status != "active":
        return False
    return bool(session.last_seen_at + dt.timedelta(days=ctx.config.session_idle_days) > now)
