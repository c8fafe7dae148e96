"""A class of another school, on the home node of one of its guardians (NP/1 class streams).

School B (a FakePeer) runs the class; this node's guardian joined it.  B
accepts them (with what to show of the class), then sends the class's log,
the key sealed to them and its posts; the guardian reads them in their one
feed, next to their own school's class, and decrypts them; their comment
and read go back to B on this node's peer stream; edits and deletes apply
by version; a Remove purges the class here.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from pytest_httpx import HTTPXMock
from quart.typing import TestClientProtocol as Client

from federation.runtime import delivery
from node import refclient_groups as rc
from node.e2e.encoding import b64url_encode
from node.e2e.keys import AccountKeys, generate_account_keys
from node.errors import PermissionDenied
from node.services import chat_views, directory, feed, groups, posts
from node.services.context import Actor, ServiceContext
from node.storage import activities as fed_store
from node.storage import directory as directory_store
from node.storage import feed as feed_store
from node.storage import mirrors as mirror_store
from node.storage import notifications as notification_store
from node.storage import peers as peer_store
from node.storage import remote_join as join_store
from node.storage.db import Storage
from tests.conftest import PUBLIC_URL
from tests.factories import client_account, invite, make_guardian, make_school
from tests.federation.runtime.peer_factories import (
    B,
    FakePeer,
    activity,
    peered,
    put_transaction,
    transaction,
    txn_id,
)

CLASS = B + "/classes/7"
TEACHER = "5@ecole-b.example"
HOST = PUBLIC_URL.split("://", 1)[1]
FOLLOW = PUBLIC_URL + "/np/act/follow-1"
PHONE = "+33639980011"


@dataclass
class ClassAtB:
    """B's side, played here: the teacher's keys, the class log and what B has sent."""

    peer: FakePeer
    guardian: Actor
    me: str
    keys: AccountKeys
    teacher_keys: AccountKeys = field(default_factory=generate_account_keys)
    log: list[dict[str, Any]] = field(default_factory=list)
    epoch_key: bytes = b""
    seq: dict[str, int] = field(default_factory=dict)

    @property
    def actor(self) -> str:
        return f"{PUBLIC_URL}/users/{self.guardian.account_id}"

    def activity(self, stream: str, type_: str, obj: Any, **extra: Any) -> dict[str, Any]:
        seq = self.seq[stream] = self.seq.get(stream, 0) + 1
        return activity(
            self.peer, seq, type=type_, stream=stream, actor=CLASS, object=obj,
            to=[self.actor], extra=extra or None,
        )  # fmt: skip

    def resigned(self, item: dict[str, Any], **changes: Any) -> dict[str, Any]:
        """``item`` with its object changed, signed again in its place in the stream."""
        self.seq[item["stream"]] -= 1
        return self.activity(item["stream"], item["type"], item["object"] | changes)

    async def send(self, client: Client, *items: dict[str, Any]) -> dict[str, Any]:
        streams: dict[str, tuple[int, int]] = {}
        for item in items:
            low, _ = streams.get(item["stream"], (item["seq"] - 1, 0))
            streams[item["stream"]] = (low, item["seq"])
        txn = txn_id()
        body = transaction(self.peer, txn, list(items), streams=streams)
        answer = await (await put_transaction(client, self.peer, txn, body)).get_json()
        results: dict[str, Any] = answer["results"]
        return results

    def entry(self, entry: dict[str, Any]) -> dict[str, Any]:
        obj = {"id": f"{CLASS}/log/{entry['seq']}", "type": "GroupEntry", "version": 1,
               "attributedTo": CLASS, "group": entry["group"], "entry": entry}  # fmt: skip
        return self.activity(CLASS, "Create", obj)

    def note(self, text: str, *, version: int = 1, message_id: str | None = None) -> dict[str, Any]:
        state = rc.g.verify_log(self.log)
        request = rc.encrypt(
            self.teacher_keys, TEACHER, state, {0: self.epoch_key}, "post", {"text": text},
            message_id=message_id, version=version,
        )  # fmt: skip
        public_id = request["message"]["header"]["id"]
        obj = {
            "id": f"{CLASS}/messages/{public_id}", "type": "Note", "version": version,
            "attributedTo": CLASS, "kind": "post", "author": TEACHER, "authorName": "M. Martin",
            "commentsEnabled": True, "message": request["message"], "keys": [], "children": [],
            "published": "2026-11-29T08:00:00Z", "updated": "2026-11-29T08:00:00Z",
            "attachment": [],
        }  # fmt: skip
        return self.activity(CLASS, "Create" if version == 1 else "Update", obj)


@pytest.fixture
async def school_b(
    client: Client, storage: Storage, ctx: ServiceContext, httpx_mock: HTTPXMock
) -> ClassAtB:
    school = make_school(storage, ctx)
    slip = invite(storage, ctx, school.teacher, school.child_id, phone=PHONE, name="Parent H")
    guardian = make_guardian(storage, ctx, slip.code, PHONE)
    peer = FakePeer()
    await peered(client, storage, ctx, httpx_mock, peer, school=False)

    def request() -> None:  # the guardian typed B's access code and SMS code: linked
        b = peer_store.select_peer_by_origin(B)
        now = dt.datetime(2026, 11, 28)
        join_store.JoinRequest.create(
            account=guardian.account_id, peer=b, follow_id=FOLLOW, join_id="j1", state="linked",
            class_name="CE1", child_first_name="Léa", created_at=now, updated_at=now,
        )  # fmt: skip

    storage.call(request)
    me = f"{guardian.account_id}@{HOST}"
    return ClassAtB(peer, guardian, me, client_account(PHONE).keys)


async def accept_and_open(b: ClassAtB, client: Client) -> dict[str, Any]:
    """B's teacher approved our guardian: the Accept, the log, their key."""
    info = {"name": "CE1 B", "schoolYear": "2026-2027", "school": "École B", "teacher": TEACHER,
            "teacherName": "M. Martin", "commentsEnabled": True,
            "child": {"id": CLASS + "/children/3", "name": "Léa"}}  # fmt: skip
    accept = b.activity(f"{B}/peers/{HOST}", "Accept", FOLLOW, target=CLASS, **{"class": info})
    b.log, envelopes, b.epoch_key = rc.setup_group(b.teacher_keys, TEACHER)
    candidate = {"member": b.me, "role": "guardian", "sign_pk": b64url_encode(b.keys.sign_pk),
                 "enc_pk": b64url_encode(b.keys.enc_pk)}  # fmt: skip
    added, sealed = rc.approve(b.teacher_keys, b.log, [candidate], b.epoch_key)
    b.log += added
    key = {"id": f"{CLASS}/keys/0/{b.me}/{candidate['enc_pk']}", "type": "EpochKey",
           "version": 1, "attributedTo": CLASS, "envelope": sealed[0]}  # fmt: skip
    items = [accept] + [b.entry(e) for e in b.log] + [b.activity(CLASS, "Create", key)]
    return await b.send(client, *items)


