"""The encrypted class feed: group keys, posts, replies, read receipts, attachments."""

from __future__ import annotations

import re
from typing import Any

from quart import Response, after_this_request, current_app, request
from quart.typing import ResponseTypes

from federation.runtime import media
from node.api import Api, actor, call, ok
from node.api.schema import BEFORE, Body, Param, array, boolean, id_param, integer, obj, string
from node.errors import N_, CarnetError, Invalid
from node.services import blobs, feed, groups, posts
from node.urlids import MAX_ID

_MESSAGE_ID = "<pubid:message_id>"
_RANGE = re.compile(r"bytes=([0-9]{1,15})-([0-9]{0,15})")

GROUP_WRITE = Body(
    "GroupEntries",
    {
        "entries": array(
            "signed log entries continuing the head (docs/protocol/e2e-groups.md §2)", max_items=200
        ),
        "envelopes": array("epoch keys sealed to members (§3)"),
    },
)
ENVELOPES = Body("Envelopes", {"envelopes": array("epoch keys sealed to members (§3)")})
NEW_POST = Body(
    "NewPost",
    {
        "message": obj("signed, encrypted message (§5)"),
        "keys": array("recipient mode: the message key sealed to each recipient", required=False),
        "children": array(
            "ids of the children whose families the post is for; none: the class",
            required=False,
            max_items=100,
        ),
        "blobs": array("ids of uploaded attachments", required=False, max_items=60),
        "comments_enabled": boolean(required=False),
        "priority": string(8, required=False, description="info (default), action or urgent"),
        "action": obj(
            "event, sign-up, slip or poll: type, deadline, times, choice ids and capacities (labels are encrypted)",
            required=False,
        ),
    },
)
EDIT_POST = Body(
    "EditPost",
    {
        "message": obj("the new version, same id, version + 1"),
        "keys": array(required=False),
        "blobs": array("attachments kept or added", required=False, max_items=60),
        "priority": string(8, required=False, description="info, action or urgent; none: kept"),
        "action": obj("a compatible change of the post's action; none: kept", required=False),
    },
)
REPLY = Body("Reply", {"message": obj("a comment or reaction (§5)"), "keys": array(required=False)})
TOGGLE = Body("Toggle", {"enabled": boolean()})
NEW_BLOB = Body("NewBlob", {"size": integer(16, 2**53 - 1, description="ciphertext size in bytes")})
BLOB_DONE = Body(
    "BlobDone", {"sha256": string(43, description="SHA-256 of the ciphertext, base64url")}
)


LIMIT = Param(
    "integer",
    f"How many posts in this page (default {feed.PAGE_SIZE})",
    minimum=1,
    maximum=feed.MAX_PAGE,
    message=N_("limit must be between 1 and 50."),
)
OFFSET = Param(
    "integer",
    "Where this part starts in the ciphertext: the bytes the node has so far",
    required=True,
    minimum=0,
    maximum=MAX_ID,
    message=N_("The offset must be a whole number."),
)


class RangeNotSatisfiable(CarnetError):
    """A ``Range`` the file cannot serve (RFC 9110 §15.5.17): answered with Content-Range."""

    status = 416
    code = "range_not_satisfiable"


def _unsatisfiable(size: int) -> RangeNotSatisfiable:
    # the error handler makes the JSON body; the current length goes in a header (§14.4)
    @after_this_request
    async def content_range(response: ResponseTypes) -> ResponseTypes:
        response.headers["Content-Range"] = f"bytes */{size}"
        return response

    return RangeNotSatisfiable(
        N_(
            "This part of the file does not exist: the file has %(size)s bytes. "
            "Download it again from the start."
        ),
        field="Range",
        size=str(size),
    )


