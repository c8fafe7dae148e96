"""Actionable posts: events with RSVP, sign-ups with capacity, permission slips, polls.

Who may do what:
- the class's teacher gives a post an action when posting it (``posts.create_post``)
  and may change it only in compatible ways when editing (same type; a choice
  somebody chose stays; a capacity never below the places taken);
- an approved guardian answers for a child of theirs the post is for (a post
  to chosen children: only those; otherwise any child of theirs in the class),
  and changes the answer until the deadline; either guardian of a child may
  answer, the latest answer counts;
- the teacher never answers; after the deadline nothing changes (409); a full
  slot refuses more families (409, checked under the action's row lock);
- a permission slip's answer carries the guardian's Ed25519 signature with the
  identity key of the class's verified log, checked here before it is stored.

The node knows the structure only (type, deadline, times, choice ids and
capacities); titles and labels stay in the post's ciphertext.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from node.e2e.encoding import EncodingError, b64url_decode
from node.e2e.keys import verify_object
from node.errors import N_, Conflict, Invalid, NotFound, PermissionDenied
from node.services import groups
from node.services.context import Actor, ServiceContext
from node.storage import actions as store
from node.storage import directory as directory_store
from node.storage import feed as feed_store
from node.storage import groups as group_store
from node.storage.db import write_transaction

TYPES = ("event", "signup", "slip", "poll")
#: the fixed answers of events and slips; sign-ups and polls answer with their choice ids
FIXED = {"event": ("yes", "no", "maybe"), "slip": ("agree", "decline")}
MAX_CHOICES = 26
MAX_CAPACITY = 10_000
#: what a guardian's browser signs for a permission slip (docs/protocol/e2e-groups.md §8)
SLIP_CONTEXT = "carnet-e2e-1/slip-answer"
#: how far a slip signature's time may be from the node's clock
SLIP_CLOCK_SKEW = 600
_CHOICE_ID = re.compile(r"[a-z]")


def _when(raw: Any, field: str, *, date_only: bool = False) -> dt.datetime | None:
    """An ISO 8601 time with its offset (stored as naive UTC), or a plain date for all-day events."""
    if raw is None:
        return None
    if not isinstance(raw, str) or len(raw) > 40:
        raise Invalid(N_("%(field)s must be a date and time."), field=field)
    try:
        if date_only and len(raw) == 10:
            return dt.datetime.combine(dt.date.fromisoformat(raw), dt.time())
        parsed = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(N_("%(field)s must be a date and time."), field=field) from None
    if parsed.tzinfo is None:
        raise Invalid(N_("%(field)s must say its time zone (UTC)."), field=field)
    return parsed.astimezone(dt.UTC).replace(tzinfo=None)


def _choices(kind: str, raw: Any) -> list[dict[str, Any]]:
    if kind in FIXED:
        if raw not in (None, []):
            raise Invalid(N_("Events and permission slips have fixed answers."), field="action")
        return []
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_CHOICES:
        raise Invalid(N_("Give between 1 and 26 choices."), field="action")
    out, seen = [], set()
    for choice in raw:
        if not isinstance(choice, dict) or set(choice) - {"id", "capacity"}:
            raise Invalid(N_("A choice has an id and a capacity."), field="action")
        cid, capacity = choice.get("id"), choice.get("capacity")
        if not isinstance(cid, str) or not _CHOICE_ID.fullmatch(cid) or cid in seen:
            raise Invalid(N_("Choice ids are distinct letters a to z."), field="action")
        if capacity is not None and (
            type(capacity) is not int or not 1 <= capacity <= MAX_CAPACITY
        ):
            raise Invalid(N_("A capacity is a number of places from 1 to 10000."), field="action")
        if kind == "poll" and capacity is not None:
            raise Invalid(N_("Poll options have no capacity."), field="action")
        seen.add(cid)
        out.append({"id": cid, "capacity": capacity})
    if kind == "poll" and len(out) < 2:
        raise Invalid(N_("A poll needs at least two options."), field="action")
    return out


def parse(raw: Any) -> dict[str, Any]:
    """Check an action's plaintext structure; the fields of its ``post_action`` row."""
    if not isinstance(raw, dict) or raw.get("type") not in TYPES:
        raise Invalid(N_("An action is an event, a sign-up, a permission slip or a poll."), field="action")  # fmt: skip
    allowed = {"type", "deadline", "starts_at", "ends_at", "all_day", "choices", "multiple"}
    if set(raw) - allowed:
        raise Invalid(N_("The action has unknown fields."), field="action")
    kind = raw["type"]
    all_day, multiple = raw.get("all_day", False), raw.get("multiple", False)
    if type(all_day) is not bool or type(multiple) is not bool:
        raise Invalid(N_("all_day and multiple must be true or false."), field="action")
    if multiple and kind != "poll":
        raise Invalid(N_("Only a poll may allow several answers."), field="action")
    starts = _when(raw.get("starts_at"), "starts_at", date_only=all_day)
    ends = _when(raw.get("ends_at"), "ends_at", date_only=all_day)
    if kind == "event" and starts is None:
        raise Invalid(N_("An event needs a start."), field="starts_at")
    if kind != "event" and (starts or ends or all_day):
        raise Invalid(N_("Only an event has times."), field="action")
    if starts and ends and ends < starts:
        raise Invalid(N_("An event cannot end before it starts."), field="ends_at")
    return {
        "type": kind, "deadline": _when(raw.get("deadline"), "deadline"), "starts_at": starts,
        "ends_at": ends, "all_day": all_day, "choices": json.dumps(_choices(kind, raw.get("choices"))),
        "multiple": multiple,
    }  # fmt: skip


