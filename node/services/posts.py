"""Writing to a class feed: posts, edits, deletes, comments and reactions (all ciphertext).

Who may do what:
- the class's teacher posts, to the whole class (epoch key) or to the
  families of chosen children (a key sealed to each recipient), edits and
  deletes their posts, switches comments off for a post or the class, and
  deletes any comment in the class;
- an approved member (guardian or teacher) comments and reacts on a post
  they can see, while comments are on; the author deletes their own;
- nothing is accepted under a stale epoch, while a removal waits for its
  rotation, or with a header that does not name the group, the author's
  member id and key, and the expected recipients.
The node checks the author's signature before storing (clients check it again).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from node.e2e import messages as e2e
from node.e2e.encoding import canonical_text
from node.errors import N_, Conflict, Invalid, NotFound, PermissionDenied
from node.services import actions, groups, notifications, ratelimit
from node.services.context import Actor, ServiceContext
from node.storage import accounts as account_store
from node.storage import directory as directory_store
from node.storage import feed as store
from node.storage import groups as group_store
from node.storage.blobstore import BlobStore
from node.storage.db import write_transaction

MAX_CT_CHARS = 200_000
MAX_ATTACHMENTS = 30
REACTIONS = ("👍", "❤️", "😂", "😮", "🙏", "👏")


@dataclass(frozen=True)
class Posted:
    """What the routes need after a write: ids, and whom to tell live."""

    class_id: int
    message: str
    kind: str
    recipients: list[int]


def blob_store(ctx: ServiceContext) -> BlobStore:
    return BlobStore(ctx.config.data_dir / "blobs")


def _tell_schools(ctx: ServiceContext, a: groups.Access, row: Any) -> None:
    """In the writer's transaction: a class of this school announces the message on its
    stream (for members of other schools); a class of another school gets our guardian's
    message forwarded to it, which stores it and announces it to everyone."""
    if a.school_class.peer_id is None:
        ctx.publish("message_changed", {"message_id": row.id})
    else:
        ctx.publish("mirror_reply", {"message_id": row.id})


def _tell_deleted(ctx: ServiceContext, a: groups.Access, rows: list[Any], by_us: bool) -> None:
    if a.school_class.peer_id is None:
        gone = [[r.public_id, r.revision] for r in rows]
        ctx.publish("messages_deleted", {"class_id": a.school_class.id, "messages": gone})
    elif by_us:  # our guardian deleted their own reply: the class's node must delete it
        ctx.publish("mirror_delete", {"class_id": a.school_class.id, "message_id": rows[0].id})


def _wire(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict) or set(raw) != {"header", "ct", "sig"}:
        raise Invalid(
            N_("The message must have exactly a header, a ciphertext and a signature."),
            field="message",
        )
    if not isinstance(raw["ct"], str) or len(raw["ct"]) > MAX_CT_CHARS:
        raise Invalid(N_("The message is too long."), field="message")
    try:
        e2e.check_header(raw["header"])
    except e2e.MessageError as exc:
        raise Invalid(
            N_("The message was refused: %(reason)s"), field="message", reason=str(exc)
        ) from exc
    if not e2e.verify_signature(raw):
        raise Invalid(N_("The message's signature does not verify."), field="message")
    return raw


def _check_author(a: groups.Access, header: dict[str, Any]) -> None:
    me = group_store.select_member(a.group.id, a.me)
    if header["group"] != a.group.public_id:
        raise Invalid(N_("This message was encrypted for another class."), field="message")
    if me is None or header["author"] != a.me or header["by"] != me.sign_pk:
        raise Invalid(N_("This message is not signed with your current keys."), field="message")


def _check_keying(
    ctx: ServiceContext, a: groups.Access, header: dict[str, Any], keys: Any, to: list[str] | None
) -> list[dict[str, Any]]:
    """Epoch mode: the current epoch.  Recipient mode: exactly ``to``, one sealed key each."""
    if groups.removal_pending(ctx, a.school_class, a.group):
        raise Conflict(
            N_("A removal is waiting for the class key to change. Reload the class page first.")
        )
    if to is None:
        if header["epoch"] != a.group.current_epoch or header["to"] is not None:
            raise Conflict(
                N_("The class key changed since the page was loaded. Reload and try again.")
            )
        if keys not in (None, []):
            raise Invalid(N_("A message to the whole class carries no sealed keys."), field="keys")
        return []
    if header["epoch"] is not None or header["to"] != to:
        raise Invalid(N_("The message's recipients are not the chosen families."), field="message")
    if not isinstance(keys, list) or len(keys) != len(to):
        raise Invalid(N_("Send one sealed key per recipient."), field="keys")
    members = set()
    for sealed in keys:
        if (
            not isinstance(sealed, dict)
            or set(sealed) != {"member", "enc", "ct"}
            or not all(isinstance(v, str) and len(v) <= 200 for v in sealed.values())
        ):
            raise Invalid(N_("A sealed key is malformed."), field="keys")
        members.add(sealed["member"])
    if members != set(to):
        raise Invalid(N_("Send one sealed key per recipient."), field="keys")
    return keys


@dataclass(frozen=True)
class ClassPeople:
    """Guardian links of some children of a class, and which of them (and the teacher) are active members.

    Loaded once per request for the children it needs (a feed page: the
    reader's children and those its posts are addressed to), so a page costs
    no query per post and a guardian's page does not load the whole school.
    """

    child_ids: frozenset[int] | None  # None: every child of the class
    links: list[directory_store.GuardianLink]
    active: set[str]
    #: id → first name of the children loaded (all the class's, or the chosen
    #: ones that are in the class): labels, and the check of an audience
    names: dict[int, str]

    def covers(self, child_ids: list[int]) -> bool:
        return self.child_ids is None or set(child_ids) <= self.child_ids


def teacher_member(ctx: ServiceContext, school_class: Any) -> str:
    """The class teacher's member id (a class of another school: theirs on that node)."""
    if school_class.peer_id is None:
        return groups.member_id(ctx, school_class.teacher_id)
    account = account_store.select_account(school_class.teacher_id)
    return groups.member_of(ctx, account) if account else ""


def class_people(
    ctx: ServiceContext, a: groups.Access, child_ids: list[int] | None = None
) -> ClassPeople:
    links = directory_store.guardian_links_of_class(a.school_class.id, child_ids)
    wanted = {teacher_member(ctx, a.school_class)}
    wanted |= {groups.link_member(ctx, link) for link in links}
    active = group_store.active_members(a.group.id, sorted(wanted))
    chosen = None if child_ids is None else frozenset(child_ids)
    names = directory_store.child_names(a.school_class.id, child_ids)
    return ClassPeople(chosen, links, active, names)


def _audience(
    ctx: ServiceContext,
    a: groups.Access,
    child_ids: list[int],
    people: ClassPeople | None = None,
) -> list[str]:
    """Member ids of the teacher and every approved guardian of these children."""
    if people is None or not people.covers(child_ids):
        people = class_people(ctx, a, child_ids)
    if not set(child_ids) <= people.names.keys():
        raise Invalid(N_("Choose children of this class."), field="children")
    teacher = teacher_member(ctx, a.school_class)
    to = {teacher} & people.active
    for link in people.links:
        mid = groups.link_member(ctx, link)
        if link.child_id in child_ids and mid in people.active:
            to.add(mid)
    if not to - {teacher}:
        raise Invalid(N_("No approved guardian of these children yet."), field="children")
    return sorted(to)


def current_audience(
    ctx: ServiceContext,
    a: groups.Access,
    post: Any,
    *,
    addressed: list[int] | None = None,
    people: ClassPeople | None = None,
) -> list[str] | None:
    """Who a reply to this post is sealed to: None (the class key) or its families as they are now.

    Not the list stored with the post: a guardian removed since must not get
    the keys of new replies.  A feed page passes the post's ``addressed``
    children and the ``people`` it loaded.
    """
    if post.epoch is not None:  # a post to the whole class
        return None
    if addressed is None:
        addressed = store.children_of_message(post.id)
    return _audience(ctx, a, addressed, people)


def visible(a: groups.Access, row: Any) -> bool:
    """Whether the actor may see this post or reply (a share: its recipients only)."""
    post = row.parent if row.parent_id else row
    if not can_see(a, post):
        return False
    to = json.loads(row.header)["to"] if row.parent_id and row.header else None
    return to is None or a.me in to


def _recipients(
    ctx: ServiceContext, a: groups.Access, to: list[str] | None, author: int
) -> list[int]:
    if to is None:
        ids = [
            m.account_id
            for m in group_store.select_members(a.group.id)
            if m.active and m.account_id
        ]
    else:
        ids = [i for i in groups.accounts_of_members(ctx, to).values() if i]
    # a guardian unlinked from the class but not yet removed from the log hears nothing
    # more; one of another school is told by their own node, not by this one
    links = directory_store.guardian_links_of_class(a.school_class.id)
    linked = {a.school_class.teacher_id}
    linked |= {link.account_id for link in links if link.remote_member is None}
    return sorted({i for i in ids if i != author and i in linked})


def _blob_ids(raw: Any) -> list[str]:
    """Checked before any transaction: a list of blob ids (text), each once."""
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(i, str) and len(i) <= 64 for i in raw):
        raise Invalid(N_("Attachments must be a list of upload ids."), field="blobs")
    if len(raw) > MAX_ATTACHMENTS * 2:
        raise Invalid(N_("Too many attachments."), field="blobs")
    return sorted(set(raw))


