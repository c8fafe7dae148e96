"""Reading class feeds: a guardian's timeline, a class's posts, read receipts and reminders.

Who may see what:
- a guardian sees posts of the classes of their children where the teacher
  approved their keys: posts to the whole class, and posts addressed to one
  of their own children; each post is labelled with its class and the child
  (or children) it concerns for them;
- the class's teacher sees every post of the class, and for their posts who
  has read them and who has not (per child, per guardian), and can remind
  those who have not, at most once an hour per post.
Items carry ciphertext, the reader's own sealed key and names; the browser
decrypts.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from node.errors import N_, Invalid, NotFound, PermissionDenied, RateLimited
from node.services import action_status, groups, notifications
from node.services.context import Actor, ServiceContext
from node.services.posts import (
    ClassPeople,
    can_see,
    class_people,
    current_audience,
    share_recipients,
)
from node.storage import accounts as account_store
from node.storage import directory as directory_store
from node.storage import feed as store
from node.storage import groups as group_store
from node.storage import peers as peer_store
from node.storage.db import write_transaction

PAGE_SIZE = 20
MAX_PAGE = 50
REMIND_EVERY = dt.timedelta(hours=1)


@dataclass
class Reply:
    id: str
    kind: str
    author_name: str
    created_at: dt.datetime
    message: dict[str, Any]
    key: dict[str, Any] | None
    can_delete: bool


@dataclass
class FeedItem:
    id: str
    class_id: int
    class_name: str
    #: a class of another school: that school's name
    school: str | None
    #: first names of the children this post concerns for the reader
    children: list[str]
    #: true when addressed to chosen children's families, not the whole class
    targeted: bool
    author_name: str
    created_at: dt.datetime
    updated_at: dt.datetime
    version: int
    comments_enabled: bool
    message: dict[str, Any]
    key: dict[str, Any] | None
    read: bool
    can_edit: bool
    replies: list[Reply] = field(default_factory=list)
    #: teacher only: (guardians who read, guardians addressed)
    receipts: tuple[int, int] | None = None
    #: guardians: member ids a share of this post is sealed to (the reader first
    #: among them); empty when the reader's children have no other guardian
    share_to: list[str] = field(default_factory=list)
    #: the author: ids of the children a targeted post is for (an edit re-seals to their guardians)
    child_ids: list[int] = field(default_factory=list)
    #: a post for some families: who a reply is sealed to now (None: the class key)
    reply_to: list[str] | None = None
    #: the teacher's level: ``info``, ``action`` (action needed) or ``urgent``
    priority: str = "info"
    #: an event, sign-up, permission slip or poll: its structure and answers (action_status.page_views)
    action: dict[str, Any] | None = None


@dataclass(frozen=True)
class FeedPage:
    items: list[FeedItem]
    next_before: int | None
    #: classes whose teacher has not approved the reader yet (their names)
    waiting: list[str]


def _limit(raw: Any) -> int:
    if raw is None:
        return PAGE_SIZE
    if type(raw) is not int or not 1 <= raw <= MAX_PAGE:
        raise Invalid(N_("limit must be between 1 and 50."), field="limit")
    return raw


def _wire(row: Any) -> dict[str, Any]:
    return {"header": json.loads(row.header), "ct": row.ct, "sig": row.sig}


def _page(
    ctx: ServiceContext,
    actor: Actor,
    posts: list[Any],
    limit: int,
    accesses: dict[int, groups.Access],
) -> tuple[list[FeedItem], int | None]:
    """Build the items of a page with a fixed number of queries, whatever its length."""
    more = len(posts) > limit
    posts = posts[:limit]
    ids = [p.id for p in posts]
    children_of = store.children_of_messages(ids)
    replies_of: dict[int, list[tuple[Any, list[str] | None]]] = {}
    reply_ids = []
    r: Any
    for r in store.select_replies(ids):  # live rows: their header is never null
        replies_of.setdefault(r.parent_id, []).append((r, json.loads(r.header).get("to")))
        reply_ids.append(r.id)
    mine_by_group = {a.group.id: a for a in accesses.values()}
    keys: dict[int, str] = {}
    for a in accesses.values():
        keys.update(store.sealed_keys_for(ids + reply_ids, a.me))
    reads = store.read_by(ids, actor.account_id)  # the reader's own; a teacher gets counts
    people = {
        group_id: _people_of_page(ctx, a, [p for p in posts if p.group_id == group_id], children_of)
        for group_id, a in mine_by_group.items()
    }
    guardians = {
        group_id: group_store.active_guardian_accounts(group_id)
        for group_id, a in mine_by_group.items()
        if a.is_teacher
    }
    read_counts = {
        group_id: store.read_counts(
            [p.id for p in posts if p.group_id == group_id], group_id, a.school_class.id
        )
        for group_id, a in mine_by_group.items()
        if a.is_teacher
    }
    schools = {  # the classes of other schools on this page: their school's name
        a.school_class.id: peer.name
        for a in mine_by_group.values()
        if a.school_class.peer_id is not None
        and (peer := peer_store.select_peer(a.school_class.peer_id)) is not None
    }
    actions = action_status.page_views(
        ctx, posts, mine_by_group, children_of, {g: p.names for g, p in people.items()}
    )
    items = []
    for post in posts:
        a = mine_by_group[post.group_id]
        addressed = children_of.get(post.id, [])
        mine = a.my_children if not addressed else [c for c in addressed if c in a.my_children]
        label_ids = addressed if a.is_teacher and addressed else mine
        names = people[post.group_id].names
        item = FeedItem(
            id=post.public_id, class_id=a.school_class.id, class_name=a.school_class.name,
            school=schools.get(a.school_class.id),
            children=[names[c] for c in label_ids if c in names], targeted=bool(addressed),
            author_name=post.author.display_name if post.author else "", created_at=post.created_at,
            updated_at=post.updated_at, version=post.version,
            comments_enabled=post.comments_enabled and a.school_class.comments_enabled,
            message=_wire(post), key=json.loads(keys[post.id]) if post.id in keys else None,
            read=actor.account_id in reads.get(post.id, {}), can_edit=post.author_id == actor.account_id,
        )  # fmt: skip
        item.priority = post.priority
        for r, to in replies_of.get(post.id, []):
            if to is None or a.me in to:  # shares: their recipients only
                item.replies.append(Reply(
                    r.public_id, r.kind, r.author.display_name if r.author else "", r.created_at, _wire(r),
                    json.loads(keys[r.id]) if r.id in keys else None,
                    r.author_id == actor.account_id or (a.is_teacher and r.kind == "comment"),
                ))  # fmt: skip
        if item.can_edit:
            item.child_ids = list(addressed)
        group_people = people[post.group_id]
        if post.epoch is None:
            try:
                item.reply_to = current_audience(
                    ctx, a, post, addressed=addressed, people=group_people
                )
            except Invalid:  # every family it was for has left: nobody to reply to
                item.reply_to = []
        if a.is_teacher:
            audience = _audience_accounts(
                a, addressed, guardians[post.group_id], group_people.links
            )
            item.receipts = (read_counts[post.group_id].get(post.id, 0), len(audience))
        else:
            share_to = share_recipients(ctx, a, post, addressed=addressed, people=group_people)
            item.share_to = share_to if len(share_to) > 1 else []
        item.action = actions.get(post.id)
        items.append(item)
    return items, (posts[-1].id if more and posts else None)


def _people_of_page(
    ctx: ServiceContext, a: groups.Access, posts: list[Any], children_of: dict[int, list[int]]
) -> ClassPeople:
    """The class's people a page needs: all for its teacher; for a guardian, the
    guardians of their children and of the children the page's posts are for."""
    if a.is_teacher:
        return class_people(ctx, a)
    wanted = set(a.my_children)
    for post in posts:
        wanted.update(children_of.get(post.id, []))
    return class_people(ctx, a, sorted(wanted))


