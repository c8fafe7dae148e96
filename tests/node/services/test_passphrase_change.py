"""Changing one's passphrase: same keys, new vault and login secret, other sessions end."""

from __future__ import annotations

import secrets

import pytest

from node.e2e.encoding import b64url_encode
from node.e2e.kdf import derive_from_passphrase
from node.e2e.keys import AccountKeys, account_keys_proof
from node.e2e.vault import create_vault
from node.errors import Invalid, Unauthenticated
from node.refclient import login_secret, new_account
from node.services import accounts
from node.services.context import ServiceContext
from node.services.credentials import Credentials
from node.storage.db import Storage
from tests.factories import PASSPHRASE, client_account, make_school

LOGIN = "dubois@school.test"
NEW = "a new passphrase for dubois"
IP = "192.0.2.1"


def resealed(keys: AccountKeys, passphrase: str) -> Credentials:
    """What the account page sends: the same keys under a new passphrase."""
    salt = secrets.token_bytes(16)
    vault, _ = create_vault(keys, passphrase, salt)
    return Credentials(
        kdf_salt=b64url_encode(salt),
        kdf_iterations=600_000,
        login_secret=b64url_encode(derive_from_passphrase(passphrase, salt).login_secret),
        sign_pk=b64url_encode(keys.sign_pk),
        enc_pk=b64url_encode(keys.enc_pk),
        vault=vault,
        proof=account_keys_proof(keys.sign_sk, keys.sign_pk, keys.enc_pk, LOGIN),
    )


def login_with(storage: Storage, ctx: ServiceContext, passphrase: str) -> accounts.SessionGrant:
    kdf = storage.call(accounts.prelogin, ctx, LOGIN)
    return storage.call(
        accounts.login, ctx, LOGIN, login_secret(passphrase, kdf.salt, kdf.iterations), IP
    )


def current_secret(storage: Storage, ctx: ServiceContext) -> str:
    kdf = storage.call(accounts.prelogin, ctx, LOGIN)
    return login_secret(PASSPHRASE, kdf.salt, kdf.iterations)


def test_change_keeps_keys_ends_other_sessions(storage: Storage, ctx: ServiceContext) -> None:
    make_school(storage, ctx)
    here = login_with(storage, ctx, PASSPHRASE)
    elsewhere = login_with(storage, ctx, PASSPHRASE)
    before = storage.call(accounts.me, ctx, here.actor).fingerprint
    creds = resealed(client_account(LOGIN).keys, NEW)
    storage.call(
        accounts.change_passphrase, ctx, here.actor, current_secret(storage, ctx), creds, IP
    )
    assert storage.call(accounts.authenticate, ctx, here.token) is not None
    assert storage.call(accounts.authenticate, ctx, elsewhere.token) is None
    assert storage.call(accounts.me, ctx, here.actor).fingerprint == before
    with pytest.raises(Unauthenticated):
        login_with(storage, ctx, PASSPHRASE)
    assert login_with(storage, ctx, NEW).vault == creds.vault


def test_wrong_current_passphrase_changes_nothing(storage: Storage, ctx: ServiceContext) -> None:
    make_school(storage, ctx)
    here = login_with(storage, ctx, PASSPHRASE)
    wrong = login_secret("not the passphrase", client_account(LOGIN).credentials.kdf_salt, 600_000)
    with pytest.raises(Unauthenticated):
        storage.call(
            accounts.change_passphrase,
            ctx,
            here.actor,
            wrong,
            resealed(client_account(LOGIN).keys, NEW),
            IP,
        )
    login_with(storage, ctx, PASSPHRASE)


def test_other_keys_are_refused(storage: Storage, ctx: ServiceContext) -> None:
    make_school(storage, ctx)
    here = login_with(storage, ctx, PASSPHRASE)
    stranger = new_account(LOGIN, NEW).credentials  # valid, but someone else's keys
    with pytest.raises(Invalid):
        storage.call(
            accounts.change_passphrase, ctx, here.actor, current_secret(storage, ctx), stranger, IP
        )
    login_with(storage, ctx, PASSPHRASE)
