"""A class on one node and its families on others, set up over the nodes' real HTTP APIs.

Plain functions for multi-node tests and benchmarks. Every step is what a
person's browser sends (the Python reference client builds the keys,
credentials, signed group-log entries and encrypted posts exactly as
``web/static/js`` does), sent with ``httpx`` to running ``carnet serve``
processes (:class:`~tests.multinode.nodes.Node`):

* :func:`log_in_admin` (the setup link ``carnet init`` printed), :func:`peer`
  (both admins add and confirm the other school);
* :func:`new_teacher` (admin creates staff → setup link → credentials),
  :func:`new_class`, :func:`add_child`, :func:`register_guardian` (the slip's
  access code), :func:`open_group` (the class's encrypted group);
* :func:`onboard_guardian` (access code → SMS code from the node's console
  outbox ``sms-outbox.jsonl`` → keys), :func:`join_class` (from the
  guardian's own node: ``POST /api/v1/joins`` + the code the class's node texted);
* :func:`approve_waiting`, :func:`remove_unlinked` (the teacher's page signs);
* :func:`post`, :func:`comment`, :func:`feed_items`, :func:`read_feed`
  (the feed decrypted as the browser shows it), :func:`class_posts`,
  :func:`mark_read`, :func:`receipts`;
* the scenarios' building blocks: :func:`set_up_schools` (admins logged in,
  schools peered), :func:`teacher_class`, :func:`family_at_home` (a guardian
  of their own school, approved in their child's class there) and
  :func:`joined` (that family joins a class of another school, its teacher
  approves them, the home node hears the Accept).

Key material is costly (PBKDF2, 600,000 iterations): each login's client
account is made once per process (:func:`tests.factories.client_account`).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from node import refclient_groups as rc
from node.e2e.keys import AccountKeys
from node.refclient import credentials_json
from tests.factories import PASSPHRASE, client_account, secret_for
from tests.multinode.nodes import Node
from tests.multinode.waiting import wait_until

#: Seconds a cross-node step (a join's text, an Accept, a post's delivery) may take at most.
DELIVERY = 60.0
#: The feed's largest page (``node/services/feed.py``).
PAGE = 50


class ApiError(AssertionError):
    """A request answered with an unexpected status; the message has the body."""


@dataclass
class Session:
    """A logged-in browser on one node: its cookies, CSRF token and (for people) keys."""

    node: Node
    http: httpx.Client
    csrf: str = ""
    login: str = ""
    keys: AccountKeys | None = None
    #: the person's member id in class groups (``<account id>@<host>``), once known
    me: str = ""

    def refresh_csrf(self) -> None:
        self.csrf = self.http.get("/api/v1/session").json()["csrf_token"]

    def get(self, path: str, expect: int = 200) -> Any:
        return _checked(self.http.get(path), expect)

    def send(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        response = self.http.request(method, path, json=body, headers={"X-CSRF-Token": self.csrf})
        return _checked(response, expect)

    def post(self, path: str, body: Any = None, expect: int = 201) -> Any:
        return self.send("POST", path, {} if body is None else body, expect)


def _checked(response: httpx.Response, expect: int) -> Any:
    if response.status_code != expect:
        raise ApiError(
            f"{response.request.method} {response.request.url} → {response.status_code} "
            f"(expected {expect}): {response.text[:1000]}"
        )
    return response.json()


def browser(node: Node) -> Session:
    """A fresh browser on ``node``: no session yet, a CSRF token."""
    session = Session(node, node.client(timeout=30.0))
    session.refresh_csrf()
    return session


# --------------------------------------------------------------------------- schools


def log_in_admin(node: Node) -> Session:
    """The node's first admin sets their passphrase through the setup link ``carnet init`` printed."""
    assert node.admin_email and node.admin_setup_url, f"{node.name} has no first admin"
    return _complete_setup(node, node.admin_setup_url, node.admin_email)


