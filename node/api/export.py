"""A guardian's export of everything of theirs: ciphertext and ids, decrypted by their browser."""

from __future__ import annotations

from typing import Any

from quart import g, request

from node.api import Api, actor, call, ok
from node.errors import N_, Invalid
from node.services import export
from node.urlids import parse_id


def _before() -> int | None:
    raw = request.args.get("before")
    if raw is None:
        return None
    value = parse_id(raw)
    if value is None:
        raise Invalid(
            N_("%(name)s must be a positive whole number."), field="before", name="before"
        )
    return value


def register(api: Api) -> None:
    @api.operation(
        "GET",
        "/me/export",
        summary="Everything the node holds about me (guardians): profile, children, classes, "
        "sessions, devices, notifications, absence notes, conversations, alerts; "
        "posts and messages page through /me/export/posts and /me/export/conversations",
        tag="export",
    )
    async def my_export() -> Any:
        return ok(await call(export.summary, actor(), g.get("locale", "en")))

    @api.operation(
        "GET",
        "/me/export/posts",
        summary="My timeline's posts with their replies, 50 at a time (?before=)",
        tag="export",
    )
    async def export_posts() -> Any:
        return ok(await call(export.posts, actor(), _before()))

    @api.operation(
        "GET",
        "/me/export/conversations/<id:class_id>/<pubid:conversation_id>",
        summary="One of my conversations, newest messages first (?before=)",
        tag="export",
    )
    async def export_conversation(class_id: int, conversation_id: str) -> Any:
        return ok(await call(export.conversation, actor(), class_id, conversation_id, _before()))