def _audience_accounts(
    a: groups.Access,
    addressed: list[int],
    guardians: set[int] | None = None,
    links: list[Any] | None = None,
) -> set[int]:
    """Approved guardians a post reaches, still linked to a child of the class (or of its audience).

    ``guardians`` (the group's active guardian accounts) and ``links`` (the
    class's guardian links) are loaded here unless a page already has them.
    """
    if guardians is None:
        guardians = group_store.active_guardian_accounts(a.group.id)
    if links is None:
        links = directory_store.guardian_links_of_class(a.school_class.id)
    wanted = {link.account_id for link in links if not addressed or link.child_id in addressed}
    return guardians & wanted


def my_feed(
    ctx: ServiceContext,
    actor: Actor,
    *,
    before: int | None = None,
    limit: Any = None,
    child_id: int | None = None,
) -> FeedPage:
    """A guardian's one timeline across all their children's classes (or one child's)."""
    limit = _limit(limit)
    all_children = directory_store.select_children_of_guardian(actor.account_id)
    children = all_children
    if child_id is not None:
        children = [c for c in children if c.id == child_id]
        if not children:
            raise NotFound(N_("No such child."))
    accesses: dict[int, groups.Access] = {}
    waiting = []
    for class_id in sorted({c.school_class_id for c in children}):
        a = groups.access(ctx, actor, class_id, children=all_children)
        if a.group is not None and a.is_member:
            accesses[class_id] = a
        else:
            waiting.append(a.school_class.name)
    # one child's view (child_id): that child's class, whole-class posts and posts about them
    child_ids = [c.id for c in children]
    posts = store.select_posts(
        [a.group.id for a in accesses.values()], before=before, limit=limit + 1, child_ids=child_ids
    )
    items, next_before = _page(ctx, actor, posts, limit, accesses)
    return FeedPage(items, next_before, waiting)


def class_feed(
    ctx: ServiceContext,
    actor: Actor,
    class_id: int,
    *,
    before: int | None = None,
    limit: Any = None,
) -> FeedPage:
    """One class's posts: all of them for its teacher, those addressed to them for a guardian."""
    limit = _limit(limit)
    a = groups.access(ctx, actor, class_id)
    if a.group is None or not a.is_member:
        return FeedPage([], None, [a.school_class.name])
    posts = store.select_posts(
        [a.group.id],
        before=before,
        limit=limit + 1,
        child_ids=None if a.is_teacher else a.my_children,
    )
    items, next_before = _page(ctx, actor, posts, limit, {class_id: a})
    return FeedPage(items, next_before, [])


