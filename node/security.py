"""HTTP security shared by pages and the JSON API: sessions, CSRF, headers, client address.

- The session cookie is ``__Host-carnet_session`` (Secure, HttpOnly,
  SameSite=Lax, Path=/) when the node is served over HTTPS.  Over plain HTTP
  (the local demo) browsers refuse ``__Host-`` and ``Secure``, so the cookie
  is ``carnet_session`` without them.
- CSRF: every state-changing request must not come from another site
  (``Sec-Fetch-Site``/``Origin``) *and* must carry the token
  ``HMAC(node secret, csrf cookie ‖ session cookie)`` in the ``csrf_token``
  form field or the ``X-CSRF-Token`` header.  The token changes when the
  session does, so a token from before login is useless after it.
- Every response, errors and static files included, gets CSP, HSTS (HTTPS
  only), nosniff, Referrer-Policy and frame denial.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from quart import Quart, Response, g, request

from node.errors import N_, PermissionDenied
from node.services import accounts
from node.services.context import Actor

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob: data:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "worker-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ]
)


def cookie_name(app: Quart, base: str) -> str:
    return f"__Host-{base}" if app.config["CARNET"].is_https else base


def set_cookie(app: Quart, response: Response, base: str, value: str, max_age: int | None) -> None:
    response.set_cookie(
        cookie_name(app, base),
        value,
        max_age=max_age,
        path="/",
        secure=app.config["CARNET"].is_https,
        httponly=True,
        samesite="Lax",
    )


def delete_cookie(app: Quart, response: Response, base: str) -> None:
    response.delete_cookie(
        cookie_name(app, base),
        path="/",
        secure=app.config["CARNET"].is_https,
        httponly=True,
        samesite="Lax",
    )


def client_ip(app: Quart) -> str:
    """The client address, trusting ``X-Forwarded-For`` only from configured proxies."""
    hops = app.config["CARNET"].trusted_proxies
    if hops:
        forwarded = [p.strip() for p in request.headers.get("X-Forwarded-For", "").split(",")]
        forwarded = [p for p in forwarded if p]
        if len(forwarded) >= hops:
            return str(forwarded[-hops])[:64]
    return (request.remote_addr or "unknown")[:64]


def _session_token(app: Quart) -> str:
    return request.cookies.get(cookie_name(app, "carnet_session"), "")


def csrf_cookie_value(app: Quart) -> str:
    """The browser's CSRF cookie, minted on first use (set on the response by ``after_request``)."""
    value = getattr(g, "csrf_cookie", None) or request.cookies.get(cookie_name(app, "carnet_csrf"))
    if not value or len(value) > 64:
        value = secrets.token_urlsafe(32)
        g.new_csrf_cookie = value
    g.csrf_cookie = value
    return str(value)


def csrf_token(app: Quart, session_token: str | None = None) -> str:
    session = _session_token(app) if session_token is None else session_token
    message = (csrf_cookie_value(app) + "|" + session).encode()
    return hmac.new(app.config["CARNET_KEYS"].node_secret, message, hashlib.sha256).hexdigest()


async def check_csrf(app: Quart) -> None:
    """Refuse a state-changing request from another site or without the right token."""
    if request.method in SAFE_METHODS or request.endpoint in app.config["CARNET_CSRF_EXEMPT"]:
        return
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        raise PermissionDenied(N_("This request came from another site and was refused."))
    origin = request.headers.get("Origin")
    if origin is not None and origin != app.config["CARNET"].origin:
        raise PermissionDenied(N_("This request came from another site and was refused."))
    sent = request.headers.get("X-CSRF-Token")
    if sent is None and request.mimetype in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        sent = (await request.form).get("csrf_token")
    cookie = request.cookies.get(cookie_name(app, "carnet_csrf"))
    if not sent or not cookie or not hmac.compare_digest(sent, csrf_token(app)):
        raise PermissionDenied(
            N_("This form has expired or was not sent by Carnet. Reload the page and try again.")
        )


async def load_actor(app: Quart) -> Actor | None:
    """The logged-in person, looked up once per request."""
    if "actor" not in g:
        token = _session_token(app)
        g.actor = (
            await app.config["CARNET_STORAGE"].run(
                accounts.authenticate, app.config["CARNET_CTX"], token
            )
            if token
            else None
        )
    actor: Actor | None = g.actor
    return actor


def add_security_headers(app: Quart, response: Response) -> Response:
    headers: dict[str, Any] = {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
        # same-origin, not no-referrer: with no-referrer browsers send "Origin: null"
        # on same-site form posts, which the CSRF origin check must refuse.
        "Referrer-Policy": "same-origin",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Permissions-Policy": "camera=(self), microphone=(self), geolocation=()",
    }
    if app.config["CARNET"].is_https:
        headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    for name, value in headers.items():
        response.headers.setdefault(name, value)
    if request.path.startswith(("/api/", "/login", "/welcome", "/setup")) or getattr(
        g, "no_store", False
    ):
        response.headers["Cache-Control"] = "no-store"
    new_cookie = getattr(g, "new_csrf_cookie", None)
    if new_cookie:
        set_cookie(app, response, "carnet_csrf", new_cookie, max_age=None)
    return response
