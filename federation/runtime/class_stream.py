"""A class's content on its stream, for the schools of its members (NP/1 §6.1, class side).

What the class stream carries, as objects on this node's origin:

- ``GroupEntry`` ``{class}/log/{seq}``: one signed entry of the class's
  membership log, for every school with an approved member;
- ``EpochKey`` ``{class}/keys/{epoch}/{member}/{enc key}``: an epoch key
  sealed to one member, for that member's school only;
- ``Class`` ``{class}``: its settings, and (``families``) for a school with a
  guardian of a child whose family changed, the approved guardians of its own
  guardians' children: whom family threads and replies for a family are
  sealed to;
- ``Note`` ``{class}/messages/{id}``: a post, comment, reaction or share as
  ciphertext, with the keys sealed to that school's members, the children it
  concerns and its attachments (fetched with a signed GET, §7.2), for the
  schools of the members who may read it; its ``version`` is the message's
  revision, so edits and deletes (``Tombstone``) are ordered by the class's
  node alone.

Rules: nothing is published for a class without members on other nodes (no
log row, no cost); a school whose first member the teacher approves gets
the class as it is now, before the entries that approve them, so its copy
of the log verifies from the start; a delete also purges the ciphertext of
every activity that carried the message, so neither delivery nor a pull
ever serves it again.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from federation.encoding import format_timestamp
from federation.runtime import chat_stream, outbox
from federation.runtime.peers import unix
from node.services import action_mirrors, chat_membership, groups
from node.services.context import ServiceContext
from node.storage import accounts as account_store
from node.storage import directory as directory_store
from node.storage import feed as feed_store
from node.storage import groups as group_store
from node.storage import mirrors as store
from node.storage import peers as peer_store


def class_url(ctx: ServiceContext, class_id: int) -> str:
    return f"{ctx.config.origin}/classes/{class_id}"


def message_url(class_id_url: str, public_id: str) -> str:
    return f"{class_id_url}/messages/{public_id}"


class _Members:
    """The class's members on other nodes: peer origin → {member id: actor id there}."""

    def __init__(self, group: Any) -> None:
        self.class_id = group.school_class_id
        self._children: dict[int, set[str]] | None = None
        self.by_origin: dict[str, dict[str, str]] = defaultdict(dict)
        rows = store.remote_active_members(group.id, group.school_class_id)
        peers = {p.id: p for p in peer_store.select_peers_by_id(sorted({p for _, p in rows}))}
        for member, peer_id in rows:
            peer = peers.get(peer_id)
            local, _, host = member.partition("@")
            if peer is not None and peer.origin.split("://", 1)[1] == host:
                self.by_origin[peer.origin][member] = f"{peer.origin}/users/{local}"

    def recipients(self, only: set[str] | None = None) -> dict[str, list[str]]:
        """Peer origin → actor ids, of every member or of those in ``only``."""
        found = {}
        for origin, members in self.by_origin.items():
            ids = [actor for m, actor in members.items() if only is None or m in only]
            if ids:
                found[origin] = ids
        return found

    @property
    def all(self) -> set[str]:
        return {m for members in self.by_origin.values() for m in members}

    def children_of(self, child_id: int) -> set[str]:
        """The members of other schools who are guardians of that child."""
        if self._children is None:
            self._children = defaultdict(set)
            for link in directory_store.guardian_links_of_class(self.class_id):
                if link.remote_member:
                    self._children[link.child_id].add(link.remote_member)
        return self._children.get(child_id, set())


def _publish(
    ctx: ServiceContext, cu: str, type_: str, obj: dict[str, Any], to: dict[str, list[str]]
) -> None:
    if to:
        outbox.publish(
            ctx, stream=cu, kind="class", type=type_, actor=cu, audience=cu + "#members",
            object=obj, recipients=to,
        )  # fmt: skip


# -- objects ------------------------------------------------------------------------------


def _entry_object(
    ctx: ServiceContext, cu: str, group: Any, entry: dict[str, Any]
) -> dict[str, Any]:
    obj = {
        "id": f"{cu}/log/{entry['seq']}", "type": "GroupEntry", "version": 1,
        "attributedTo": cu, "group": group.public_id, "entry": entry,
    }  # fmt: skip
    if entry.get("op") == "add":  # the person's name, as parents of the class see it
        member = entry.get("body", {}).get("member")
        account_id = groups.account_of_member(ctx, member) if isinstance(member, str) else None
        account = account_store.select_account(account_id) if account_id else None
        if account is not None:
            obj["memberName"] = account.display_name
    return obj


