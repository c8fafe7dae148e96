"""A guardian joins a class of another school's node (federation), from their own school's node."""

from __future__ import annotations

from typing import Any

from quart import current_app, g

from federation.runtime import joining_home
from node.api import Api, actor, call, ok
from node.api.schema import Body, string
from node.services import joins

NEW_JOIN = Body(
    "NewJoin",
    {
        "school": string(255, description="the other school's Carnet address, https://…"),
        "code": string(80, description="the access code its teacher gave you"),
    },
)
SMS_CODE = Body("JoinSmsCode", {"sms_code": string(20, description="the 6 digits texted to you")})


def register(api: Api) -> None:
    @api.operation(
        "GET", "/joins", summary="My requests to join classes of other schools", tag="federation"
    )
    async def my_joins() -> Any:
        return ok(await call(joins.my_joins, actor()))

    @api.operation(
        "POST", "/joins", summary="Ask to join a class of another school: its node texts you a code",
        body=NEW_JOIN, tag="federation",
    )  # fmt: skip
    async def start_join(data: dict[str, Any]) -> Any:
        fed = current_app.extensions["carnet_federation"]
        view = await joining_home.start(fed, actor(), data["school"], data["code"], g.locale)
        return ok(view, 201)

    @api.operation(
        "POST", "/joins/<id:request_id>/code", summary="Confirm with the code texted to you",
        body=SMS_CODE, tag="federation",
    )  # fmt: skip
    async def join_code(data: dict[str, Any], request_id: int) -> Any:
        fed = current_app.extensions["carnet_federation"]
        return ok(await joining_home.send_code(fed, actor(), request_id, data["sms_code"]))

    @api.operation(
        "DELETE", "/joins/<id:request_id>", summary="Leave that class (or withdraw the request)",
        tag="federation",
    )  # fmt: skip
    async def leave_join(request_id: int) -> Any:
        view = await call(joins.leave, actor(), request_id)
        current_app.extensions["carnet_federation"].wake_delivery()
        return ok(view)

    @api.operation(
        "POST", "/joins/<id:request_id>/resend", summary="Text me a new code", tag="federation"
    )
    async def join_resend(request_id: int) -> Any:
        fed = current_app.extensions["carnet_federation"]
        await joining_home.resend(fed, actor(), request_id, g.locale)
        return ok({"sent": True})