def read_feed(storage: Storage, ctx: ServiceContext, b: ClassAtB) -> list[dict[str, Any]]:
    """The guardian's feed, decrypted as their browser does."""
    page = storage.call(feed.my_feed, ctx, b.guardian)
    out = []
    for item in page.items:
        view = storage.call(groups.group_view, ctx, b.guardian, item.class_id)
        state, keys = rc.open_epoch_keys(
            {"entries": view.entries, "envelopes": view.envelopes, "me": b.me}, b.keys
        )
        wire = {"message": item.message, "key": item.key}
        out.append({"class": item.class_name, "children": item.children,
                    "body": rc.decrypt(wire, state, keys, b.keys, b.me)})  # fmt: skip
    return out


def notified(storage: Storage, account_id: int) -> list[str]:
    def kinds() -> list[str]:
        query = notification_store.Notification.select().where(
            notification_store.Notification.account == account_id
        )
        return [n.kind for n in query]

    return storage.call(kinds)


def sent_to_b(storage: Storage) -> list[dict[str, Any]]:
    def rows() -> list[Any]:
        peer = peer_store.select_peer_by_origin(B)
        assert peer is not None
        return fed_store.pending_for(peer.id, 1000)

    return [json.loads(body) for *_, body, _to in storage.call(rows)]


