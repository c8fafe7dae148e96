"""Replies and reads of guardians of other schools, on a class of ours (NP/1, class side).

A guardian's home node forwards, on its peer stream to us, what its guardian
does on one of our classes: ``Create`` of a ``Note`` (a comment, reaction or
share, ``inReplyTo`` our post), ``Delete`` of one (its Tombstone's
``context`` names our copy) and ``Read`` of a post.  Each is done here by
the guardian's shadow account through the same services, with the same
rules, as for a guardian of ours (membership, comments switched off,
authorship, the author's signature); the services then announce the result
on the class stream to every school of the class.
"""

from __future__ import annotations

import re
from typing import Any

from federation.activity import Activity
from federation.errors import ActivityError
from federation.runtime import chat_stream
from node.errors import CarnetError, NotFound
from node.services import feed, posts, remote_join
from node.services.context import Actor, ServiceContext
from node.storage import accounts as account_store
from node.storage import directory as directory_store
from node.storage import peers as peer_store

_MESSAGE = re.compile(r"/classes/([1-9][0-9]{0,15})/messages/([A-Za-z0-9_-]{1,22})")


def _message(ctx: ServiceContext, url: Any) -> tuple[int, str]:
    """(class id, message public id) of one of our messages' ids."""
    prefix = ctx.config.origin
    match = (
        _MESSAGE.fullmatch(url[len(prefix) :])
        if isinstance(url, str) and url.startswith(prefix)
        else None
    )
    if match is None:
        raise ActivityError(f"{url!r} is not a message of a class of this node")
    return int(match[1]), match[2]


def guardian_of(ctx: ServiceContext, peer_id: int, actor_id: str) -> Actor:
    peer = peer_store.select_peer(peer_id)
    assert peer is not None
    try:
        member = remote_join.member_of_actor(peer.origin, actor_id)
    except CarnetError as refused:
        raise ActivityError(str(refused)) from refused
    account = account_store.select_account_by_login(directory_store.REMOTE_LOGIN_PREFIX + member)
    if account is None or account.status != "remote" or account.home_peer_id != peer_id:
        raise ActivityError(f"{actor_id} is not a guardian in a class of this node")
    return Actor(account.id, "guardian", account.display_name)


def handle(ctx: ServiceContext, peer_id: int, activity: Activity) -> None:
    actor = guardian_of(ctx, peer_id, activity.actor)
    obj = activity.object
    try:
        if activity.type == "Read":
            feed.mark_read(ctx, actor, *_message(ctx, activity.object))
        elif activity.type == "Create" and isinstance(obj, dict) and obj.get("type") == "Note":
            if obj.get("kind") in chat_stream.FORWARDED:  # conversations, absence notes
                chat_stream.apply_forwarded(ctx, actor, obj)
                return
            class_id, post_id = _message(ctx, obj.get("inReplyTo"))
            keys = obj.get("keys") or None
            posts.add_reply(ctx, actor, class_id, post_id, obj.get("message"), keys=keys)
        elif activity.type == "Delete" and isinstance(obj, dict):
            try:
                class_id, public_id = _message(ctx, obj.get("context"))
                if not chat_stream.delete_forwarded(ctx, actor, class_id, public_id):
                    posts.delete_message(ctx, actor, class_id, public_id)
            except NotFound:
                pass  # deleted already (by the teacher, or this is sent again)
        else:
            raise ActivityError(f"this node does not handle {activity.type} of this object here")
    except CarnetError as refused:
        raise ActivityError(str(refused)) from refused
