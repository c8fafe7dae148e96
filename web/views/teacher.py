"""A teacher's pages: classes, children, guardians and access-code slips."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, current_app, g, redirect, render_template

from node.errors import CarnetError
from node.services import directory
from node.urlids import parse_id
from web.errors import error_message
from web.views.common import call, field, form, require_actor

blueprint = Blueprint("teacher", __name__)


async def _classes_page(
    error: str | None = None, values: dict[str, str] | None = None, status: int = 200
) -> Any:
    actor = require_actor()
    classes = await call(directory.list_classes, actor)
    default_year = directory.school_year_now(current_app.config["CARNET_CTX"])
    html = await render_template(
        "teacher/classes.html",
        classes=classes,
        error=error,
        values=values or {},
        default_year=default_year,
    )
    return html, status


@blueprint.get("/classes")
async def classes() -> Any:
    return await _classes_page()


@blueprint.post("/classes")
async def create_class() -> Any:
    actor = require_actor()
    data = await form()
    try:
        view = await call(
            directory.create_class,
            actor,
            field(data, "name"),
            field(data, "school_year", 20) or None,
        )
    except CarnetError as error:
        return await _classes_page(error_message(current_app, error), data, error.status)
    return redirect(f"/classes/{view.id}")


async def _class_page(
    class_id: int,
    error: str | None = None,
    error_scope: str = "",
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Any:
    actor = require_actor()
    view = await call(directory.get_class, actor, class_id)
    roster = await call(directory.class_roster, actor, class_id)
    html = await render_template(
        "teacher/class.html",
        school_class=view,
        roster=roster,
        error=error,
        error_scope=error_scope,
        values=values or {},
    )
    return html, status


@blueprint.get("/classes/<id:class_id>")
async def class_page(class_id: int) -> Any:
    return await _class_page(class_id)


@blueprint.post("/classes/<id:class_id>/children")
async def add_child(class_id: int) -> Any:
    actor = require_actor()
    data = await form()
    try:
        await call(
            directory.add_child,
            actor,
            class_id,
            field(data, "first_name"),
            field(data, "last_name"),
        )
    except CarnetError as error:
        if error.status in (404, 403):
            raise
        return await _class_page(
            class_id, error_message(current_app, error), "child", data, error.status
        )
    return redirect(f"/classes/{class_id}#children")


async def _slip_page(*slips: directory.Slip) -> Any:
    g.no_store = True  # the codes must not stay in a cache
    return await render_template("teacher/slip.html", slips=slips)


@blueprint.post("/children/<id:child_id>/guardians")
async def register_guardian(child_id: int) -> Any:
    actor = require_actor()
    data = await form()
    try:
        slip = await call(
            directory.register_guardian,
            actor,
            child_id,
            field(data, "display_name"),
            field(data, "phone", 40),
            field(data, "code", 80) or None,
        )
    except CarnetError as error:
        class_id = parse_id(data.get("class_id", ""))
        if error.status in (404, 403) or class_id is None:
            raise
        scope = f"guardian-{child_id}"
        return await _class_page(
            class_id, error_message(current_app, error), scope, data, error.status
        )
    return await _slip_page(slip)


@blueprint.post("/classes/<id:class_id>/slips")
async def class_slips(class_id: int) -> Any:
    slips = await call(directory.reissue_codes_for_class, require_actor(), class_id)
    if not slips:
        return redirect(f"/classes/{class_id}")
    return await _slip_page(*slips)


@blueprint.post("/guardians/<id:invitation_id>/code")
async def reissue_code(invitation_id: int) -> Any:
    slip = await call(directory.reissue_code, require_actor(), invitation_id)
    return await _slip_page(slip)


@blueprint.post("/guardians/<id:invitation_id>/remove")
async def remove_guardian(invitation_id: int) -> Any:
    data = await form()
    await call(directory.remove_guardian, require_actor(), invitation_id)
    class_id = data.get("class_id", "")
    return redirect(f"/classes/{class_id}" if class_id.isdigit() else "/classes")