async def test_the_guardian_reads_the_class_of_another_school_in_their_one_feed(
    client: Client, storage: Storage, ctx: ServiceContext, school_b: ClassAtB
) -> None:
    b = school_b
    answers = await accept_and_open(b, client)
    assert all(result == {} for result in answers.values()), json.dumps(answers, indent=0)
    first = b.note("Sortie au musée jeudi")
    assert await b.send(client, first) == {first["id"]: {}}
    [item] = read_feed(storage, ctx, b)
    assert item == {
        "class": "CE1 B",
        "children": ["Léa"],
        "body": {"text": "Sortie au musée jeudi"},
    }
    assert notified(storage, b.guardian.account_id) == ["post"]
    # labelled with the school it comes from, in the feed and on the child's card
    [page_item] = storage.call(feed.my_feed, ctx, b.guardian).items
    assert page_item.school == "École B"
    cards = storage.call(directory.my_children, ctx, b.guardian)
    assert {(c.first_name, c.school) for c in cards} == {("Léa", "École B"), ("Léa", None)}

    # the class of another school is nobody's to manage here
    def listed() -> list[str]:
        return [c.name for c in directory_store.select_all_classes()]

    assert "CE1 B" not in storage.call(listed)


async def test_a_post_dated_by_a_fast_clock_is_dated_when_it_arrived(
    client: Client, storage: Storage, ctx: ServiceContext, school_b: ClassAtB
) -> None:
    b = school_b
    await accept_and_open(b, client)
    ahead = b.resigned(b.note("Demain"), published="2099-01-01T00:00:00Z")
    earlier = b.resigned(b.note("Hier"), published="2026-11-27T08:00:00Z")
    sent_at = ctx.now()
    assert await b.send(client, ahead, earlier) == {ahead["id"]: {}, earlier["id"]: {}}
    arrived_by = ctx.now()
    page = storage.call(feed.my_feed, ctx, b.guardian)
    dated = {
        read["body"]["text"]: item.created_at
        for item, read in zip(page.items, read_feed(storage, ctx, b), strict=True)
    }
    # the one from the future is dated when it arrived; the other keeps its school's time
    assert sent_at <= dated["Demain"] <= arrived_by
    assert dated["Hier"] == dt.datetime(2026, 11, 27, 8, 0)


async def test_edits_apply_by_version_and_a_delete_is_not_undone(
    client: Client, storage: Storage, ctx: ServiceContext, school_b: ClassAtB
) -> None:
    b = school_b
    await accept_and_open(b, client)
    first = b.note("Sortie jeudi")
    public_id = first["object"]["message"]["header"]["id"]
    await b.send(client, first)
    edited = b.note("Sortie vendredi", version=2, message_id=public_id)
    await b.send(client, edited)
    assert [i["body"] for i in read_feed(storage, ctx, b)] == [{"text": "Sortie vendredi"}]
    stale = b.note("Sortie jeudi", version=2, message_id=public_id)  # sent again, older news
    stale["object"]["message"] = first["object"]["message"]
    await b.send(client, stale)
    assert [i["body"] for i in read_feed(storage, ctx, b)] == [{"text": "Sortie vendredi"}]
    tombstone = {"id": first["object"]["id"], "type": "Tombstone", "formerType": "Note",
                 "version": 3, "deleted": "2026-11-29T09:00:00Z"}  # fmt: skip
    await b.send(client, b.activity(CLASS, "Delete", tombstone))
    assert read_feed(storage, ctx, b) == []
    late = b.note("Sortie vendredi", version=3, message_id=public_id)
    assert await b.send(client, late) == {late["id"]: {}}
    assert read_feed(storage, ctx, b) == []


def comment_here(
    storage: Storage, ctx: ServiceContext, b: ClassAtB, post_id: str, text: str
) -> tuple[Any, dict[str, Any]]:
    """Our guardian comments on B's post as their browser does: (the feed item, the request)."""
    [item] = storage.call(feed.my_feed, ctx, b.guardian).items
    view = storage.call(groups.group_view, ctx, b.guardian, item.class_id)
    state, keys = rc.open_epoch_keys(
        {"entries": view.entries, "envelopes": view.envelopes, "me": b.me}, b.keys
    )
    request = rc.encrypt(b.keys, b.me, state, keys, "comment", {"text": text}, parent=post_id)
    storage.call(posts.add_reply, ctx, b.guardian, item.class_id, post_id, request["message"])
    return item, request


