"""Web Push subscriptions, quiet hours, and the node's push key."""

from __future__ import annotations

from typing import Any

from quart import current_app, request

from node.api import Api, actor, call, ok
from node.api.schema import Body, string
from node.services import notifications
from node.services.notifications import MAX_ENDPOINT

SUBSCRIPTION = Body(
    "PushSubscription",
    {
        "endpoint": string(MAX_ENDPOINT, description="PushSubscription.endpoint (https)"),
        "p256dh": string(128, description="the browser's P-256 key, base64url (65 bytes)"),
        "auth": string(32, description="the browser's auth secret, base64url (16 bytes)"),
    },
)
ENDPOINT = Body("PushEndpoint", {"endpoint": string(MAX_ENDPOINT)})
DIGEST = Body(
    "Digest",
    {
        "mode": string(8, description="now: every information post at once; digest: once a day"),
        "digest_time": string(5, required=False, description="HH:MM in the school's time zone"),
    },
)
QUIET_HOURS = Body(
    "QuietHours",
    {
        "quiet_start": string(5, nullable=True, description="HH:MM in the school's time zone"),
        "quiet_end": string(5, nullable=True, description="HH:MM; both set or both null"),
    },
)


def register(api: Api) -> None:
    @api.operation(
        "GET",
        "/push/key",
        summary="The node's VAPID public key (applicationServerKey)",
        tag="notifications",
    )
    async def push_key() -> Any:
        return ok({"public_key": current_app.config["CARNET_KEYS"].vapid_public_key})

    @api.operation(
        "GET",
        "/push/subscriptions",
        summary="My devices with notifications on",
        tag="notifications",
    )
    async def my_subscriptions() -> Any:
        return ok(await call(notifications.my_subscriptions, actor()))

    @api.operation(
        "POST",
        "/push/subscriptions",
        summary="Turn notifications on for this browser",
        body=SUBSCRIPTION,
        tag="notifications",
    )
    async def subscribe(data: dict[str, Any]) -> Any:
        view = await call(
            notifications.subscribe,
            actor(),
            data["endpoint"],
            data["p256dh"],
            data["auth"],
            request.headers.get("User-Agent", ""),
        )
        return ok(view, 201)

    @api.operation(
        "DELETE",
        "/push/subscriptions",
        summary="Turn notifications off for this browser (by endpoint)",
        body=ENDPOINT,
        tag="notifications",
    )
    async def unsubscribe(data: dict[str, Any]) -> Any:
        return ok({"removed": await call(notifications.unsubscribe, actor(), data["endpoint"])})

    @api.operation(
        "DELETE",
        "/push/subscriptions/<id:subscription_id>",
        summary="Turn notifications off for one of my devices",
        tag="notifications",
    )
    async def remove_device(subscription_id: int) -> Any:
        await call(notifications.remove_device, actor(), subscription_id)
        return ok({"removed": True})

    @api.operation(
        "GET",
        "/notifications/settings",
        summary="My quiet hours and how many devices get notifications",
        tag="notifications",
    )
    async def get_settings() -> Any:
        return ok(await call(notifications.get_settings, actor()))

    @api.operation(
        "PUT",
        "/notifications/settings",
        summary="Set or clear my quiet hours",
        body=QUIET_HOURS,
        tag="notifications",
    )
    async def set_settings(data: dict[str, Any]) -> Any:
        return ok(
            await call(
                notifications.set_quiet_hours, actor(), data["quiet_start"], data["quiet_end"]
            )
        )

    @api.operation(
        "PUT",
        "/notifications/digest",
        summary="Information posts: notify me at once, or in one daily digest at a time",
        body=DIGEST,
        tag="notifications",
    )
    async def set_digest(data: dict[str, Any]) -> Any:
        return ok(await call(notifications.set_digest, actor(), data["mode"], data["digest_time"]))
