"""The first login over HTTP: statuses, messages, Retry-After, and what a bad body may not change."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client

from node.e2e.encoding import b64url_decode
from node.e2e.keys import account_keys_proof
from node.refclient import credentials_json
from node.services.context import ServiceContext
from node.storage import accounts as account_store
from node.storage import directory as directory_store
from node.storage.db import Storage
from tests.factories import (
    client_account,
    csrf,
    invite,
    make_child,
    make_class,
    make_school,
    sms_code,
    texts_to,
)

PHONE = "+33639980001"
OTHER_PHONE = "+33639980002"


def from_ip(ip: str) -> dict[str, Any]:
    return {"scope_base": {"client": (ip, 40000)}}


async def post(client: Client, path: str, body: Any, ip: str = "192.0.2.1") -> Any:
    token = await csrf(client)
    return await client.post(path, json=body, headers={"X-CSRF-Token": token}, **from_ip(ip))


async def error_of(response: Any) -> dict[str, Any]:
    body = await response.get_json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert error["message"]
    return error


def guardian_accounts(storage: Storage) -> list[account_store.Account]:
    model = account_store.Account
    return storage.call(lambda: list(model.select().where(model.role == "guardian")))


def invitation(storage: Storage, invitation_id: int) -> directory_store.GuardianInvitation:
    inv = storage.call(directory_store.select_invitation, invitation_id)
    assert inv is not None
    return inv


async def verified_attempt(
    client: Client, storage: Storage, data_dir: Path, code: str, phone: str = PHONE
) -> str:
    response = await post(client, "/api/v1/onboarding/start", {"phone": phone, "code": code})
    assert response.status_code == 201, await response.get_data()
    attempt_id: str = (await response.get_json())["attempt_id"]
    response = await post(
        client,
        "/api/v1/onboarding/verify",
        {"attempt_id": attempt_id, "sms_code": sms_code(storage, data_dir, phone)},
    )
    assert response.status_code == 200, await response.get_data()
    return attempt_id


def good_credentials(login: str = PHONE) -> dict[str, Any]:
    return credentials_json(client_account(login).credentials)


# --- Start --------------------------------------------------------------------------


async def test_start_answers_with_a_masked_number_only(
    client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    school = make_school(storage, ctx)
    slip = invite(storage, ctx, school.teacher, school.child_id)
    response = await post(
        client, "/api/v1/onboarding/start", {"phone": "06 39 98 00 01", "code": slip.code}
    )
    assert response.status_code == 201
    body = await response.get_json()
    assert set(body) == {"attempt_id", "phone_masked"}
    assert body["phone_masked"] == "•• •• •• •• 01"
    assert "639980001" not in json.dumps(body)


async def test_wrong_access_code_is_401_and_sends_nothing(
    client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    school = make_school(storage, ctx)
    invite(storage, ctx, school.teacher, school.child_id)
    response = await post(
        client, "/api/v1/onboarding/start", {"phone": PHONE, "code": "AAAA-BBBB-CCCC"}
    )
    assert response.status_code == 401
    error = await error_of(response)
    assert error["field"] == "code"
    assert "do not match" in error["message"]
    assert texts_to(storage, PHONE) == []


async def test_used_and_expired_codes_are_410(
    client: Client, storage: Storage, ctx: ServiceContext, data_dir: Path
) -> None:
    school = make_school(storage, ctx)
    slip = invite(storage, ctx, school.teacher, school.child_id)
    attempt_id = await verified_attempt(client, storage, data_dir, slip.code)
    response = await post(
        client,
        "/api/v1/onboarding/complete",
        {"attempt_id": attempt_id, "credentials": good_credentials()},
    )
    assert response.status_code == 201
    response = await post(client, "/api/v1/onboarding/start", {"phone": PHONE, "code": slip.code})
    assert response.status_code == 410
    assert "already used" in (await error_of(response))["message"]

    expired = invite(storage, ctx, school.teacher, school.child_id, phone=OTHER_PHONE, name="Sam")
    model = directory_store.GuardianInvitation
    storage.call(
        lambda: (
            model.update(expires_at=ctx.now().replace(year=2000))
            .where(model.id == expired.invitation_id)
            .execute()
        )
    )
    response = await post(
        client, "/api/v1/onboarding/start", {"phone": OTHER_PHONE, "code": expired.code}
    )
    assert response.status_code == 410
    assert "expired" in (await error_of(response))["message"]
    assert texts_to(storage, OTHER_PHONE) == []


@pytest.mark.parametrize(
    ("phone", "words"),
    [
        ("06 12 34 AB 78", "only digits"),
        ("+1234567890123456", "not a valid"),
        ("0612", "not a valid"),
        ("", "Enter a phone number"),
        ("12345", "country code"),
        ("+881 6 12 34 56 78", "cannot receive"),
        ("+882 1234 5678", "cannot receive"),
        ("+979 1234 5678", "cannot receive"),
    ],
)
async def test_malformed_phone_is_400_with_a_message(
    client: Client, storage: Storage, ctx: ServiceContext, phone: str, words: str
) -> None:
    response = await post(client, "/api/v1/onboarding/start", {"phone": phone, "code": "ABCDEFGH"})
    assert response.status_code == 400
    error = await error_of(response)
    assert error["field"] == "phone"
    assert words in error["message"]


async def test_per_ip_limit_is_429_with_retry_after(
    client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    school = make_school(storage, ctx)
    slip = invite(storage, ctx, school.teacher, school.child_id)
    for _ in range(ctx.config.failures_per_ip_per_15min):
        response = await post(
            client,
            "/api/v1/onboarding/start",
            {"phone": PHONE, "code": "GUESS-GUESS"},
            "203.0.113.5",
        )
        assert response.status_code == 401
    response = await post(
        client, "/api/v1/onboarding/start", {"phone": PHONE, "code": slip.code}, "203.0.113.5"
    )
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    assert (await error_of(response))["code"] == "rate_limited"
    assert texts_to(storage, PHONE) == []


async def test_stranger_hammering_from_one_address_does_not_lock_out_the_parent(
    client: Client, storage: Storage, ctx: ServiceContext, data_dir: Path
) -> None:
    school = make_school(storage, ctx)
    slip = invite(storage, ctx, school.teacher, school.child_id)
    statuses = set()
    for _ in range(ctx.config.failures_per_ip_per_15min + 3):
        response = await post(
            client,
            "/api/v1/onboarding/start",
            {"phone": PHONE, "code": "GUESS-1234"},
            "203.0.113.66",
        )
        statuses.add(response.status_code)
    assert statuses == {401, 429}
    assert texts_to(storage, PHONE) == []
    parent = client.app.test_client()  # type: ignore[attr-defined]
    attempt_id = await verified_attempt(parent, storage, data_dir, slip.code)
    response = await post(
        parent,
        "/api/v1/onboarding/complete",
        {"attempt_id": attempt_id, "credentials": good_credentials()},
    )
    assert response.status_code == 201
    children = await (await parent.get("/api/v1/me/children")).get_json()
    assert [c["first_name"] for c in children] == ["Léa"]


async def test_fourth_text_in_an_hour_is_429(
    client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    school = make_school(storage, ctx)
    slip = invite(storage, ctx, school.teacher, school.child_id)
    body = {"phone": PHONE, "code": slip.code}
    first = await (await post(client, "/api/v1/onboarding/start", body)).get_json()
    resent = await post(client, "/api/v1/onboarding/resend", {"attempt_id": first["attempt_id"]})
    assert resent.status_code == 200
    assert (await post(client, "/api/v1/onboarding/start", body)).status_code == 201
    response = await post(client, "/api/v1/onboarding/start", body)
    assert response.status_code == 429
    assert "Retry-After" in response.headers
    response = await post(client, "/api/v1/onboarding/resend", {"attempt_id": first["attempt_id"]})
    assert response.status_code == 429
    assert len(texts_to(storage, PHONE)) == 3


# --- Verify -------------------------------------------------------------------------


async def test_sms_code_errors_over_http(
    client: Client, storage: Storage, ctx: ServiceContext, data_dir: Path
) -> None:
    school = make_school(storage, ctx)
    slip = invite(storage, ctx, school.teacher, school.child_id)
    started = await post(client, "/api/v1/onboarding/start", {"phone": PHONE, "code": slip.code})
    attempt_id = (await started.get_json())["attempt_id"]
    right = sms_code(storage, data_dir, PHONE)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"

    for short_or_long in ("12345", "1234567"):
        response = await post(
            client,
            "/api/v1/onboarding/verify",
            {"attempt_id": attempt_id, "sms_code": short_or_long},
        )
        assert response.status_code == 400
        assert (await error_of(response))["field"] == "sms_code"

    response = await post(
        client, "/api/v1/onboarding/verify", {"attempt_id": attempt_id, "sms_code": wrong}
    )
    assert response.status_code == 401
    assert "Tries left: 4" in (await error_of(response))["message"]

    full_width = "".join(chr(ord("０") + int(d)) for d in right)
    response = await post(
        client, "/api/v1/onboarding/verify", {"attempt_id": attempt_id, "sms_code": full_width}
    )
    assert response.status_code == 200
    body = await response.get_json()
    assert body["child_first_name"] == "Léa"
    assert body["existing_kdf_salt"] is None
    assert body["kdf_iterations"] >= 600_000


async def test_five_wrong_sms_codes_then_the_right_one_is_410(
    client: Client, storage: Storage, ctx: ServiceContext, data_dir: Path
) -> None:
    school = make_school(storage, ctx)
    slip = invite(storage, ctx, school.teacher, school.child_id)
    started = await post(client, "/api/v1/onboarding/start", {"phone": PHONE, "code": slip.code})
    attempt_id = (await started.get_json())["attempt_id"]
    right = sms_code(storage, data_dir, PHONE)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    statuses = []
    for _ in range(5):
        response = await post(
            client, "/api/v1/onboarding/verify", {"attempt_id": attempt_id, "sms_code": wrong}
        )
        statuses.append(response.status_code)
    assert statuses == [401, 401, 401, 401, 410]
    response = await post(
        client, "/api/v1/onboarding/verify", {"attempt_id": attempt_id, "sms_code": right}
    )
    assert response.status_code == 410
    response = await post(
        client,
        "/api/v1/onboarding/complete",
        {"attempt_id": attempt_id, "credentials": good_credentials()},
    )
    assert response.status_code == 409
    assert guardian_accounts(storage) == []


# --- Complete: credentials and bodies ------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def bad_credentials() -> list[tuple[str, dict[str, Any]]]:
    good = good_credentials()
    other = good_credentials(OTHER_PHONE)
    keys = client_account(PHONE).keys
    cases: list[tuple[str, dict[str, Any]]] = [
        ("login_secret too long", {**good, "login_secret": "A" * 65}),
        ("login_secret not base64url", {**good, "login_secret": "!" * 43}),
        ("login_secret padded", {**good, "login_secret": _b64(b"\x01" * 32) + "="}),
        ("login_secret 31 bytes", {**good, "login_secret": _b64(b"\x01" * 31)}),
        ("login_secret 33 bytes", {**good, "login_secret": _b64(b"\x01" * 33)}),
        ("login_secret a number", {**good, "login_secret": 12345}),
        ("vault of other keys", {**good, "vault": other["vault"]}),
        ("sign_pk of other keys", {**good, "sign_pk": other["sign_pk"]}),
        ("empty vault", {**good, "vault": {}}),
        ("vault not an object", {**good, "vault": "vault"}),
        (
            "proof for another login",
            {
                **good,
                "proof": account_keys_proof(keys.sign_sk, keys.sign_pk, keys.enc_pk, OTHER_PHONE),
            },
        ),
        ("proof of other keys", {**good, "proof": other["proof"]}),
        ("kdf_iterations too low", {**good, "kdf_iterations": 599_999}),
        ("kdf_iterations as text", {**good, "kdf_iterations": "600000"}),
        ("kdf_salt wrong length", {**good, "kdf_salt": _b64(b"\x02" * 15)}),
        ("missing proof", {k: v for k, v in good.items() if k != "proof"}),
        ("extra role", {**good, "role": "admin"}),
        ("extra is_admin", {**good, "is_admin": True}),
        ("extra account_id", {**good, "account_id": 1}),
    ]
    assert b64url_decode(good["login_secret"], length=32)
    return cases


async def test_bad_credentials_are_400_and_lose_nothing(
    client: Client, storage: Storage, ctx: ServiceContext, data_dir: Path
) -> None:
    school = make_school(storage, ctx)
    slip = invite(storage, ctx, school.teacher, school.child_id)
    attempt_id = await verified_attempt(client, storage, data_dir, slip.code)
    for label, creds in bad_credentials():
        response = await post(
            client, "/api/v1/onboarding/complete", {"attempt_id": attempt_id, "credentials": creds}
        )
        assert response.status_code == 400, label
        await error_of(response)
        assert "carnet_session" not in response.headers.get("Set-Cookie", ""), label
    assert guardian_accounts(storage) == []
    assert invitation(storage, slip.invitation_id).used_at is None
    # The attempt survived every bad body: the right credentials still complete it.
    response = await post(
        client,
        "/api/v1/onboarding/complete",
        {"attempt_id": attempt_id, "credentials": good_credentials()},
    )
    assert response.status_code == 201
    assert [a.role for a in guardian_accounts(storage)] == ["guardian"]


@pytest.mark.parametrize("extra", ["role", "is_admin", "account_id"])
async def test_unknown_top_level_fields_are_refused(
    client: Client, storage: Storage, ctx: ServiceContext, extra: str
) -> None:
    school = make_school(storage, ctx)
    slip = invite(storage, ctx, school.teacher, school.child_id)
    response = await post(
        client,
        "/api/v1/onboarding/start",
        {"phone": PHONE, "code": slip.code, extra: "admin"},
    )
    assert response.status_code == 400
    error = await error_of(response)
    assert error["field"] == extra
    assert extra in error["message"]
    assert texts_to(storage, PHONE) == []


async def test_non_json_bodies_are_400(
    client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    token = await csrf(client)
    headers = {"X-CSRF-Token": token}
    cases = [
        ("text/plain", b'{"phone": "+33639980001", "code": "ABCDEFGH"}'),
        ("application/x-www-form-urlencoded", b"phone=%2B33639980001&code=ABCDEFGH"),
        ("application/json", b"{not json"),
        ("application/json", b'["a list"]'),
        ("application/json", b'"a string"'),
    ]
    for content_type, data in cases:
        response = await client.post(
            "/api/v1/onboarding/start",
            data=data,
            headers={**headers, "Content-Type": content_type},
        )
        assert response.status_code == 400, (content_type, data)
        await error_of(response)
    assert texts_to(storage, PHONE) == []


async def test_body_over_the_size_limit_is_413(app: Quart, client: Client) -> None:
    token = await csrf(client)
    limit = app.config["CARNET"].max_request_bytes
    padding = "x" * (limit + 1)
    response = await client.post(
        "/api/v1/onboarding/start",
        data=json.dumps({"phone": PHONE, "code": padding}).encode(),
        headers={"X-CSRF-Token": token, "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert (await error_of(response))["code"] == "too_large"


async def test_second_child_in_another_class_joins_the_existing_account(
    client: Client, storage: Storage, ctx: ServiceContext, data_dir: Path
) -> None:
    from node.refclient import login_secret
    from tests.factories import PASSPHRASE, make_guardian

    school = make_school(storage, ctx)
    slip = invite(storage, ctx, school.teacher, school.child_id)
    make_guardian(storage, ctx, slip.code)
    other_class = make_class(storage, ctx, school.teacher, "CM2 B")
    brother = make_child(storage, ctx, school.teacher, other_class.id, "Hugo", "Martin")
    second = invite(storage, ctx, school.teacher, brother.id)

    started = await post(client, "/api/v1/onboarding/start", {"phone": PHONE, "code": second.code})
    attempt_id = (await started.get_json())["attempt_id"]
    verified = await post(
        client,
        "/api/v1/onboarding/verify",
        {"attempt_id": attempt_id, "sms_code": sms_code(storage, data_dir, PHONE)},
    )
    body = await verified.get_json()
    assert body["existing_kdf_salt"] == client_account(PHONE).credentials.kdf_salt

    # A new account for the same number is refused, and so is a wrong passphrase.
    response = await post(
        client,
        "/api/v1/onboarding/complete",
        {"attempt_id": attempt_id, "credentials": good_credentials()},
    )
    assert response.status_code == 409
    response = await post(
        client,
        "/api/v1/onboarding/complete-existing",
        {"attempt_id": attempt_id, "login_secret": _b64(b"\x07" * 32)},
    )
    assert response.status_code == 401
    assert invitation(storage, second.invitation_id).used_at is None

    secret = login_secret(PASSPHRASE, body["existing_kdf_salt"], body["existing_kdf_iterations"])
    response = await post(
        client,
        "/api/v1/onboarding/complete-existing",
        {"attempt_id": attempt_id, "login_secret": secret},
    )
    assert response.status_code == 200
    children = await (await client.get("/api/v1/me/children")).get_json()
    assert sorted((c["first_name"], c["class_name"]) for c in children) == [
        ("Hugo", "CM2 B"),
        ("Léa", "CE1 A"),
    ]
    assert len(guardian_accounts(storage)) == 1
