"""A guardian's first login: access code → SMS code → passphrase and keys.

The teacher's access code authorizes one phone number for one child; the
SMS code proves the person holds that phone.  Rules (ASVS 6.5–6.6, DESIGN §1):
- the SMS code is 6 digits, single use, bound to this attempt, valid 10
  minutes, dead after 5 wrong entries; at most 3 texts per number per hour;
- failures count per client address and per code, never per number alone,
  so a stranger (who lacks the access code) cannot lock out a real parent;
- the access code dies when the guardian completes the flow.
A guardian who already has an account on this node (a child in another
class) proves it with their passphrase instead of creating a second one.
"""

from __future__ import annotations

import datetime as dt
import hmac
import unicodedata
from dataclasses import dataclass
from typing import Any, NoReturn

from node.errors import N_, Conflict, Gone, Invalid, NotFound, Unauthenticated
from node.phone import mask_phone, normalize_phone
from node.secrets_util import generate_sms_code, keyed_hash, new_token, normalize_access_code
from node.services import audit, families, ratelimit, sms_outbox
from node.services.accounts import SessionGrant, _open_session, _store_credentials
from node.services.context import ServiceContext
from node.services.credentials import (
    Credentials,
    b64url_bytes,
    check_credentials,
    hash_login_secret,
    verify_login_secret,
)
from node.services.directory import ACCESS_CODE_PURPOSE
from node.storage import accounts as account_store
from node.storage import directory as directory_store
from node.storage import onboarding as store
from node.storage.db import write_transaction

SMS_CODE_PURPOSE = "sms-code"
#: The whole first-login attempt must finish within this time.
ATTEMPT_LIFETIME = dt.timedelta(minutes=30)
#: Texts one attempt may ask for (the first and two resends).
MAX_CODES_PER_ATTEMPT = 3


@dataclass(frozen=True)
class AttemptView:
    attempt_id: str
    phone_masked: str
    sms_reference: str | None = None


@dataclass(frozen=True)
class VerifiedAttempt:
    attempt_id: str
    child_first_name: str
    class_name: str
    guardian_name: str
    #: The number, normalized: the person proved they hold it, and it is their login.
    login: str
    #: Set when the number already has an account here: log in instead of creating one.
    existing_kdf_salt: str | None
    existing_kdf_iterations: int | None
    kdf_iterations: int


def _sms_text(ctx: ServiceContext, locale: str, code: str) -> str:
    template = ctx.translate(
        locale,
        N_(
            "{school}: your Carnet code is {code}. It expires in {minutes} minutes. Never share it, not even with the school."
        ),
    )
    return template.format(
        school=ctx.config.school_name, code=code, minutes=ctx.config.sms_code_minutes
    )


def send_new_code(ctx: ServiceContext, attempt: store.LoginAttempt, locale: str) -> str:
    """Give the attempt a fresh SMS code (the previous one dies) and queue the text."""
    phone = attempt.invitation.phone
    ratelimit.check(ctx, f"sms:{phone}", ctx.config.sms_per_number_per_hour, ratelimit.ONE_HOUR)
    code = generate_sms_code()
    now = ctx.now()
    attempt.sms_code_hash = keyed_hash(ctx.node_secret, SMS_CODE_PURPOSE, attempt.public_id + code)
    attempt.sms_code_expires_at = now + dt.timedelta(minutes=ctx.config.sms_code_minutes)
    attempt.sms_failures = 0
    attempt.codes_sent += 1
    attempt.save()
    ratelimit.hit(ctx, f"sms:{phone}")
    return sms_outbox.enqueue(ctx, phone, "first-login", _sms_text(ctx, locale, code))


def _fail(ctx: ServiceContext, client_ip: str, error: Exception) -> NoReturn:
    """Count a failure for this address in its own transaction, then raise."""
    with write_transaction():
        ratelimit.hit(ctx, ratelimit.ip_bucket(client_ip))
    raise error