def _key_object(cu: str, envelope: dict[str, Any], enc_pk: str) -> dict[str, Any]:
    return {
        "id": f"{cu}/keys/{envelope['epoch']}/{envelope['member']}/{enc_pk}",
        "type": "EpochKey", "version": 1, "attributedTo": cu, "envelope": envelope,
    }  # fmt: skip


@dataclass
class _Note:
    """A message as the stream announces it, before it is fitted to each school."""

    obj: dict[str, Any]
    #: message keys sealed to members (a post for some families, a reply on one, a share)
    keys: list[dict[str, Any]]
    #: the children a post for some families concerns
    children: list[int]
    #: a conversation's opening is for its members, not its keys' holders (those it
    #: was first sealed to); a class's parents' room is for every member
    opening_for: set[str] | None = None
    to_everyone: bool = False

    @property
    def audience(self) -> set[str] | None:
        """The members it is for (None: every member)."""
        if self.to_everyone:
            return None
        if self.opening_for is not None:
            return self.opening_for
        return {k["member"] for k in self.keys} if self.keys else None


def _notes(ctx: ServiceContext, cu: str, rows: list[Any]) -> list[_Note]:
    """The Notes of live messages, with a fixed number of queries for any number."""
    ids = [row.id for row in rows]
    keys = store.sealed_keys_of(ids)
    children = feed_store.children_of_messages(ids)
    files = store.blobs_of(ids)
    authors = account_store.select_accounts({r.author_id for r in rows if r.author_id})
    public_ids = store.public_ids_of({r.parent_id for r in rows if r.parent_id})
    asks = action_mirrors.note_actions(ids)  # events, sign-ups, slips, polls: their structure
    extras = chat_stream.note_extras(rows)  # conversations, absence notes
    notes = []
    for row in rows:
        author = authors.get(row.author_id) if row.author_id else None
        obj: dict[str, Any] = {
            "id": message_url(cu, row.public_id), "type": "Note", "version": row.revision,
            "attributedTo": cu, "kind": row.kind, "author": row.author_member,
            "authorName": author.display_name if author else "",
            "commentsEnabled": bool(row.comments_enabled), "priority": row.priority,
            "message": {"header": json.loads(row.header), "ct": row.ct, "sig": row.sig},
            "published": format_timestamp(unix(row.created_at)),
            "updated": format_timestamp(unix(row.updated_at)),
            "attachment": [
                {"type": "Document", "url": f"{ctx.config.origin}/np/media/{b.public_id}",
                 "size": b.size, "digest": b.sha256 or ""}
                for b in files.get(row.id, []) if b.status == "complete"
            ],
        }  # fmt: skip
        if row.id in asks:
            obj["action"] = asks[row.id]
        if row.parent_id:
            obj["inReplyTo"] = message_url(cu, public_ids[row.parent_id])
        note = _Note(obj, [json.loads(k) for k in keys.get(row.id, [])], children.get(row.id, []))
        if row.id in extras:
            fields, members = extras[row.id]
            obj.update(fields)
            if row.kind == "conversation":
                note.opening_for, note.to_everyone = members, members is None
        notes.append(note)
    return notes


def _fitted(
    cu: str, note: _Note, members: _Members, only: str | None = None
) -> list[tuple[dict[str, Any], dict[str, list[str]]]]:
    """(object, recipients) per school: each school's copy names only its own members'
    keys and its own members' children, so no school learns which families of another
    school a message is for.  ``only``: that school's copy alone."""
    to = members.recipients(note.audience)
    if only is not None:
        to = {only: to[only]} if only in to else {}
    if not note.keys and not note.children:
        return [(note.obj | {"keys": [], "children": []}, to)] if to else []
    fitted = []
    for origin, actors in sorted(to.items()):
        theirs = set(members.by_origin[origin])
        kids = [c for c in note.children if members.children_of(c) & theirs]
        obj = note.obj | {
            "keys": [k for k in note.keys if k["member"] in theirs],
            "children": [f"{cu}/children/{c}" for c in kids],
        }
        fitted.append((obj, {origin: actors}))
    return fitted