async def test_the_guardians_comment_and_read_go_to_the_class_school(
    client: Client, storage: Storage, ctx: ServiceContext, school_b: ClassAtB
) -> None:
    b = school_b
    await accept_and_open(b, client)
    post = b.note("Sortie jeudi")
    post_id = post["object"]["message"]["header"]["id"]
    await b.send(client, post)
    item, request = comment_here(storage, ctx, b, post_id, "Merci")
    storage.call(feed.mark_read, ctx, b.guardian, item.class_id, post_id)
    storage.call(feed.mark_read, ctx, b.guardian, item.class_id, post_id)  # once is enough
    forwarded = [
        a for a in sent_to_b(storage) if a["stream"] == f"{PUBLIC_URL}/peers/ecole-b.example"
    ]
    assert [a["type"] for a in forwarded] == ["Create", "Read"]
    note = forwarded[0]["object"]
    assert note["inReplyTo"] == post["object"]["id"] and note["kind"] == "comment"
    assert note["message"] == request["message"] and note["attributedTo"] == b.actor
    assert forwarded[1]["object"] == post["object"]["id"]
    # B stores it and announces it back: the copy here is the same message, once
    comment_id = request["message"]["header"]["id"]
    back = {"id": f"{CLASS}/messages/{comment_id}", "type": "Note", "version": 1,
            "attributedTo": CLASS, "kind": "comment", "author": b.me, "authorName": "Parent H",
            "message": request["message"], "keys": [], "children": [], "attachment": [],
            "inReplyTo": post["object"]["id"]}  # fmt: skip
    assert await b.send(client, (echo := b.activity(CLASS, "Create", back))) == {echo["id"]: {}}
    [item] = storage.call(feed.my_feed, ctx, b.guardian).items
    assert [r.id for r in item.replies] == [comment_id]


async def test_a_removed_guardian_s_node_purges_the_class(
    client: Client, storage: Storage, ctx: ServiceContext, school_b: ClassAtB
) -> None:
    b = school_b
    await accept_and_open(b, client)
    await b.send(client, b.note("Sortie jeudi"))
    assert len(read_feed(storage, ctx, b)) == 1
    remove = b.activity(CLASS, "Remove", b.actor, target=CLASS + "#members", follow=FOLLOW)
    assert await b.send(client, remove) == {remove["id"]: {}}
    assert storage.call(feed.my_feed, ctx, b.guardian).items == []

    def left() -> tuple[Any, int]:
        return mirror_store.select_mirror(CLASS), feed_store.Message.select().count()

    assert storage.call(left) == (None, 0)
    # and what B sends for that class afterwards is refused, not stored
    late = b.note("Encore")
    answer = await b.send(client, late)
    assert answer[late["id"]]["message"] == "No guardian of this school is in this class."


async def test_comments_switched_off_there_are_refused_here(
    client: Client, storage: Storage, ctx: ServiceContext, school_b: ClassAtB
) -> None:
    b = school_b
    await accept_and_open(b, client)
    post = b.note("Sortie jeudi")
    await b.send(client, post)
    off = {"id": CLASS, "type": "Class", "version": 2, "attributedTo": CLASS, "name": "CE1 B",
           "commentsEnabled": False}  # fmt: skip
    await b.send(client, b.activity(CLASS, "Update", off))
    [item] = storage.call(feed.my_feed, ctx, b.guardian).items
    view = storage.call(groups.group_view, ctx, b.guardian, item.class_id)
    state, keys = rc.open_epoch_keys(
        {"entries": view.entries, "envelopes": view.envelopes, "me": b.me}, b.keys
    )
    post_id = post["object"]["message"]["header"]["id"]
    request = rc.encrypt(b.keys, b.me, state, keys, "comment", {"text": "Merci"}, parent=post_id)
    with pytest.raises(PermissionDenied):
        storage.call(posts.add_reply, ctx, b.guardian, item.class_id, post_id, request["message"])
    assert sent_to_b(storage) == []  # nothing forwarded


