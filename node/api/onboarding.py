"""A guardian's first login: access code, SMS code, then passphrase and keys."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from quart import current_app, g, request

from node.api import Api, call, ok
from node.api.auth import credentials, session_response
from node.api.schema import CREDENTIALS, Body, obj, string
from node.security import client_ip
from node.services import onboarding
from node.services.accounts import SessionGrant

START = Body("OnboardingStart", {"phone": string(40), "code": string(80)})
ATTEMPT = Body("OnboardingAttempt", {"attempt_id": string(64)})
VERIFY = Body("OnboardingVerify", {"attempt_id": string(64), "sms_code": string(20)})
COMPLETE = Body("OnboardingComplete", {"attempt_id": string(64), "credentials": obj()})
EXISTING = Body("OnboardingExisting", {"attempt_id": string(64), "login_secret": string(64)})


def _app() -> Any:
    return current_app._get_current_object()  # type: ignore[attr-defined]


async def _with_credentials(
    service: Callable[..., SessionGrant], data: dict[str, Any]
) -> SessionGrant:
    """Run a completion service with the nested, validated credentials object."""
    creds = credentials(CREDENTIALS.validate(data["credentials"]))
    grant: SessionGrant = await call(
        service, data["attempt_id"], creds, request.headers.get("User-Agent", "")
    )
    return grant


def register(api: Api) -> None:
    @api.operation(
        "POST",
        "/onboarding/start",
        summary="Check phone and access code; text an SMS code",
        body=START,
        auth="none",
        tag="onboarding",
    )
    async def start(data: dict[str, Any]) -> Any:
        view = await call(
            onboarding.start, data["phone"], data["code"], client_ip(_app()), g.locale
        )
        _app().extensions["carnet_sms"].wake()
        return ok({"attempt_id": view.attempt_id, "phone_masked": view.phone_masked}, 201)

    @api.operation(
        "POST",
        "/onboarding/resend",
        summary="Text a new SMS code",
        body=ATTEMPT,
        auth="none",
        tag="onboarding",
    )
    async def resend(data: dict[str, Any]) -> Any:
        view = await call(onboarding.resend, data["attempt_id"], client_ip(_app()), g.locale)
        _app().extensions["carnet_sms"].wake()
        return ok({"attempt_id": view.attempt_id, "phone_masked": view.phone_masked})

    @api.operation(
        "POST",
        "/onboarding/verify",
        summary="Check the SMS code",
        body=VERIFY,
        auth="none",
        tag="onboarding",
    )
    async def verify(data: dict[str, Any]) -> Any:
        return ok(
            await call(
                onboarding.verify_sms, data["attempt_id"], data["sms_code"], client_ip(_app())
            )
        )

    @api.operation(
        "POST",
        "/onboarding/complete",
        summary="Create the guardian account with its keys and vault",
        body=COMPLETE,
        auth="none",
        tag="onboarding",
    )
    async def complete(data: dict[str, Any]) -> Any:
        return await session_response(await _with_credentials(onboarding.complete_new, data), 201)

    @api.operation(
        "POST",
        "/onboarding/reset",
        summary="Forgotten passphrase: new passphrase and new keys for my account",
        body=COMPLETE,
        auth="none",
        tag="onboarding",
    )
    async def reset(data: dict[str, Any]) -> Any:
        return await session_response(await _with_credentials(onboarding.complete_reset, data))

    @api.operation(
        "POST",
        "/onboarding/complete-existing",
        summary="Add the child to my existing account",
        body=EXISTING,
        auth="none",
        tag="onboarding",
    )
    async def complete_existing(data: dict[str, Any]) -> Any:
        grant = await call(
            onboarding.complete_existing,
            data["attempt_id"],
            data["login_secret"],
            client_ip(_app()),
            request.headers.get("User-Agent", ""),
        )
        return await session_response(grant)
