"""Plain functions that post actionable posts and answer them through the real services.

The post's labels travel in its encrypted body (``body["action"]``); the
structure the node enforces goes beside it, as the browser sends them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from node.e2e.keys import sign_object
from node.services import actions
from node.services.context import ServiceContext
from tests.feed_factories import ClassFeed, Person, as_json

TITLES = {"event": "Fête de l'école", "signup": "Goûter", "slip": "Sortie au musée", "poll": "Date"}


def iso(value: dt.datetime) -> str:
    return value.replace(microsecond=0).isoformat() + "Z"


def structure(kind: str, **kw: Any) -> dict[str, Any]:
    """A valid plaintext structure of each kind (override any field with ``kw``)."""
    base: dict[str, Any] = {"type": kind, "deadline": None}
    if kind == "event":
        base |= {"starts_at": "2026-12-12T14:00:00Z", "ends_at": "2026-12-12T17:00:00Z"}
    if kind == "signup":
        base["choices"] = [{"id": "a", "capacity": 1}, {"id": "b", "capacity": None}]
    if kind == "poll":
        base["choices"] = [{"id": "a", "capacity": None}, {"id": "b", "capacity": None}]
    return base | kw


def post_action(cf: ClassFeed, kind: str, *, children: list[int] | None = None, **kw: Any) -> str:
    """A post carrying an action; its labels (title, choices) are in the encrypted body."""
    shape = structure(kind, **kw)
    labels = {"type": kind, "title": TITLES[kind]}
    if shape.get("choices"):
        labels["choices"] = {c["id"]: f"Option {c['id']}" for c in shape["choices"]}
    body = {"text": "", "attachments": [], "action": labels}
    return cf.post(body, children=children, action=shape)


def answer(
    cf: ClassFeed, person: Person, post: str, choice: Any, *, child: int | None = None
) -> dict[str, Any]:
    found: dict[str, Any] = cf.storage.call(
        actions.answer, cf.ctx, person.actor, cf.class_id, post,
        person.child_id if child is None else child, choice,
    )  # fmt: skip
    return found


def slip_signature(
    cf: ClassFeed,
    person: Person,
    post: str,
    decision: str,
    *,
    child: int | None = None,
    at: int | None = None,
    version: int = 1,
) -> tuple[str, int]:
    """What the guardian's browser signs with their identity key (docs/protocol/e2e-groups.md §8)."""
    view = cf.view(person)
    when = at if at is not None else int(cf.ctx.now().replace(tzinfo=dt.UTC).timestamp())
    statement = actions.slip_statement(
        view["group"], post, version, person.child_id if child is None else child, decision, when
    )
    return sign_object(person.keys.sign_sk, actions.SLIP_CONTEXT, statement), when


def sign_slip(cf: ClassFeed, person: Person, post: str, decision: str, **kw: Any) -> dict[str, Any]:
    signature, at = slip_signature(cf, person, post, decision, **kw)
    found: dict[str, Any] = cf.storage.call(
        actions.answer, cf.ctx, person.actor, cf.class_id, post,
        kw.get("child") or person.child_id, [decision], signature=signature, at=at,
    )  # fmt: skip
    return found


def at_time(ctx: ServiceContext, when: dt.datetime) -> ServiceContext:
    """The same node with its clock set to ``when`` (naive UTC)."""
    return dataclasses.replace(ctx, clock=lambda: when)


def item_of(cf: ClassFeed, person: Person, post: str) -> dict[str, Any]:
    found: dict[str, Any] = next(i for i in cf.feed_of(person)["items"] if i["id"] == post)
    return found


__all__ = ["as_json"]
