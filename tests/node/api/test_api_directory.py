"""Who may see and change classes, children and invitations over the API."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client

from node.services import directory, onboarding
from node.services.context import Actor, ServiceContext
from node.storage import directory as directory_store
from node.storage.db import Storage
from tests.factories import api_login as login
from tests.factories import (
    csrf,
    invite,
    make_child,
    make_class,
    make_guardian,
    make_school,
    make_staff,
)

PHONE_A = "+33639980001"
PHONE_B = "+33639980002"
PHONE_A2 = "+33639980003"


async def send(client: Client, method: str, path: str, body: Any = None) -> Any:
    token = await csrf(client)
    return await client.open(
        path, method=method, json=body if body is not None else {}, headers={"X-CSRF-Token": token}
    )


@dataclass
class TwoClasses:
    admin: Actor
    teacher_a: Actor
    teacher_b: Actor
    class_a: int
    class_b: int
    child_a: int
    child_b: int
    invitation_a: int
    code_a: str
    invitation_b: int


def two_classes(storage: Storage, ctx: ServiceContext) -> TwoClasses:
    """M. Dubois teaches Léa (CE1 A); Mme Teacher teaches Hugo (CM2 B); one invitation each."""
    school = make_school(storage, ctx)
    teacher_b = make_staff(storage, ctx, by=school.admin)
    class_b = make_class(storage, ctx, teacher_b, "CM2 B")
    child_b = make_child(storage, ctx, teacher_b, class_b.id, "Hugo", "Petit")
    slip_a = invite(storage, ctx, school.teacher, school.child_id, phone=PHONE_A)
    slip_b = invite(storage, ctx, teacher_b, child_b.id, phone=PHONE_B, name="Alex Petit")
    return TwoClasses(
        school.admin,
        school.teacher,
        teacher_b,
        school.class_id,
        class_b.id,
        school.child_id,
        child_b.id,
        slip_a.invitation_id,
        slip_a.code,
        slip_b.invitation_id,
    )


def roster_snapshot(storage: Storage, ctx: ServiceContext, world: TwoClasses) -> Any:
    return storage.call(directory.class_roster, ctx, world.admin, world.class_a)


async def test_teacher_cannot_touch_another_teachers_class(
    client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    world = two_classes(storage, ctx)
    before = roster_snapshot(storage, ctx, world)
    await login(client, "teacher@school.test")  # Mme Teacher, class B

    listed = await (await client.get("/api/v1/classes")).get_json()
    assert [c["name"] for c in listed] == ["CM2 B"]

    missing = 10**6
    probes = [
        ("GET", "/api/v1/classes/{}", world.class_a, None),
        (
            "POST",
            "/api/v1/classes/{}/children",
            world.class_a,
            {"first_name": "X", "last_name": "Y"},
        ),
        ("POST", "/api/v1/classes/{}/slips", world.class_a, None),
        (
            "POST",
            "/api/v1/children/{}/guardians",
            world.child_a,
            {"display_name": "Intrus", "phone": "0639980099"},
        ),
        ("POST", "/api/v1/guardians/{}/code", world.invitation_a, {}),
        ("DELETE", "/api/v1/guardians/{}", world.invitation_a, None),
    ]
    revealing = []
    for method, template, other_id, body in probes:
        response = await send(client, method, template.format(other_id), body)
        assert response.status_code == 404, (method, template)
        nowhere = await send(client, method, template.format(missing), body)
        assert nowhere.status_code == 404
        text = await response.get_data(as_text=True)
        assert "Léa" not in text and "CE1" not in text and "Dubois" not in text
        # Someone else's id must answer exactly like an id that does not exist.
        theirs, absent = await response.get_json(), await nowhere.get_json()
        if theirs != absent:
            revealing.append(
                (method, template, theirs["error"]["message"], absent["error"]["message"])
            )

    assert roster_snapshot(storage, ctx, world) == before
    # The old code was neither replaced nor revoked: the parent can still start.
    view = storage.call(onboarding.start, ctx, PHONE_A, world.code_a, "192.0.2.1", "en")
    assert view.attempt_id
    assert revealing == []


async def test_teacher_can_manage_own_class_and_admin_every_class(
    app: Quart, client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    world = two_classes(storage, ctx)
    await login(client, "teacher@school.test")
    response = await send(
        client,
        "POST",
        f"/api/v1/classes/{world.class_b}/children",
        {"first_name": "Inès", "last_name": "Petit"},
    )
    assert response.status_code == 201
    assert (await response.get_json())["class_name"] == "CM2 B"

    admin = app.test_client()
    await login(admin, "admin@school.test")
    listed = await (await admin.get("/api/v1/classes")).get_json()
    assert sorted(c["name"] for c in listed) == ["CE1 A", "CM2 B"]
    page = await (await admin.get(f"/api/v1/classes/{world.class_a}")).get_json()
    assert page["class"]["teacher_name"] == "M. Dubois"
    assert [e["child"]["first_name"] for e in page["children"]] == ["Léa"]


async def test_teacher_cannot_create_a_class_for_someone_else(
    client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    world = two_classes(storage, ctx)
    await login(client, "teacher@school.test")
    response = await send(
        client,
        "POST",
        "/api/v1/classes",
        {"name": "Piège", "teacher_id": world.teacher_a.account_id},
    )
    assert response.status_code == 403
    classes = storage.call(directory.list_classes, ctx, world.admin)
    assert "Piège" not in [c.name for c in classes]


async def test_guardian_cannot_call_teacher_or_admin_endpoints(
    client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    world = two_classes(storage, ctx)
    make_guardian(storage, ctx, world.code_a, PHONE_A)
    await login(client, PHONE_A)
    for method, path, body in [
        ("GET", "/api/v1/classes", None),
        ("POST", "/api/v1/classes", {"name": "Mine"}),
        ("GET", "/api/v1/staff", None),
        ("POST", "/api/v1/staff", {"role": "admin", "display_name": "Me", "email": "me@x.test"}),
        ("POST", f"/api/v1/accounts/{world.teacher_a.account_id}/disable", None),
        ("POST", f"/api/v1/staff/{world.teacher_a.account_id}/setup-link", None),
    ]:
        response = await send(client, method, path, body)
        assert response.status_code == 403, (method, path)
    # Their own child's class is still not theirs to manage.
    for method, path, body in [
        ("GET", f"/api/v1/classes/{world.class_a}", None),
        (
            "POST",
            f"/api/v1/classes/{world.class_a}/children",
            {"first_name": "A", "last_name": "B"},
        ),
        (
            "POST",
            f"/api/v1/children/{world.child_a}/guardians",
            {"display_name": "X", "phone": "0639980077"},
        ),
        ("POST", f"/api/v1/guardians/{world.invitation_a}/code", {}),
        ("DELETE", f"/api/v1/guardians/{world.invitation_a}", None),
    ]:
        response = await send(client, method, path, body)
        assert response.status_code in (403, 404), (method, path)
    roster = roster_snapshot(storage, ctx, world)
    assert [g.display_name for g in roster[0].guardians] == ["Camille Martin"]
    assert [e.child.first_name for e in roster] == ["Léa"]


async def test_teacher_gets_403_on_guardian_and_admin_endpoints(
    client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    two_classes(storage, ctx)
    await login(client, "dubois@school.test")
    assert (await client.get("/api/v1/me/children")).status_code == 403
    assert (await client.get("/api/v1/staff")).status_code == 403
    response = await send(
        client,
        "POST",
        "/api/v1/staff",
        {"role": "admin", "display_name": "Moi", "email": "m@x.test"},
    )
    assert response.status_code == 403


async def test_guardians_see_only_their_own_children(
    app: Quart, client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    world = two_classes(storage, ctx)
    make_guardian(storage, ctx, world.code_a, PHONE_A)
    code_b = storage.call(directory.reissue_code, ctx, world.teacher_b, world.invitation_b).code
    make_guardian(storage, ctx, code_b, PHONE_B)

    await login(client, PHONE_A)
    mine = await (await client.get("/api/v1/me/children")).get_json()
    assert [(c["first_name"], c["class_name"]) for c in mine] == [("Léa", "CE1 A")]

    other = app.test_client()
    await login(other, PHONE_B)
    theirs = await (await other.get("/api/v1/me/children")).get_json()
    assert [(c["first_name"], c["class_name"]) for c in theirs] == [("Hugo", "CM2 B")]
    assert "Léa" not in str(theirs)


async def test_guardian_with_children_in_two_classes_sees_both(
    client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    world = two_classes(storage, ctx)
    make_guardian(storage, ctx, world.code_a, PHONE_A)
    second = invite(storage, ctx, world.teacher_b, world.child_b, phone=PHONE_A)
    make_guardian(storage, ctx, second.code, PHONE_A)
    await login(client, PHONE_A)
    children = await (await client.get("/api/v1/me/children")).get_json()
    assert sorted((c["first_name"], c["class_name"], c["teacher_name"]) for c in children) == [
        ("Hugo", "CM2 B", "Mme Teacher"),
        ("Léa", "CE1 A", "M. Dubois"),
    ]


async def test_two_guardians_of_one_child_each_have_their_own_account(
    app: Quart, client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    world = two_classes(storage, ctx)
    other_parent = invite(
        storage, ctx, world.teacher_a, world.child_a, phone=PHONE_A2, name="Dominique Martin"
    )
    first = make_guardian(storage, ctx, world.code_a, PHONE_A)
    second = make_guardian(storage, ctx, other_parent.code, PHONE_A2)
    assert first.account_id != second.account_id

    await login(client, PHONE_A)
    other = app.test_client()
    await login(other, PHONE_A2)
    me_first = await (await client.get("/api/v1/me")).get_json()
    me_second = await (await other.get("/api/v1/me")).get_json()
    assert me_first["id"] != me_second["id"]
    assert me_first["display_name"] == "Camille Martin"
    assert me_second["display_name"] == "Dominique Martin"
    children_first = await (await client.get("/api/v1/me/children")).get_json()
    children_second = await (await other.get("/api/v1/me/children")).get_json()
    assert children_first == children_second
    assert [c["first_name"] for c in children_first] == ["Léa"]


async def test_removing_a_guardian_who_joined_unlinks_the_child_at_once(
    client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    world = two_classes(storage, ctx)
    make_guardian(storage, ctx, world.code_a, PHONE_A)
    await login(client, PHONE_A)
    assert len(await (await client.get("/api/v1/me/children")).get_json()) == 1
    storage.call(directory.remove_guardian, ctx, world.teacher_a, world.invitation_a)
    assert await (await client.get("/api/v1/me/children")).get_json() == []
    # Removing twice is a clear 404, not a crash.
    from node.errors import NotFound

    with pytest.raises(NotFound):
        storage.call(directory.remove_guardian, ctx, world.teacher_a, world.invitation_a)


async def test_every_session_endpoint_is_401_without_a_session(
    app: Quart, client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    two_classes(storage, ctx)
    token = await csrf(client)
    operations = [op for op in app.extensions["carnet_api"].operations if op.auth == "session"]
    assert len(operations) >= 12
    for op in operations:
        path = "/api/v1" + re.sub(r"<\w+:\w+>", "1", op.path)
        response = await client.open(
            path, method=op.method, json={}, headers={"X-CSRF-Token": token}
        )
        assert response.status_code == 401, (op.method, path)
        assert (await response.get_json())["error"]["code"] == "unauthenticated"


@pytest.mark.parametrize(
    "bad_id", ["0", "-1", "abc", "1.5", "%201", "99999999999999999999", str(2**63)]
)
async def test_odd_ids_in_urls_are_404(
    client: Client, storage: Storage, ctx: ServiceContext, bad_id: str
) -> None:
    two_classes(storage, ctx)
    await login(client, "admin@school.test")
    for method, template, body in [
        ("GET", "/api/v1/classes/{}", None),
        ("POST", "/api/v1/classes/{}/children", {"first_name": "A", "last_name": "B"}),
        ("POST", "/api/v1/classes/{}/slips", None),
        ("POST", "/api/v1/children/{}/guardians", {"display_name": "X", "phone": "0639980077"}),
        ("POST", "/api/v1/guardians/{}/code", {}),
        ("DELETE", "/api/v1/guardians/{}", None),
        ("POST", "/api/v1/accounts/{}/disable", None),
        ("POST", "/api/v1/staff/{}/setup-link", None),
    ]:
        response = await send(client, method, template.format(bad_id), body)
        assert response.status_code == 404, (method, template, bad_id)
        assert (await response.get_json())["error"]["code"] == "not_found"


async def test_bad_directory_input_is_400_and_stores_nothing(
    client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    world = two_classes(storage, ctx)
    await login(client, "dubois@school.test")
    before = roster_snapshot(storage, ctx, world)
    cases = [
        ("/api/v1/classes", {"name": ""}, "name"),
        ("/api/v1/classes", {"name": "CM1", "school_year": "2026-2028"}, "school_year"),
        ("/api/v1/classes", {"name": "CM1", "role": "admin"}, "role"),
        (
            f"/api/v1/classes/{world.class_a}/children",
            {"first_name": "  ", "last_name": "B"},
            "first_name",
        ),
        (
            f"/api/v1/classes/{world.class_a}/children",
            {"first_name": "A\u202eB", "last_name": "B"},
            "first_name",
        ),
        (
            f"/api/v1/classes/{world.class_a}/children",
            {"first_name": "A", "last_name": "B", "class_id": 2},
            "class_id",
        ),
        (
            f"/api/v1/children/{world.child_a}/guardians",
            {"display_name": "X", "phone": "12345"},
            "phone",
        ),
        (
            f"/api/v1/children/{world.child_a}/guardians",
            {"display_name": "X", "phone": "+881612345678"},
            "phone",
        ),
        (
            f"/api/v1/children/{world.child_a}/guardians",
            {"display_name": "X", "phone": "0639980077", "code": "SHORT"},
            "code",
        ),
        (
            f"/api/v1/children/{world.child_a}/guardians",
            {"display_name": "", "phone": "0639980077"},
            "display_name",
        ),
    ]
    for path, body, field in cases:
        response = await send(client, "POST", path, body)
        assert response.status_code == 400, (path, body)
        error = (await response.get_json())["error"]
        assert error["field"] == field, (path, body)
        assert error["message"]
    assert roster_snapshot(storage, ctx, world) == before
    classes = await (await client.get("/api/v1/classes")).get_json()
    assert [c["name"] for c in classes] == ["CE1 A"]
    invitations = storage.call(directory_store.select_invitations_of_class, world.class_a)
    assert len(invitations) == 1
