"""A guardian's home page shows their children, across classes, and nobody else's."""

from __future__ import annotations

from quart import Quart
from quart.typing import TestClientProtocol as Client

from node.services.context import ServiceContext
from node.storage.db import Storage
from tests.factories import api_login as login
from tests.factories import (
    invite,
    make_child,
    make_class,
    make_guardian,
    make_school,
)


async def home(client: Client) -> str:
    response = await client.get("/home")
    assert response.status_code == 200
    text: str = await response.get_data(as_text=True)
    return text


async def test_home_shows_only_the_guardians_children_across_classes(
    app: Quart, client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    school = make_school(storage, ctx)
    cm2 = make_class(storage, ctx, school.teacher, "CM2 B")
    hugo = make_child(storage, ctx, school.teacher, cm2.id, "Hugo", "Martin")
    zoe = make_child(storage, ctx, school.teacher, school.class_id, "Zoé", "Petit")
    make_guardian(storage, ctx, invite(storage, ctx, school.teacher, school.child_id).code)
    make_guardian(storage, ctx, invite(storage, ctx, school.teacher, hugo.id).code)
    make_guardian(
        storage,
        ctx,
        invite(storage, ctx, school.teacher, zoe.id, phone="+33639980002", name="Alex Petit").code,
        "+33639980002",
    )

    await login(client, "+33639980001")
    text = await home(client)
    assert "Hello Camille Martin" in text
    assert "Léa Martin" in text and "Class CE1 A" in text
    assert "Hugo Martin" in text and "Class CM2 B" in text
    assert "Zoé" not in text and "Petit" not in text
    assert text.count('class="child-card"') == 2

    other = app.test_client()
    await login(other, "+33639980002")
    text = await home(other)
    assert "Zoé Petit" in text
    assert "Léa" not in text and "Hugo" not in text
    assert text.count('class="child-card"') == 1


async def test_front_door_sends_each_role_home(
    app: Quart, client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    school = make_school(storage, ctx)
    make_guardian(storage, ctx, invite(storage, ctx, school.teacher, school.child_id).code)
    response = await client.get("/")
    assert response.headers["Location"].endswith("/login")
    for who, target in (
        ("+33639980001", "/home"),
        ("dubois@school.test", "/classes"),
        ("admin@school.test", "/admin"),
    ):
        browser = app.test_client()
        await login(browser, who)
        assert (await browser.get("/")).headers["Location"].endswith(target)
        assert (await browser.get("/login")).headers["Location"].endswith(target)


async def test_teacher_cannot_open_a_guardians_home(
    client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    make_school(storage, ctx)
    await login(client, "dubois@school.test")
    assert (await client.get("/home")).status_code == 403