def start(
    ctx: ServiceContext, raw_phone: Any, raw_code: Any, client_ip: str, locale: str
) -> AttemptView:
    """Check phone + access code, then text an SMS code to that phone."""
    phone = normalize_phone(raw_phone, ctx.config.default_country_code)
    if not isinstance(raw_code, str) or not raw_code.strip() or len(raw_code) > 80:
        raise Invalid(N_("Enter the access code printed on your slip."), field="code")
    ratelimit.check_ip(ctx, client_ip)
    code_hash = keyed_hash(ctx.node_secret, ACCESS_CODE_PURPOSE, normalize_access_code(raw_code))
    now = ctx.now()
    matched = None
    for inv in directory_store.select_unrevoked_invitations_for_phone(phone):
        if inv.code_hash and hmac.compare_digest(inv.code_hash, code_hash):
            matched = inv
    if matched is None:
        _fail(
            ctx,
            client_ip,
            Unauthenticated(
                N_(
                    "This phone number and access code do not match. Check both, or ask the teacher for a new code."
                ),
                field="code",
            ),
        )
    if matched.used_at is not None:
        _fail(
            ctx,
            client_ip,
            Gone(
                N_("This access code was already used. If you did not use it, tell the teacher."),
                field="code",
            ),
        )
    if matched.expires_at is None or matched.expires_at <= now:
        _fail(
            ctx,
            client_ip,
            Gone(N_("This access code has expired. Ask the teacher for a new one."), field="code"),
        )
    with write_transaction():
        attempt = store.LoginAttempt.create(
            public_id=new_token(),
            invitation=matched,
            client_ip=client_ip[:64],
            created_at=now,
            expires_at=now + ATTEMPT_LIFETIME,
        )
        attempt.invitation = matched
        reference = send_new_code(ctx, attempt, locale)
    return AttemptView(attempt.public_id, mask_phone(phone), reference)


def _live_attempt(ctx: ServiceContext, attempt_id: Any, lock: bool = False) -> store.LoginAttempt:
    """The attempt if it can go on; ``lock`` (inside a write transaction) serializes
    concurrent requests on it, so a try counter never loses an update."""
    attempt = (
        store.select_attempt(attempt_id, lock)
        if isinstance(attempt_id, str) and 0 < len(attempt_id) <= 64
        else None
    )
    if attempt is None:
        raise NotFound(N_("This sign-in attempt does not exist. Start again."))
    if attempt.completed_at is not None:
        raise Gone(N_("This sign-in attempt is finished. Log in with your passphrase."))
    if attempt.expires_at <= ctx.now():
        raise Gone(N_("This sign-in attempt has expired. Start again with your access code."))
    inv = attempt.invitation
    if inv.revoked_at is not None or inv.used_at is not None:
        raise Gone(N_("This access code is no longer valid. Ask the teacher for a new one."))
    return attempt


def resend(ctx: ServiceContext, attempt_id: Any, client_ip: str, locale: str) -> AttemptView:
    ratelimit.check_ip(ctx, client_ip)
    with write_transaction():
        attempt = _live_attempt(ctx, attempt_id, lock=True)
        if attempt.verified_at is not None:
            raise Conflict(N_("Your phone number is already confirmed."))
        if attempt.codes_sent >= MAX_CODES_PER_ATTEMPT:
            raise Gone(N_("No more codes can be sent for this attempt. Start again later."))
        reference = send_new_code(ctx, attempt, locale)
    return AttemptView(attempt.public_id, mask_phone(attempt.invitation.phone), reference)


def normalize_sms_code(raw: Any) -> str:
    """Fold full-width digits; drop spaces, dashes and invisible marks; six digits must remain.

    What a phone pastes or a person types around the digits ("123 456", "123-456",
    a no-break space, a trailing newline, a zero-width space) is not part of the code.
    """
    if not isinstance(raw, str) or len(raw) > 20:
        raise Invalid(N_("The code has 6 digits."), field="sms_code")
    code = "".join(
        c
        for c in unicodedata.normalize("NFKC", raw)
        if not c.isspace() and unicodedata.category(c) not in ("Pd", "Cf")
    )
    if len(code) != 6 or not code.isascii() or not code.isdigit():
        raise Invalid(N_("The code has 6 digits."), field="sms_code")
    return code