def _attach(
    ctx: ServiceContext, actor: Actor, a: groups.Access, message: Any, blob_ids: list[str]
) -> None:
    for public_id in blob_ids:
        blob = store.select_blob(public_id, lock=True)
        if blob is None or blob.owner_id != actor.account_id or blob.group_id != a.group.id:
            raise Invalid(N_("An attachment was not uploaded to this class by you."), field="blobs")
        if blob.status != "complete":
            raise Invalid(N_("An attachment has not finished uploading."), field="blobs")
        if blob.message_id not in (None, message.id):
            raise Invalid(N_("An attachment belongs to another post."), field="blobs")
        blob.message = message
        blob.save()


#: A post's level: information (may wait for a guardian's daily digest), action needed, urgent.
PRIORITIES = ("info", "action", "urgent")


def _priority(raw: Any) -> str:
    if raw not in PRIORITIES:
        raise Invalid(N_("The level must be info, action or urgent."), field="priority")
    return str(raw)


def _child_ids(raw: Any) -> list[int]:
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > 100 or not all(type(i) is int for i in raw):
        raise Invalid(N_("Children must be a list of ids."), field="children")
    return sorted(set(raw))


def create_post(
    ctx: ServiceContext, actor: Actor, class_id: int, message: Any, *,
    keys: Any = None, children: Any = None, blobs: Any = None, comments_enabled: Any = True,
    priority: Any = "info", action: Any = None,
) -> Posted:  # fmt: skip
    blob_list = _blob_ids(blobs)
    level = _priority(priority)
    if action is not None:  # an event, sign-up, slip or poll: its structure, checked early
        actions.parse(action)
    wire = _wire(message)
    header = wire["header"]
    child_ids = _child_ids(children)
    if type(comments_enabled) is not bool:
        raise Invalid(N_("comments_enabled must be true or false."), field="comments_enabled")
    with write_transaction():
        a = groups.require_member(ctx, actor, class_id, lock=True)
        if not a.is_teacher:
            raise PermissionDenied(N_("Only the class's teacher posts to the class."))
        ratelimit.count_message(ctx, actor.account_id)
        _check_author(a, header)
        if header["kind"] != "post" or header["version"] != 1:
            raise Invalid(N_("A new post has kind post and version 1."), field="message")
        to = _audience(ctx, a, child_ids) if child_ids else None
        sealed = _check_keying(ctx, a, header, keys, to)
        if store.select_message(a.group.id, header["id"]) is not None:
            raise Conflict(N_("A message with this id already exists."))
        now = ctx.now()
        row = store.Message.create(
            group=a.group, public_id=header["id"], kind="post", author=actor.account_id, author_member=a.me,
            epoch=header["epoch"], version=1, header=canonical_text(header), ct=wire["ct"],
            sig=wire["sig"], comments_enabled=comments_enabled, created_at=now, updated_at=now,
            priority=level,
        )  # fmt: skip
        for child_id in child_ids:
            store.MessageChild.create(message=row, child=child_id)
        for key in sealed:
            store.MessageKey.create(message=row, member=key["member"], sealed=canonical_text(key))
        _attach(ctx, actor, a, row, blob_list)
        if action is not None:
            actions.attach(row, action)
        recipients = _recipients(ctx, a, to, actor.account_id)
        notifications.enqueue(
            ctx, kind="post", account_ids=recipients, class_id=class_id, message_id=row.id,
            digest=level == "info",
        )  # fmt: skip
        _tell_schools(ctx, a, row)
        return Posted(class_id, header["id"], "post", recipients)