def _complete_setup(node: Node, setup_url: str, email: str) -> Session:
    session = browser(node)
    token = setup_url.rsplit("/setup/", 1)[1]
    account = client_account(email)
    session.post(f"/api/v1/setup/{token}", credentials_json(account.credentials))
    session.refresh_csrf()  # a new session, a new token
    session.login, session.keys = email, account.keys
    return session


def add_peer(admin: Session, other: Node) -> None:
    """``admin``'s school adds ``other`` and confirms the fingerprints it shows."""
    view = admin.post("/api/v1/admin/peers", {"origin": other.origin})
    shown = [k["fingerprint"] for k in view["keys"] if k["current"]]
    confirmed = admin.post(
        f"/api/v1/admin/peers/{view['id']}/confirm", {"fingerprints": shown}, expect=200
    )
    assert confirmed["state"] == "active", confirmed


def peer(admins: dict[str, Session], *pairs: tuple[str, str]) -> None:
    """Both schools of each pair add each other (``admins`` by node name)."""
    for one, two in pairs:
        add_peer(admins[one], admins[two].node)
        add_peer(admins[two], admins[one].node)


# --------------------------------------------------------------------------- classes


@dataclass
class Guardian:
    """A guardian as the teacher registered them: the slip's code, the invitation."""

    name: str
    phone: str
    code: str
    invitation_id: int
    child_id: int


@dataclass
class SchoolClass:
    """A class on its node, seen by its teacher."""

    teacher: Session
    class_id: int
    name: str
    guardians: list[Guardian] = field(default_factory=list)

    @property
    def node(self) -> Node:
        return self.teacher.node


def new_teacher(admin: Session, name: str, email: str) -> Session:
    """The admin creates the teacher's account; the teacher opens the setup link."""
    made = admin.post(
        "/api/v1/staff", {"role": "teacher", "display_name": name, "email": email}
    )  # fmt: skip
    return _complete_setup(admin.node, made["setup_url"], email)


def new_class(teacher: Session, name: str) -> SchoolClass:
    made = teacher.post("/api/v1/classes", {"name": name})
    return SchoolClass(teacher, int(made["id"]), name)


def add_child(school_class: SchoolClass, first: str, last: str) -> int:
    made = school_class.teacher.post(
        f"/api/v1/classes/{school_class.class_id}/children",
        {"first_name": first, "last_name": last},
    )
    return int(made["id"])


def register_guardian(school_class: SchoolClass, child_id: int, name: str, phone: str) -> Guardian:
    """The teacher registers a guardian for a child and prints the slip (its access code)."""
    slip = school_class.teacher.post(
        f"/api/v1/children/{child_id}/guardians", {"display_name": name, "phone": phone}
    )
    guardian = Guardian(name, phone, slip["code"], int(slip["invitation_id"]), child_id)
    school_class.guardians.append(guardian)
    return guardian


def group_view(session: Session, class_id: int) -> dict[str, Any]:
    view: dict[str, Any] = session.get(f"/api/v1/classes/{class_id}/group")
    return view


def open_group(school_class: SchoolClass) -> None:
    """The teacher's first visit to the class feed: the group, epoch 0, their own envelope."""
    teacher = school_class.teacher
    assert teacher.keys is not None
    me = group_view(teacher, school_class.class_id)["me"]
    teacher.me = me
    log, envelopes, _ = rc.setup_group(teacher.keys, me)
    teacher.post(
        f"/api/v1/classes/{school_class.class_id}/group", {"entries": log, "envelopes": envelopes}
    )


def new_class_with_group(
    admin: Session, teacher_name: str, email: str, class_name: str
) -> SchoolClass:
    """A teacher, their class and its encrypted group, on ``admin``'s node."""
    school_class = new_class(new_teacher(admin, teacher_name, email), class_name)
    open_group(school_class)
    return school_class