def attach(message: Any, raw: Any) -> None:
    """In the post's transaction: store a new post's action (checked by ``parse`` first)."""
    store.save_action(message, parse(raw))


def change(message: Any, raw: Any) -> None:
    """In the edit's transaction: a compatible change of the post's action.

    The type stays (answers would lose their meaning); every choice somebody
    chose stays, with a capacity not below the places already taken.
    """
    current = store.select_action(message.id, lock=True)
    fields = parse(raw)
    if current is None:
        raise Conflict(N_("An action cannot be added to a post afterwards; post a new one."))
    if fields["type"] != current.type:
        raise Conflict(N_("The kind of action cannot change once posted."))
    taken = _taken(store.answers_of([message.id]))
    new = {c["id"]: c["capacity"] for c in json.loads(fields["choices"])}
    for cid, count in taken.items():
        if current.type in FIXED or not count:
            continue
        if cid not in new:
            raise Conflict(N_("A choice that families already chose cannot be removed."))
        if new[cid] is not None and new[cid] < count:
            raise Conflict(N_("A capacity cannot go below the places already taken."))
    store.save_action(message, fields)


def _taken(answers: list[Any], action: Any = None) -> dict[str, int]:
    """Answers per choice id; a mirrored class's sign-up keeps the class node's counts."""
    counts: dict[str, int] = {}
    for row in answers:
        for cid in row.choice_ids():
            counts[cid] = counts.get(cid, 0) + 1
    for choice in action.choice_list() if action is not None else []:
        if "taken" in choice:  # (action_mirrors.apply_remote)
            counts[choice["id"]] = choice["taken"]
    return counts


def signing_child(a: groups.Access, child_id: int) -> int:
    """The child's id a permission slip signs: the class node's (ours, or a mirror's remote one)."""
    if a.school_class.peer_id is None:
        return child_id
    return store.remote_child_ids([child_id]).get(child_id, child_id)


