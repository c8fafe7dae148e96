"""Plain functions that build an encrypted class feed through the real services.

A class with a teacher and some families; the teacher's "browser" (the
Python reference client) sets up the group and approves every guardian, as
``web/static/js/pages/class-keys.js`` does.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from node import refclient_groups as rc
from node.e2e.groups import GroupState
from node.e2e.keys import AccountKeys
from node.services import feed, groups, posts
from node.services.context import Actor, ServiceContext
from node.storage.db import Storage
from tests.factories import School, client_account, invite, make_child, make_guardian, make_school


def as_json(value: Any) -> Any:
    """A service view as the JSON API would send it (dates as text)."""
    return json.loads(json.dumps(dataclasses.asdict(value), default=str))


@dataclass
class Person:
    actor: Actor
    keys: AccountKeys
    me: str
    child_id: int | None = None


@dataclass
class ClassFeed:
    storage: Storage
    ctx: ServiceContext
    school: School
    teacher: Person
    guardians: list[Person]
    epoch_key: bytes
    log: list[dict[str, Any]] = field(default_factory=list)

    @property
    def class_id(self) -> int:
        return self.school.class_id

    def view(self, person: Person) -> dict[str, Any]:
        return as_json(self.storage.call(groups.group_view, self.ctx, person.actor, self.class_id))

    def keys_of(self, person: Person) -> tuple[GroupState, dict[int, bytes]]:
        return rc.open_epoch_keys(self.view(person), person.keys)

    def post(self, body: dict[str, Any], *, children: list[int] | None = None, **kw: Any) -> str:
        state, keys = self.keys_of(self.teacher)
        to = None
        if children:  # as the composer does: the chosen children's approved guardians
            view = self.view(self.teacher)
            wanted = {m for c in view["children"] if c["id"] in children for m in c["members"]}
            active = set(rc.g.verify_log(view["entries"]).active_members())
            to = sorted({self.teacher.me} | (wanted & active))
        request = rc.encrypt(self.teacher.keys, self.teacher.me, state, keys, "post", body, to=to)
        posted = self.storage.call(
            posts.create_post, self.ctx, self.teacher.actor, self.class_id, request["message"],
            keys=request.get("keys"), children=children, **kw,
        )  # fmt: skip
        return str(posted.message)

    def reply(
        self,
        person: Person,
        post_id: str,
        kind: str,
        body: dict[str, Any],
        to: list[str] | None = None,
    ) -> str:
        state, keys = self.keys_of(person)
        request = rc.encrypt(person.keys, person.me, state, keys, kind, body, parent=post_id, to=to)
        posted = self.storage.call(
            posts.add_reply, self.ctx, person.actor, self.class_id, post_id, request["message"],
            keys=request.get("keys"),
        )  # fmt: skip
        return str(posted.message)

    def feed_of(self, person: Person) -> dict[str, Any]:
        if person is self.teacher:
            return as_json(
                self.storage.call(feed.class_feed, self.ctx, person.actor, self.class_id)
            )
        return as_json(self.storage.call(feed.my_feed, self.ctx, person.actor))

    def read(self, person: Person) -> list[dict[str, Any]]:
        """Every post of the person's feed, decrypted as their browser would."""
        state, keys = self.keys_of(person)
        out = []
        for item in self.feed_of(person)["items"]:
            body = rc.decrypt(item, state, keys, person.keys, person.me)
            replies = [rc.decrypt(r, state, keys, person.keys, person.me) for r in item["replies"]]
            out.append(
                {"id": item["id"], "body": body, "replies": replies, "children": item["children"]}
            )
        return out

    def approve_all(self) -> None:
        view = self.view(self.teacher)
        new, envelopes = rc.approve(
            self.teacher.keys, view["entries"], view["to_approve"], self.epoch_key
        )
        if new:
            self.storage.call(
                groups.append_entries, self.ctx, self.teacher.actor, self.class_id, new, envelopes
            )

    def remove_pending(self, *, cut: bool = False) -> None:
        """What the teacher's page does after a guardian was unlinked: remove, rotate."""
        view = self.view(self.teacher)
        members = [c["member"] for c in view["to_remove"]]
        new, envelopes, self.epoch_key = rc.remove(
            self.teacher.keys, view["entries"], members, self.epoch_key, cut=cut
        )
        self.storage.call(
            groups.append_entries, self.ctx, self.teacher.actor, self.class_id, new, envelopes
        )


def make_class_feed(
    storage: Storage, ctx: ServiceContext, families: int = 2, approve: bool = True
) -> ClassFeed:
    school = make_school(storage, ctx)
    teacher_keys = client_account("dubois@school.test").keys
    teacher = Person(school.teacher, teacher_keys, groups.member_id(ctx, school.teacher.account_id))
    people = []
    for i in range(families):
        child_id = (
            school.child_id
            if i == 0
            else make_child(storage, ctx, school.teacher, school.class_id, f"Enfant{i}").id
        )
        phone = f"+3363998{i:04d}"
        slip = invite(storage, ctx, school.teacher, child_id, phone=phone, name=f"Parent {i}")
        actor = make_guardian(storage, ctx, slip.code, phone)
        people.append(
            Person(
                actor, client_account(phone).keys, groups.member_id(ctx, actor.account_id), child_id
            )
        )
    feed_ = ClassFeed(storage, ctx, school, teacher, people, b"")
    view = feed_.view(teacher)
    log, envelopes, feed_.epoch_key = rc.setup_group(teacher_keys, teacher.me)
    storage.call(groups.create_group, ctx, school.teacher, school.class_id, log, envelopes)
    if approve:
        feed_.approve_all()
    assert view["status"] == "none"
    return feed_