def _post_for(
    ctx: ServiceContext, actor: Actor, class_id: int, post_id: str
) -> tuple[groups.Access, Any]:
    a = groups.access(ctx, actor, class_id)
    post = store.select_message(a.group.id, post_id) if a.group else None
    if (
        post is None
        or post.deleted_at is not None
        or post.kind != "post"
        or not a.is_member
        or not can_see(a, post)
    ):
        raise NotFound(N_("No such post."))
    return a, post


def mark_read(ctx: ServiceContext, actor: Actor, class_id: int, post_id: str) -> None:
    with write_transaction():
        a, post = _post_for(ctx, actor, class_id, post_id)
        if actor.account_id in store.read_by([post.id], actor.account_id).get(post.id, {}):
            return  # read already: nothing to record, nothing to tell
        store.ReadReceipt.insert(
            message=post, account=actor.account_id, read_at=ctx.now()
        ).on_conflict_ignore().execute()
        if a.school_class.peer_id is not None:  # the teacher is on the class's node
            ctx.publish("mirror_read", {"class_id": class_id, "message_id": post.id,
                                        "account_id": actor.account_id})  # fmt: skip


@dataclass(frozen=True)
class GuardianRead:
    name: str
    read_at: dt.datetime | None


@dataclass(frozen=True)
class ChildReads:
    child: str
    guardians: list[GuardianRead]


@dataclass(frozen=True)
class Receipts:
    post: str
    read: int
    total: int
    children: list[ChildReads]
    reminded_at: dt.datetime | None


def receipts(ctx: ServiceContext, actor: Actor, class_id: int, post_id: str) -> Receipts:
    a, post = _post_for(ctx, actor, class_id, post_id)
    if not a.is_teacher:
        raise PermissionDenied(N_("Only the class's teacher sees who has read a post."))
    addressed = store.children_of_message(post.id)
    audience = _audience_accounts(a, addressed)
    reads = store.read_by([post.id]).get(post.id, {})
    links = directory_store.guardian_links_of_class(class_id)
    children = []
    for child in sorted(a.school_class.children, key=lambda c: (c.first_name, c.id)):
        if addressed and child.id not in addressed:
            continue
        rows = [
            GuardianRead(link.display_name, reads.get(link.account_id))
            for link in links
            if link.child_id == child.id and link.account_id in audience
        ]
        if rows:
            children.append(ChildReads(f"{child.first_name} {child.last_name}", rows))
    read = len(set(reads) & audience)
    return Receipts(post.public_id, read, len(audience), children, post.reminded_at)


def remind_unread(ctx: ServiceContext, actor: Actor, class_id: int, post_id: str) -> list[int]:
    """Notify again every addressed guardian who has not read the post; returns them."""
    with write_transaction():
        a, post = _post_for(ctx, actor, class_id, post_id)
        if not a.is_teacher:
            raise PermissionDenied(N_("Only the class's teacher can send reminders."))
        now = ctx.now()
        if post.reminded_at and now - post.reminded_at < REMIND_EVERY:
            raise RateLimited(N_("A reminder was sent less than an hour ago."), retry_after=3600)
        audience = _audience_accounts(a, store.children_of_message(post.id))
        unread = sorted(audience - set(store.read_by([post.id]).get(post.id, {})))
        if not unread:  # nothing sent: the hourly limit does not start
            return []
        notifications.enqueue(
            ctx, kind="reminder", account_ids=unread, class_id=class_id, message_id=post.id
        )
        elsewhere = account_store.remote_accounts(unread)
        if elsewhere:  # guardians living on other nodes: their node reminds them
            ctx.publish("post_reminder", {"class_id": class_id, "message_id": post.id,
                                          "accounts": sorted(elsewhere)})  # fmt: skip
        post.reminded_at = now
        post.save()
        return unread


@dataclass(frozen=True)
class ChildOption:
    id: int
    name: str


@dataclass(frozen=True)
class ClassPage:
    """What a class feed page shows around the posts."""

    id: int
    name: str
    school_year: str
    teacher_name: str
    is_teacher: bool
    comments_enabled: bool
    #: the teacher's composer offers these as audiences; a guardian sees their own
    children: list[ChildOption]


def class_page(ctx: ServiceContext, actor: Actor, class_id: int) -> ClassPage:
    a = groups.access(ctx, actor, class_id)
    c = a.school_class
    kids = sorted(c.children, key=lambda k: (k.first_name, k.last_name, k.id))
    if not a.is_teacher:
        kids = [k for k in kids if k.id in a.my_children]
    return ClassPage(
        c.id, c.name, c.school_year, c.teacher.display_name, a.is_teacher, c.comments_enabled,
        [ChildOption(k.id, f"{k.first_name} {k.last_name}") for k in kids],
    )  # fmt: skip
