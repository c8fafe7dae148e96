"""Plain functions that build people and classes through the real services.

Key material is costly (PBKDF2 with 600,000 iterations, as in production),
so each login's client account is made once per test process and reused.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quart.typing import TestClientProtocol as Client

from node.refclient import ClientAccount, login_secret, new_account
from node.services import accounts, directory, onboarding
from node.services.context import Actor, ServiceContext
from node.storage import onboarding as sms_store
from node.storage.db import Storage

PASSPHRASE = "correct horse battery staple"


@functools.cache
def client_account(login: str) -> ClientAccount:
    return new_account(login, PASSPHRASE)


def make_staff(
    storage: Storage,
    ctx: ServiceContext,
    role: str = "teacher",
    name: str = "Mme Teacher",
    email: str = "teacher@school.test",
    by: Actor | None = None,
) -> Actor:
    _, token = storage.call(accounts.create_staff, ctx, by, role, name, email)
    grant = storage.call(accounts.complete_setup, ctx, token, client_account(email).credentials)
    return grant.actor


def make_class(
    storage: Storage, ctx: ServiceContext, teacher: Actor, name: str = "CE1 A"
) -> directory.ClassView:
    return storage.call(directory.create_class, ctx, teacher, name, "2026-2027")


def make_child(
    storage: Storage,
    ctx: ServiceContext,
    teacher: Actor,
    class_id: int,
    first: str = "Léa",
    last: str = "Martin",
) -> directory.ChildView:
    return storage.call(directory.add_child, ctx, teacher, class_id, first, last)


def invite(
    storage: Storage,
    ctx: ServiceContext,
    teacher: Actor,
    child_id: int,
    phone: str = "+33639980001",
    name: str = "Camille Martin",
    code: str | None = None,
) -> directory.Slip:
    return storage.call(directory.register_guardian, ctx, teacher, child_id, name, phone, code)


def texts_to(storage: Storage, phone: str) -> list[sms_store.SmsMessage]:
    """Every text queued or sent to ``phone``, oldest first."""
    model = sms_store.SmsMessage
    return storage.call(
        lambda: list(model.select().where(model.recipient == phone).order_by(model.id))
    )


def sms_code(storage: Storage, data_dir: Path, phone: str) -> str:
    """Play the phone: the code of the last text to ``phone``, sent yet or not.

    The SMS worker writes the console outbox line before it erases the body,
    so the text is always in one of the two places.
    """
    message = texts_to(storage, phone)[-1]
    body = message.body
    if body is None:
        lines = (data_dir / "sms-outbox.jsonl").read_text().splitlines()
        body = next(
            json.loads(x)["text"] for x in lines if json.loads(x)["reference"] == message.reference
        )
    match = re.search(r"\b(\d{6})\b", body)
    assert match is not None
    return match[1]


def make_guardian(
    storage: Storage, ctx: ServiceContext, slip_code: str, phone: str = "+33639980001"
) -> Actor:
    """Run the whole first login (access code → SMS → passphrase) through the services."""
    attempt = storage.call(onboarding.start, ctx, phone, slip_code, "192.0.2.1", "en")
    verified = storage.call(
        onboarding.verify_sms,
        ctx,
        attempt.attempt_id,
        sms_code(storage, ctx.config.data_dir, phone),
        "192.0.2.1",
    )
    if verified.existing_kdf_salt:
        secret = login_secret(
            PASSPHRASE, verified.existing_kdf_salt, verified.existing_kdf_iterations
        )
        grant = storage.call(
            onboarding.complete_existing, ctx, attempt.attempt_id, secret, "192.0.2.1"
        )
    else:
        grant = storage.call(
            onboarding.complete_new, ctx, attempt.attempt_id, client_account(phone).credentials
        )
    return grant.actor


@dataclass
class School:
    """A small school: an admin, a teacher with a class and a child."""

    admin: Actor
    teacher: Actor
    class_id: int
    child_id: int


def make_school(storage: Storage, ctx: ServiceContext) -> School:
    admin = make_staff(storage, ctx, "admin", "Mme Admin", "admin@school.test")
    teacher = make_staff(storage, ctx, "teacher", "M. Dubois", "dubois@school.test", by=admin)
    school_class = make_class(storage, ctx, teacher)
    child = make_child(storage, ctx, teacher, school_class.id)
    return School(admin, teacher, school_class.id, child.id)


async def csrf(client: Client) -> str:
    response = await client.get("/api/v1/session")
    token: str = (await response.get_json())["csrf_token"]
    return token


@functools.cache
def secret_for(salt: str, iterations: int) -> str:
    """The login secret of ``PASSPHRASE`` for a salt (PBKDF2 is slow: computed once)."""
    return login_secret(PASSPHRASE, salt, iterations)


async def api_login(client: Client, login: str) -> dict[str, Any]:
    """Log a test client in through the JSON API, as the browser's login page does."""
    token = await csrf(client)
    headers = {"X-CSRF-Token": token}
    pre = await (
        await client.post("/api/v1/auth/prelogin", json={"login": login}, headers=headers)
    ).get_json()
    secret = secret_for(pre["salt"], pre["iterations"])
    response = await client.post(
        "/api/v1/auth/login", json={"login": login, "login_secret": secret}, headers=headers
    )
    assert response.status_code == 200, await response.get_data()
    body: dict[str, Any] = await response.get_json()
    return body
