"""Rate limits kept in the database, so they hold across processes and restarts.

A bucket counts events (failures, texts sent) in a sliding window.  Buckets
are chosen so that a stranger cannot lock out a real parent: failures are
counted per client address and per code, never per phone number alone (an
SMS is only sent after the right access code, which a stranger lacks).
"""

from __future__ import annotations

import datetime as dt
import ipaddress

from node.errors import N_, RateLimited
from node.secrets_util import keyed_hash
from node.services.context import ServiceContext
from node.storage import onboarding as store


def check(
    ctx: ServiceContext,
    bucket: str,
    limit: int,
    window: dt.timedelta,
    message: str = N_("Too many attempts. Wait a few minutes, then try again."),
) -> None:
    """Raise RateLimited when ``bucket`` already holds ``limit`` events in ``window``."""
    since = ctx.now() - window
    if store.count_rate_events(bucket, since) >= limit:
        raise RateLimited(message, retry_after=int(window.total_seconds()))


def hit(ctx: ServiceContext, bucket: str) -> None:
    store.insert_rate_event(bucket, ctx.now())


def purge(ctx: ServiceContext, older_than: dt.timedelta = dt.timedelta(days=1)) -> int:
    """Forget events older than every window in use (run by the housekeeping task)."""
    return store.delete_rate_events_before(ctx.now() - older_than)


FIFTEEN_MINUTES = dt.timedelta(minutes=15)
ONE_HOUR = dt.timedelta(hours=1)


def client_net(ip: str) -> str:
    """The unit a rate limit counts: one IPv4 address, or one IPv6 /64.

    Anyone with IPv6 holds a whole /64 (2**64 addresses); counting single
    addresses there would be no limit at all.
    """
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:  # ::ffff:192.0.2.1 is the IPv4 client
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def count_message(ctx: ServiceContext, account_id: int) -> None:
    """Count one message written by ``account_id``; refuse it past the hourly limit.

    Called inside the write's transaction, so a message refused for any other
    reason is not counted.
    """
    bucket = f"write:{account_id}"
    check(
        ctx, bucket, ctx.config.messages_per_account_per_hour, ONE_HOUR,
        N_("You have written a great many messages in the last hour. Wait a little, then try again."),
    )  # fmt: skip
    hit(ctx, bucket)


def ip_bucket(ip: str) -> str:
    return f"fail-ip:{client_net(ip)}"[:120]


def check_ip(ctx: ServiceContext, ip: str) -> None:
    check(ctx, ip_bucket(ip), ctx.config.failures_per_ip_per_15min, FIFTEEN_MINUTES)


def _login_buckets(ctx: ServiceContext, login: str, ip: str) -> tuple[str, str]:
    # Keyed on an HMAC of the login, so unknown logins count exactly like known
    # ones (a 429 reveals nothing) and no login is written in clear.
    key = keyed_hash(ctx.node_secret, "login-bucket", login)[:32]
    return f"fail-login:{key}", f"fail-login:{key}:{client_net(ip)}"[:120]


def check_login(ctx: ServiceContext, login: str, ip: str) -> None:
    """Refuse a passphrase attempt from an address that keeps failing for this login.

    - per address: ``login_failures_per_address_per_15min`` failures, then 429;
    - per login (NIST 800-63B §5.2.2, ``login_failures_per_account_per_hour``):
      past the ceiling, only addresses that already failed for this login are
      refused.  A stranger's failures cannot lock out the real person, who
      comes from an address that has not failed; a distributed guesser gets at
      most one try per fresh address (a /64 for IPv6) per hour, each costing
      them 600,000 PBKDF2 rounds.
    """
    check_ip(ctx, ip)
    account_bucket, pair_bucket = _login_buckets(ctx, login, ip)
    check(ctx, pair_bucket, ctx.config.login_failures_per_address_per_15min, FIFTEEN_MINUTES)
    since = ctx.now() - ONE_HOUR
    over = (
        store.count_rate_events(account_bucket, since)
        >= ctx.config.login_failures_per_account_per_hour
    )
    if over and store.count_rate_events(pair_bucket, since) > 0:
        raise RateLimited(
            N_("Too many attempts. Wait a few minutes, then try again."),
            retry_after=int(ONE_HOUR.total_seconds()),
        )


def record_login_failure(ctx: ServiceContext, login: str, ip: str) -> None:
    account_bucket, pair_bucket = _login_buckets(ctx, login, ip)
    hit(ctx, ip_bucket(ip))
    hit(ctx, account_bucket)
    hit(ctx, pair_bucket)
