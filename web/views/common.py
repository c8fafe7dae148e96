"""Helpers every view uses: run a service, require a login, read a form field."""

from __future__ import annotations

from typing import Any

from quart import current_app, g, request

from node.errors import N_, Invalid, Unauthenticated
from node.services.context import Actor


async def call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    app = current_app
    return await app.config["CARNET_STORAGE"].run(fn, app.config["CARNET_CTX"], *args, **kwargs)


def require_actor() -> Actor:
    actor: Actor | None = g.get("actor")
    if actor is None:
        raise Unauthenticated(N_("Log in first."))
    return actor


async def form() -> dict[str, str]:
    data = await request.form
    return {k: v for k, v in data.items() if k != "csrf_token"}


async def form_list(name: str, max_items: int = 8, max_length: int = 500) -> list[str]:
    """Every value of a repeated form field (hidden inputs of the same name), bounded."""
    values: list[str] = (await request.form).getlist(name)
    if len(values) > max_items or any(len(v) > max_length for v in values):
        raise Invalid(N_("This field is too long."), field=name)
    return values


def field(data: dict[str, str], name: str, max_length: int = 500) -> str:
    value = data.get(name, "")
    if len(value) > max_length:
        raise Invalid(N_("This field is too long."), field=name)
    return value


def home_path(role: str) -> str:
    return {"admin": "/admin", "teacher": "/classes", "guardian": "/home"}.get(role, "/")
