"""Actionable posts as people see them: on a feed page, the teacher's per-family status, reminders.

Who may see what:
- a reader of a feed page sees each action's structure, whether it is still
  open, the places taken per sign-up slot, and (a guardian) their own
  children's answers or (the teacher) the counts per choice;
- only the class's teacher sees every family's answer, who gave it and when
  (with a permission slip's signature, which their browser checks again), and
  reminds the guardians of children without an answer, at most once an hour.
A feed page costs two queries for all its actions, not one per post.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from node.errors import N_, NotFound, PermissionDenied, RateLimited
from node.services import actions, groups, notifications
from node.services.context import Actor, ServiceContext
from node.services.posts import can_see
from node.storage import accounts as account_store
from node.storage import actions as store
from node.storage import directory as directory_store
from node.storage import feed as feed_store
from node.storage import groups as group_store
from node.storage.db import write_transaction

REMIND_EVERY = dt.timedelta(hours=1)


def page_views(
    ctx: ServiceContext,
    posts: list[Any],
    accesses: dict[int, groups.Access],
    children_of: dict[int, list[int]],
    names: dict[int, dict[int, str]],
) -> dict[int, dict[str, Any]]:
    """post id → its action as the reader sees it, for the posts of a page that have one.

    ``accesses`` by group id; ``names`` by group id: the children's first names
    the page loaded (all the class's for its teacher).
    """
    found = store.actions_of([p.id for p in posts])
    answers: dict[int, list[Any]] = {}
    for row in store.answers_of(sorted(found)):
        answers.setdefault(row.message_id, []).append(row)
    mirrored = [  # a slip on another school's class signs that school's child ids
        c for a in accesses.values() if a.school_class.peer_id is not None for c in a.my_children
    ]
    signing = store.remote_child_ids(mirrored) if mirrored else {}
    views = {}
    for post in posts:
        if post.id not in found:
            continue
        a, addressed = accesses[post.group_id], children_of.get(post.id, [])
        group_names = names.get(post.group_id, {})
        total = len(addressed) if addressed else len(group_names)
        views[post.id] = actions.view(
            ctx, a, found[post.id], addressed, answers.get(post.id, []), group_names, total,
            signing=signing,
        )  # fmt: skip
    return views


@dataclass(frozen=True)
class FamilyAnswer:
    child_id: int
    child: str
    #: the approved guardians of the child (who could answer)
    guardians: list[str]
    choice: list[str] | None
    by: str | None
    #: the answering guardian's member id: the browser finds their key in the verified log
    by_member: str | None
    answered_at: dt.datetime | None
    #: permission slips: the guardian's signature and what it covers
    signature: str | None
    post_version: int | None
    signed_at: int | None


@dataclass(frozen=True)
class ActionStatus:
    post: str
    group: str
    type: str
    answered: int
    total: int
    counts: dict[str, int]
    families: list[FamilyAnswer]
    reminded_at: dt.datetime | None


def _teacher_post(
    ctx: ServiceContext, actor: Actor, class_id: int, post_id: str, lock: bool = False
) -> tuple[groups.Access, Any, Any]:
    a = groups.access(ctx, actor, class_id)
    post = feed_store.select_message(a.group.id, post_id) if a.group else None
    if post is None or post.deleted_at is not None or post.kind != "post" or not can_see(a, post):
        raise NotFound(N_("No such post."))
    if not a.is_teacher:
        raise PermissionDenied(N_("Only the class's teacher sees every family's answer."))
    action = store.select_action(post.id, lock=lock)
    if action is None:
        raise NotFound(N_("This post asks for no answer."))
    return a, post, action


def _concerned(a: groups.Access, post: Any) -> list[Any]:
    """The children a post asks: those it is addressed to, or every child of the class."""
    addressed = feed_store.children_of_message(post.id)
    kids = sorted(a.school_class.children, key=lambda c: (c.first_name, c.last_name, c.id))
    return [c for c in kids if not addressed or c.id in addressed]


def status(ctx: ServiceContext, actor: Actor, class_id: int, post_id: str) -> ActionStatus:
    """Per child: answered or not, what, by whom, when (the CSV export's rows, with ids)."""
    a, post, action = _teacher_post(ctx, actor, class_id, post_id)
    answers = {r.child_id: r for r in store.answers_of([post.id])}
    links = directory_store.guardian_links_of_class(class_id)
    families = []
    for child in _concerned(a, post):
        row = answers.get(child.id)
        families.append(FamilyAnswer(
            child.id, f"{child.first_name} {child.last_name}",
            [link.display_name for link in links if link.child_id == child.id],
            row.choice_ids() if row else None,
            row.account.display_name if row and row.account else None,
            row.member if row else None, row.answered_at if row else None,
            row.signature if row else None, row.post_version if row else None,
            row.signed_at if row else None,
        ))  # fmt: skip
    counts: dict[str, int] = {}
    for row in answers.values():
        for cid in row.choice_ids():
            counts[cid] = counts.get(cid, 0) + 1
    answered = sum(1 for f in families if f.choice is not None)
    return ActionStatus(
        post.public_id, a.group.public_id, action.type, answered, len(families), counts,
        families, action.reminded_at,
    )  # fmt: skip


def answer_watchers(ctx: ServiceContext, actor: Actor, class_id: int, child_id: int) -> list[int]:
    """Whose open pages show a new answer at once: the class's teacher (a class of this
    node) and the child's other guardians here.  Ids only go out (server-sent events)."""
    school_class = directory_store.select_class(class_id)
    if school_class is None:
        return []
    found = {school_class.teacher_id} if school_class.peer_id is None else set()
    for link in directory_store.guardian_links_of_class(class_id, [child_id]):
        if link.remote_member is None:
            found.add(link.account_id)
    return sorted(found - {actor.account_id})


def remind(ctx: ServiceContext, actor: Actor, class_id: int, post_id: str) -> list[int]:
    """Notify again the guardians of every child without an answer; returns them."""
    with write_transaction():
        a, post, action = _teacher_post(ctx, actor, class_id, post_id, lock=True)
        now = ctx.now()
        if action.reminded_at and now - action.reminded_at < REMIND_EVERY:
            raise RateLimited(N_("A reminder was sent less than an hour ago."), retry_after=3600)
        answered = {r.child_id for r in store.answers_of([post.id])}
        waiting = {c.id for c in _concerned(a, post)} - answered
        links = directory_store.guardian_links_of_class(class_id, sorted(waiting))
        active = group_store.active_guardian_accounts(a.group.id)
        to = sorted({link.account_id for link in links} & active)
        if not to:  # nothing sent: the hourly limit does not start
            return []
        notifications.enqueue(
            ctx, kind="reminder", account_ids=to, class_id=class_id, message_id=post.id
        )
        elsewhere = account_store.remote_accounts(to)
        if elsewhere:  # guardians living on other nodes: their node reminds them
            ctx.publish("action_reminder", {"class_id": class_id, "message_id": post.id,
                                            "accounts": sorted(elsewhere)})  # fmt: skip
        action.reminded_at = now
        action.save()
        return to