def _announce_message(ctx: ServiceContext, cu: str, row: Any, members: _Members) -> None:
    if row.deleted_at is not None or row.header is None:
        return
    [note] = _notes(ctx, cu, [row])
    for obj, to in _fitted(cu, note, members):
        _publish(ctx, cu, "Create" if row.revision == 1 else "Update", obj, to)


# -- events -------------------------------------------------------------------------------


def _snapshot(
    ctx: ServiceContext, cu: str, group: Any, upto: int, members: _Members, origin: str
) -> None:
    """The class as it is (log before ``upto``, live messages), for a school whose
    first member was just approved: then its copy of the log verifies from the start."""
    to = {origin: list(members.by_origin[origin].values())}
    items = []
    for text in group_store.select_entries(group.id):
        entry = json.loads(text)
        if entry["seq"] < upto:
            items.append(outbox.Outgoing("Create", _entry_object(ctx, cu, group, entry), to))
    rows = store.live_messages(group.id)  # a post before its replies
    for row, note in zip(rows, _notes(ctx, cu, rows), strict=True):
        for obj, their in _fitted(cu, note, members, only=origin):
            items.append(outbox.Outgoing("Create" if row.revision == 1 else "Update", obj, their))
    outbox.publish_many(
        ctx, stream=cu, kind="class", actor=cu, audience=cu + "#members", items=items
    )


def class_entries(ctx: ServiceContext, payload: dict[str, Any]) -> None:
    """New log entries of a class, and the envelopes sealed with them."""
    group = group_store.select_group(payload["group_id"])
    if group is None:
        return
    cu = class_url(ctx, group.school_class_id)
    members = _Members(group)
    first = payload["first_seq"]
    new_origins = [
        o for o in (_origin(p) for p in payload.get("new_peers", [])) if o in members.by_origin
    ]
    for origin in new_origins:
        _snapshot(ctx, cu, group, first, members, origin)
    added, removed = set(), False  # who was approved; whether anyone was removed
    for text in group_store.select_entries(group.id):
        entry = json.loads(text)
        if entry["seq"] >= first:
            _publish(ctx, cu, "Create", _entry_object(ctx, cu, group, entry), members.recipients())
            if entry.get("op") == "add":
                added.add(entry.get("body", {}).get("member"))
            removed = removed or entry.get("op") == "remove"
    again = {m for o in new_origins for m in members.by_origin[o]}
    _envelopes(ctx, cu, group, members, set(payload.get("members", [])) | again, again)
    if added or removed:
        # a guardian approved or removed: the schools of a child's guardians learn the
        # child's family as it is now, and family threads of the class their new people
        changed = None if removed else _children_of(ctx, group.school_class_id, added)
        _families_changed(ctx, cu, group, members, changed, new_origins)
        chat_membership.refresh_families(ctx, group.school_class_id)


def families_changed(ctx: ServiceContext, payload: dict[str, Any]) -> None:
    """A guardian was linked to or unlinked from children of the class outside its log
    (unlinked by the teacher, erased, left from their node, or an approved member linked
    to another child): as for an approval or a removal, the schools of those children's
    guardians learn their families, and family threads their new people."""
    group = group_store.select_group_of_class(payload["class_id"])
    if group is None:
        return
    cu = class_url(ctx, group.school_class_id)
    _families_changed(ctx, cu, group, _Members(group), set(payload["children"]), [])
    chat_membership.refresh_families(ctx, group.school_class_id)


def _children_of(ctx: ServiceContext, class_id: int, members: set[str]) -> set[int]:
    """The children of the class those members are guardians of."""
    return {
        link.child_id
        for link in directory_store.guardian_links_of_class(class_id)
        if groups.link_member(ctx, link) in members
    }


def _origin(peer_id: int) -> str | None:
    peer = peer_store.select_peer(peer_id)
    return peer.origin if peer else None


