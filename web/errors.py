"""Errors as a person should see them: JSON under /api/, a page elsewhere, never a stack trace."""

from __future__ import annotations

from typing import Any

from quart import Quart, g, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from node.errors import N_, CarnetError, RateLimited


def error_message(app: Quart, error: CarnetError) -> str:
    text: str = app.config["CARNET_CATALOGUES"].translate(g.get("locale", "en"), error.message)
    # messages name their values as %(name)s (babel's python-format) or {name};
    # ``field`` is a value too ("%(field)s must be a date and time.")
    values = {"field": error.field, **error.params}
    try:
        return text % values if "%(" in text else text.format(**values)
    except (KeyError, IndexError, TypeError, ValueError):
        return text


async def render_error(app: Quart, error: CarnetError) -> Any:
    message = error_message(app, error)
    headers = {}
    if isinstance(error, RateLimited):
        headers["Retry-After"] = str(error.retry_after)
    if request.path.startswith("/api/"):
        body = {"error": {"code": error.code, "message": message, "field": error.field}}
        return jsonify(body), error.status, headers
    if error.status == 401 and g.get("actor") is None and request.method == "GET":
        from quart import redirect

        return redirect("/login")
    html = await render_template("error.html", message=message, status=error.status)
    return html, error.status, headers


_HTTP_MESSAGES = {
    400: N_("The request could not be understood."),
    404: N_("This page does not exist."),
    405: N_("This action is not allowed here."),
    413: N_("What you sent is too large."),
}


async def render_http_error(app: Quart, error: HTTPException) -> Any:
    status = error.code or 500
    wrapped = CarnetError(_HTTP_MESSAGES.get(status, N_("Something went wrong.")))
    wrapped.status = status
    wrapped.code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(
        status, "bad_request" if status < 500 else "error"
    )
    return await render_error(app, wrapped)