def _current_epoch_key(session: Session, view: dict[str, Any]) -> bytes:
    assert session.keys is not None
    state, keys = rc.open_epoch_keys(view, session.keys)
    assert state.current_epoch is not None
    return keys[state.current_epoch.epoch]


def waiting_for_approval(school_class: SchoolClass) -> list[dict[str, Any]]:
    """The guardians the teacher's class feed asks them to approve."""
    found: list[dict[str, Any]] = group_view(school_class.teacher, school_class.class_id)[
        "to_approve"
    ]
    return found


def approve_waiting(school_class: SchoolClass, count: int = 1) -> list[str]:
    """Once ``count`` guardians wait, the teacher approves them all (``add`` entries, sealed key)."""
    teacher = school_class.teacher
    assert teacher.keys is not None
    wait_until(
        lambda: len(waiting_for_approval(school_class)) >= count,
        timeout=DELIVERY, what=f"{count} guardian(s) waiting in {school_class.name}",
        logs=[school_class.node],
    )  # fmt: skip
    view = group_view(teacher, school_class.class_id)
    new, envelopes = rc.approve(
        teacher.keys, view["entries"], view["to_approve"], _current_epoch_key(teacher, view)
    )
    teacher.post(
        f"/api/v1/classes/{school_class.class_id}/group/entries",
        {"entries": new, "envelopes": envelopes},
    )
    return [c["member"] for c in view["to_approve"]]


def unlink_guardian(school_class: SchoolClass, guardian: Guardian) -> None:
    """The teacher unlinks a guardian from the child on the class page."""
    school_class.teacher.send("DELETE", f"/api/v1/guardians/{guardian.invitation_id}")


def remove_unlinked(school_class: SchoolClass) -> list[str]:
    """What the teacher's page does after a guardian was unlinked: ``remove`` entries, a new key."""
    teacher = school_class.teacher
    assert teacher.keys is not None
    view = group_view(teacher, school_class.class_id)
    members = [c["member"] for c in view["to_remove"]]
    assert members, "nobody to remove from the group"
    new, envelopes, _ = rc.remove(
        teacher.keys, view["entries"], members, _current_epoch_key(teacher, view)
    )
    teacher.post(
        f"/api/v1/classes/{school_class.class_id}/group/entries",
        {"entries": new, "envelopes": envelopes},
    )
    return members


# --------------------------------------------------------------------------- guardians


def texted_codes(node: Node, phone: str) -> list[str]:
    """The 6-digit codes ``node`` texted to ``phone`` (its console SMS outbox), oldest first."""
    path = node.data_dir / "sms-outbox.jsonl"
    codes = []
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            text = json.loads(line)
        except json.JSONDecodeError:  # a line being written right now
            continue
        found = re.search(r"\b(\d{6})\b", text["text"])
        if text["to"] == phone and found:
            codes.append(found[1])
    return codes


def next_text(node: Node, phone: str, before: int) -> str:
    """The code of the first text ``node`` sends ``phone`` after the ``before`` it had sent."""
    codes = wait_until(
        lambda: texted_codes(node, phone)[before:],
        timeout=DELIVERY, what=f"{node.name} texts {phone}", logs=[node],
    )  # fmt: skip
    return codes[0]


def onboard_guardian(node: Node, guardian: Guardian) -> Session:
    """The guardian's first login on ``node``: access code → SMS code → keys (or their passphrase)."""
    session = browser(node)
    sent = len(texted_codes(node, guardian.phone))
    started = session.post(
        "/api/v1/onboarding/start", {"phone": guardian.phone, "code": guardian.code}
    )
    attempt = started["attempt_id"]
    verified = session.post(
        "/api/v1/onboarding/verify",
        {"attempt_id": attempt, "sms_code": next_text(node, guardian.phone, sent)},
        expect=200,
    )
    if verified.get("existing_kdf_salt"):
        secret = secret_for(verified["existing_kdf_salt"], verified["existing_kdf_iterations"])
        session.post(
            "/api/v1/onboarding/complete-existing", {"attempt_id": attempt, "login_secret": secret}
        )
    else:
        account = client_account(guardian.phone)
        session.post(
            "/api/v1/onboarding/complete",
            {"attempt_id": attempt, "credentials": credentials_json(account.credentials)},
        )
    session.refresh_csrf()
    session.login, session.keys = guardian.phone, client_account(guardian.phone).keys
    assert PASSPHRASE  # every test login shares tests.factories' passphrase
    return session