def _envelopes(
    ctx: ServiceContext, cu: str, group: Any, members: _Members, wanted: set[str], again: set[str]
) -> None:
    """Epoch keys sealed to ``wanted`` members of other schools, each sent once (to
    ``again``, a school starting over, all of theirs)."""
    wanted &= members.all
    for row in group_store.EpochEnvelope.select().where(
        (group_store.EpochEnvelope.group == group.id)
        & group_store.EpochEnvelope.member.in_(sorted(wanted) or [""])
    ).order_by(group_store.EpochEnvelope.id):  # fmt: skip
        obj = _key_object(cu, json.loads(row.envelope), row.enc_pk)
        if row.member in again or not store.peers_told_about(obj["id"]):
            _publish(ctx, cu, "Create", obj, members.recipients({row.member}))


def envelopes(ctx: ServiceContext, payload: dict[str, Any]) -> None:
    """The teacher sealed keys again (no log change): those of members of other schools."""
    group = group_store.select_group(payload["group_id"])
    if group is None:
        return
    members = _Members(group)
    cu = class_url(ctx, group.school_class_id)
    _envelopes(ctx, cu, group, members, set(payload["members"]), set())


def message_changed(ctx: ServiceContext, payload: dict[str, Any]) -> None:
    row = feed_store.Message.get_or_none(feed_store.Message.id == payload["message_id"])
    if row is None:
        return
    group = group_store.select_group(row.group_id)
    assert group is not None
    members = _Members(group)
    if members.by_origin:
        _announce_message(ctx, class_url(ctx, group.school_class_id), row, members)


def messages_deleted(ctx: ServiceContext, payload: dict[str, Any]) -> None:
    """A Tombstone for the schools that were told about the deleted message (the first
    of ``messages``; the others are its replies, which their nodes delete with it), and
    the ciphertext the stream carried for each of them purged."""
    cu = class_url(ctx, payload["class_id"])
    [public_id, revision], *replies = payload["messages"]
    object_id = message_url(cu, public_id)
    told = store.peers_told_about(object_id)
    for reply_id, _ in replies:
        store.purge_announcements(message_url(cu, reply_id))
    if not told:
        return
    store.purge_announcements(object_id)
    tombstone = {
        "id": object_id, "type": "Tombstone", "formerType": "Note", "version": revision + 1,
        "deleted": format_timestamp(unix(ctx.now())),
    }  # fmt: skip
    group = group_store.select_group_of_class(payload["class_id"])
    members = _Members(group) if group else None
    to = {}
    for peer in peer_store.select_peers_by_id(sorted(told)):
        if members and peer.origin in members.by_origin:  # the others purged the class
            to[peer.origin] = list(members.by_origin[peer.origin].values())
    _publish(ctx, cu, "Delete", tombstone, to)


def child_url(ctx: ServiceContext, class_id: int, child_id: int) -> str:
    return f"{class_url(ctx, class_id)}/children/{child_id}"


def class_info(ctx: ServiceContext, class_id: int, child_id: int | None) -> dict[str, Any]:
    """What a guardian's home node shows of the class (sent with the Accept)."""
    school_class = directory_store.select_class(class_id)
    assert school_class is not None
    teacher = account_store.select_account(school_class.teacher_id)
    child = directory_store.select_child(child_id) if child_id else None
    info: dict[str, Any] = {
        "name": school_class.name, "schoolYear": school_class.school_year,
        "school": ctx.config.school_name, "teacherName": teacher.display_name if teacher else "",
        "commentsEnabled": bool(school_class.comments_enabled),
        "teacher": f"{school_class.teacher_id}@{ctx.config.origin.split('://', 1)[1]}",
        "parentChat": school_class.parent_chat, "familyThreads": school_class.family_threads,
        "officeHours": school_class.office_hours,
        "awayUntil": school_class.away_until.isoformat() if school_class.away_until else None,
    }  # fmt: skip
    if child is not None:
        info["child"] = {"id": child_url(ctx, class_id, child.id), "name": child.first_name}
        family = families(ctx, class_id, {child.id}).get(child.id)
        info["child"]["guardians"] = family["guardians"] if family else []
    return info