async def test_the_class_s_node_cannot_name_accounts_of_this_node(
    client: Client, storage: Storage, ctx: ServiceContext, school_b: ClassAtB
) -> None:
    b = school_b
    await accept_and_open(b, client)
    # a post "by" one of our accounts that is not in the class's log is refused
    forged = b.resigned(b.note("Signé par quelqu'un d'ici"), author=f"1@{HOST}")
    answer = await b.send(client, forged)
    assert answer[forged["id"]]["message"] == "A member of this school must be in the class's log."
    bad = b.resigned(b.note("Auteur illisible"), author="n'importe qui")
    assert (await b.send(client, bad))[bad["id"]]["message"] == "A member id is malformed."
    assert read_feed(storage, ctx, b) == []

    # and the class is no teacher's class here, whatever it says of its teacher
    def classes_of_our_teacher() -> list[str]:
        return [c.name for c in directory_store.select_classes_of_teacher(1)]

    assert "CE1 B" not in storage.call(classes_of_our_teacher)


async def test_leaving_for_one_child_keeps_the_class_for_the_other(
    client: Client, storage: Storage, ctx: ServiceContext, school_b: ClassAtB
) -> None:
    b = school_b

    def second_request() -> None:  # their other child in the same class
        peer = peer_store.select_peer_by_origin(B)
        now = dt.datetime(2026, 11, 28)
        join_store.JoinRequest.create(
            account=b.guardian.account_id, peer=peer, follow_id=FOLLOW + "-2", join_id="j2",
            state="linked", class_name="CE1", child_first_name="Tom", created_at=now,
            updated_at=now,
        )  # fmt: skip

    storage.call(second_request)
    await accept_and_open(b, client)
    info = {
        "name": "CE1 B",
        "teacher": TEACHER,
        "child": {"id": CLASS + "/children/4", "name": "Tom"},
    }
    second = b.activity(
        f"{B}/peers/{HOST}", "Accept", FOLLOW + "-2", target=CLASS, **{"class": info}
    )
    await b.send(client, second)
    await b.send(client, b.note("Sortie jeudi"))
    [item] = read_feed(storage, ctx, b)
    assert sorted(item["children"]) == ["Léa", "Tom"]
    remove = b.activity(CLASS, "Remove", b.actor, target=CLASS + "#members", follow=FOLLOW)
    assert await b.send(client, remove) == {remove["id"]: {}}
    [item] = read_feed(storage, ctx, b)
    assert item["children"] == ["Tom"]


async def test_an_update_or_a_delete_before_its_create_ends_in_the_right_state(
    client: Client, storage: Storage, ctx: ServiceContext, school_b: ClassAtB
) -> None:
    """NP/1 §4.5: an Update of an unknown message is its current state; a Delete of an
    unknown message is kept as a tombstone, so the Create arriving later shows nothing."""
    b = school_b
    await accept_and_open(b, client)
    first = b.note("Sortie jeudi")
    public_id = first["object"]["message"]["header"]["id"]
    b.seq[CLASS] -= 1  # not sent: it arrives after its edit
    edited = b.note("Sortie vendredi", version=2, message_id=public_id)
    await b.send(client, edited)
    assert [i["body"] for i in read_feed(storage, ctx, b)] == [{"text": "Sortie vendredi"}]
    late_create = b.activity(CLASS, "Create", first["object"])  # next in the stream
    assert await b.send(client, late_create) == {late_create["id"]: {}}
    assert [i["body"] for i in read_feed(storage, ctx, b)] == [{"text": "Sortie vendredi"}]

    gone = b.note("Annulé")
    b.seq[CLASS] -= 1
    tombstone = {"id": gone["object"]["id"], "type": "Tombstone", "formerType": "Note",
                 "version": 2, "deleted": "2026-11-29T09:00:00Z"}  # fmt: skip
    await b.send(client, b.activity(CLASS, "Delete", tombstone))
    after = b.activity(CLASS, "Create", gone["object"])
    assert await b.send(client, after) == {after["id"]: {}}
    assert [i["body"] for i in read_feed(storage, ctx, b)] == [{"text": "Sortie vendredi"}]


