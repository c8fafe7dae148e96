"""Login, logout, sessions, staff setup links and staff management."""

from __future__ import annotations

from typing import Any

from quart import current_app, g, jsonify, request

from node.api import Api, actor, call, ok, to_json
from node.api.schema import CREDENTIALS, Body, obj, string
from node.security import client_ip, cookie_name, csrf_token, delete_cookie, set_cookie
from node.services import accounts
from node.services.accounts import SessionGrant
from node.services.credentials import Credentials

PRELOGIN = Body("Prelogin", {"login": string(254, description="e-mail or phone number")})
CHANGE_PASSPHRASE = Body(
    "ChangePassphrase", {"current_login_secret": string(64), "credentials": obj()}
)
LOGIN = Body("Login", {"login": string(254), "login_secret": string(64)})
NEW_STAFF = Body(
    "NewStaff",
    {
        "role": string(16, description="admin or teacher"),
        "display_name": string(200),
        "email": string(254),
    },
)


def credentials(data: dict[str, Any]) -> Credentials:
    return Credentials(**data)


async def session_response(grant: SessionGrant, status: int = 200) -> Any:
    """The JSON answer to a successful login: account, vault and the new CSRF token.

    A session this browser held before (another person on a shared computer)
    ends now, so switching people never leaves a live session behind.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    previous = request.cookies.get(cookie_name(app, "carnet_session"), "")
    if previous:
        await call(accounts.end_session_token, previous)
    config = app.config["CARNET"]
    body = {
        "account": {
            "id": grant.actor.account_id,
            "role": grant.actor.role,
            "display_name": grant.actor.display_name,
        },
        "vault": grant.vault,
        "csrf_token": csrf_token(app, grant.token),
    }
    response = jsonify(body)
    response.status_code = status
    set_cookie(app, response, "carnet_session", grant.token, config.session_absolute_days * 86400)
    return response


def setup_url(token: str) -> str:
    return accounts.setup_url(current_app.config["CARNET_CTX"], token)


def register(api: Api) -> None:
    @api.operation(
        "GET", "/session", summary="Who is logged in, and the CSRF token", auth="none", tag="auth"
    )
    async def get_session() -> Any:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        who = g.get("actor")
        account = to_json(await call(accounts.me, who)) if who else None
        return jsonify({"account": account, "csrf_token": csrf_token(app)})

    @api.operation(
        "POST",
        "/auth/prelogin",
        summary="Key derivation settings for a login",
        body=PRELOGIN,
        auth="none",
        tag="auth",
    )
    async def prelogin(data: dict[str, Any]) -> Any:
        return ok(await call(accounts.prelogin, data["login"]))

    @api.operation(
        "POST",
        "/auth/login",
        summary="Log in with the login secret",
        body=LOGIN,
        auth="none",
        tag="auth",
    )
    async def login(data: dict[str, Any]) -> Any:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        grant = await call(
            accounts.login,
            data["login"],
            data["login_secret"],
            client_ip(app),
            request.headers.get("User-Agent", ""),
        )
        return await session_response(grant)

    @api.operation("POST", "/auth/logout", summary="End this session", tag="auth")
    async def logout() -> Any:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        await call(accounts.logout, actor())
        response = jsonify({"ok": True})
        delete_cookie(app, response, "carnet_session")
        return response

    @api.operation("GET", "/me", summary="My account (contact details masked)", tag="auth")
    async def me() -> Any:
        return ok(await call(accounts.me, actor()))

    @api.operation("GET", "/me/sessions", summary="My open sessions", tag="auth")
    async def my_sessions() -> Any:
        return ok(await call(accounts.my_sessions, actor()))

    @api.operation(
        "DELETE", "/me/sessions/<id:session_id>", summary="End one of my sessions", tag="auth"
    )
    async def end_session(session_id: int) -> Any:
        await call(accounts.end_session, actor(), session_id)
        return ok({"ok": True})

    @api.operation(
        "POST", "/me/sessions/end-others", summary="Log out everywhere but here", tag="auth"
    )
    async def end_other_sessions() -> Any:
        return ok({"ended": await call(accounts.end_other_sessions, actor())})

    @api.operation("GET", "/me/vault", summary="My encrypted key vault", tag="auth")
    async def my_vault() -> Any:
        return ok(await call(accounts.vault_of, actor()))

    @api.operation(
        "POST",
        "/me/passphrase",
        summary="Change my passphrase (same keys, re-sealed vault)",
        body=CHANGE_PASSPHRASE,
        tag="auth",
    )
    async def change_passphrase(data: dict[str, Any]) -> Any:
        creds = credentials(CREDENTIALS.validate(data["credentials"]))
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        await call(
            accounts.change_passphrase, actor(), data["current_login_secret"], creds, client_ip(app)
        )
        return ok({"ok": True})

    @api.operation(
        "GET", "/setup/<token>", summary="What a staff setup link is for", auth="none", tag="auth"
    )
    async def setup_info(token: str) -> Any:
        return ok(await call(accounts.inspect_setup_link, token))

    @api.operation(
        "POST",
        "/setup/<token>",
        summary="Set a staff passphrase and keys",
        body=CREDENTIALS,
        auth="none",
        tag="auth",
    )
    async def setup_complete(token: str, data: dict[str, Any]) -> Any:
        grant = await call(
            accounts.complete_setup, token, credentials(data), request.headers.get("User-Agent", "")
        )
        return await session_response(grant, 201)

    @api.operation("GET", "/staff", summary="School staff (admin)", tag="staff")
    async def list_staff() -> Any:
        return ok(await call(accounts.list_staff, actor()))

    @api.operation(
        "POST", "/staff", summary="Create a teacher or admin (admin)", body=NEW_STAFF, tag="staff"
    )
    async def create_staff(data: dict[str, Any]) -> Any:
        view, token = await call(
            accounts.create_staff, actor(), data["role"], data["display_name"], data["email"]
        )
        return ok({"account": view, "setup_url": setup_url(token)}, 201)

    @api.operation(
        "POST",
        "/staff/<id:account_id>/setup-link",
        summary="New setup link for a staff member who has not set up (admin)",
        tag="staff",
    )
    async def reissue_setup(account_id: int) -> Any:
        token = await call(accounts.reissue_setup_link, actor(), account_id)
        return ok({"setup_url": setup_url(token)}, 201)

    @api.operation(
        "POST",
        "/accounts/<id:account_id>/disable",
        summary="Disable an account and end its sessions (admin)",
        tag="staff",
    )
    async def disable(account_id: int) -> Any:
        return ok(await call(accounts.disable_account, actor(), account_id))