def join_class(guardian: Session, school_class: SchoolClass, slip: Guardian) -> int:
    """From their own node, the guardian asks to join a class of another school; the request id."""
    node = school_class.node
    sent = len(texted_codes(node, slip.phone))
    started = guardian.post("/api/v1/joins", {"school": node.origin, "code": slip.code})
    request_id = int(started["id"])
    guardian.post(
        f"/api/v1/joins/{request_id}/code",
        {"sms_code": next_text(node, slip.phone, sent)},
        expect=200,
    )
    return request_id


def my_joins(guardian: Session) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = guardian.get("/api/v1/joins")
    return found


# --------------------------------------------------------------------------- scenarios


@dataclass
class Family:
    """A guardian whose own school is ``home``, and their session there."""

    name: str
    phone: str
    home: Session
    #: their child's class at their own school
    own_class: SchoolClass


def set_up_schools(cluster: Iterable[Node], *pairs: tuple[str, str]) -> dict[str, Session]:
    """Log every node's first admin in and peer the schools of each pair (both ways)."""
    admins = {node.name: log_in_admin(node) for node in cluster}
    peer(admins, *pairs)
    return admins


def teacher_class(admin: Session, name: str) -> SchoolClass:
    """A teacher of ``admin``'s node and their class, its group open."""
    node = admin.node.name
    return new_class_with_group(
        admin, f"Enseignant {node.upper()}", f"prof@{node}.carnet.test", name
    )


def family_at_home(admin: Session, name: str, phone: str, child: str) -> Family:
    """A guardian of a child in a class of their own school, approved there, logged in."""
    own = teacher_class(admin, f"Classe de {child}")
    slip = register_guardian(own, add_child(own, child, "Martin"), name, phone)
    home = onboard_guardian(admin.node, slip)
    approve_waiting(own)
    return Family(name, phone, home, own)


def joined(family: Family, school_class: SchoolClass, child: str) -> Guardian:
    """The teacher registers the family for ``child``; they join from home; the teacher approves."""
    child_id = add_child(school_class, child, "Martin")
    slip = register_guardian(school_class, child_id, family.name, family.phone)
    join_class(family.home, school_class, slip)
    approve_waiting(school_class)
    wait_accepted(family, school_class.node)
    return slip


def wait_accepted(family: Family, class_node: Node) -> None:
    """Wait until the family's node shows their request to ``class_node``'s class accepted."""

    def accepted() -> bool:
        return any(
            j["school"] == class_node.origin and j["state"] == "accepted"
            for j in my_joins(family.home)
        )

    wait_until(
        accepted, timeout=DELIVERY, what=f"{family.home.node.name} hears {class_node.name}'s Accept",
        logs=[family.home.node, class_node],
    )  # fmt: skip


# --------------------------------------------------------------------------- posts and feeds


def _epoch_keys(session: Session, class_id: int) -> tuple[rc.g.GroupState, dict[int, bytes]]:
    assert session.keys is not None
    view = group_view(session, class_id)
    session.me = view["me"]
    return rc.open_epoch_keys(view, session.keys)


def post(school_class: SchoolClass, text: str) -> str:
    """The teacher posts ``text`` to the whole class; the post's id."""
    return post_many(school_class, [text])[0]