def _own_post(
    ctx: ServiceContext, actor: Actor, class_id: int, public_id: str
) -> tuple[groups.Access, Any]:
    a = groups.require_member(ctx, actor, class_id, lock=True)
    row = store.select_message(a.group.id, public_id, lock=True)
    if row is None or row.deleted_at is not None or row.kind != "post" or not can_see(a, row):
        raise NotFound(N_("No such post."))
    if row.author_id != actor.account_id:
        raise PermissionDenied(N_("Only the author can change this post."))
    return a, row


def edit_post(
    ctx: ServiceContext, actor: Actor, class_id: int, public_id: str, message: Any, *,
    keys: Any = None, blobs: Any = None, priority: Any = None, action: Any = None,
) -> Posted:  # fmt: skip
    """A new version of a post: same id, version + 1, re-encrypted; dropped attachments are deleted.

    ``priority`` None keeps the post's level; a change notifies nobody again.
    ``action`` None keeps the post's action; otherwise a compatible change of it
    (``actions.change``: same type, chosen choices kept, capacities not below the places taken)."""
    blob_list = _blob_ids(blobs)
    level = None if priority is None else _priority(priority)
    wire = _wire(message)
    header = wire["header"]
    removed: list[str] = []
    with write_transaction():
        a, row = _own_post(ctx, actor, class_id, public_id)
        _check_author(a, header)
        if (
            header["id"] != row.public_id
            or header["kind"] != "post"
            or header["version"] != row.version + 1
        ):
            raise Conflict(
                N_("This post changed since the page was loaded. Reload and edit again.")
            )
        child_ids = store.children_of_message(row.id)
        to = _audience(ctx, a, child_ids) if child_ids else None
        sealed = _check_keying(ctx, a, header, keys, to)
        current = store.blobs_of_message(row.id)
        # no list: keep the attachments as they are; a list: exactly those
        keep = {b.public_id for b in current} if blobs is None else set(blob_list)
        for blob in current:
            if blob.public_id not in keep:
                removed.append(blob.public_id)
                blob.delete_instance()
        _attach(ctx, actor, a, row, blob_list)
        store.MessageKey.delete().where(store.MessageKey.message == row.id).execute()
        for key in sealed:
            store.MessageKey.create(message=row, member=key["member"], sealed=canonical_text(key))
        row.header, row.ct, row.sig = canonical_text(header), wire["ct"], wire["sig"]
        row.version, row.epoch, row.updated_at = header["version"], header["epoch"], ctx.now()
        if level is not None:
            row.priority = level
        if action is not None:
            actions.change(row, action)
        row.revision += 1
        row.save()
        recipients = _recipients(ctx, a, to, actor.account_id)
        _tell_schools(ctx, a, row)
    for blob_id in removed:
        blob_store(ctx).delete(blob_id)
    return Posted(class_id, row.public_id, "edit", recipients)


