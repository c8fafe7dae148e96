"""A class's conversations: parent chat, private groups, family threads, reports, blocks."""

from __future__ import annotations

from typing import Any

from quart import current_app

from node.api import Api, actor, call, ok
from node.api.schema import BEFORE, Body, Param, array, boolean, integer, obj, string
from node.services import chat_membership, chat_moderation, chat_views, conversations
from node.urlids import MAX_ID

_CONVERSATION = "<pubid:conversation_id>"
_MESSAGE = "<pubid:message_id>"

SETTINGS = Body(
    "ChatSettings",
    {
        "parent_chat": string(8, required=False, description="off, open or closed (read-only)"),
        "family_threads": string(
            8, required=False, description="open (guardians may start) or reply (answer only)"
        ),
        "office_hours": string(200, required=False),
        "away_until": string(10, required=False, description="YYYY-MM-DD, or empty: not away"),
    },
)
NEW_CONVERSATION = Body(
    "NewConversation",
    {
        "kind": string(8, description="room, group or family"),
        "message": obj("the opening message, kind conversation (e2e-groups §9)"),
        "keys": array("its key sealed to each member", max_items=100),
        "child": integer(1, MAX_ID, required=False, description="family: the child"),
        "members": array("group: the other members' ids", required=False, max_items=100),
    },
)
CHAT = Body(
    "ChatMessage",
    {"message": obj("a chat message (§9)"), "keys": array("sealed keys", max_items=100)},
)
MEMBERS = Body(
    "MembershipChange",
    {
        "op": string(5, description="join, add or leave"),
        "member": string(128),
        "message": obj("the signed event, kind member, sealed to the members after it"),
        "keys": array("sealed keys", max_items=100),
    },
)
BLOCK = Body("Block", {"member": string(128), "blocked": boolean()})


def _announce(said: conversations.Said) -> None:
    """Tell the open pages of the recipients (server-sent events); ids only."""
    publish = current_app.extensions.get("carnet_live_publish")
    if publish is not None and said.recipients:
        publish(
            said.recipients,
            {
                "type": "chat",
                "class_id": said.class_id,
                "conversation": said.conversation,
                "message": said.message,
            },
        )


def register(api: Api) -> None:
    @api.operation(
        "GET", "/classes/<id:class_id>/chat", summary="A class's conversations", tag="chat"
    )
    async def chat_overview(class_id: int) -> Any:
        return ok(await call(chat_views.overview, actor(), class_id))

    @api.operation(
        "PUT",
        "/classes/<id:class_id>/chat/settings",
        summary="Parent chat, family threads, office hours, holiday pause (teacher)",
        body=SETTINGS,
        tag="chat",
    )
    async def chat_settings(class_id: int, data: dict[str, Any]) -> Any:
        await call(chat_moderation.set_settings, actor(), class_id, **data)
        return ok(await call(chat_views.overview, actor(), class_id))

    @api.operation(
        "POST",
        "/classes/<id:class_id>/chat/conduct",
        summary="Accept the parent chat's code of conduct",
        tag="chat",
    )
    async def accept_conduct(class_id: int) -> Any:
        await call(chat_moderation.accept_conduct, actor(), class_id)
        return ok({"ok": True})

    @api.operation(
        "PUT",
        "/classes/<id:class_id>/chat/blocks",
        summary="Block or unblock another parent",
        body=BLOCK,
        tag="chat",
    )
    async def set_block(class_id: int, data: dict[str, Any]) -> Any:
        change = chat_moderation.block if data["blocked"] else chat_moderation.unblock
        await call(change, actor(), class_id, data["member"])
        return ok({"ok": True})

    @api.operation(
        "POST",
        "/classes/<id:class_id>/conversations",
        summary="Open the room, a private group or a family thread",
        body=NEW_CONVERSATION,
        tag="chat",
    )
    async def open_conversation(class_id: int, data: dict[str, Any]) -> Any:
        said = await call(
            conversations.open_conversation, actor(), class_id, data["kind"], data["message"],
            keys=data["keys"], child=data["child"], members=data["members"],
        )  # fmt: skip
        _announce(said)
        return ok({"id": said.conversation}, 201)

    @api.operation(
        "GET",
        f"/classes/<id:class_id>/conversations/{_CONVERSATION}",
        summary="A conversation's newest messages (?before=)",
        tag="chat",
        query={"before": BEFORE},
    )
    async def get_conversation(class_id: int, conversation_id: str, query: dict[str, Any]) -> Any:
        return ok(
            await call(chat_views.conversation, actor(), class_id, conversation_id, query["before"])
        )

    @api.operation(
        "POST",
        f"/classes/<id:class_id>/conversations/{_CONVERSATION}/messages",
        summary="Send a message",
        body=CHAT,
        tag="chat",
    )
    async def send_chat_message(class_id: int, conversation_id: str, data: dict[str, Any]) -> Any:
        said = await call(
            conversations.say, actor(), class_id, conversation_id, data["message"],
            keys=data["keys"],
        )  # fmt: skip
        _announce(said)
        return ok({"id": said.message, "away_until": said.away_until}, 201)

    @api.operation(
        "DELETE",
        f"/classes/<id:class_id>/conversations/{_CONVERSATION}/messages/{_MESSAGE}",
        summary="Delete my message (the teacher: a reported one)",
        tag="chat",
    )
    async def delete_chat_message(class_id: int, conversation_id: str, message_id: str) -> Any:
        said = await call(
            conversations.delete_message, actor(), class_id, conversation_id, message_id
        )
        _announce(said)
        return ok({"ok": True})

    @api.operation(
        "POST",
        f"/classes/<id:class_id>/conversations/{_CONVERSATION}/members",
        summary="Join the room, add someone, or leave",
        body=MEMBERS,
        tag="chat",
    )
    async def change_conversation_members(
        class_id: int, conversation_id: str, data: dict[str, Any]
    ) -> Any:
        said = await call(
            chat_membership.change_members, actor(), class_id, conversation_id, data["op"],
            data["member"], data["message"], keys=data["keys"],
        )  # fmt: skip
        _announce(said)
        return ok({"id": said.message}, 201)

    @api.operation(
        "POST",
        f"/classes/<id:class_id>/conversations/{_CONVERSATION}/messages/{_MESSAGE}/report",
        summary="Report a message to the teacher (its key sealed to them)",
        body=CHAT,
        tag="chat",
    )
    async def report_message(
        class_id: int, conversation_id: str, message_id: str, data: dict[str, Any]
    ) -> Any:
        said = await call(
            chat_moderation.report, actor(), class_id, conversation_id, message_id,
            data["message"], keys=data["keys"],
        )  # fmt: skip
        _announce(said)
        return ok({"id": said.message}, 201)

    @api.operation(
        "GET",
        "/classes/<id:class_id>/chat/reports",
        summary="Reported messages (teacher; ?handled=1 for the handled ones)",
        tag="chat",
        query={
            "handled": Param(
                "string",
                "1: the reports already handled; 0 (default): those to handle",
                enum=("0", "1"),
            )
        },
    )
    async def chat_reports(class_id: int, query: dict[str, Any]) -> Any:
        handled = query["handled"] == "1"
        return ok({"reports": await call(chat_moderation.reports, actor(), class_id, handled)})

    @api.operation(
        "POST",
        f"/classes/<id:class_id>/chat/reports/{_MESSAGE}/handled",
        summary="Mark a report as handled (teacher)",
        tag="chat",
    )
    async def handle_report(class_id: int, message_id: str) -> Any:
        await call(chat_moderation.handle_report, actor(), class_id, message_id)
        return ok({"ok": True})
