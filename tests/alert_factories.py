"""Plain functions that set up a school's alert group and send alerts through the real services.

The admin's "browser" is the Python reference client, acting as
``web/static/js/pages/alerts.js`` does: set up the group, add every guardian
the node lists, encrypt and sign an alert.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from node import refclient_groups as rc
from node.e2e.groups import GroupState
from node.services import alerts, groups, school_group
from node.services.context import Actor, ServiceContext
from node.storage.db import Storage
from tests.factories import client_account
from tests.feed_factories import ClassFeed, Person, as_json, make_class_feed


@dataclass
class AlertSchool:
    storage: Storage
    ctx: ServiceContext
    feed: ClassFeed
    admin: Person
    epoch_key: bytes

    @property
    def guardians(self) -> list[Person]:
        return self.feed.guardians

    def view(self, person: Person | Actor) -> dict[str, Any]:
        actor = person.actor if isinstance(person, Person) else person
        return as_json(self.storage.call(school_group.view, self.ctx, actor))

    def sync(self) -> int:
        """Add everyone the node says is missing, as the admin's page does before each send."""
        view = self.view(self.admin)
        if not view["add"]:
            return 0
        new, envelopes = rc.add_guardians(
            self.admin.keys, view["entries"], view["add"], self.epoch_key
        )
        self.storage.call(school_group.append, self.ctx, self.admin.actor, new, envelopes)
        return len(new)

    def state(self) -> tuple[GroupState, dict[int, bytes]]:
        return rc.open_epoch_keys(self.view(self.admin), self.admin.keys)

    def alert_message(
        self, template: str = "lockdown", text: str = "Confinement.", drill: bool = False,
        parent: str | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        state, keys = self.state()
        made = rc.encrypt_alert(
            self.admin.keys, self.admin.me, state, keys, template, text, drill, parent
        )
        message: dict[str, Any] = made["message"]
        return message

    def send(self, template: str = "lockdown", text: str = "Confinement.", drill: bool = False,
             **kw: Any) -> alerts.Sent:  # fmt: skip
        message = self.alert_message(template, text, drill)
        return self.storage.call(
            alerts.send, self.ctx, self.admin.actor, message, template, drill, **kw
        )


def make_alert_school(storage: Storage, ctx: ServiceContext, families: int = 3) -> AlertSchool:
    """A class of ``families`` approved families, and the admin's alert group holding them all."""
    return add_alert_group(storage, ctx, make_class_feed(storage, ctx, families))


def add_alert_group(storage: Storage, ctx: ServiceContext, feed: ClassFeed) -> AlertSchool:
    """The admin of ``feed``'s school sets up the alert group and adds every guardian."""
    admin_actor = feed.school.admin
    admin = Person(
        admin_actor,
        client_account("admin@school.test").keys,
        groups.member_id(ctx, admin_actor.account_id),
    )
    log, envelopes, key = rc.setup_school_group(admin.keys, admin.me)
    storage.call(school_group.create, ctx, admin_actor, log, envelopes)
    school = AlertSchool(storage, ctx, feed, admin, key)
    school.sync()
    return school