def delete_message(ctx: ServiceContext, actor: Actor, class_id: int, public_id: str) -> Posted:
    """Delete a post (with its replies) or a comment: ciphertext and blobs leave the node."""
    blob_ids: list[str] = []
    with write_transaction():
        a = groups.access(ctx, actor, class_id, lock=True)
        row = store.select_message(a.group.id, public_id, lock=True) if a.group else None
        if row is None or row.deleted_at is not None or not a.is_member or not visible(a, row):
            raise NotFound(N_("No such message."))
        post = row.parent if row.parent_id else row
        audience = current_audience(ctx, a, post) if post.kind == "post" else None
        is_author = row.author_id == actor.account_id
        if not (is_author or (a.is_teacher and row.kind != "post")):
            raise PermissionDenied(N_("Only the author or the teacher can delete this."))
        targets = [row] + (store.select_replies([row.id]) if row.kind == "post" else [])
        _tell_deleted(ctx, a, targets, is_author)
        for target in targets:
            blob_ids += [b.public_id for b in store.blobs_of_message(target.id)]
            store.Blob.delete().where(store.Blob.message == target.id).execute()
            store.MessageKey.delete().where(store.MessageKey.message == target.id).execute()
            target.header = target.ct = target.sig = None
            target.deleted_at = ctx.now()
            target.save()
        recipients = _recipients(ctx, a, audience, actor.account_id)
    for blob_id in blob_ids:
        blob_store(ctx).delete(blob_id)
    return Posted(class_id, public_id, "delete", recipients)