def _post(ctx: ServiceContext, a: groups.Access, post_id: str, lock: bool) -> tuple[Any, Any]:
    """The post (one the actor may see) and its action; posts.py imports this module,
    so the visibility rule (``posts.can_see``) is applied from the post's children here."""
    post = feed_store.select_message(a.group.id, post_id, lock=lock)  # (its revision changes)
    addressed = feed_store.children_of_message(post.id) if post is not None else []
    if (
        post is None
        or post.deleted_at is not None
        or post.kind != "post"
        or not (a.is_teacher or not addressed or set(addressed) & set(a.my_children))
    ):
        raise NotFound(N_("No such post."))
    action = store.select_action(post.id, lock=lock)
    if action is None:
        raise NotFound(N_("This post asks for no answer."))
    return post, action


def _choice(action: Any, raw: Any) -> list[str]:
    """The answer's choice ids, checked against the action (400 for anything unknown)."""
    ids = [raw] if isinstance(raw, str) else raw
    if raw is None and action.type == "signup":
        return []  # withdraw from the sign-up
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise Invalid(N_("Choose one of the post's answers."), field="choice")
    known = FIXED.get(action.type) or tuple(c["id"] for c in action.choice_list())
    if not ids or len(set(ids)) != len(ids) or not set(ids) <= set(known):
        raise Invalid(N_("Choose one of the post's answers."), field="choice")
    if len(ids) > 1 and not action.multiple:
        raise Invalid(N_("Choose only one answer."), field="choice")
    return sorted(ids)


def slip_statement(group: str, post: str, version: int, child: int, decision: str, at: int) -> dict[str, Any]:  # fmt: skip
    """What a guardian signs to agree to (or decline) a permission slip."""
    return {"type": "slip-answer", "group": group, "post": post, "post_version": version,
            "child": child, "decision": decision, "at": at}  # fmt: skip


def _check_slip(
    ctx: ServiceContext, a: groups.Access, post: Any, child: int, decision: str, signature: Any,
    at: Any, relayed: bool,
) -> dict[str, Any]:  # fmt: skip
    """A relayed answer (forwarded by the guardian's home node, which checked the time
    when it was signed) may arrive late: its clock is not checked again."""
    if not isinstance(signature, str) or len(signature) > 86 or type(at) is not int:
        raise Invalid(N_("A permission slip is answered with your signature."), field="signature")
    if (
        not relayed
        and abs(at - int(ctx.now().replace(tzinfo=dt.UTC).timestamp())) > SLIP_CLOCK_SKEW
    ):
        raise Invalid(N_("This device's clock is wrong: set it and sign again."), field="at")
    me = group_store.select_member(a.group.id, a.me)
    statement = slip_statement(
        a.group.public_id, post.public_id, post.version, signing_child(a, child), decision, at
    )
    try:
        sign_pk = b64url_decode(me.sign_pk if me else "", length=32, what="key")
    except EncodingError:
        sign_pk = b""
    if not verify_object(sign_pk, SLIP_CONTEXT, statement, signature):
        raise Invalid(N_("The signature does not verify: reload the page and sign again."), field="signature")  # fmt: skip
    return {"signature": signature, "post_version": post.version, "signed_at": at}


