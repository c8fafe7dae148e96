"""Staff accounts, setup links, logins and sessions.

Who may do what:
- the operator (CLI) creates the first admin; an admin creates teachers and
  other admins, re-issues their setup links and disables accounts;
- a person with a valid setup link sets their own passphrase and keys once;
- anyone may log in; a session is a random token, stored hashed.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any

from node.errors import N_, Conflict, Gone, Invalid, NotFound, PermissionDenied, Unauthenticated
from node.phone import mask_email, mask_phone, normalize_phone
from node.secrets_util import fake_salt, new_token, token_hash
from node.services import audit, policy, ratelimit
from node.services.context import Actor, ServiceContext
from node.services.credentials import (
    Credentials,
    b64url_bytes,
    check_credentials,
    hash_login_secret,
    verify_login_secret,
)
from node.services.keyring import fingerprint_of
from node.storage import accounts as store
from node.storage.db import write_transaction

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
MAX_LOGIN_SECRET_FIELD = 64


@dataclass(frozen=True)
class AccountView:
    id: int
    role: str
    display_name: str
    status: str
    #: The contact shown to others: always masked.
    contact_masked: str
    fingerprint: str | None


@dataclass(frozen=True)
class SessionGrant:
    """A new session: the raw token goes into the cookie, and only there."""

    token: str
    actor: Actor
    vault: dict[str, Any] | None


@dataclass(frozen=True)
class KdfParams:
    salt: str
    iterations: int


@dataclass(frozen=True)
class SetupInfo:
    display_name: str
    role: str
    login: str
    iterations: int
    #: A reset link of an account with keys: its current vault, so that a person
    #: holding their recovery key can keep their keys (a teacher keeps their classes).
    vault: dict[str, Any] | None = None


def account_view(account: store.Account) -> AccountView:
    contact = mask_phone(account.phone) if account.role == "guardian" else mask_email(account.email)
    return AccountView(
        id=account.id,
        role=account.role,
        display_name=account.display_name,
        status=account.status,
        contact_masked=contact,
        fingerprint=fingerprint_of(account.sign_pk),
    )


def normalize_email(raw: Any) -> str:
    if not isinstance(raw, str) or not _EMAIL.match(raw.strip()) or len(raw.strip()) > 254:
        raise Invalid(N_("Enter a valid e-mail address."), field="email")
    return raw.strip().lower()


#: direction overrides and isolates, and invisible spaces: they make one name look like
#: another ("Léa" and "L\u200béa") or reorder what is shown; ZWJ/ZWNJ stay (scripts and emoji need them)
_INVISIBLE = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200b\u2060\ufeff")


def clean_name(raw: Any, field: str = "display_name", max_length: int = 120) -> str:
    """Trim and check a person's or a class's name: printable, not empty, bounded."""
    if not isinstance(raw, str):
        raise Invalid(N_("Enter a name."), field=field)
    text = " ".join(raw.split())
    if not text:
        raise Invalid(N_("Enter a name."), field=field)
    if len(text) > max_length:
        raise Invalid(N_("This name is too long."), field=field)
    if any(ord(ch) < 32 or 0xD800 <= ord(ch) <= 0xDFFF or ch in _INVISIBLE for ch in text):
        raise Invalid(N_("This name contains characters that are not allowed."), field=field)
    return text


def setup_url(ctx: ServiceContext, token: str) -> str:
    """The link a new staff member opens once to choose their passphrase."""
    return ctx.config.public_url.rstrip("/") + "/setup/" + token


def _issue_setup_link(ctx: ServiceContext, account: store.Account) -> str:
    now = ctx.now()
    store.expire_setup_links(account.id, now)
    token = new_token()
    store.SetupLink.create(
        token_hash=token_hash(token),
        account=account,
        created_at=now,
        expires_at=now + dt.timedelta(hours=ctx.config.setup_link_hours),
    )
    return token


def create_staff(
    ctx: ServiceContext, actor: Actor | None, role: str, display_name: Any, email: Any
) -> tuple[AccountView, str]:
    """Create an admin or teacher account and its one-time setup link token.

    ``actor`` is None only for the operator's CLI (the first admin).
    """
    if actor is not None:
        policy.require_admin(actor)
    if role not in ("admin", "teacher"):
        raise Invalid(N_("Unknown role."), field="role")
    name = clean_name(display_name)
    login = normalize_email(email)
    with write_transaction():
        if store.select_account_by_login(login) is not None:
            raise Conflict(N_("An account with this e-mail address already exists."), field="email")
        account = store.Account.create(
            role=role,
            display_name=name,
            login=login,
            email=login,
            status="pending",
            created_at=ctx.now(),
        )
        token = _issue_setup_link(ctx, account)
        audit.record(ctx, "staff_created", actor, account.id, role=role)
    return account_view(account), token


def find_account_id(ctx: ServiceContext, raw_login: Any) -> int:
    """The id behind an e-mail or phone login (operator's CLI)."""
    account = store.select_account_by_login(normalize_login(ctx, raw_login))
    if account is None:
        raise NotFound(N_("No such account."))
    return int(account.id)


def reissue_setup_link(ctx: ServiceContext, actor: Actor | None, account_id: int) -> str:
    """A new one-time setup link; earlier links die.

    For an account already set up this is the passphrase reset: whoever
    completes the link chooses a new passphrase, new keys replace the old
    ones and every session of the account ends.
    """
    if actor is not None:
        policy.require_admin(actor)
    with write_transaction():
        account = store.select_account(account_id)
        if account is None or account.role == "guardian":
            raise NotFound(N_("No such staff account."))
        if account.status == "disabled":
            raise Conflict(N_("This account is disabled."))
        audit.record(ctx, "setup_link_issued", actor, account.id, role=account.role)
        return _issue_setup_link(ctx, account)


def _live_setup_link(ctx: ServiceContext, token: str, lock: bool = False) -> store.SetupLink:
    link = store.select_setup_link(token_hash(token), lock) if len(token) <= 64 else None
    if link is None or link.account.status == "disabled":
        raise NotFound(N_("This setup link is not valid."))
    if link.used_at is not None or link.expires_at <= ctx.now():
        raise Gone(
            N_(
                "This setup link has expired or was already used. Ask the school admin for a new one."
            )
        )
    return link


def inspect_setup_link(ctx: ServiceContext, token: str) -> SetupInfo:
    link = _live_setup_link(ctx, token)
    account = link.account
    vault = json.loads(account.vault) if account.vault else None
    return SetupInfo(
        account.display_name, account.role, account.login, ctx.config.kdf_iterations, vault
    )


def complete_setup(
    ctx: ServiceContext, token: str, creds: Credentials, user_agent: str = ""
) -> SessionGrant:
    """Store the new account's keys, vault and login verifier; open a session."""
    link = _live_setup_link(ctx, token)
    secret = check_credentials(creds, link.account.login, ctx.config.kdf_iterations)
    verifier = hash_login_secret(secret)
    with write_transaction():
        link = _live_setup_link(ctx, token, lock=True)  # re-check, locked: single use
        account = link.account
        now = ctx.now()
        if account.status == "active":  # a reset: sessions opened with the old passphrase end
            store.revoke_sessions(account.id, now)
        _store_credentials(account, creds, verifier)
        account.status = "active"
        account.activated_at = now
        account.save()
        link.used_at = now
        link.save()
        return _open_session(ctx, account, user_agent)


def _store_credentials(account: store.Account, creds: Credentials, verifier: str) -> None:
    account.kdf_salt = creds.kdf_salt
    account.kdf_iterations = creds.kdf_iterations
    account.login_verifier = verifier
    account.sign_pk = creds.sign_pk
    account.enc_pk = creds.enc_pk
    account.vault = json.dumps(creds.vault, separators=(",", ":"), sort_keys=True)


def _open_session(ctx: ServiceContext, account: store.Account, user_agent: str) -> SessionGrant:
    now = ctx.now()
    token = new_token()
    session = store.Session.create(
        token_hash=token_hash(token),
        account=account,
        created_at=now,
        last_seen_at=now,
        expires_at=now + dt.timedelta(days=ctx.config.session_absolute_days),
        user_agent=user_agent[:200],
    )
    actor = Actor(account.id, account.role, account.display_name, session.id)
    return SessionGrant(token, actor, json.loads(account.vault) if account.vault else None)


def normalize_login(ctx: ServiceContext, raw: Any) -> str:
    """An e-mail address (staff) or a phone number (guardians), in stored form."""
    if not isinstance(raw, str) or not raw.strip() or len(raw) > 254:
        raise Invalid(N_("Enter your e-mail address or phone number."), field="login")
    if "@" in raw:
        return normalize_email(raw)
    try:
        return normalize_phone(raw, ctx.config.default_country_code)
    except Invalid:
        raise Invalid(N_("Enter your e-mail address or phone number."), field="login") from None


def prelogin(ctx: ServiceContext, raw_login: Any) -> KdfParams:
    """The salt and iterations to derive the login secret; fake but stable for unknown logins."""
    login = normalize_login(ctx, raw_login)
    account = store.select_account_by_login(login)
    if account is None or account.status != "active" or not account.kdf_salt:
        return KdfParams(fake_salt(ctx.node_secret, login), ctx.config.kdf_iterations)
    return KdfParams(account.kdf_salt, account.kdf_iterations or ctx.config.kdf_iterations)


def login(
    ctx: ServiceContext, raw_login: Any, raw_secret: Any, client_ip: str, user_agent: str = ""
) -> SessionGrant:
    """Check the login secret and open a session (a new token: no fixation)."""
    login_value = normalize_login(ctx, raw_login)
    secret = b64url_bytes(raw_secret, 32, "login_secret")
    ratelimit.check_login(ctx, login_value, client_ip)
    account = store.select_account_by_login(login_value)
    verifier = account.login_verifier if account is not None else None
    ok = verify_login_secret(verifier, secret) and account is not None
    if not ok or account is None or account.status != "active":
        with write_transaction():
            ratelimit.record_login_failure(ctx, login_value, client_ip)
            audit.record(ctx, "login", None, account.id if account is not None else None, "failed")
        raise Unauthenticated(N_("Wrong login or passphrase."))
    with write_transaction():
        audit.record(ctx, "login", account.id, account.id)
        return _open_session(ctx, account, user_agent)


def authenticate(ctx: ServiceContext, token: str | None) -> Actor | None:
    """The actor behind a session token, or None.  Touches ``last_seen_at`` at most once a minute."""
    if not token or len(token) > 64:
        return None
    now = ctx.now()
    session = store.select_live_session(token_hash(token), now)
    if session is None:
        return None
    account = session.account
    idle_limit = dt.timedelta(days=ctx.config.session_idle_days)
    if account.status != "active" or session.last_seen_at + idle_limit <= now:
        return None
    if now - session.last_seen_at > dt.timedelta(minutes=1):
        store.Session.update(last_seen_at=now).where(store.Session.id == session.id).execute()
    return Actor(account.id, account.role, account.display_name, session.id)


def end_session_token(ctx: ServiceContext, token: str) -> None:
    """End the session behind a raw token, whoever it belongs to (the browser held it)."""
    if token and len(token) <= 64:
        with write_transaction():
            store.Session.update(revoked_at=ctx.now()).where(
                (store.Session.token_hash == token_hash(token)) & store.Session.revoked_at.is_null()
            ).execute()


def logout(ctx: ServiceContext, actor: Actor) -> None:
    with write_transaction():
        store.Session.update(revoked_at=ctx.now()).where(
            store.Session.id == actor.session_id
        ).execute()


@dataclass(frozen=True)
class SessionView:
    id: int
    created_at: dt.datetime
    last_seen_at: dt.datetime
    #: A short description of the browser, as the browser itself announced it.
    device: str
    current: bool


def _device(user_agent: str) -> str:
    """ "Firefox on Android", "Chrome on Windows"…: enough to recognize one's own devices."""
    ua = user_agent.lower()
    browser = next(
        (
            name
            for key, name in (
                ("edg/", "Edge"),
                ("firefox", "Firefox"),
                ("chrom", "Chrome"),
                ("safari", "Safari"),
            )
            if key in ua
        ),
        "",
    )
    system = next(
        (
            name
            for key, name in (
                ("android", "Android"),
                ("iphone", "iPhone"),
                ("ipad", "iPad"),
                ("windows", "Windows"),
                ("mac os", "macOS"),
                ("linux", "Linux"),
            )
            if key in ua
        ),
        "",
    )
    return " · ".join(part for part in (browser, system) if part)


def my_sessions(ctx: ServiceContext, actor: Actor) -> list[SessionView]:
    """The caller's open sessions, most recently used first (ASVS 7.5.2)."""
    return [
        SessionView(
            s.id, s.created_at, s.last_seen_at, _device(s.user_agent), s.id == actor.session_id
        )
        for s in store.select_sessions(actor.account_id, ctx.now())
    ]


def end_session(ctx: ServiceContext, actor: Actor, session_id: int) -> None:
    """End one of the caller's own sessions (a lost phone, a shared computer)."""
    with write_transaction():
        if not store.revoke_own_session(actor.account_id, session_id, ctx.now()):
            raise NotFound(N_("No such session."))


def end_other_sessions(ctx: ServiceContext, actor: Actor) -> int:
    """Log out everywhere but here; returns how many sessions ended."""
    with write_transaction():
        return store.revoke_sessions(actor.account_id, ctx.now(), keep_id=actor.session_id)


def change_passphrase(
    ctx: ServiceContext, actor: Actor, raw_current: Any, creds: Credentials, client_ip: str
) -> None:
    """A new passphrase for the same keys: the browser re-sealed the vault.

    The current login secret must be right (limited like a login); the new
    vault must hold the account's own keys, so a changed passphrase never
    swaps identities.  Every other session of the account ends.
    """
    current = b64url_bytes(raw_current, 32, "current_login_secret")
    account = store.select_account(actor.account_id)
    if account is None:
        raise Unauthenticated(N_("Your session has ended. Log in again."))
    ratelimit.check_login(ctx, account.login, client_ip)
    if not verify_login_secret(account.login_verifier, current):
        with write_transaction():
            ratelimit.record_login_failure(ctx, account.login, client_ip)
        raise Unauthenticated(N_("Your current passphrase is wrong."), field="current_passphrase")
    if creds.sign_pk != account.sign_pk or creds.enc_pk != account.enc_pk:
        raise Invalid(N_("The new key vault must hold your current keys."), field="vault")
    verifier = hash_login_secret(check_credentials(creds, account.login, ctx.config.kdf_iterations))
    with write_transaction():
        account = store.select_account(actor.account_id)
        assert account is not None
        _store_credentials(account, creds, verifier)
        account.save()
        store.revoke_sessions(account.id, ctx.now(), keep_id=actor.session_id)


def me(ctx: ServiceContext, actor: Actor) -> AccountView:
    account = store.select_account(actor.account_id)
    if account is None:
        raise Unauthenticated(N_("Your session has ended. Log in again."))
    return account_view(account)


@dataclass(frozen=True)
class OwnVault:
    """The caller's own vault, and their own login (the key proof binds it)."""

    vault: dict[str, Any] | None
    login: str


def vault_of(ctx: ServiceContext, actor: Actor) -> OwnVault:
    """The caller's own encrypted vault (the browser unlocks it with the passphrase)."""
    account = store.select_account(actor.account_id)
    if account is None:
        raise Unauthenticated(N_("Your session has ended. Log in again."))
    return OwnVault(json.loads(account.vault) if account.vault else None, account.login)


def list_staff(ctx: ServiceContext, actor: Actor | None) -> list[AccountView]:
    """Staff accounts; ``actor`` None is the operator's CLI."""
    if actor is not None:
        policy.require_admin(actor)
    return [account_view(a) for a in store.select_staff()]


def disable_account(ctx: ServiceContext, actor: Actor | None, account_id: int) -> AccountView:
    """Disable an account and end all its sessions at once (ASVS 7.4.2)."""
    if actor is not None:
        policy.require_admin(actor)
    if actor is not None and account_id == actor.account_id:
        raise Conflict(N_("You cannot disable your own account."))
    with write_transaction():
        account = store.select_account(account_id)
        if account is None:
            raise NotFound(N_("No such account."))
        if (
            account.role == "admin"
            and account.status == "active"
            and store.count_active_admins() <= 1
        ):
            raise PermissionDenied(N_("The school needs at least one admin."))
        now = ctx.now()
        account.status = "disabled"
        account.disabled_at = now
        account.save()
        store.revoke_sessions(account.id, now)
        store.expire_setup_links(account.id, now)  # an open link must not revive the account
        audit.record(ctx, "account_disabled", actor, account.id, role=account.role)
    return account_view(account)