def add_reply(
    ctx: ServiceContext,
    actor: Actor,
    class_id: int,
    post_id: str,
    message: Any,
    *,
    keys: Any = None,
) -> Posted:
    """A comment, a reaction, or a guardian's share on a post the actor can see.

    A share points the post out to the other approved guardians of the
    sharer's children it concerns; it is sealed to them and the sharer only.
    """
    wire = _wire(message)
    header = wire["header"]
    with write_transaction():
        a = groups.require_member(ctx, actor, class_id, lock=True)
        post = store.select_message(a.group.id, post_id, lock=True)  # one reaction per author
        if (
            post is None
            or post.deleted_at is not None
            or post.kind != "post"
            or not can_see(a, post)
        ):
            raise NotFound(N_("No such post."))
        ratelimit.count_message(ctx, actor.account_id)
        _check_author(a, header)
        if (
            header["kind"] not in ("comment", "reaction", "share")
            or header["parent"] != post.public_id
        ):
            raise Invalid(
                N_("A reply must be a comment or a reaction on this post."), field="message"
            )
        if header["version"] != 1:
            raise Invalid(N_("A new message has version 1."), field="message")
        if header["kind"] == "comment" and not (
            post.comments_enabled and a.school_class.comments_enabled
        ):
            raise PermissionDenied(N_("Comments are switched off for this post."))
        post_to = current_audience(ctx, a, post)
        if header["kind"] == "share":
            post_to = share_recipients(ctx, a, post)
            if len(post_to) < 2:
                raise Invalid(
                    N_("Your child has no other approved guardian to share this with."),
                    field="message",
                )
        sealed = _check_keying(ctx, a, header, keys, post_to)
        if store.select_message(a.group.id, header["id"]) is not None:
            raise Conflict(N_("A message with this id already exists."))
        if header["kind"] == "reaction":  # one per author: the new one replaces theirs
            replaced = store.Message.select().where(
                (store.Message.parent == post.id) & (store.Message.kind == "reaction")
                & (store.Message.author == actor.account_id)
            )  # fmt: skip
            if a.school_class.peer_id is None and replaced:
                _tell_deleted(ctx, a, list(replaced), False)
            for old in replaced:
                old.delete_instance()
        now = ctx.now()
        row = store.Message.create(
            group=a.group, public_id=header["id"], kind=header["kind"], parent=post, author=actor.account_id,
            author_member=a.me, epoch=header["epoch"], version=1, header=canonical_text(header),
            ct=wire["ct"], sig=wire["sig"], created_at=now, updated_at=now,
        )  # fmt: skip
        for key in sealed:
            store.MessageKey.create(message=row, member=key["member"], sealed=canonical_text(key))
        _tell_schools(ctx, a, row)
        recipients = _recipients(ctx, a, post_to, actor.account_id)
        if header["kind"] == "share":
            notifications.enqueue(
                ctx, kind="share", account_ids=recipients, class_id=class_id, message_id=row.id
            )
        return Posted(class_id, header["id"], header["kind"], recipients)


def share_recipients(
    ctx: ServiceContext,
    a: groups.Access,
    post: Any,
    *,
    addressed: list[int] | None = None,
    people: ClassPeople | None = None,
) -> list[str]:
    """The sharer and every other approved guardian of the sharer's children the post concerns.

    A feed page passes what it already loaded (``addressed`` children, and the
    ``people`` of the reader's children) so a page costs no query per post.
    """
    if a.is_teacher or not a.my_children:
        return [a.me]
    if addressed is None:
        addressed = store.children_of_message(post.id)
    mine = [c for c in a.my_children if not addressed or c in addressed]
    if people is None or not people.covers(mine):
        people = class_people(ctx, a, mine)
    to = {a.me}
    for link in people.links:
        mid = groups.link_member(ctx, link)
        if link.child_id in mine and mid in people.active:
            to.add(mid)
    return sorted(to)


def can_see(a: groups.Access, post: Any) -> bool:
    if a.is_teacher:
        return True
    children = store.children_of_message(post.id)
    return not children or bool(set(children) & set(a.my_children))


def set_comments(
    ctx: ServiceContext, actor: Actor, class_id: int, enabled: Any, post_id: str | None = None
) -> None:
    """The teacher switches comments on or off for the class, or for one post."""
    if type(enabled) is not bool:
        raise Invalid(N_("enabled must be true or false."), field="enabled")
    with write_transaction():
        a = groups.access(ctx, actor, class_id)
        if not a.is_teacher:
            raise PermissionDenied(N_("Only the class's teacher can change this."))
        if post_id is None:
            a.school_class.comments_enabled = enabled
            a.school_class.save()
            ctx.publish("class_changed", {"class_id": class_id})
            return
        row = store.select_message(a.group.id, post_id, lock=True) if a.group else None
        if row is None or row.deleted_at is not None or row.kind != "post":
            raise NotFound(N_("No such post."))
        row.comments_enabled = enabled
        row.revision += 1
        row.save()
        _tell_schools(ctx, a, row)
