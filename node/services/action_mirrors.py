"""Actionable posts between schools: what a post's Note says of its action, and its copy
on a guardian's home node.

Who may see what: another school learns an action's structure (as the node
of the class knows it) and, for sign-ups, how many places each slot has
taken — the numbers every family of the class sees.  It never learns which
family of another school answered what: each home node keeps its own
families' answers, and forwards them to the class's node, which decides.

A child's id differs between the class's node and a guardian's home node
(where the class is a mirror); a permission slip is signed with the class
node's id (``actions.signing_child``), the one the class's node verifies.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from typing import Any

from node.errors import N_, Invalid
from node.services import actions, groups, notifications
from node.services.context import ServiceContext
from node.storage import actions as store
from node.storage import directory as directory_store
from node.storage import feed as feed_store
from node.storage import groups as group_store
from node.storage import mirrors as mirror_store


def note_actions(message_ids: list[int]) -> dict[int, dict[str, Any]]:
    """message id → the ``action`` member of its Note (two queries for any number)."""
    found = store.actions_of(message_ids)
    signups = [m for m, a in found.items() if a.type == "signup"]
    taken: dict[int, dict[str, int]] = {}
    for row in store.answers_of(signups):
        counts = taken.setdefault(row.message_id, {})
        for cid in row.choice_ids():
            counts[cid] = counts.get(cid, 0) + 1
    out = {}
    for message_id, action in found.items():
        out[message_id] = {
            "type": action.type,
            "deadline": _iso(action.deadline),
            "starts_at": _iso(action.starts_at),
            "ends_at": _iso(action.ends_at),
            "all_day": action.all_day,
            "multiple": action.multiple,
            "choices": [
                {**c, "taken": taken.get(message_id, {}).get(c["id"], 0)}
                if action.type == "signup"
                else c
                for c in action.choice_list()
            ],
        }
    return out


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat() + "Z"


def apply_remote(row: Any, raw: Any) -> None:
    """On a guardian's home node: the action of a post of another school's class.

    The structure is checked like a local one; the class node's slot counts
    are kept with the choices (``taken``), since this node holds only its
    own families' answers.  A Note without an action leaves none here.
    """
    if not isinstance(raw, dict):
        store.PostAction.delete().where(store.PostAction.message == row.id).execute()
        return
    choices = raw.get("choices") or []
    taken = {
        c.get("id"): c.get("taken")
        for c in choices
        if isinstance(c, dict) and type(c.get("taken")) is int and c["taken"] >= 0
    }
    shape = {k: v for k, v in raw.items() if k != "choices"}
    if choices:
        shape["choices"] = [
            {k: v for k, v in c.items() if k != "taken"} for c in choices if isinstance(c, dict)
        ]
    fields = actions.parse(shape)
    if taken:
        fields["choices"] = json.dumps(
            [{**c, "taken": taken.get(c["id"], 0)} for c in json.loads(fields["choices"])]
        )
    store.save_action(row, fields)


def copy_answer(ctx: ServiceContext, peer_id: int, class_url: str, obj: dict[str, Any]) -> None:
    """Our family's answer as the class's node holds it (given there, or by a guardian of
    another node, or ours): kept here so our guardians see their family's answer."""
    mirror = mirror_store.select_mirror(class_url)
    if mirror is None or mirror.peer_id != peer_id:
        raise Invalid(N_("No guardian of this school is in this class."))
    group = group_store.select_group_of_class(mirror.id)
    prefix = class_url + "/messages/"
    url = obj.get("inReplyTo")
    public_id = url[len(prefix) :] if isinstance(url, str) and url.startswith(prefix) else ""
    row = feed_store.select_message(group.id, public_id) if group and public_id else None
    child_url = obj.get("child")
    child = mirror_store.select_child_by_remote(child_url) if isinstance(child_url, str) else None
    if row is None or child is None or child.school_class_id != mirror.id:
        return  # a post deleted since, or a child no longer ours: nothing to keep
    action = store.select_action(row.id, lock=True)
    choice = obj.get("choice")
    if action is None:
        return
    if choice is None:
        store.ActionAnswer.delete().where(
            (store.ActionAnswer.message == row.id) & (store.ActionAnswer.child == child.id)
        ).execute()
        return
    if not isinstance(choice, list) or not all(isinstance(c, str) and len(c) <= 8 for c in choice):
        raise Invalid(N_("Choose one of the post's answers."), field="choice")
    by = obj.get("by")
    member = by[:128] if isinstance(by, str) else ""
    account = groups.accounts_of_members(ctx, [member]).get(member) if member else None
    when = obj.get("answered")
    try:
        answered_at = (
            dt.datetime.strptime(when, "%Y-%m-%dT%H:%M:%SZ") if isinstance(when, str) else ctx.now()
        )
    except ValueError:
        answered_at = ctx.now()
    store.save_answer(row.id, child.id, {
        "account": account, "member": member, "choice": json.dumps(sorted(choice)),
        "answered_at": answered_at, "signature": None, "post_version": None, "signed_at": None,
    })  # fmt: skip


