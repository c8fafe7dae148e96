"""Classes of other schools, mirrored for this node's guardians (NP/1 class streams, home side).

A guardian of this node approved in a class of another school's node reads
that class here, in their one feed: the class's node sends its log entries,
the epoch keys sealed to our guardians and its messages, all ciphertext,
and this node keeps them in the ordinary class tables (``school_class``
with ``peer_id`` and ``remote_url``).  Rules:

- only the class's own node writes its mirror, and only while one of our
  guardians is in it (the Accept creates it; a Remove or leaving deletes
  it, with every message and file, once no guardian of ours is left);
- the log is verified here too (a gap or a forged entry is refused);
- messages are applied by version: an older or equal version changes
  nothing, a Tombstone blanks the message for good;
- the other members (the teacher, guardians of other schools) are shadow
  accounts (status ``remote``) so names and authors show as for any class;
- a child's other approved guardians, as the class's node names them (with
  the Accept, and in a ``Class`` update when the teacher approves or removes
  someone), are linked to the child here through their shadow accounts: a
  family thread or a reply for the family is sealed to the people the class's
  node checks it against;
- our guardians are told of new posts as for a class of ours.

Errors are ``Invalid`` (the activity is refused and kept as a dead letter).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable
from typing import Any

from node.e2e.encoding import canonical_text
from node.errors import N_, Invalid
from node.services import action_mirrors, chat_mirrors, groups, notifications
from node.services.context import ServiceContext
from node.storage import accounts as account_store
from node.storage import activities as fed_store
from node.storage import directory as directory_store
from node.storage import feed as feed_store
from node.storage import groups as group_store
from node.storage import mirrors as store
from node.storage import peers as peer_store
from node.storage.blobstore import BlobStore

KINDS = ("post", "comment", "reaction", "share", *chat_mirrors.KINDS, "absence")
#: kinds that answer no other message
TOP_KINDS = ("post", "conversation", "absence")
_PUBLIC_ID = re.compile(r"[A-Za-z0-9_-]{1,22}")
#: a member id: an account number on a node, and that node's host[:port]
_MEMBER = re.compile(r"([1-9][0-9]{0,15})@([a-z0-9.-]{1,253}(?::[0-9]{1,5})?)")


def _host(ctx: ServiceContext) -> str:
    return ctx.config.origin.split("://", 1)[1]


def _text(value: Any, limit: int = 200) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _shadow(ctx: ServiceContext, peer_id: int, member: Any, name: str, group: Any = None) -> int:
    """The account standing for ``member`` (``{id}@{host}``): one of ours if it lives
    here and is in the class's log (``group``), else its shadow, made on first sight.
    Only the node a member lives on names them: another node cannot rename them."""
    match = _MEMBER.fullmatch(member) if isinstance(member, str) else None
    if match is None:
        raise Invalid(N_("A member id is malformed."))
    if match[2] == _host(ctx):
        local = groups.account_of_member(ctx, member)
        if local is None or group is None or group_store.select_member(group.id, member) is None:
            raise Invalid(N_("A member of this school must be in the class's log."))
        return local
    login = directory_store.REMOTE_LOGIN_PREFIX + member
    account = account_store.select_account_by_login(login)
    if account is not None and (not name or account.display_name == name):
        return int(account.id)  # the usual case: known, same name
    home = peer_store.select_peer_by_host(match[2])
    if account is None:
        return account_store.insert_remote_guardian(
            login, name or "?", "", "", home.id if home else peer_id, ctx.now()
        ).id
    if name and account.display_name != name and home is not None and home.id == peer_id:
        account.display_name = name[:120]
        account.save()
    return int(account.id)


# -- the class ------------------------------------------------------------------------------


def accepted(ctx: ServiceContext, peer_id: int, class_url: str, account_id: int, info: Any) -> bool:
    """Our guardian is in the class now: make (or update) its mirror and link them to
    their child there (inside the caller's transaction).  True if the mirror is new."""
    info = info if isinstance(info, dict) else {}
    peer = peer_store.select_peer(peer_id)
    assert peer is not None
    teacher_id = _teacher(ctx, peer, class_url, info)
    mirror = store.select_mirror(class_url, lock=True)
    name = _text(info.get("name"), 80) or _text(peer.name, 80) or class_url[-80:]
    created = mirror is None
    if mirror is None:
        mirror = directory_store.SchoolClass.create(
            name=name, school_year=_text(info.get("schoolYear"), 9), teacher=teacher_id,
            created_at=ctx.now(), peer_id=peer_id, remote_url=class_url,
            comments_enabled=info.get("commentsEnabled") is not False,
        )  # fmt: skip
        _chat_settings(mirror, info)
    elif mirror.peer_id != peer_id:
        raise Invalid(N_("This class belongs to another school."))
    elif info.get("name"):  # an Accept sent again, or the member list: what shows now
        mirror.name, mirror.teacher_id = name, teacher_id
        mirror.comments_enabled = info.get("commentsEnabled") is not False
        _chat_settings(mirror, info)
        mirror.save()
    child = info.get("child")
    if isinstance(child, dict) and isinstance(child.get("id"), str):
        row = _child(mirror, child["id"], _text(child.get("name"), 60), ctx.now())
        if not directory_store.is_guardian_of(account_id, row.id):
            directory_store.Guardianship.create(child=row, account=account_id, created_at=ctx.now())
        _family(ctx, peer_id, mirror, row, child.get("guardians"))
    return created


def _teacher(ctx: ServiceContext, peer: Any, class_url: str, info: dict[str, Any]) -> int:
    """The class's teacher (a member of the class's node); a stand-in for the class if
    its node did not say (a member list without it)."""
    teacher = info.get("teacher")
    host = peer.origin.split("://", 1)[1]
    if isinstance(teacher, str) and teacher.endswith("@" + host):
        return _shadow(ctx, peer.id, teacher, _text(info.get("teacherName"), 120))
    login = directory_store.REMOTE_LOGIN_PREFIX + "class:" + class_url[:380]
    account = account_store.select_account_by_login(login)
    if account is None:
        account = account_store.insert_remote_guardian(
            login, _text(peer.name, 120) or "?", "", "", peer.id, ctx.now()
        )
    return int(account.id)


def read_again(peer_id: int, class_url: str) -> None:
    """Apply the class's stream again from its start (a mirror made after its content
    came, and was refused): the next batch finds a gap and pulls it; what was applied
    already is recognised by its id."""
    fed_store.FedRemoteStream.update(applied_seq=0).where(
        (fed_store.FedRemoteStream.peer == peer_id)
        & (fed_store.FedRemoteStream.stream == class_url)
    ).execute()


def apply_class(ctx: ServiceContext, peer_id: int, class_url: str, obj: dict[str, Any]) -> None:
    """The class's settings changed there, or the families of our guardians' children
    (applied in stream order, as everything)."""
    mirror = _mirror(peer_id, class_url)
    if obj.get("id") != class_url:
        raise Invalid(N_("This is another class."))
    mirror.name = _text(obj.get("name"), 80) or mirror.name
    mirror.comments_enabled = obj.get("commentsEnabled") is not False
    _chat_settings(mirror, obj)
    mirror.save()
    families = obj.get("families")
    for family in families[:200] if isinstance(families, list) else []:
        if not isinstance(family, dict) or not isinstance(family.get("id"), str):
            raise Invalid(N_("A child's family is malformed."))
        row = _child(mirror, family["id"], _text(family.get("name"), 60), ctx.now())
        _family(ctx, peer_id, mirror, row, family.get("guardians"))


def _family(ctx: ServiceContext, peer_id: int, mirror: Any, child: Any, guardians: Any) -> None:
    """The child's approved guardians of other nodes, as the class's node names them: linked
    here to the child through their shadow accounts, so our guardians' family threads and
    replies to posts for the family are sealed to the same people as there.  Our own
    guardians' links follow their Accept and Remove only (not given: nothing changes)."""
    if guardians is None:
        return
    if not isinstance(guardians, list) or len(guardians) > 50:
        raise Invalid(N_("A child's family is malformed."))
    wanted = set()
    for guardian in guardians:
        member = guardian.get("member") if isinstance(guardian, dict) else None
        if not isinstance(member, str) or member.endswith("@" + _host(ctx)):
            continue  # one of ours: their own Accept links them
        wanted.add(_shadow(ctx, peer_id, member, _text(guardian.get("name"), 120)))
    for link in directory_store.guardian_links_of_class(mirror.id, [child.id]):
        if link.remote_member is not None and link.account_id not in wanted:
            directory_store.delete_guardianship(child.id, link.account_id)
    for account_id in sorted(wanted):
        if not directory_store.is_guardian_of(account_id, child.id):
            directory_store.Guardianship.create(
                child=child, account=account_id, created_at=ctx.now()
            )


def _chat_settings(mirror: Any, info: dict[str, Any]) -> None:
    """The teacher's conversation settings, as the class's node sends them (unknown: off)."""
    chat, threads = info.get("parentChat"), info.get("familyThreads")
    mirror.parent_chat = chat if chat in ("off", "open", "closed") else "off"
    mirror.family_threads = threads if threads in ("open", "reply") else "reply"
    mirror.office_hours = _text(info.get("officeHours"), 200)
    try:
        away = info.get("awayUntil")
        mirror.away_until = dt.date.fromisoformat(away) if isinstance(away, str) else None
    except ValueError:
        mirror.away_until = None
    if mirror.id is not None:
        mirror.save()


def _child(mirror: Any, url: str, name: str = "", now: dt.datetime | None = None) -> Any:
    if not url.startswith(mirror.remote_url + "/children/"):
        raise Invalid(N_("A child must be of this class."))
    row = store.select_child_by_remote(url)
    if row is None:
        row = directory_store.Child.create(
            school_class=mirror, first_name=name, last_name="", created_at=now or mirror.created_at, remote_url=url
        )  # fmt: skip
    elif name and row.first_name != name:
        row.first_name = name
        row.save()
    return row


def forget(
    ctx: ServiceContext, class_url: str | None, account_id: int, child_url: str | None
) -> None:
    """Our guardian left or was removed, for one child (``child_url``; None: all their
    children there): unlink them; with nobody of ours left, the mirror goes, with its
    messages and files (runs inside the caller's transaction)."""
    mirror = store.select_mirror(class_url, lock=True) if class_url else None
    if mirror is None:
        return
    for child in directory_store.Child.select().where(
        directory_store.Child.school_class == mirror.id
    ):
        if child_url is None or child.remote_url == child_url:
            directory_store.delete_guardianship(child.id, account_id)
    if store.local_guardians_of_class(mirror.id):
        return
    files = store.blobs_of_class(mirror.id)
    store.delete_class(mirror.id)
    blobs = BlobStore(ctx.config.data_dir / "blobs")
    for public_id in files:
        blobs.delete(public_id)


def _mirror(peer_id: int, class_url: str) -> Any:
    mirror = store.select_mirror(class_url, lock=True)
    if mirror is None or mirror.peer_id != peer_id:
        raise Invalid(N_("No guardian of this school is in this class."))
    return mirror


# -- the log and its keys -----------------------------------------------------------------


def apply_entry(ctx: ServiceContext, peer_id: int, class_url: str, obj: dict[str, Any]) -> None:
    mirror = _mirror(peer_id, class_url)
    entry = obj.get("entry")
    if not isinstance(entry, dict) or type(entry.get("seq")) is not int:
        raise Invalid(N_("A log entry is malformed."))
    group = group_store.select_group_of_class(mirror.id, lock=True)
    if group is None:
        if entry["seq"] != 0:
            raise Invalid(N_("The class log must start with its first entry."))
        state = groups.verify_log([entry])
        if group_store.E2eGroup.get_or_none(group_store.E2eGroup.public_id == state.group):
            raise Invalid(N_("This group id is already used."))
        group = group_store.E2eGroup.create(
            public_id=state.group, school_class=mirror, admins=json.dumps(state.admins),
            head_seq=0, head_hash="", created_at=ctx.now(),
        )  # fmt: skip
        groups.store_entries(ctx, group, state, [entry])
        return
    if obj.get("group") != group.public_id:
        raise Invalid(N_("This entry is for another group."))
    if entry["seq"] <= group.head_seq:
        return  # sent again (a school starting over): already here
    if entry["seq"] != group.head_seq + 1:
        raise Invalid(N_("The class log has a gap."))
    state = groups.extend_log(
        group,
        lambda: [json.loads(text) for text in group_store.select_entries(group.id)],
        entry,
        groups.CLASS_LOG_REFUSED,
    )
    groups.store_entries(ctx, group, state, [entry])
    _name_member(ctx, peer_id, group, entry, obj.get("memberName"))


def _name_member(ctx: ServiceContext, peer_id: int, group: Any, entry: Any, name: Any) -> None:
    """A member approved in the class: their name, for our guardians' conversations (a
    shadow account; only the member's own node may rename one, ``_shadow``)."""
    member = entry.get("body", {}).get("member") if entry.get("op") == "add" else None
    if isinstance(member, str) and isinstance(name, str) and not member.endswith("@" + _host(ctx)):
        _shadow(ctx, peer_id, member, _text(name, 120), group)


def apply_key(ctx: ServiceContext, peer_id: int, class_url: str, obj: dict[str, Any]) -> None:
    mirror = _mirror(peer_id, class_url)
    env = obj.get("envelope")
    group = group_store.select_group_of_class(mirror.id)
    if (
        not isinstance(env, dict)
        or set(env) != {"epoch", "member", "enc", "ct"}
        or type(env["epoch"]) is not int
        or group is None
    ):
        raise Invalid(N_("An epoch key is malformed."))
    member = (
        group_store.select_member(group.id, env["member"])
        if isinstance(env["member"], str)
        else None
    )
    if member is None or not member.active or not env["member"].endswith("@" + _host(ctx)):
        raise Invalid(N_("An epoch key must be sealed to a member of this school."))
    if (env["member"], member.enc_pk) in group_store.envelope_holders(group.id, env["epoch"]):
        return
    group_store.EpochEnvelope.create(
        group=group, epoch=env["epoch"], member=env["member"], enc_pk=member.enc_pk,
        envelope=canonical_text(env), created_at=ctx.now(),
    )  # fmt: skip


# -- messages -----------------------------------------------------------------------------


def _public_id(class_url: str, url: Any) -> str:
    prefix = class_url + "/messages/"
    public_id = url[len(prefix) :] if isinstance(url, str) and url.startswith(prefix) else ""
    if not _PUBLIC_ID.fullmatch(public_id):
        raise Invalid(N_("A message id must be of this class."))
    return public_id


def _when(value: Any, now: dt.datetime) -> dt.datetime:
    """The class school's time for an object, never later than ``now``.

    A school whose clock runs fast would otherwise date its posts tomorrow in
    our guardians' feed (and sort them above everything until then); a
    missing or malformed time is the time it arrived.
    """
    try:
        return min(dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ"), now)
    except (TypeError, ValueError):
        return now


def _wire(obj: dict[str, Any], public_id: str) -> tuple[dict[str, Any], str, str]:
    message = obj.get("message")
    header = message.get("header") if isinstance(message, dict) else None
    if (
        not isinstance(header, dict)
        or header.get("id") != public_id
        or not isinstance(message.get("ct"), str)  # type: ignore[union-attr]
        or not isinstance(message.get("sig"), str)  # type: ignore[union-attr]
        or obj.get("kind") not in KINDS
        or type(header.get("version")) is not int
    ):
        raise Invalid(N_("A message is malformed."))
    return header, message["ct"], message["sig"]  # type: ignore[index]


def apply_note(ctx: ServiceContext, peer_id: int, class_url: str, obj: dict[str, Any]) -> None:
    """A message created or changed on the class's node (newer versions only)."""
    mirror = _mirror(peer_id, class_url)
    group = group_store.select_group_of_class(mirror.id, lock=True)
    if group is None:
        raise Invalid(N_("The class log has not arrived yet."))
    public_id = _public_id(class_url, obj.get("id"))
    header, ct, sig = _wire(obj, public_id)
    version = obj["version"]
    row = feed_store.select_message(group.id, public_id, lock=True)
    if row is not None and row.revision >= version:
        return  # ours is as new (or deleted for good)
    parent = None
    if obj["kind"] not in TOP_KINDS:
        parent = feed_store.select_message(group.id, _public_id(class_url, obj.get("inReplyTo")))
        if parent is None or parent.deleted_at is not None:
            return  # the post is gone: so is what answered it
    author_member = _text(obj.get("author"), 128)
    author = _shadow(ctx, peer_id, author_member, _text(obj.get("authorName"), 120), group)
    now = ctx.now()
    fields = dict(
        kind=obj["kind"], parent=parent, author=author, author_member=author_member,
        epoch=header.get("epoch") if type(header.get("epoch")) is int else None,
        version=header["version"], header=canonical_text(header), ct=ct, sig=sig,
        comments_enabled=obj.get("commentsEnabled") is not False, revision=version,
        priority=obj["priority"] if obj.get("priority") in ("action", "urgent") else "info",
        updated_at=_when(obj.get("updated"), now),
    )  # fmt: skip
    new = row is None
    if row is None:
        row = feed_store.Message.create(
            group=group, public_id=public_id, created_at=_when(obj.get("published"), now), **fields
        )
    else:
        for name, value in fields.items():
            setattr(row, name, value)
        row.save()
    _children(row, mirror, obj.get("children"), new)
    keys = _keys(ctx, row, obj.get("keys"), new)
    _attachments(ctx, peer_id, row, group, author, obj.get("attachment"), new)
    if obj["kind"] == "post":  # an event, sign-up, slip or poll: its structure and places taken
        action_mirrors.apply_remote(row, obj.get("action"))
    if new and obj["kind"] in ("post", "share"):
        _notify(ctx, mirror, group, row, keys, author)
    if obj["kind"] in chat_mirrors.KINDS or obj["kind"] == "absence":
        chat_mirrors.apply(ctx, mirror, row, obj, new, keys)


def _children(row: Any, mirror: Any, urls: Any, new: bool) -> None:
    if not isinstance(urls, list):
        urls = []
    wanted = {_child(mirror, u).id for u in urls if isinstance(u, str)}
    if not new:  # (a new message has none yet: one query less per message)
        feed_store.MessageChild.delete().where(feed_store.MessageChild.message == row.id).execute()
    for child_id in sorted(wanted):
        feed_store.MessageChild.create(message=row, child=child_id)


def _keys(ctx: ServiceContext, row: Any, keys: Any, new: bool) -> set[str] | None:
    """Store the keys sealed to our members; the members it is for (None: the class)."""
    if not new:
        feed_store.MessageKey.delete().where(feed_store.MessageKey.message == row.id).execute()
    if not isinstance(keys, list) or not keys:
        return None
    ours = set()
    for key in keys:
        member = key.get("member") if isinstance(key, dict) else None
        if isinstance(member, str) and member.endswith("@" + _host(ctx)) and member not in ours:
            feed_store.MessageKey.create(message=row, member=member, sealed=canonical_text(key))
            ours.add(member)
    return ours


def _attachments(
    ctx: ServiceContext, peer_id: int, row: Any, group: Any, owner: int | None, items: Any,
    new: bool,
) -> None:  # fmt: skip
    """Blob rows to fetch from the class's node on first download (status ``remote``)."""
    if new and not items:
        return
    peer = peer_store.select_peer(peer_id)
    assert peer is not None
    prefix = peer.origin + "/np/media/"
    wanted = {}
    for item in items if isinstance(items, list) else []:
        url = item.get("url") if isinstance(item, dict) else None
        size, digest = (item.get("size"), item.get("digest")) if isinstance(item, dict) else (0, "")
        if not isinstance(url, str) or not url.startswith(prefix) or type(size) is not int:
            raise Invalid(N_("An attachment is malformed."))
        wanted[url[len(prefix) :][:22]] = (size, digest if isinstance(digest, str) else "")
    files = BlobStore(ctx.config.data_dir / "blobs")
    for blob in feed_store.blobs_of_message(row.id):
        if blob.public_id not in wanted:
            blob.delete_instance()
            files.delete(blob.public_id)
    for public_id, (size, digest) in wanted.items():
        known = feed_store.select_blob(public_id)
        if known is None:
            feed_store.Blob.create(
                public_id=public_id, owner=owner, group=group, message=row, size=size,
                sha256=digest[:43] or None, status="remote", created_at=ctx.now(),
            )  # fmt: skip
        elif known.group_id != group.id:
            raise Invalid(N_("An attachment belongs to another class."))


def _notify(
    ctx: ServiceContext, mirror: Any, group: Any, row: Any, keys: set[str] | None, author: Any
) -> None:
    """Our guardians in the class hear of a new post (or a share sealed to them)."""
    linked = store.local_guardians_of_class(mirror.id)
    members = group_store.select_members(group.id)
    to = [
        m.account_id for m in members
        if m.active and m.account_id in linked and m.account_id != author
        and (keys is None or m.member in keys)
    ]  # fmt: skip
    notifications.enqueue(
        ctx, kind=row.kind, account_ids=sorted(set(to)), class_id=mirror.id, message_id=row.id,
        digest=row.kind == "post" and row.priority == "info",
    )  # fmt: skip


def remind(
    ctx: ServiceContext, peer_id: int, class_url: str, url: Any, to: Iterable[str]
) -> list[int]:
    """The teacher reminded who has not read a post: ``to`` names ours (``{origin}/users/{id}``);
    those still linked to the class who have not read it here are notified again."""
    mirror = _mirror(peer_id, class_url)
    group = group_store.select_group_of_class(mirror.id)
    row = feed_store.select_message(group.id, _public_id(class_url, url)) if group else None
    if row is None or row.deleted_at is not None or row.kind != "post":
        return []  # deleted since, or not here yet: nothing to remind of
    prefix = f"{ctx.config.origin}/users/"
    # ASCII digits of a sane length: int() refuses "²" and 5,000 digits (a peer's addresses)
    named = {
        int(tail)
        for a in to
        if a.startswith(prefix)
        and (tail := a[len(prefix) :]).isascii()
        and tail.isdigit()
        and len(tail) < 17
    }
    linked = {link.account_id for link in directory_store.guardian_links_of_class(mirror.id)}
    read = set(feed_store.read_by([row.id]).get(row.id, {}))
    unread = sorted((named & linked) - read)
    notifications.enqueue(
        ctx, kind="reminder", account_ids=unread, class_id=mirror.id, message_id=row.id
    )
    return unread


def reply_refused(ctx: ServiceContext, peer_id: int, public_id: str) -> bool:
    """The class's node refused a reply our guardian wrote on its class (comments switched
    off meanwhile, a post deleted…): it exists nowhere else, so it goes here too.

    Returns whether a reply of a class mirrored from that peer was withdrawn.
    """
    row = feed_store.Message.get_or_none(
        (feed_store.Message.public_id == public_id) & feed_store.Message.deleted_at.is_null()
    )
    group = group_store.select_group(row.group_id) if row is not None else None
    mirror = directory_store.select_class(group.school_class_id) if group is not None else None
    if row is None or row.kind == "post" or mirror is None or mirror.peer_id != peer_id:
        return False
    feed_store.MessageKey.delete().where(feed_store.MessageKey.message == row.id).execute()
    row.header = row.ct = row.sig = None
    row.deleted_at = ctx.now()
    row.save()
    return True


def apply_tombstone(ctx: ServiceContext, peer_id: int, class_url: str, obj: dict[str, Any]) -> None:
    """A message deleted on the class's node: its ciphertext, keys and files go here too."""
    mirror = _mirror(peer_id, class_url)
    group = group_store.select_group_of_class(mirror.id, lock=True)
    public_id = _public_id(class_url, obj.get("id"))
    if group is None:
        return  # nothing of the class is here yet: nothing to delete
    row = feed_store.select_message(group.id, public_id, lock=True)
    if row is None:  # deleted before it arrived: keep the tombstone, so it never shows
        now = ctx.now()
        feed_store.Message.create(
            group=group, public_id=public_id, kind="post", author=None, author_member="",
            epoch=None, version=0, header=None, ct=None, sig=None, created_at=now,
            updated_at=now, deleted_at=now, revision=obj["version"],
        )  # fmt: skip
        return
    if row.revision >= obj["version"]:
        return
    files = BlobStore(ctx.config.data_dir / "blobs")
    targets = [row] + (feed_store.select_replies([row.id]) if row.kind == "post" else [])
    for target in targets:
        for blob in feed_store.blobs_of_message(target.id):
            blob.delete_instance()
            files.delete(blob.public_id)
        feed_store.MessageKey.delete().where(feed_store.MessageKey.message == target.id).execute()
        target.header = target.ct = target.sig = None
        target.deleted_at = ctx.now()
        target.save()
    row.revision = obj["version"]
    row.save()