def verify_sms(
    ctx: ServiceContext, attempt_id: Any, raw_code: Any, client_ip: str
) -> VerifiedAttempt:
    """Check the SMS code: single use, bound to this attempt, limited tries."""
    code = normalize_sms_code(raw_code)
    ratelimit.check_ip(ctx, client_ip)
    with write_transaction():
        attempt = _live_attempt(ctx, attempt_id, lock=True)
        if attempt.verified_at is not None:
            # The code was single use; answering again would accept any code.
            raise Conflict(N_("Your phone number is already confirmed."), field="sms_code")
        error = check_sms_code(ctx, attempt, code)
        if error is not None:
            attempt.save()
            ratelimit.hit(ctx, ratelimit.ip_bucket(client_ip))
    if error is not None:
        raise error
    return _verified_view(ctx, attempt)


def check_sms_code(ctx: ServiceContext, attempt: store.LoginAttempt, code: str) -> Exception | None:
    max_tries = ctx.config.sms_code_max_tries
    if attempt.sms_code_hash is None or attempt.sms_failures >= max_tries:
        return Gone(N_("This code can no longer be used. Ask for a new code."), field="sms_code")
    now = ctx.now()
    expires = attempt.sms_code_expires_at
    validity = dt.timedelta(minutes=ctx.config.sms_code_minutes)
    # A clock set back after the code was sent would stretch its life: a code
    # lives at most its validity after it was issued, on the clock that issued it.
    if expires is None or expires <= now or now < expires - validity:
        attempt.sms_code_hash = None
        return Gone(N_("This code has expired. Ask for a new code."), field="sms_code")
    expected = keyed_hash(ctx.node_secret, SMS_CODE_PURPOSE, attempt.public_id + code)
    if not hmac.compare_digest(attempt.sms_code_hash, expected):
        attempt.sms_failures += 1
        left = max_tries - attempt.sms_failures
        if left <= 0:
            attempt.sms_code_hash = None
            return Gone(N_("Too many wrong codes. Ask for a new code."), field="sms_code")
        return Unauthenticated(N_("Wrong code. Tries left: {left}."), field="sms_code", left=left)
    attempt.sms_code_hash = None  # single use
    attempt.verified_at = now
    attempt.save()
    return None


def _verified_view(ctx: ServiceContext, attempt: store.LoginAttempt) -> VerifiedAttempt:
    inv = attempt.invitation
    account = account_store.select_account_by_login(inv.phone)
    existing = account is not None and account.status == "active"
    return VerifiedAttempt(
        attempt_id=attempt.public_id,
        child_first_name=inv.child.first_name,
        class_name=inv.child.school_class.name,
        guardian_name=inv.display_name,
        login=inv.phone,
        existing_kdf_salt=account.kdf_salt if existing and account else None,
        existing_kdf_iterations=account.kdf_iterations if existing and account else None,
        kdf_iterations=ctx.config.kdf_iterations,
    )


def _verified_attempt(
    ctx: ServiceContext, attempt_id: Any, lock: bool = False
) -> store.LoginAttempt:
    attempt = _live_attempt(ctx, attempt_id, lock)
    if attempt.verified_at is None:
        raise Conflict(N_("Confirm your phone number with the SMS code first."))
    return attempt