def answer(
    ctx: ServiceContext, actor: Actor, class_id: int, post_id: str, child_id: Any, choice: Any, *,
    signature: Any = None, at: Any = None, relayed: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """Record (or replace, or withdraw) a child's answer; returns the action as the reader sees it.

    On a mirrored class (another school's) the answer is kept here and forwarded to the
    class's node, which applies the same rules (``relayed``: done there for a guardian of
    another node) and announces the post's new counts."""
    if type(child_id) is not int:
        raise Invalid(N_("Say which child you answer for."), field="child")
    with write_transaction():
        a = groups.require_member(ctx, actor, class_id)
        # the action's row lock queues concurrent answers: a slot's count stays true
        post, action = _post(ctx, a, post_id, lock=True)
        if a.is_teacher:
            raise PermissionDenied(N_("Families answer; the teacher sees their answers."))
        addressed = feed_store.children_of_message(post.id)
        if child_id not in a.my_children or (addressed and child_id not in addressed):
            raise PermissionDenied(N_("You can only answer for your own children this post is for."))  # fmt: skip
        if action.deadline is not None and ctx.now() >= action.deadline:
            raise Conflict(N_("The deadline has passed: answers can no longer change."))
        ids = _choice(action, choice)
        fields: dict[str, Any] = {"signature": None, "post_version": None, "signed_at": None}
        if action.type == "slip":
            fields = _check_slip(ctx, a, post, child_id, ids[0], signature, at, relayed)
        if action.type == "signup" and ids:
            capacity = {c["id"]: c["capacity"] for c in action.choice_list()}[ids[0]]
            answers = store.answers_of([post.id])
            mine = next((r for r in answers if r.child_id == child_id), None)
            others = [r for r in answers if r.child_id != child_id]
            already = mine is not None and ids[0] in mine.choice_ids()
            if (
                capacity is not None
                and not already
                and _taken(others, action).get(ids[0], 0) >= capacity
            ):
                raise Conflict(N_("This slot is full."))
        if not ids:
            store.ActionAnswer.delete().where(
                (store.ActionAnswer.message == post.id) & (store.ActionAnswer.child == child_id)
            ).execute()
        else:
            store.save_answer(post.id, child_id, {
                "account": actor.account_id, "member": a.me, "choice": json.dumps(ids),
                "answered_at": ctx.now(), **fields,
            })  # fmt: skip
        if a.school_class.peer_id is not None:  # the class's node decides, and tells everyone
            ctx.publish("mirror_answer", {"message_id": post.id, "child_id": child_id,
                                          "account_id": actor.account_id})  # fmt: skip
        else:
            if action.type == "signup":  # other schools' copies learn the places left
                post.revision += 1
                post.save()
                ctx.publish("message_changed", {"message_id": post.id})
            # the child's guardians living on other nodes see their family's answer there
            ctx.publish("answer_changed", {"message_id": post.id, "child_id": child_id})
        names = directory_store.child_names(a.school_class.id, a.my_children)
        signing = store.remote_child_ids(a.my_children) if a.school_class.peer_id else {}
        return view(ctx, a, action, addressed, store.answers_of([post.id]), names, signing=signing)


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat() + "Z"


def view(
    ctx: ServiceContext, a: groups.Access, action: Any, addressed: list[int],
    answers: list[Any], names: dict[int, str], total: int | None = None,
    signing: dict[int, int] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The action as its reader sees it: structure, open or closed, places taken,
    and the reader's children's answers (a guardian) or the counts (the teacher).

    ``signing``: a mirrored class's children, our id → the class node's (what a slip signs)."""
    taken = _taken(answers, action)
    out: dict[str, Any] = {
        "type": action.type, "deadline": _iso(action.deadline), "starts_at": _iso(action.starts_at),
        "ends_at": _iso(action.ends_at), "all_day": action.all_day, "multiple": action.multiple,
        "open": action.deadline is None or ctx.now() < action.deadline,
        "choices": [
            {"id": c["id"], "capacity": c["capacity"],
             "taken": taken.get(c["id"], 0) if action.type == "signup" else None}
            for c in action.choice_list()
        ],
    }  # fmt: skip
    if a.is_teacher:
        out["counts"] = taken
        out["answered"] = len({r.child_id for r in answers})
        out["total"] = total
        return out
    mine = [c for c in a.my_children if not addressed or c in addressed]
    by_child = {r.child_id: r for r in answers}
    out["answers"] = [
        {
            "child_id": c, "child": names.get(c, ""), "sign_child": (signing or {}).get(c, c),
            "choice": by_child[c].choice_ids() if c in by_child else None,
            "by": by_child[c].account.display_name if c in by_child and by_child[c].account else None,
            "at": _iso(by_child[c].answered_at) if c in by_child else None,
        }
        for c in mine
    ]  # fmt: skip
    return out
