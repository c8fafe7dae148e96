"""Forgotten passphrases: a teacher's reset code (guardians) or an admin's setup link (staff)."""

from __future__ import annotations

import pytest

from node.errors import Conflict, Gone, Unauthenticated
from node.refclient import login_secret, new_account
from node.services import accounts, directory, onboarding
from node.services.context import ServiceContext
from node.storage.db import Storage
from tests.factories import PASSPHRASE, invite, make_guardian, make_school, sms_code

PHONE = "+33639980001"
IP = "192.0.2.1"
NEW_PASSPHRASE = "a brand new passphrase"


def _login(
    storage: Storage, ctx: ServiceContext, login: str, passphrase: str
) -> accounts.SessionGrant:
    kdf = storage.call(accounts.prelogin, ctx, login)
    secret = login_secret(passphrase, kdf.salt, kdf.iterations)
    return storage.call(accounts.login, ctx, login, secret, IP)


def test_guardian_reset_replaces_keys_ends_sessions_keeps_the_child(
    storage: Storage, ctx: ServiceContext
) -> None:
    school = make_school(storage, ctx)
    slip = invite(storage, ctx, school.teacher, school.child_id)
    make_guardian(storage, ctx, slip.code)
    old_session = _login(storage, ctx, PHONE, PASSPHRASE)

    reset_slip = storage.call(directory.reissue_code, ctx, school.teacher, slip.invitation_id)
    assert reset_slip.is_reset
    roster = storage.call(directory.class_roster, ctx, school.teacher, school.class_id)
    assert [g.status for g in roster[0].guardians] == ["active"]  # still linked meanwhile

    attempt = storage.call(onboarding.start, ctx, PHONE, reset_slip.code, IP, "en")
    verified = storage.call(
        onboarding.verify_sms,
        ctx,
        attempt.attempt_id,
        sms_code(storage, ctx.config.data_dir, PHONE),
        IP,
    )
    assert verified.existing_kdf_salt is not None
    fresh = new_account(PHONE, NEW_PASSPHRASE)
    grant = storage.call(onboarding.complete_reset, ctx, attempt.attempt_id, fresh.credentials)

    assert storage.call(accounts.authenticate, ctx, old_session.token) is None
    assert storage.call(accounts.me, ctx, grant.actor).fingerprint is not None
    assert grant.vault is not None and grant.vault["sign_pk"] == fresh.credentials.sign_pk
    with pytest.raises(Unauthenticated):
        _login(storage, ctx, PHONE, PASSPHRASE)
    again = _login(storage, ctx, PHONE, NEW_PASSPHRASE)
    children = storage.call(directory.my_children, ctx, again.actor)
    assert [c.first_name for c in children] == ["Léa"]
    # The reset code is dead once used.
    with pytest.raises(Gone):
        storage.call(onboarding.start, ctx, PHONE, reset_slip.code, IP, "en")


def test_reset_needs_an_existing_account(storage: Storage, ctx: ServiceContext) -> None:
    school = make_school(storage, ctx)
    slip = invite(storage, ctx, school.teacher, school.child_id)
    attempt = storage.call(onboarding.start, ctx, PHONE, slip.code, IP, "en")
    storage.call(
        onboarding.verify_sms,
        ctx,
        attempt.attempt_id,
        sms_code(storage, ctx.config.data_dir, PHONE),
        IP,
    )
    with pytest.raises(Conflict):
        storage.call(
            onboarding.complete_reset,
            ctx,
            attempt.attempt_id,
            new_account(PHONE, NEW_PASSPHRASE).credentials,
        )


def test_staff_reset_link_replaces_keys_and_ends_sessions(
    storage: Storage, ctx: ServiceContext
) -> None:
    school = make_school(storage, ctx)
    old = _login(storage, ctx, "dubois@school.test", PASSPHRASE)
    token = storage.call(accounts.reissue_setup_link, ctx, school.admin, school.teacher.account_id)
    fresh = new_account("dubois@school.test", NEW_PASSPHRASE)
    storage.call(accounts.complete_setup, ctx, token, fresh.credentials)
    assert storage.call(accounts.authenticate, ctx, old.token) is None
    _login(storage, ctx, "dubois@school.test", NEW_PASSPHRASE)
    # A disabled account gets no link.
    storage.call(accounts.disable_account, ctx, school.admin, school.teacher.account_id)
    with pytest.raises(Conflict):
        storage.call(accounts.reissue_setup_link, ctx, school.admin, school.teacher.account_id)
