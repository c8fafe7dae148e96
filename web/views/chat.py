"""Chat pages: a class's conversations, one conversation, and the teacher's reports.

The pages are shells: the browser fetches ciphertext from /api/v1, decrypts
it with the keys it holds, and renders (web/static/js/pages/chat.js).
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, redirect, render_template

from node.errors import N_, PermissionDenied
from node.services import chat_views
from web.views.common import call, require_actor

blueprint = Blueprint("chat", __name__)


@blueprint.get("/classes/<id:class_id>/chat")
async def chat_index(class_id: int) -> Any:
    overview = await call(chat_views.overview, require_actor(), class_id)
    return await render_template("chat/index.html", page=overview, mode="index", conversation=None)


@blueprint.get("/classes/<id:class_id>/chat/<pubid:conversation_id>")
async def chat_conversation(class_id: int, conversation_id: str) -> Any:
    actor = require_actor()
    overview = await call(chat_views.overview, actor, class_id)
    await call(chat_views.conversation, actor, class_id, conversation_id)  # 404 before the shell
    return await render_template(
        "chat/index.html", page=overview, mode="conversation", conversation=conversation_id
    )


@blueprint.get("/classes/<id:class_id>/chat/reports")
async def chat_reports(class_id: int) -> Any:
    overview = await call(chat_views.overview, require_actor(), class_id)
    if not overview.is_teacher:
        raise PermissionDenied(N_("Only the class's teacher reads reports."))
    return await render_template(
        "chat/index.html", page=overview, mode="reports", conversation=None
    )


@blueprint.get("/classes/<id:class_id>/chat/m/<pubid:message_id>")
async def chat_message(class_id: int, message_id: str) -> Any:
    """A notification's link: the conversation of that message."""
    conversation = await call(chat_views.locate, require_actor(), class_id, message_id)
    return redirect(f"/classes/{class_id}/chat/{conversation}")
