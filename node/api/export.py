"""A guardian's export of everything of theirs: ciphertext and ids, decrypted by their browser."""

from __future__ import annotations

from typing import Any

from quart import g

from node.api import Api, actor, call, ok
from node.api.schema import BEFORE
from node.services import export


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
        query={"before": BEFORE},
    )
    async def export_posts(query: dict[str, Any]) -> Any:
        return ok(await call(export.posts, actor(), query["before"]))

    @api.operation(
        "GET",
        "/me/export/conversations/<id:class_id>/<pubid:conversation_id>",
        summary="One of my conversations, newest messages first (?before=)",
        tag="export",
        query={"before": BEFORE},
    )
    async def export_conversation(
        class_id: int, conversation_id: str, query: dict[str, Any]
    ) -> Any:
        return ok(
            await call(export.conversation, actor(), class_id, conversation_id, query["before"])
        )