def remind(
    ctx: ServiceContext, peer_id: int, class_url: str, url: Any, to: Iterable[str]
) -> list[int]:
    """The teacher reminded the families who have not answered a post: ``to`` names ours
    (``{origin}/users/{id}``); those still linked to a child the post asks, whose answer
    this node has not got, are notified again.  Returns them."""
    mirror = mirror_store.select_mirror(class_url)
    if mirror is None or mirror.peer_id != peer_id:
        return []
    group = group_store.select_group_of_class(mirror.id)
    prefix = class_url + "/messages/"
    public_id = url[len(prefix) :] if isinstance(url, str) and url.startswith(prefix) else ""
    row = feed_store.select_message(group.id, public_id) if group and public_id else None
    if row is None or row.deleted_at is not None or store.select_action(row.id) is None:
        return []  # deleted since, or not here yet: nothing to remind of
    me = f"{ctx.config.origin}/users/"
    # ASCII digits of a sane length: int() refuses "²" and 5,000 digits (a peer's addresses)
    named = {
        int(tail)
        for a in to
        if a.startswith(me)
        and (tail := a[len(me) :]).isascii()
        and tail.isdigit()
        and len(tail) < 17
    }
    addressed = feed_store.children_of_message(row.id)
    answered = {r.child_id for r in store.answers_of([row.id])}
    waiting = {
        link.account_id
        for link in directory_store.guardian_links_of_class(mirror.id)
        if (not addressed or link.child_id in addressed) and link.child_id not in answered
    }
    due = sorted(named & waiting)
    notifications.enqueue(
        ctx, kind="reminder", account_ids=due, class_id=mirror.id, message_id=row.id
    )
    return due


def answer_refused(ctx: ServiceContext, peer_id: int, obj: dict[str, Any]) -> None:
    """The class's node refused our guardian's answer (removed from the class since, say):
    the copy kept here is the family's answer nowhere else, so it goes."""
    url = obj.get("inReplyTo")
    if not isinstance(url, str) or "/messages/" not in url:
        return
    class_url, public_id = url.rsplit("/messages/", 1)
    mirror = mirror_store.select_mirror(class_url)
    if mirror is None or mirror.peer_id != peer_id:
        return
    group = group_store.select_group_of_class(mirror.id)
    row = feed_store.select_message(group.id, public_id) if group else None
    child_url = obj.get("child")
    child = mirror_store.select_child_by_remote(child_url) if isinstance(child_url, str) else None
    if row is None or child is None or child.school_class_id != mirror.id:
        return
    store.ActionAnswer.delete().where(
        (store.ActionAnswer.message == row.id) & (store.ActionAnswer.child == child.id)
    ).execute()