def families(ctx: ServiceContext, class_id: int, child_ids: set[int]) -> dict[int, dict[str, Any]]:
    """Child id → ``{id, name, guardians}``: the child's approved guardians (``{member,
    name}``), whom a family thread or a post for the child's family is sealed to with the
    teacher.  Their schools' nodes are told, so their guardians seal to the same people."""
    if not child_ids:
        return {}
    group = group_store.select_group_of_class(class_id)
    links = directory_store.guardian_links_of_class(class_id, sorted(child_ids))
    member_of = {(link.child_id, link.account_id): groups.link_member(ctx, link) for link in links}
    active = (
        group_store.active_members(group.id, sorted(set(member_of.values()))) if group else set()
    )
    names = directory_store.child_names(class_id, sorted(child_ids))
    out: dict[int, dict[str, Any]] = {
        c: {"id": child_url(ctx, class_id, c), "name": names[c], "guardians": []}
        for c in sorted(child_ids) if c in names
    }  # fmt: skip
    for link in links:
        member = member_of[(link.child_id, link.account_id)]
        if link.child_id in out and member in active:
            out[link.child_id]["guardians"].append({"member": member, "name": link.display_name})
    return out


def _families_changed(
    ctx: ServiceContext, cu: str, group: Any, members: _Members, children: set[int] | None,
    new_origins: list[str],
) -> None:  # fmt: skip
    """Each school with a guardian of a child whose family changed gets the families of its
    own members' children (never another school's): a ``Class`` update.  ``children``:
    those whose families changed; None: any child's (a removed member's links are gone
    already).  A school whose first members these are is told by their Accept."""
    class_id = group.school_class_id
    links = directory_store.guardian_links_of_class(class_id)
    changed = {link.child_id for link in links if children is None or link.child_id in children}
    kids_of: dict[str, set[int]] = defaultdict(set)
    for link in links:
        for origin, theirs in members.by_origin.items():
            if (
                link.remote_member in theirs
                and link.child_id in changed
                and origin not in new_origins
            ):
                kids_of[origin].add(link.child_id)
    found = families(ctx, class_id, {c for kids in kids_of.values() for c in kids})
    if not found:
        return
    info = class_info(ctx, class_id, None)
    version = 2 + store.announcements_of(cu)
    for origin, kids in sorted(kids_of.items()):
        obj = {
            "id": cu, "type": "Class", "version": version, "attributedTo": cu, **info,
            "families": [found[c] for c in sorted(kids) if c in found],
        }  # fmt: skip
        _publish(ctx, cu, "Update", obj, {origin: list(members.by_origin[origin].values())})


def class_changed(ctx: ServiceContext, payload: dict[str, Any]) -> None:
    """The class's settings changed (comments on or off): an Update of the ``Class``
    object, numbered by how many the stream carried before."""
    group = group_store.select_group_of_class(payload["class_id"])
    members = _Members(group) if group else None
    if not members or not members.by_origin:
        return
    cu = class_url(ctx, payload["class_id"])
    info = class_info(ctx, payload["class_id"], None)
    version = 2 + store.announcements_of(cu)
    obj = {"id": cu, "type": "Class", "version": version, "attributedTo": cu, **info}
    _publish(ctx, cu, "Update", obj, members.recipients())


def post_reminder(ctx: ServiceContext, payload: dict[str, Any]) -> None:
    """The teacher reminded who has not read a post: those living on other nodes, through
    their node (``Remind`` of the message, ``to`` them)."""
    row = feed_store.Message.get_or_none(feed_store.Message.id == payload["message_id"])
    group = group_store.select_group(row.group_id) if row is not None else None
    if row is None or group is None:
        return
    cu = class_url(ctx, payload["class_id"])
    members = _Members(group)
    accounts = set(payload["accounts"])
    chosen = {
        m for m, account in groups.accounts_of_members(ctx, members.all).items()
        if account in accounts
    }  # fmt: skip
    to = members.recipients(chosen)
    if to:
        outbox.publish(
            ctx, stream=cu, kind="class", type="Remind", actor=cu, audience=cu + "#members",
            object=message_url(cu, row.public_id), recipients=to,
        )  # fmt: skip


TRANSLATORS = {
    "post_reminder": post_reminder,
    "class_changed": class_changed,
    "class_entries": class_entries,
    "families_changed": families_changed,
    "class_envelopes": envelopes,
    "message_changed": message_changed,
    "messages_deleted": messages_deleted,
}
