"""Accounts, sessions and one-time staff setup links.

An account holds what the node needs to authenticate a person and to route
encrypted content to them: a login (e-mail for staff, E.164 phone for
guardians), an Argon2id hash of the *login secret* (derived in the browser
from the passphrase; the passphrase itself never reaches the node), public
keys, and the encrypted key vault the node cannot open.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import peewee

from node.storage.db import BaseModel, locked

ROLES = ("admin", "teacher", "guardian")
#: ``pending``: created, no credentials yet; ``active``: can log in; ``disabled``: cannot.
STATUSES = ("pending", "active", "disabled")


class Account(BaseModel):
    role = peewee.CharField(max_length=16)
    display_name = peewee.CharField(max_length=120)
    login = peewee.CharField(max_length=254, unique=True)
    phone = peewee.CharField(max_length=16, null=True)
    email = peewee.CharField(max_length=254, null=True)
    status = peewee.CharField(max_length=16)
    kdf_salt = peewee.CharField(max_length=64, null=True)
    kdf_iterations = peewee.IntegerField(null=True)
    login_verifier = peewee.CharField(max_length=255, null=True)
    sign_pk = peewee.CharField(max_length=64, null=True)
    enc_pk = peewee.CharField(max_length=64, null=True)
    vault = peewee.TextField(null=True)
    created_at = peewee.DateTimeField()
    activated_at = peewee.DateTimeField(null=True)
    disabled_at = peewee.DateTimeField(null=True)
    #: a guardian of another node (status ``remote``): the peer their account lives on
    home_peer_id = peewee.IntegerField(null=True)


class Session(BaseModel):
    token_hash = peewee.CharField(max_length=64, unique=True)
    account = peewee.ForeignKeyField(Account, backref="sessions", on_delete="CASCADE")
    created_at = peewee.DateTimeField()
    last_seen_at = peewee.DateTimeField()
    expires_at = peewee.DateTimeField()
    revoked_at = peewee.DateTimeField(null=True)
    user_agent = peewee.CharField(max_length=200, default="")


class SetupLink(BaseModel):
    token_hash = peewee.CharField(max_length=64, unique=True)
    account = peewee.ForeignKeyField(Account, backref="setup_links", on_delete="CASCADE")
    created_at = peewee.DateTimeField()
    expires_at = peewee.DateTimeField()
    used_at = peewee.DateTimeField(null=True)


def select_account_by_login(login: str) -> Account | None:
    return Account.get_or_none(Account.login == login)


def account_ids_by_login(logins: Iterable[str]) -> dict[str, int]:
    """login → account id, for many logins in one query (per 500)."""
    wanted = sorted(set(logins))
    found: dict[str, int] = {}
    for start in range(0, len(wanted), 500):
        query: Any = (
            Account.select(Account.login, Account.id)
            .where(Account.login.in_(wanted[start : start + 500]))
            .tuples()
        )
        found.update(dict(query))
    return found


def insert_remote_guardian(
    login: str, display_name: str, sign_pk: str, enc_pk: str, peer_id: int, now: Any
) -> Account:
    """The shadow of a guardian whose account lives on another node (status ``remote``).

    It can never log in here (no passphrase verifier, and login requires
    ``active``); it exists so the class's links, roster and log can name them.
    """
    account: Account = Account.create(
        role="guardian", display_name=display_name, login=login, status="remote",
        sign_pk=sign_pk, enc_pk=enc_pk, home_peer_id=peer_id, created_at=now, activated_at=now,
    )  # fmt: skip
    return account


def select_account(account_id: int) -> Account | None:
    return Account.get_or_none(Account.id == account_id)


def remote_accounts(account_ids: Iterable[int]) -> set[int]:
    """The accounts among these that are guardians living on another node (status remote)."""
    ids = sorted(set(account_ids))
    primary_key: Any = Account._meta.primary_key
    found: set[int] = set()
    for start in range(0, len(ids), 500):
        query: Any = Account.select(primary_key).where(
            primary_key.in_(ids[start : start + 500]) & (Account.status == "remote")
        )
        found.update(a for (a,) in query.tuples())
    return found


def select_admins() -> list[Account]:
    """The school's admin accounts, any status."""
    return list(Account.select().where(Account.role == "admin").order_by(Account.id))


def select_accounts(account_ids: Iterable[int]) -> dict[int, Account]:
    """Account id → account, for many ids in one query (per 500 ids)."""
    ids = sorted(set(account_ids))
    primary_key: Any = Account._meta.primary_key  # ``Account.id`` is typed ``int`` for rows
    found: dict[int, Account] = {}
    for start in range(0, len(ids), 500):
        for account in Account.select().where(primary_key.in_(ids[start : start + 500])):
            found[account.id] = account
    return found


def select_staff() -> list[Account]:
    query = Account.select().where(Account.role.in_(("admin", "teacher")))
    return list(query.order_by(Account.role, Account.display_name))


def count_active_admins() -> int:
    return Account.select().where((Account.role == "admin") & (Account.status == "active")).count()


def select_live_session(token_hash: str, now: dt.datetime) -> Session | None:
    """The session for this token if it is neither revoked nor expired, with its account."""
    query = (
        Session.select(Session, Account)
        .join(Account)
        .where(
            (Session.token_hash == token_hash)
            & Session.revoked_at.is_null()
            & (Session.expires_at > now)
        )
    )
    return query.first()


def revoke_sessions(account_id: int, now: dt.datetime, keep_id: int | None = None) -> int:
    query = Session.update(revoked_at=now).where(
        (Session.account == account_id) & Session.revoked_at.is_null()
    )
    if keep_id is not None:
        query = query.where(Session.id != keep_id)
    return int(query.execute())


def revoke_own_session(account_id: int, session_id: int, now: dt.datetime) -> bool:
    query = Session.update(revoked_at=now).where(
        (Session.id == session_id) & (Session.account == account_id) & Session.revoked_at.is_null()
    )
    return bool(query.execute())


def select_sessions(account_id: int, now: dt.datetime) -> list[Session]:
    query = Session.select().where(
        (Session.account == account_id) & Session.revoked_at.is_null() & (Session.expires_at > now)
    )
    return list(query.order_by(Session.last_seen_at.desc()))


def delete_sessions_ended_before(cutoff: dt.datetime) -> int:
    query = Session.delete().where(
        (Session.expires_at < cutoff)
        | (Session.revoked_at.is_null(False) & (Session.revoked_at < cutoff))
    )
    return int(query.execute())


def delete_setup_links_expired_before(cutoff: dt.datetime) -> int:
    return int(SetupLink.delete().where(SetupLink.expires_at < cutoff).execute())


def select_setup_link(token_hash: str, lock: bool = False) -> SetupLink | None:
    query = (
        SetupLink.select(SetupLink, Account).join(Account).where(SetupLink.token_hash == token_hash)
    )
    return locked(query, lock).first()


def expire_setup_links(account_id: int, now: dt.datetime) -> None:
    SetupLink.update(used_at=now).where(
        (SetupLink.account == account_id) & SetupLink.used_at.is_null()
    ).execute()


def select_roles(account_ids: Iterable[int]) -> dict[int, str]:
    ids = list(account_ids)
    if not ids:
        return {}
    column: Any = Account.id  # the column (BaseModel types ``id`` as the row's int)
    query = Account.select(column, Account.role).where(column.in_(ids))
    return {row.id: row.role for row in query}