def post_many(
    school_class: SchoolClass, texts: list[str], answered: list[float] | None = None
) -> list[str]:
    """The teacher posts each text in turn (the keys opened once); the posts' ids.

    ``answered`` receives the ``time.perf_counter()`` of each answer (benchmarks).
    """
    teacher = school_class.teacher
    assert teacher.keys is not None
    state, keys = _epoch_keys(teacher, school_class.class_id)
    ids = []
    for text in texts:
        body = {"text": text, "attachments": []}
        request = rc.encrypt(teacher.keys, teacher.me, state, keys, "post", body)
        made = teacher.post(f"/api/v1/classes/{school_class.class_id}/posts", request)
        if answered is not None:
            answered.append(time.perf_counter())
        ids.append(str(made["id"]))
    return ids


def comment(session: Session, class_id: int, post_id: str, text: str) -> str:
    """A comment on a post (the guardian's ``class_id`` is their own node's, a mirror's for another school)."""
    assert session.keys is not None
    state, keys = _epoch_keys(session, class_id)
    request = rc.encrypt(
        session.keys, session.me, state, keys, "comment", {"text": text}, parent=post_id
    )
    made = session.post(f"/api/v1/classes/{class_id}/posts/{post_id}/replies", request)
    return str(made["id"])


def mark_read(session: Session, class_id: int, post_id: str) -> None:
    """The guardian has read the post (their feed marks it when it shows)."""
    session.post(f"/api/v1/classes/{class_id}/posts/{post_id}/read", expect=200)


def receipts(school_class: SchoolClass, post_id: str) -> dict[str, Any]:
    """Who has read the teacher's post: ``{"read": n, "total": m, …}``."""
    found: dict[str, Any] = school_class.teacher.get(
        f"/api/v1/classes/{school_class.class_id}/posts/{post_id}/receipts"
    )
    return found


def _all_pages(session: Session, path: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    before: int | None = None
    while True:
        query = f"?limit={PAGE}" + (f"&before={before}" if before else "")
        page = session.get(path + query)
        items += page["items"]
        before = page["next_before"]
        if not before:
            return items


def feed_items(guardian: Session) -> list[dict[str, Any]]:
    """Every item of the guardian's one feed (``GET /api/v1/feed``, all pages), newest first."""
    return _all_pages(guardian, "/api/v1/feed")


def class_posts(school_class: SchoolClass) -> list[dict[str, Any]]:
    """Every post of the class as its teacher's class feed shows it, newest first."""
    return _all_pages(school_class.teacher, f"/api/v1/classes/{school_class.class_id}/posts")


@dataclass(frozen=True)
class Shown:
    """A post as a person reads it: decrypted, with its class label and comments."""

    id: str
    class_id: int
    class_name: str
    text: str
    comments: tuple[str, ...]


def decrypt_items(session: Session, items: list[dict[str, Any]]) -> list[Shown]:
    """Open every item with the keys of its class's group, as the browser does."""
    assert session.keys is not None
    opened: dict[int, tuple[rc.g.GroupState, dict[int, bytes]]] = {}
    shown = []
    for item in items:
        class_id = int(item["class_id"])
        if class_id not in opened:
            opened[class_id] = _epoch_keys(session, class_id)
        state, keys = opened[class_id]
        body = rc.decrypt(item, state, keys, session.keys, session.me)
        replies = [rc.decrypt(r, state, keys, session.keys, session.me) for r in item["replies"]]
        texts = tuple(str(r.get("text", "")) for r in replies if "text" in r)
        shown.append(Shown(item["id"], class_id, item["class_name"], body["text"], texts))
    return shown


def read_feed(guardian: Session) -> list[Shown]:
    """The guardian's one feed, decrypted, newest first."""
    return decrypt_items(guardian, feed_items(guardian))


def read_class(school_class: SchoolClass) -> list[Shown]:
    """The teacher's class feed, decrypted, newest first."""
    return decrypt_items(school_class.teacher, class_posts(school_class))
