"""Classes, children, guardians and access-code slips; a guardian's children."""

from __future__ import annotations

from typing import Any

from node.api import Api, actor, call, ok
from node.api.schema import Body, integer, string
from node.services import directory
from node.urlids import MAX_ID

NEW_CLASS = Body(
    "NewClass",
    {
        "name": string(200),
        "school_year": string(
            9, required=False, description="like 2026-2027; default: the current one"
        ),
        "teacher_id": integer(
            1, MAX_ID, required=False, description="admins only: the class's teacher"
        ),
    },
)
NEW_CHILD = Body("NewChild", {"first_name": string(200), "last_name": string(200)})
NEW_GUARDIAN = Body(
    "NewGuardian",
    {
        "display_name": string(200),
        "phone": string(40),
        "code": string(
            80, required=False, description="a typed access code; default: generated (83 bits)"
        ),
    },
)
NEW_CODE = Body("NewCode", {"code": string(80, required=False)})


def register(api: Api) -> None:
    @api.operation("GET", "/classes", summary="Classes I manage", tag="classes")
    async def list_classes() -> Any:
        return ok(await call(directory.list_classes, actor()))

    @api.operation("POST", "/classes", summary="Create a class", body=NEW_CLASS, tag="classes")
    async def create_class(data: dict[str, Any]) -> Any:
        view = await call(
            directory.create_class, actor(), data["name"], data["school_year"], data["teacher_id"]
        )
        return ok(view, 201)

    @api.operation(
        "GET",
        "/classes/<id:class_id>",
        summary="A class with its children and guardians",
        tag="classes",
    )
    async def get_class(class_id: int) -> Any:
        view = await call(directory.get_class, actor(), class_id)
        roster = await call(directory.class_roster, actor(), class_id)
        return ok({"class": view, "children": roster})

    @api.operation(
        "POST",
        "/classes/<id:class_id>/children",
        summary="Add a child to a class",
        body=NEW_CHILD,
        tag="classes",
    )
    async def add_child(class_id: int, data: dict[str, Any]) -> Any:
        view = await call(
            directory.add_child, actor(), class_id, data["first_name"], data["last_name"]
        )
        return ok(view, 201)

    @api.operation(
        "POST",
        "/children/<id:child_id>/guardians",
        summary="Register a guardian and issue an access-code slip",
        body=NEW_GUARDIAN,
        tag="guardians",
    )
    async def register_guardian(child_id: int, data: dict[str, Any]) -> Any:
        slip = await call(
            directory.register_guardian,
            actor(),
            child_id,
            data["display_name"],
            data["phone"],
            data["code"],
        )
        return ok(slip, 201)

    @api.operation(
        "POST",
        "/guardians/<id:invitation_id>/code",
        summary="Issue a new access code (the old one dies)",
        body=NEW_CODE,
        tag="guardians",
    )
    async def reissue_code(invitation_id: int, data: dict[str, Any]) -> Any:
        return ok(await call(directory.reissue_code, actor(), invitation_id, data["code"]), 201)

    @api.operation(
        "POST",
        "/classes/<id:class_id>/slips",
        summary="New codes and slips for every guardian who has not joined yet",
        tag="guardians",
    )
    async def class_slips(class_id: int) -> Any:
        return ok(await call(directory.reissue_codes_for_class, actor(), class_id), 201)

    @api.operation(
        "DELETE",
        "/guardians/<id:invitation_id>",
        summary="Withdraw an invitation or unlink a guardian",
        tag="guardians",
    )
    async def remove_guardian(invitation_id: int) -> Any:
        await call(directory.remove_guardian, actor(), invitation_id)
        return ok({"ok": True})

    @api.operation(
        "GET", "/me/children", summary="My children and their classes (guardians)", tag="guardians"
    )
    async def my_children() -> Any:
        return ok(await call(directory.my_children, actor()))
