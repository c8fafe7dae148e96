"""Live updates: ``GET /api/v1/events`` (Server-Sent Events) and ``publish`` for routes.

A logged-in browser keeps one stream open per tab; routes call
``publish(account_ids, event)`` after their transaction commits.  Every
``LiveHub.heartbeat`` seconds the stream sends a comment (keeping proxies
from closing it) and checks the session: once it has ended (logout, expiry,
another device ending it, a disabled account), the stream ends.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from quart import Response, current_app, request

from node.api import Api, actor, ctx
from node.live import LiveHub, StreamClosed
from node.security import cookie_name
from node.services import notifications

#: Seconds between heartbeats (comments and session checks) on an open stream.
HEARTBEAT_SECONDS = 25.0


def publish(account_ids: Iterable[int], event: Mapping[str, Any]) -> int:
    """Tell these accounts' open pages that something happened; call after the commit.

    ``event`` carries ids and kinds only, e.g. ``{"type": "post", "class_id": 3,
    "message": "<public id>"}`` (``node.live.check_event`` refuses content).
    Also wakes the push worker, so notifications queued in the same
    transaction leave at once.  Needs the app context (any route has it); the
    same function is ``app.extensions["carnet_live_publish"]``.  Returns how
    many open streams received the event.
    """
    sent: int = current_app.extensions["carnet_live_publish"](account_ids, event)
    return sent


def register(api: Api) -> None:
    @api.operation(
        "GET",
        "/events",
        summary="Live updates for me (text/event-stream; ids and kinds, never content)",
        tag="notifications",
        produces="text/event-stream",
    )
    async def events() -> Any:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        who = actor()
        context = ctx()
        storage = app.config["CARNET_STORAGE"]
        hub: LiveHub = app.extensions["carnet_live"]
        heartbeat: float = app.config.get("CARNET_SSE_HEARTBEAT", HEARTBEAT_SECONDS)
        token = request.cookies.get(cookie_name(app, "carnet_session"), "")

        async def stream() -> AsyncIterator[bytes]:
            async with hub.subscribe(who.account_id) as subscription:
                # Reconnect after 5 s if the connection drops; the comment makes
                # proxies and the browser see the stream start at once.
                yield b"retry: 5000\n: connected\n\n"
                while True:
                    try:
                        event = await subscription.next(heartbeat)
                    except StreamClosed:
                        return
                    if event is not None:
                        data = json.dumps(event, separators=(",", ":"))
                        yield f"data: {data}\n\n".encode()
                        continue
                    if not await storage.run(
                        notifications.session_is_live, context, token, who.session_id
                    ):
                        return
                    yield b": heartbeat\n\n"

        response = Response(
            stream(),
            200,
            {
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",  # nginx: pass events through at once
            },
        )
        response.timeout = None  # a stream lives as long as the session
        return response
