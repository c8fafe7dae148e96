"""Answers to actionable posts across schools (NP/1): a guardian of another node answers.

Home side (``forward_answer``, the ``mirror_answer`` event): our guardian
answered an event, sign-up, permission slip or poll of a class we mirror;
the answer is kept here and forwarded on our peer stream to the class's node
as ``Create`` of an ``Answer`` by the guardian's actor:

    {"id": <ours>, "type": "Answer", "version": 1, "attributedTo": actor,
     "inReplyTo": <the post there>, "child": <the child there>,
     "choice": [ids] | null, "signature"?, "at"?}

Class side (``handle``): the class's node applies it through
``actions.answer`` as the guardian's shadow account, with the same rules as
for a guardian of its own (membership, their child, deadline, capacity, the
slip's signature); for a sign-up it announces the post's Note again with the
places taken, which reaches every school of the class.  An answer that comes
too late or finds its slot full (a 409 here) is not an error of the home
node's: the class's node sends it the family's answer as it really is
(``answer_changed``), which replaces the guardian's there.

Reminders (``remind``, the ``action_reminder`` event): the teacher reminds the
families who have not answered; those on other nodes get a ``Remind`` of the
post with ``"about": "answers"`` on the class stream, and their node notifies
those whose child has no answer there (``remind_here``).
A refusal comes back as the activity's error result.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from typing import Any

from federation.activity import Activity
from federation.errors import ActivityError
from federation.runtime import class_stream, outbox
from federation.runtime.class_replies import guardian_of
from federation.runtime.outbox import peer_stream
from node.errors import CarnetError, Conflict
from node.services import action_mirrors, actions, groups
from node.services.context import ServiceContext
from node.storage import actions as action_store
from node.storage import directory as directory_store
from node.storage import feed as feed_store
from node.storage import groups as group_store
from node.storage import peers as peer_store
from node.storage.db import write_transaction

_POST = re.compile(r"/classes/([1-9][0-9]{0,15})/messages/([A-Za-z0-9_-]{1,22})")
_CHILD = re.compile(r"/classes/([1-9][0-9]{0,15})/children/([1-9][0-9]{0,15})")

Handler = Callable[[ServiceContext, int, Activity], None]


# -- home side: forwarding our guardian's answer ----------------------------------------------


def forward_answer(ctx: ServiceContext, payload: dict[str, Any]) -> None:
    row = feed_store.Message.get_or_none(feed_store.Message.id == payload["message_id"])
    group = group_store.select_group(row.group_id) if row else None
    school_class = directory_store.select_class(group.school_class_id) if group else None
    peer = peer_store.select_peer(school_class.peer_id) if school_class and school_class.peer_id else None  # fmt: skip
    child = directory_store.select_child(payload["child_id"])
    if row is None or school_class is None or peer is None or child is None or not child.remote_url:
        return  # the class or the child left this node since: nothing to forward
    class_url = str(school_class.remote_url)
    answer = action_store.select_answer(row.id, child.id)
    account = answer.account_id if answer else payload.get("account_id")
    if account is None:
        return
    actor = f"{ctx.config.origin}/users/{account}"
    obj: dict[str, Any] = {
        "id": f"{ctx.config.origin}/np/answers/{secrets.token_urlsafe(12)}", "type": "Answer",
        "version": 1, "attributedTo": actor,
        "inReplyTo": f"{class_url}/messages/{row.public_id}",
        "child": child.remote_url, "choice": answer.choice_ids() if answer else None,
    }  # fmt: skip
    if answer is not None and answer.signature:
        obj["signature"], obj["at"] = answer.signature, answer.signed_at
    outbox.publish(
        ctx, stream=peer_stream(ctx, peer.origin), kind="peer", type="Create", actor=actor,
        audience=actor, object=obj, recipients={peer.origin: [class_url]},
    )  # fmt: skip


def remind(ctx: ServiceContext, payload: dict[str, Any]) -> None:
    """Class side: the teacher reminded the families who have not answered; those living on
    other nodes are reminded by their node (a ``Remind`` of the post, ``about`` its answers,
    ``to`` them, on the class stream)."""
    row = feed_store.Message.get_or_none(feed_store.Message.id == payload["message_id"])
    group = group_store.select_group(row.group_id) if row is not None else None
    if row is None or group is None:
        return
    cu = class_stream.class_url(ctx, payload["class_id"])
    members = class_stream._Members(group)
    accounts = set(payload["accounts"])
    chosen = {
        m for m, account in groups.accounts_of_members(ctx, members.all).items()
        if account in accounts
    }  # fmt: skip
    to = members.recipients(chosen)
    if to:
        outbox.publish(
            ctx, stream=cu, kind="class", type="Remind", actor=cu, audience=cu + "#members",
            object=class_stream.message_url(cu, row.public_id), recipients=to,
            extra={"about": "answers"},
        )  # fmt: skip


def answer_changed(ctx: ServiceContext, payload: dict[str, Any]) -> None:
    """Class side: a child's answer changed here; the nodes of the child's guardians who
    live elsewhere get it (``Create`` of an ``Answer`` on the class stream, ``to`` them
    only: no other school learns what this family answered)."""
    row = feed_store.Message.get_or_none(feed_store.Message.id == payload["message_id"])
    group = group_store.select_group(row.group_id) if row is not None else None
    if row is None or group is None:
        return
    members = class_stream._Members(group)
    to = members.recipients(members.children_of(payload["child_id"]))
    if not to:
        return
    cu = class_stream.class_url(ctx, group.school_class_id)
    answer = action_store.select_answer(row.id, payload["child_id"])
    obj: dict[str, Any] = {
        "id": f"{cu}/answers/{secrets.token_urlsafe(12)}", "type": "Answer", "version": 1,
        "attributedTo": cu, "inReplyTo": class_stream.message_url(cu, row.public_id),
        "child": class_stream.child_url(ctx, group.school_class_id, payload["child_id"]),
        "choice": answer.choice_ids() if answer else None,
    }  # fmt: skip
    if answer is not None:
        obj["by"] = answer.member
        obj["byName"] = answer.account.display_name if answer.account else ""
        obj["answered"] = answer.answered_at.replace(microsecond=0).isoformat() + "Z"
    outbox.publish(
        ctx, stream=cu, kind="class", type="Create", actor=cu, audience=cu + "#members",
        object=obj, recipients=to,
    )  # fmt: skip


TRANSLATORS = {
    "mirror_answer": forward_answer,
    "action_reminder": remind,
    "answer_changed": answer_changed,
}


# -- class side: applying a guardian of another node's answer ---------------------------------


def _ours(ctx: ServiceContext, url: Any, pattern: re.Pattern[str], what: str) -> tuple[int, str]:
    prefix = ctx.config.origin
    match = (
        pattern.fullmatch(url[len(prefix) :])
        if isinstance(url, str) and url.startswith(prefix)
        else None
    )
    if match is None:
        raise ActivityError(f"{url!r} is not {what} of a class of this node")
    return int(match[1]), match[2]


def apply(ctx: ServiceContext, peer_id: int, activity: Activity) -> None:
    actor = guardian_of(ctx, peer_id, activity.actor)
    obj = activity.object
    assert isinstance(obj, dict)
    class_id, post_id = _ours(ctx, obj.get("inReplyTo"), _POST, "a post")
    child_class, child_id = _ours(ctx, obj.get("child"), _CHILD, "a child")
    if child_class != class_id:
        raise ActivityError("the child is not of the post's class")
    try:
        actions.answer(
            ctx, actor, class_id, post_id, int(child_id), obj.get("choice"),
            signature=obj.get("signature"), at=obj.get("at"), relayed=True,
        )  # fmt: skip
    except Conflict:
        # too late, or the slot filled up meanwhile: the home node already shows the
        # guardian's answer, so it gets the family's answer as it really is here instead
        _tell_the_family(ctx, class_id, post_id, int(child_id))
    except CarnetError as refused:
        raise ActivityError(str(refused)) from refused


def _tell_the_family(ctx: ServiceContext, class_id: int, post_id: str, child_id: int) -> None:
    group = group_store.select_group_of_class(class_id)
    row = feed_store.select_message(group.id, post_id) if group else None
    if row is not None:
        with write_transaction():
            ctx.publish("answer_changed", {"message_id": row.id, "child_id": child_id})


def _on_class_stream(activity: Activity) -> bool:
    return activity.stream.split("://", 1)[1].partition("/")[2].startswith("classes/")


def remind_here(ctx: ServiceContext, peer_id: int, activity: Activity) -> None:
    """Home side: the class's teacher reminded our guardians who have not answered."""
    if not _on_class_stream(activity):
        raise ActivityError("a reminder comes on the class's stream")
    action_mirrors.remind(ctx, peer_id, activity.stream, activity.object, activity.to)


def handlers(current: dict[str, Handler]) -> dict[str, Handler]:
    """``Create`` and ``Remind`` as wired so far, with ``Answer`` objects and reminders
    ``about`` answers handled here (the smallest hook: everything else goes on to the
    handler that was there)."""
    create_before, remind_before = current["Create"], current["Remind"]

    def create(ctx: ServiceContext, peer_id: int, activity: Activity) -> None:
        obj = activity.object
        if not isinstance(obj, dict) or obj.get("type") != "Answer":
            create_before(ctx, peer_id, activity)
        elif _on_class_stream(activity):  # home side: our family's answer, as the class has it
            try:
                action_mirrors.copy_answer(ctx, peer_id, activity.stream, dict(obj))
            except CarnetError as refused:
                raise ActivityError(str(refused)) from refused
        else:  # class side: a guardian of another node answers
            apply(ctx, peer_id, activity)

    def remind_any(ctx: ServiceContext, peer_id: int, activity: Activity) -> None:
        if activity.raw.get("about") == "answers":
            remind_here(ctx, peer_id, activity)
        else:
            remind_before(ctx, peer_id, activity)

    return {"Create": create, "Remind": remind_any}