def register(api: Api) -> None:
    @api.operation(
        "GET",
        "/classes/<id:class_id>/group",
        summary="The class's signed log and my sealed keys",
        tag="feed",
    )
    async def get_group(class_id: int) -> Any:
        return ok(await call(groups.group_view, actor(), class_id))

    @api.operation(
        "POST",
        "/classes/<id:class_id>/group",
        summary="Set up the class's keys (teacher)",
        body=GROUP_WRITE,
        tag="feed",
    )
    async def create_group(class_id: int, data: dict[str, Any]) -> Any:
        group = await call(
            groups.create_group, actor(), class_id, data["entries"], data["envelopes"]
        )
        return ok({"group": group}, 201)

    @api.operation(
        "POST",
        "/classes/<id:class_id>/group/entries",
        summary="Approve, remove, rotate (teacher)",
        body=GROUP_WRITE,
        tag="feed",
    )
    async def append_entries(class_id: int, data: dict[str, Any]) -> Any:
        head = await call(
            groups.append_entries, actor(), class_id, data["entries"], data["envelopes"]
        )
        return ok({"head_seq": head}, 201)

    @api.operation(
        "POST",
        "/classes/<id:class_id>/group/envelopes",
        summary="Re-share class keys (teacher)",
        body=ENVELOPES,
        tag="feed",
    )
    async def add_envelopes(class_id: int, data: dict[str, Any]) -> Any:
        await call(groups.add_envelopes, actor(), class_id, data["envelopes"])
        return ok({"ok": True}, 201)

    @api.operation(
        "GET",
        "/feed",
        summary="My timeline across my children's classes (?before=&limit=&child=)",
        tag="feed",
        query={
            "before": BEFORE,
            "limit": LIMIT,
            "child": id_param("Only this child's posts: their class's and those about them"),
        },
    )
    async def my_feed(query: dict[str, Any]) -> Any:
        return ok(
            await call(
                feed.my_feed,
                actor(),
                before=query["before"],
                limit=query["limit"],
                child_id=query["child"],
            )
        )

    @api.operation(
        "GET",
        "/classes/<id:class_id>/posts",
        summary="A class's posts (?before=&limit=)",
        tag="feed",
        query={"before": BEFORE, "limit": LIMIT},
    )
    async def class_posts(class_id: int, query: dict[str, Any]) -> Any:
        return ok(
            await call(
                feed.class_feed, actor(), class_id, before=query["before"], limit=query["limit"]
            )
        )

    @api.operation(
        "POST",
        "/classes/<id:class_id>/posts",
        summary="Post to the class (teacher)",
        body=NEW_POST,
        tag="feed",
    )
    async def create_post(class_id: int, data: dict[str, Any]) -> Any:
        posted = await call(
            posts.create_post, actor(), class_id, data["message"], keys=data["keys"], children=data["children"],
            blobs=data["blobs"], comments_enabled=True if data["comments_enabled"] is None else data["comments_enabled"],
            priority="info" if data["priority"] is None else data["priority"], action=data["action"],
        )  # fmt: skip
        _announce(posted)
        return ok({"id": posted.message}, 201)

    @api.operation(
        "PUT",
        f"/classes/<id:class_id>/posts/{_MESSAGE_ID}",
        summary="Edit my post",
        body=EDIT_POST,
        tag="feed",
    )
    async def edit_post(class_id: int, message_id: str, data: dict[str, Any]) -> Any:
        posted = await call(
            posts.edit_post,
            actor(),
            class_id,
            message_id,
            data["message"],
            keys=data["keys"],
            blobs=data["blobs"],
            priority=data["priority"],
            action=data["action"],
        )
        _announce(posted)
        return ok({"id": posted.message})

    @api.operation(
        "DELETE",
        f"/classes/<id:class_id>/messages/{_MESSAGE_ID}",
        summary="Delete a post or comment",
        tag="feed",
    )
    async def delete_message(class_id: int, message_id: str) -> Any:
        _announce(await call(posts.delete_message, actor(), class_id, message_id))
        return ok({"ok": True})

    @api.operation(
        "POST",
        f"/classes/<id:class_id>/posts/{_MESSAGE_ID}/replies",
        summary="Comment or react",
        body=REPLY,
        tag="feed",
    )
    async def reply(class_id: int, message_id: str, data: dict[str, Any]) -> Any:
        posted = await call(
            posts.add_reply, actor(), class_id, message_id, data["message"], keys=data["keys"]
        )
        _announce(posted)
        return ok({"id": posted.message}, 201)

    @api.operation(
        "PUT",
        f"/classes/<id:class_id>/posts/{_MESSAGE_ID}/comments",
        summary="Comments on or off for a post (teacher)",
        body=TOGGLE,
        tag="feed",
    )
    async def post_comments(class_id: int, message_id: str, data: dict[str, Any]) -> Any:
        await call(posts.set_comments, actor(), class_id, data["enabled"], message_id)
        return ok({"enabled": data["enabled"]})

    @api.operation(
        "PUT",
        "/classes/<id:class_id>/comments",
        summary="Comments on or off for the class (teacher)",
        body=TOGGLE,
        tag="feed",
    )
    async def class_comments(class_id: int, data: dict[str, Any]) -> Any:
        await call(posts.set_comments, actor(), class_id, data["enabled"])
        return ok({"enabled": data["enabled"]})

    @api.operation(
        "POST",
        f"/classes/<id:class_id>/posts/{_MESSAGE_ID}/read",
        summary="I have read this post",
        tag="feed",
    )
    async def mark_read(class_id: int, message_id: str) -> Any:
        await call(feed.mark_read, actor(), class_id, message_id)
        return ok({"ok": True})

    @api.operation(
        "GET",
        f"/classes/<id:class_id>/posts/{_MESSAGE_ID}/receipts",
        summary="Who has read my post (teacher)",
        tag="feed",
    )
    async def receipts(class_id: int, message_id: str) -> Any:
        return ok(await call(feed.receipts, actor(), class_id, message_id))

    @api.operation(
        "POST",
        f"/classes/<id:class_id>/posts/{_MESSAGE_ID}/remind",
        summary="Remind those who have not read (teacher)",
        tag="feed",
    )
    async def remind(class_id: int, message_id: str) -> Any:
        unread = await call(feed.remind_unread, actor(), class_id, message_id)
        return ok({"reminded": len(unread)})

    @api.operation(
        "POST",
        "/classes/<id:class_id>/blobs",
        summary="Start an encrypted upload",
        body=NEW_BLOB,
        tag="files",
    )
    async def start_upload(class_id: int, data: dict[str, Any]) -> Any:
        return ok(await call(blobs.start_upload, actor(), class_id, data["size"]), 201)

    @api.operation(
        "PUT",
        "/blobs/<pubid:blob_id>",
        summary="Send the next part (?offset=, application/octet-stream)",
        raw_body="application/octet-stream",
        tag="files",
        query={"offset": OFFSET},
    )
    async def upload_part(blob_id: str, query: dict[str, Any]) -> Any:
        if request.mimetype != "application/octet-stream":
            raise Invalid(N_("Send the part as application/octet-stream."))
        data = await request.get_data(as_text=False)
        assert isinstance(data, bytes)
        return ok(await call(blobs.append_part, actor(), blob_id, query["offset"], data))

    @api.operation(
        "POST",
        "/blobs/<pubid:blob_id>/complete",
        summary="Finish an upload",
        body=BLOB_DONE,
        tag="files",
    )
    async def complete_upload(blob_id: str, data: dict[str, Any]) -> Any:
        return ok(await call(blobs.complete_upload, actor(), blob_id, data["sha256"]))

    @api.operation(
        "GET",
        "/blobs/<pubid:blob_id>",
        summary="Download ciphertext (supports Range)",
        tag="files",
        produces="application/octet-stream",
        ranges=True,
    )
    async def download(blob_id: str) -> Any:
        blob = await call(blobs.readable_blob, actor(), blob_id)
        if blob.remote:
            # a class of another school: its node sends the bytes on the first read
            await media.fetch(current_app.extensions["carnet_federation"], blob.id)
        start, end, status = 0, blob.size, 200
        header = request.headers.get("Range")
        if header:
            match = _RANGE.fullmatch(header)
            if match is None or int(match[1]) >= blob.size:
                raise _unsatisfiable(blob.size)
            start = int(match[1])
            end = min(blob.size, int(match[2]) + 1) if match[2] else blob.size
            if end <= start:
                raise _unsatisfiable(blob.size)
            status = 206

        storage, context = current_app.config["CARNET_STORAGE"], current_app.config["CARNET_CTX"]

        async def body() -> Any:
            # in 1 MiB reads, so a 200 MB video never sits in memory whole; the
            # generator runs after the handler returns, outside the app context
            for offset in range(start, end, 1 << 20):
                yield await storage.run(
                    blobs.read_range, context, blob, offset, min(end, offset + (1 << 20))
                )

        response = Response(body(), status, mimetype="application/octet-stream")
        response.headers["Content-Length"] = str(end - start)
        response.headers["Accept-Ranges"] = "bytes"
        response.headers["Cache-Control"] = "private, max-age=31536000, immutable"
        if status == 206:
            response.headers["Content-Range"] = f"bytes {start}-{end - 1}/{blob.size}"
        return response


def _announce(posted: posts.Posted) -> None:
    """Tell the open pages of every recipient (server-sent events); ids only, never content."""
    publish = current_app.extensions.get("carnet_live_publish")
    if publish is not None:
        publish(
            posted.recipients,
            {"type": posted.kind, "class_id": posted.class_id, "message": posted.message},
        )