def _finish(
    ctx: ServiceContext,
    attempt: store.LoginAttempt,
    account: account_store.Account,
    user_agent: str,
) -> SessionGrant:
    inv = attempt.invitation
    now = ctx.now()
    if not directory_store.is_guardian_of(account.id, inv.child_id):
        directory_store.Guardianship.create(
            child=inv.child_id, account=account, invitation=inv, created_at=now
        )
        # already approved (a second child of the class): in the child's family at once
        families.tell(ctx, families.approved_links(ctx, account.id, inv.child_id))
    # ``used_at`` kills the code; its HMAC stays so a reuse gets "already used".
    inv.used_at = now
    inv.account = account
    inv.save()
    attempt.completed_at = now
    attempt.save()
    audit.record(ctx, "login", account.id, account.id, invitation=inv.id, code=True)
    return _open_session(ctx, account, user_agent)


def _checked_credentials(
    ctx: ServiceContext, attempt_id: Any, creds: Credentials
) -> tuple[str, str]:
    """Check the browser's credentials for a verified attempt; hash the login secret.

    Runs before the write transaction: Argon2id takes tens of milliseconds and
    must not hold SQLite's write lock.  Returns (phone, login verifier).
    """
    attempt = _verified_attempt(ctx, attempt_id)
    phone: str = attempt.invitation.phone
    secret = check_credentials(creds, phone, ctx.config.kdf_iterations)
    return phone, hash_login_secret(secret)


def complete_new(
    ctx: ServiceContext, attempt_id: Any, creds: Credentials, user_agent: str = ""
) -> SessionGrant:
    """Create the guardian's account with the keys and vault their browser made."""
    phone, verifier = _checked_credentials(ctx, attempt_id, creds)
    with write_transaction():
        attempt = _verified_attempt(ctx, attempt_id, lock=True)
        if account_store.select_account_by_login(phone) is not None:
            raise Conflict(N_("You already have an account: enter your passphrase instead."))
        inv = attempt.invitation
        account = account_store.Account(
            role="guardian",
            display_name=inv.display_name,
            login=phone,
            phone=phone,
            status="active",
            created_at=ctx.now(),
            activated_at=ctx.now(),
        )
        _store_credentials(account, creds, verifier)
        account.save()
        return _finish(ctx, attempt, account, user_agent)


def complete_reset(
    ctx: ServiceContext, attempt_id: Any, creds: Credentials, user_agent: str = ""
) -> SessionGrant:
    """A guardian who forgot their passphrase starts over with new keys.

    The teacher's fresh access code and the SMS code carry the same authority
    that created the account; every session of the account ends.  What the
    old keys could read stays unreadable to the new ones (DESIGN §4: the
    teacher can re-share class history).
    """
    phone, verifier = _checked_credentials(ctx, attempt_id, creds)
    with write_transaction():
        attempt = _verified_attempt(ctx, attempt_id, lock=True)
        account = account_store.select_account_by_login(phone)
        if account is None or account.status != "active":
            raise Conflict(N_("There is no account to reset: choose a passphrase to create one."))
        account_store.revoke_sessions(account.id, ctx.now())
        _store_credentials(account, creds, verifier)
        account.save()
        return _finish(ctx, attempt, account, user_agent)


def complete_existing(
    ctx: ServiceContext, attempt_id: Any, raw_secret: Any, client_ip: str, user_agent: str = ""
) -> SessionGrant:
    """Add the child to the guardian's existing account after a passphrase check."""
    secret = b64url_bytes(raw_secret, 32, "login_secret")
    attempt = _verified_attempt(ctx, attempt_id)
    account = account_store.select_account_by_login(attempt.invitation.phone)
    if account is None or account.status != "active":
        raise Conflict(N_("There is no account to add this child to: choose a passphrase."))
    ratelimit.check_login(ctx, account.login, client_ip)
    if not verify_login_secret(account.login_verifier, secret):
        with write_transaction():
            ratelimit.record_login_failure(ctx, account.login, client_ip)
        raise Unauthenticated(N_("Wrong passphrase."), field="passphrase")
    with write_transaction():
        attempt = _verified_attempt(ctx, attempt_id, lock=True)
        return _finish(ctx, attempt, account, user_agent)
