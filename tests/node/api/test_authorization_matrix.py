"""Issue 7: every route of the URL map against roles × ownership (``tests/authz_matrix.py``).

One world is built per module (two classes, three families, an admin, a
peer school and a node that is not one) and every route is asked by every
actor the matrix does not name, with the other side's ids: the answer is a
refusal (401/403/404, or the login page for an anonymous page view), never a
success and never a server error.  The rightful people's reads succeed, so
the refusals are not those of a broken world.  Request bodies are strict:
an extra field (``role``, ``account_id``…) is refused before any service runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import peewee
import pytest
import pytest_asyncio
from quart import Quart
from quart.testing import app as quart_testing
from quart.typing import TestClientProtocol as Client

from federation.httpsig import sign_request
from federation.keys import key_id
from federation.runtime import outbox
from federation.runtime import peers as peer_service
from node.api import Api, Operation
from node.api.schema import Body
from node.datafolder import create_keys
from node.e2e.encoding import b64url_encode
from node.refclient_groups import encrypt, setup_group
from node.services import absences, accounts, blobs, calendar, groups, joins
from tests import authz_matrix as m
from tests.absence_factories import report
from tests.action_factories import structure
from tests.alert_factories import add_alert_group
from tests.chat_factories import accept, open_conversation, say, second_guardian, set_chat
from tests.conftest import PUBLIC_URL, _pg_params, backend
from tests.factories import (
    School,
    client_account,
    csrf,
    invite,
    make_child,
    make_class,
    make_guardian,
    make_staff,
)
from tests.federation.runtime.peer_factories import FakePeer
from tests.feed_factories import ClassFeed, Person, make_class_feed
from tests.push_factories import fake_browser

pytestmark = pytest.mark.asyncio(loop_scope="module")

LOGINS = {
    m.GA: "+33639980000",
    m.GC: "+33639980001",
    m.GA2: "+33639989999",
    m.GB: "+33639980002",
    m.TX: "dubois@school.test",
    m.TY: "teacher@school.test",
    m.ADMIN: "admin@school.test",
}
#: what a refusal may be; a page asked anonymously sends to the login page instead
REFUSED = {401, 403, 404}


@dataclass
class World:
    app: Quart
    objects: dict[str, str] = field(default_factory=dict)
    clients: dict[str, Client] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    peer: FakePeer = field(default_factory=FakePeer)
    not_a_peer: FakePeer = field(default_factory=lambda: FakePeer("https://ecole-q.example"))
    #: a well-formed message of class X (its teacher's post), replayed at other objects
    message: dict[str, Any] = field(default_factory=dict)
    today: str = ""
    #: the people of classes X and Y with their keys, and their class
    people: dict[str, tuple[ClassFeed, Person]] = field(default_factory=dict)


def build(app: Quart) -> World:
    """The school of ``tests/authz_matrix.py``: classes X and Y, families A, C and B."""
    storage, ctx = app.config["CARNET_STORAGE"], app.config["CARNET_CTX"]
    x = make_class_feed(storage, ctx, families=2)
    admin = x.school.admin
    ga, gc = x.guardians
    second_guardian(x, ga.child_id or 0)
    # the alert group holds class X's families only: guardian B comes after the alert
    alerting = add_alert_group(storage, ctx, x)
    alert = alerting.send(drill=True)
    ty = make_staff(storage, ctx, "teacher", "Mme Roux", LOGINS[m.TY], by=admin)
    class_y = make_class(storage, ctx, ty, "CM2 B").id
    child_b = make_child(storage, ctx, ty, class_y, "Hugo", "Bernard").id
    slip = invite(storage, ctx, ty, child_b, phone=LOGINS[m.GB], name="Parent B")
    gb_actor = make_guardian(storage, ctx, slip.code, LOGINS[m.GB])
    pending = invite(storage, ctx, ty, child_b, phone="+33639981001", name="Parent B bis")
    teacher_y = Person(ty, client_account(LOGINS[m.TY]).keys, groups.member_id(ctx, ty.account_id))
    gb = Person(gb_actor, client_account(LOGINS[m.GB]).keys,
                groups.member_id(ctx, gb_actor.account_id), child_b)  # fmt: skip
    y = ClassFeed(storage, ctx, School(admin, ty, class_y, child_b), teacher_y, [gb], b"")
    log, envelopes, y.epoch_key = setup_group(teacher_y.keys, teacher_y.me)
    storage.call(groups.create_group, ctx, ty, class_y, log, envelopes)
    y.approve_all()
    set_chat(y, parent_chat="open")
    upload = storage.call(blobs.start_upload, ctx, ty, class_y, 16)
    done = storage.call(blobs.start_upload, ctx, ty, class_y, 16)
    storage.call(blobs.append_part, ctx, ty, done.id, 0, b"y" * 16)
    checksum = b64url_encode(hashlib.sha256(b"y" * 16).digest())
    storage.call(blobs.complete_upload, ctx, ty, done.id, checksum)
    # a poll with an attached file: its answers, its file and its readers are class Y's
    labels = {"type": "poll", "title": "Sortie", "choices": {"a": "Oui", "b": "Non"}}
    body = {"text": "Sortie au musée", "attachments": [], "action": labels}
    post_y = y.post(body, action=structure("poll"), blobs=[done.id])
    accept(y, gb)
    room_y = open_conversation(y, gb, "room", [gb.me])
    room_chat_y = str(say(y, gb, room_y, "Qui vient à la kermesse ?").message)
    conversation_y = open_conversation(y, teacher_y, "family", [teacher_y.me, gb.me], child=child_b)
    chat_y = str(say(y, teacher_y, conversation_y, "Bonjour").message)
    poll_x = x.post(body | {"text": "Kermesse"}, action=structure("poll"))
    family_c = [x.teacher.me, gc.me]
    conversation_c = open_conversation(x, x.teacher, "family", family_c, child=gc.child_id)
    chat_c = str(say(x, x.teacher, conversation_c, "Bonjour").message)
    day = absences.today(ctx).isoformat()
    note_y = report(y, gb, "absent", day)
    note_c = report(x, gc, "absent", day)
    _, setup_token = storage.call(
        accounts.create_staff, ctx, admin, "teacher", "M. Nouveau", "nouveau@school.test"
    )
    link = storage.call(calendar.new_link, ctx, ga.actor)
    world = World(app, today=day)
    world.people = {
        m.TX: (x, x.teacher), m.GA: (x, ga), m.GC: (x, gc), m.GA2: (x, x.guardians[2]),
        m.TY: (y, teacher_y), m.GB: (y, gb),
    }  # fmt: skip
    state, keys = x.keys_of(x.teacher)
    world.message = encrypt(x.teacher.keys, x.teacher.me, state, keys, "post", {"text": "x"})[
        "message"
    ]
    staged = storage.call(
        peer_service.stage_peer, ctx, admin, world.peer.origin, world.peer.document()
    )
    storage.call(peer_service.confirm_peer, ctx, admin, staged.id, world.peer.fingerprints())
    target = storage.call(
        joins.prepare, ctx, ga.actor, world.peer.origin, outbox.new_id(ctx, "joins")
    )
    join = storage.call(joins.started, ctx, ga.actor, target, "remote-1", "•• 00")
    subscription = fake_browser().subscribe(storage, ctx, ga.actor)
    world.objects = {
        "class_x": str(x.class_id), "child_a": str(ga.child_id), "class_y": str(class_y), "child_b": str(child_b),
        "invitation_b": str(pending.invitation_id), "account_teacher_y": str(ty.account_id),
        "account_guardian_b": str(gb_actor.account_id), "alert": str(alert.alert_id),
        "post_y": post_y, "poll_x": poll_x, "conversation_y": conversation_y, "chat_y": chat_y, "room_y": room_y, "room_chat_y": room_chat_y,
        "conversation_c": conversation_c, "chat_c": chat_c, "note_y": note_y, "note_c": note_c,
        "upload_y": upload.id, "blob_y": done.id, "setup_token": setup_token,
        "calendar_token": (link.url or "").rsplit("/", 1)[1].removesuffix(".ics"),
        "unknown_token": "Zm9yZ2VkLXRva2VuLW9mLW5vYm9keQ", "peer_p": str(staged.id),
        "join_a": str(join.id), "subscription_a": str(subscription.id),
        "stylesheet": "css/carnet.css", "txn": "01J8Z6R4000000000000000001",
        "remote_join": "01J8Z6R4000000000000000002", "stream_y": f"classes/{class_y}",
    }  # fmt: skip
    return world


def node_config(
    tmp_path_factory: pytest.TempPathFactory, migrated_sqlite: Path, postgres_url: str | None
) -> dict[str, Any]:
    """The node of this module, on a database of its own.

    On PostgreSQL the other tests of the worker empty their database before
    each test; the world lives for the whole module, so it gets another one.
    """
    folder = tmp_path_factory.mktemp("authz") / "node"
    create_keys(folder)
    config: dict[str, Any] = {
        "data_dir": str(folder), "public_url": PUBLIC_URL, "school_name": "École des Tests",
        "default_locale": "en",
    }  # fmt: skip
    if backend() == "sqlite":
        shutil.copyfile(migrated_sqlite, folder / "carnet.sqlite3")
    elif postgres_url:
        server, name = postgres_url.rsplit("/", 1)
        on_server(
            server, f'DROP DATABASE IF EXISTS "{name}_authz"', f'CREATE DATABASE "{name}_authz"'
        )
        config["database_url"] = f"{server}/{name}_authz"
    return config


def on_server(server: str, *statements: str) -> None:
    admin = peewee.PostgresqlDatabase("postgres", **_pg_params(server))
    admin.connect()
    admin.connection().autocommit = True
    for statement in statements:
        admin.execute_sql(statement)
    admin.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(
    tmp_path_factory: pytest.TempPathFactory, migrated_sqlite: Path, postgres_url: str | None
) -> AsyncIterator[World]:
    from node.app import create_app

    config = node_config(tmp_path_factory, migrated_sqlite, postgres_url)
    application = create_app(config)
    async with quart_testing.TestApp(application, startup_timeout=30, shutdown_timeout=30):
        # nothing leaves this process: no deliveries nor pulls to the (fake) peer school
        await application.extensions["carnet_delivery"].stop()
        for task in application.extensions["carnet_anti_entropy"]:
            task.cancel()
        made = build(application)
        for who, login in LOGINS.items():
            client = made.clients[who] = application.test_client()
            made.tokens[who] = await log_in(client, login)
        anonymous = made.clients[m.ANON] = application.test_client()
        made.tokens[m.ANON] = await csrf(anonymous)
        sessions = await (await made.clients[m.GA].get("/api/v1/me/sessions")).get_json()
        made.objects["session_a"] = str(sessions[0]["id"])
        yield made
    if "database_url" in config:
        server, name = config["database_url"].rsplit("/", 1)
        on_server(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def log_in(client: Client, login: str) -> str:
    """Log in through the JSON API with the secret the account was made with (the
    browser derives it again from the passphrase: 0.5 s of PBKDF2 this test skips)."""
    headers = {"X-CSRF-Token": await csrf(client)}
    secret = client_account(login).credentials.login_secret
    await client.post("/api/v1/auth/prelogin", json={"login": login}, headers=headers)
    response = await client.post(
        "/api/v1/auth/login", json={"login": login, "login_secret": secret}, headers=headers
    )
    assert response.status_code == 200, await response.get_data(as_text=True)
    token: str = (await response.get_json())["csrf_token"]
    return token


# ---------------------------------------------------------------- requests


def operations(app: Quart) -> dict[tuple[str, str], Operation]:
    api: Api = app.extensions["carnet_api"]
    return {(op.method, "/api/v1" + op.path): op for op in api.operations}


#: values that pass the services' first checks of their input, so that what answers is
#: the permission check: an encrypted message is class X's, replayed elsewhere
SAMPLES: dict[str, Any] = {
    "template": "lockdown", "phone": "+33639981099", "display_name": "Eve Martin",
    "op": "join", "kind": "family", "sms_code": "123456", "entries": [{"type": "add"}],
    # a join goes through peer P, which the refused never reach (nothing leaves this process)
    "school": FakePeer.origin,
}  # fmt: skip
#: where a field of the same name means something else
BODY_SAMPLES: dict[str, dict[str, Any]] = {"NewAbsence": {"kind": "absent"}}


def sample_body(world: World, body: Body) -> dict[str, Any]:
    """A body the schema accepts: every required field, of its type, as plausible as cheap."""
    values = {"string": "x", "object": {}, "array": [], "boolean": False}
    samples = {**SAMPLES, "message": world.message, "first_day": world.today}
    samples |= BODY_SAMPLES.get(body.name, {})
    return {
        name: samples.get(name, spec.minimum if spec.type == "integer" else values[spec.type])
        for name, spec in body.fields.items()
        if spec.required
    }


def url_of(rule: Any, params: dict[str, str], objects: dict[str, str]) -> str:
    return rule.build({name: objects[obj] for name, obj in params.items()}, append_unknown=False)[1]


def body_values(world: World, who: str, names: dict[str, str]) -> dict[str, Any]:
    """A case's body fields: world objects (ids as numbers), ``own:<kind>`` (a message of
    that kind the asker signs for their class, so the answer is about what it asks, not
    whose signature it is), ``self`` (the asker's member id) or plain values."""
    out: dict[str, Any] = {}
    for name, value in names.items():
        found = world.objects.get(value, value)
        if found.startswith("own:"):
            out[name] = own_message(world, who, found.removeprefix("own:"))
        elif found == "self" and who in world.people:
            out[name] = world.people[who][1].me
        else:
            out[name] = int(found) if found.isdigit() else found
    return out


def own_message(world: World, who: str, spec: str) -> dict[str, Any]:
    """``kind`` or ``kind@parent`` (a world object: the conversation a member event is in)."""
    if who not in world.people:  # in no class: refused before its signature matters
        return world.message
    cf, person = world.people[who]
    kind, _, parent = spec.partition("@")
    state, keys = cf.keys_of(person)
    sealed = encrypt(
        person.keys, person.me, state, keys, kind, {"text": "x"}, to=[person.me],
        parent=world.objects[parent] if parent else None,
    )  # fmt: skip
    message: dict[str, Any] = sealed["message"]
    return message


async def ask(
    world: World, who: str, method: str, rule: Any, url: str, body: dict[str, Any] | None = None
) -> Any:
    """Make the request as ``who`` would: a browser with its session and CSRF token, or a
    node signing it (``peer_p``, ``node_q``); anonymous sends neither."""
    if rule.rule.startswith("/np/"):
        return await ask_node(world, who, method, url)
    client, token = world.clients[who], world.tokens[who]
    headers = {"X-CSRF-Token": token}
    if rule.rule.startswith("/api/v1/"):
        op = operations(world.app).get((method, rule.rule))
        if op is not None and op.body is not None:
            return await client.open(
                url, method=method, json=sample_body(world, op.body) | (body or {}), headers=headers
            )
        if op is not None and op.raw_body is not None:
            headers["Content-Type"] = op.raw_body
            return await client.open(url + "?offset=0", method=method, data=b"x", headers=headers)
        return await client.open(url, method=method, headers=headers)
    if method == "GET":
        return await client.get(url)
    form = {"csrf_token": token, "display_name": SAMPLES["display_name"], "phone": SAMPLES["phone"]}
    return await client.open(url, method=method, form=form)


async def ask_node(world: World, who: str, method: str, url: str) -> Any:
    client = world.clients[m.ANON]
    body = json.dumps({"sms_code": "123456"}).encode() if method in ("POST", "PUT") else None
    if who == m.ANON:
        return await client.open(url, method=method, data=body or b"")
    node = world.peer if who == m.PEER else world.not_a_peer
    headers = sign_request(
        method=method, target_uri=PUBLIC_URL + url, body=body, signing_key=node.keys["k1"],
        keyid=key_id(node.origin, "k1"), created=int(time.time()),
    )  # fmt: skip
    if body is not None:
        headers["Content-Type"] = "application/json"
    return await client.open(url, method=method, data=body or b"", headers=headers)


def rules(app: Quart) -> list[tuple[Any, str]]:
    """(rule, method) of every route with an entry (the first test names those without)."""
    out = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint not in m.MATRIX:
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            out.append((rule, method))
    return sorted(out, key=lambda pair: (pair[0].rule, pair[1]))


def actors_of(rule: Any, c: m.Case | None = None) -> tuple[str, ...]:
    """Who asks: every actor about an object; one per role where only the role counts."""
    if rule.rule.startswith("/np/"):
        return m.NODE_ACTORS
    if c is not None and not c.params and not c.body:
        return m.ONE_PER_ROLE
    return m.BROWSER_ACTORS


#: refusals for another reason than who asks: a test passing on them would prove nothing
BESIDE_THE_POINT = ("This form has expired", "came from another site", "signature")


async def refusal(rule: Any, who: str, method: str, response: Any) -> str | None:
    """Why the response is not the refusal it must be (None: it is)."""
    status, text = response.status_code, await response.get_data(as_text=True)
    # an unsigned or unknown node is refused by the signature check: the point, there
    unsigned = who == m.NODE_Q or (who == m.ANON and rule.rule.startswith("/np/"))
    if status in REFUSED and (unsigned or not any(s in text for s in BESIDE_THE_POINT)):
        return None
    # a page asked without a session sends to the login page
    location = response.headers.get("Location", "")
    if who == m.ANON and method == "GET" and status in (302, 303) and location.endswith("/login"):
        return None if not rule.rule.startswith(("/api/", "/np/")) else "redirected"
    return f"{status} {text[:160]}"


# ---------------------------------------------------------------- the tests


async def test_every_route_has_an_entry_and_every_entry_a_route(world: World) -> None:
    served = {rule.endpoint: rule for rule in world.app.url_map.iter_rules()}
    missing = sorted(set(served) - set(m.MATRIX))
    assert not missing, (
        f"routes without an entry in tests/authz_matrix.py (say who may reach them): {missing}"
    )
    stale = sorted(set(m.MATRIX) - set(served))
    assert not stale, f"entries of tests/authz_matrix.py for routes that no longer exist: {stale}"
    for endpoint, entry in m.MATRIX.items():
        wanted = set(served[endpoint].arguments)
        for c in entry.cases:
            assert set(c.params) == wanted, (endpoint, sorted(wanted), sorted(c.params))
            assert set(c.params.values()) <= set(world.objects), (endpoint, c.params)


async def test_everyone_else_is_refused_with_the_other_sides_ids(world: World) -> None:
    leaks: list[str] = []
    asked = 0
    for rule, method in rules(world.app):
        entry = m.MATRIX[rule.endpoint]
        for c in entry.cases:
            url = url_of(rule, c.params, world.objects)
            for who in actors_of(rule, c):
                if who in c.allowed:
                    continue
                response = await ask(world, who, method, rule, url, body_values(world, who, c.body))
                asked += 1
                wrong = await refusal(rule, who, method, response)
                if wrong is not None:
                    leaks.append(f"{method} {url} as {who}: {wrong}")
    assert leaks == [], "\n".join(leaks)
    assert asked > 500


#: who reads for a case: the first of them it allows (the public asks anonymously)
READERS = (m.ANON, m.GB, m.GC, m.GA, m.GA2, m.TY, m.TX, m.ADMIN, m.PEER)


async def test_the_rightful_people_read_what_is_theirs(world: World) -> None:
    """One rightful reader per case of every GET route (the refusals above are not those of
    wrong ids or a broken world)."""
    failures: list[str] = []
    read = 0
    for rule, method in rules(world.app):
        entry = m.MATRIX[rule.endpoint]
        if method != "GET" or entry.no_read:
            continue
        for c in entry.cases:
            url = url_of(rule, c.params, world.objects)
            for who in [r for r in READERS if r in c.allowed and r in actors_of(rule)][:1]:
                response = await ask(world, who, method, rule, url)
                read += 1
                if not 200 <= response.status_code < 400:
                    text = (await response.get_data(as_text=True))[:160]
                    failures.append(f"GET {url} as {who}: {response.status_code} {text}")
    assert failures == [], "\n".join(failures)
    assert read > 60


# ---------------------------------------------------------------- mass assignment

#: what a client could try to set on itself or on what it writes
EXTRA_FIELDS = ("role", "id", "account_id", "school", "is_admin", "author_id", "class_id")
#: object-typed fields of request bodies: each is checked field by field where it is read
#: (``test_nested_objects_refuse_unknown_fields``); a new one must be added there
NESTED_OBJECTS = {"message", "action", "credentials", "vault"}


async def test_every_request_schema_refuses_unknown_fields(world: World) -> None:
    client = world.clients[m.ANON]
    document = await (await client.get("/api/v1/openapi.json")).get_json()
    schemas = document["components"]["schemas"]
    checked = 0
    for path, item in document["paths"].items():
        for method, operation in item.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" not in content:
                continue
            name = content["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
            assert schemas[name]["additionalProperties"] is False, (method, path)
            for field_name, prop in schemas[name]["properties"].items():
                if prop["type"] == "object":
                    assert field_name in NESTED_OBJECTS, (method, path, field_name)
                    assert prop.get("additionalProperties", False) is False, (method, path)
            checked += 1
    assert checked >= 40


async def test_an_extra_field_is_refused_by_every_operation(world: World) -> None:
    """Each body with one more field (as the admin, who may do the most) is a 400 naming it,
    before any service runs."""
    client, token = world.clients[m.ADMIN], world.tokens[m.ADMIN]
    accepted: list[str] = []
    bodies = [(op, op.body) for op in operations(world.app).values() if op.body is not None]
    for i, (op, schema) in enumerate(bodies):
        extra = EXTRA_FIELDS[i % len(EXTRA_FIELDS)]
        body = sample_body(world, schema) | {extra: 1}
        url = re.sub(r"<(?:\w+:)?(\w+)>", "1", "/api/v1" + op.path)
        response = await client.open(
            url, method=op.method, json=body, headers={"X-CSRF-Token": token}
        )
        error = (await response.get_json() or {}).get("error", {})
        if response.status_code != 400 or error.get("field") != extra:
            accepted.append(f"{op.method} {op.path} with {extra}: {response.status_code} {error}")
    assert accepted == [], "\n".join(accepted)
    assert len(bodies) >= 40


async def test_nested_objects_refuse_unknown_fields(world: World) -> None:
    async def post(who: str, url: str, body: dict[str, Any]) -> Any:
        client, token = world.clients[who], world.tokens[who]
        response = await client.post(url, json=body, headers={"X-CSRF-Token": token})
        return response.status_code, (await response.get_json())["error"]

    posts = f"/api/v1/classes/{world.objects['class_x']}/posts"
    # a protocol message: exactly a header, a ciphertext and a signature (the header is signed)
    status, error = await post(m.TX, posts, {"message": world.message | {"author_id": 2}})
    assert (status, error["field"]) == (400, "message")
    # an action's structure: its known keys only
    action = structure("poll") | {"is_admin": True}
    status, error = await post(m.TX, posts, {"message": world.message, "action": action})
    assert (status, error["field"]) == (400, "action")
    # credentials (the vault inside them is stored as the browser sealed it, never read)
    credentials = dataclasses.asdict(client_account(LOGINS[m.GA]).credentials) | {"role": "admin"}
    body = {"current_login_secret": "x", "credentials": credentials}
    status, error = await post(m.GA, "/api/v1/me/passphrase", body)
    assert (status, error["field"]) == (400, "role")
    body = {"attempt_id": "x", "credentials": credentials}
    status, error = await post(m.ANON, "/api/v1/onboarding/complete", body)
    assert (status, error["field"]) == (400, "role")


#: what only class Y's people and the admin may read: its child's names, the class's name
CLASS_Y_NAMES = ("Hugo", "Bernard", "CM2 B")


async def test_class_x_never_reads_class_ys_names(world: World) -> None:
    """Every page and read a parent and the teacher of class X may open, asked with child B's
    id in the query as well (``?child=``), shows nothing of class Y (0 leaks)."""
    leaks: list[str] = []
    read = 0
    for rule, method in rules(world.app):
        entry = m.MATRIX[rule.endpoint]
        if method != "GET" or entry.no_read or rule.rule.startswith("/np/"):
            continue
        for c in entry.cases:
            url = url_of(rule, c.params, world.objects) + f"?child={world.objects['child_b']}"
            for who in (m.GA, m.TX):
                if who not in c.allowed:
                    continue
                response = await world.clients[who].get(url)
                text = await response.get_data(as_text=True)
                read += 1
                found = [name for name in CLASS_Y_NAMES if name in text]
                if found or response.status_code >= 500:
                    leaks.append(f"GET {url} as {who}: {response.status_code} shows {found}")
    assert leaks == [], "\n".join(leaks)
    assert read > 40
    # the names are there to be seen, by class Y's people
    home = await (await world.clients[m.GB].get("/home")).get_data(as_text=True)
    assert "Hugo" in home and "CM2 B" in home


async def test_a_method_override_header_changes_nothing(world: World) -> None:
    """HTTP verb tampering: the method is the request's, never a header's."""
    client, token = world.clients[m.GB], world.tokens[m.GB]
    post = f"/api/v1/classes/{world.objects['class_y']}/messages/{world.objects['post_y']}"
    for header in ("X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"):
        response = await client.post(post, headers={"X-CSRF-Token": token, header: "DELETE"})
        assert response.status_code == 405, header
    posts = await client.get(f"/api/v1/classes/{world.objects['class_y']}/posts")
    assert world.objects["post_y"] in [p["id"] for p in (await posts.get_json())["items"]]


@dataclass
class _Answer:
    status_code: int
    text: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    async def get_data(self, as_text: bool = True) -> str:
        return self.text


async def test_what_counts_as_a_refusal() -> None:
    """The check itself: a success, a server error, a CSRF refusal or a redirect of the API is
    not the refusal the matrix wants; 401/403/404 and the login page for a page are."""

    class Rule:
        def __init__(self, rule: str) -> None:
            self.rule = rule

    api, page, np = Rule("/api/v1/classes/<id:class_id>"), Rule("/classes"), Rule("/np/keys")
    login = {"Location": "/login"}
    assert await refusal(api, m.GA, "GET", _Answer(404)) is None
    assert await refusal(page, m.ANON, "GET", _Answer(302, headers=login)) is None
    assert await refusal(np, m.ANON, "POST", _Answer(401, "missing signature")) is None
    assert await refusal(api, m.GA, "GET", _Answer(200)) is not None
    assert await refusal(api, m.GA, "POST", _Answer(500)) is not None
    assert await refusal(api, m.ANON, "GET", _Answer(302, headers=login)) is not None
    assert await refusal(api, m.ANON, "POST", _Answer(403, "This form has expired")) is not None
    assert await refusal(np, m.PEER, "POST", _Answer(401, "bad signature")) is not None