async def test_a_reply_the_class_school_refuses_is_withdrawn_here_too(
    client: Client, storage: Storage, ctx: ServiceContext, school_b: ClassAtB
) -> None:
    """B switched comments off before our guardian's comment arrived: it exists only here."""
    b = school_b
    await accept_and_open(b, client)
    post = b.note("Sortie jeudi")
    post_id = post["object"]["message"]["header"]["id"]
    await b.send(client, post)
    item, request = comment_here(storage, ctx, b, post_id, "Merci")
    peer_id = storage.call(peer_store.select_peer_by_origin, B).id
    batch = storage.call(delivery.next_batch, ctx, peer_id)
    assert batch is not None
    [create] = [a for a in json.loads(batch.body)["activities"] if a["type"] == "Create"]
    refusal = {"error": "bad_activity", "message": "Comments are switched off for this post."}
    refused = storage.call(delivery.record_success, ctx, peer_id, batch.txn_id,
                           {create["id"]: refusal})  # fmt: skip
    assert refused == [create["id"]]
    comment = storage.call(feed_store.Message.get, feed_store.Message.public_id
                           == request["message"]["header"]["id"])  # fmt: skip
    assert comment.deleted_at is not None and comment.ct is None
    [page_item] = storage.call(feed.my_feed, ctx, b.guardian).items
    assert page_item.id == post_id  # the post stays; the comment is gone from it


async def test_the_teachers_reminder_notifies_our_guardian_until_they_read_the_post(
    client: Client, storage: Storage, ctx: ServiceContext, school_b: ClassAtB
) -> None:
    b = school_b
    await accept_and_open(b, client)
    post = b.note("Réunion mardi")
    await b.send(client, post)
    before = notified(storage, b.guardian.account_id).count("reminder")
    remind = b.activity(CLASS, "Remind", post["object"]["id"])
    assert await b.send(client, remind) == {remind["id"]: {}}
    assert notified(storage, b.guardian.account_id).count("reminder") == before + 1
    [item] = storage.call(feed.my_feed, ctx, b.guardian).items
    storage.call(feed.mark_read, ctx, b.guardian, item.class_id, item.id)
    again = b.activity(CLASS, "Remind", post["object"]["id"])
    assert await b.send(client, again) == {again["id"]: {}}
    assert notified(storage, b.guardian.account_id).count("reminder") == before + 1  # read now


async def test_the_child_s_family_at_the_class_school_is_the_family_here(
    client: Client, storage: Storage, ctx: ServiceContext, school_b: ClassAtB
) -> None:
    """A co-guardian of the child at B: our guardian seals a family thread to them too, as
    B's node checks (it refused a message sealed to the teacher and our guardian alone)."""
    b = school_b
    await accept_and_open(b, client)
    co_keys = generate_account_keys()
    co = "8@ecole-b.example"
    candidate = {"member": co, "role": "guardian", "sign_pk": b64url_encode(co_keys.sign_pk),
                 "enc_pk": b64url_encode(co_keys.enc_pk)}  # fmt: skip
    [added], _ = rc.approve(b.teacher_keys, b.log, [candidate], b.epoch_key)
    b.log.append(added)
    entry = b.entry(added)
    entry = b.resigned(entry, memberName="Karim Martin")

    def family(guardians: list[str]) -> dict[str, Any]:
        obj = {"id": CLASS, "type": "Class", "version": 2 + b.seq.get("v", 0), "attributedTo": CLASS,
               "name": "CE1 B", "teacher": TEACHER, "commentsEnabled": True,
               "families": [{"id": CLASS + "/children/3", "name": "Léa", "guardians": [
                   {"member": m, "name": "Karim Martin" if m == co else "Parent H"}
                   for m in guardians]}]}  # fmt: skip
        b.seq["v"] = b.seq.get("v", 0) + 1
        return b.activity(CLASS, "Update", obj)

    both = family([b.me, co])
    assert await b.send(client, entry, both) == {entry["id"]: {}, both["id"]: {}}
    mirror = storage.call(mirror_store.select_mirror, CLASS).id
    seen = storage.call(chat_views.overview, ctx, b.guardian, mirror)
    [(child, name)] = seen.children
    assert name == "Léa"
    assert seen.family_members == {child: sorted([TEACHER, b.me, co])}
    labels = {p.member: (p.name, p.children) for p in seen.people}
    assert labels[co] == ("Karim Martin", ["Léa"])
    # the teacher removed them there (their link went first): not in the family here either
    alone = family([b.me])
    assert await b.send(client, alone) == {alone["id"]: {}}
    seen = storage.call(chat_views.overview, ctx, b.guardian, mirror)
    assert seen.family_members == {child: sorted([TEACHER, b.me])}
    # a family never names a child of another class
    stray = b.resigned(
        family([co]), families=[{"id": B + "/classes/8/children/1", "guardians": []}]
    )
    assert (await b.send(client, stray))[stray["id"]]["message"] == "A child must be of this class."
