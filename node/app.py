"""The composition root: ``create_app`` wires config, storage, services, the JSON API and the pages.

This is the only module that imports ``node.api``, ``web`` (and later
``federation``) together.  Nothing happens at import time: configuration is
read, the database opened and migrated, and keys loaded when the factory runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from quart import Quart, Response, g, request
from werkzeug.exceptions import HTTPException

from node.config import NodeConfig, load_config
from node.datafolder import load_keys
from node.errors import CarnetError
from node.live import LiveHub, check_event
from node.live_bus import PgBus
from node.security import add_security_headers, check_csrf, load_actor
from node.services.context import ServiceContext
from node.storage.db import Storage, is_sqlite, open_database
from node.storage.migrations import migrate
from node.urlids import IdConverter, PublicIdConverter
from node.workers.housekeeping import HousekeepingWorker
from node.workers.push import PushWorker
from node.workers.sms import SmsWorker
from web.i18n import Catalogues, negotiate

log = logging.getLogger("carnet")


def create_app(overrides: Mapping[str, Any] | None = None) -> Quart:
    """Build a node application.

    Args:
        overrides: configuration values that win over file and environment
            (see ``node.config``); tests pass ``data_dir`` and ``database_url``.
    """
    config: NodeConfig = load_config(overrides)
    logging.getLogger("carnet").setLevel(config.log_level)
    keys = load_keys(config.data_dir)
    db = open_database(config.resolved_database_url)
    with db.connection_context():
        migrate(db)
    storage = Storage(db, config.db_threads)
    catalogues = Catalogues()
    from federation.runtime import events as federation_events

    ctx = ServiceContext(
        config=config,
        node_secret=keys.node_secret,
        translate=catalogues.translate,
        signing_key=keys.signing_key,
        publisher=federation_events.publish,
    )

    app = Quart("carnet", static_folder=None, template_folder=None)
    app.config.update(
        CARNET=config,
        CARNET_KEYS=keys,
        CARNET_STORAGE=storage,
        CARNET_CTX=ctx,
        CARNET_CATALOGUES=catalogues,
        MAX_CONTENT_LENGTH=config.max_request_bytes,
        MAX_FORM_MEMORY_SIZE=config.max_request_bytes,
        # every body read (JSON, forms, upload parts) waits this long at most, then 408
        BODY_TIMEOUT=config.request_body_timeout,
        SESSION_COOKIE_NAME="carnet_unused",
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.url_map.converters["id"] = IdConverter
    app.url_map.converters["pubid"] = PublicIdConverter

    from node.api import register as register_api
    from web import register as register_web
    from web.errors import render_error, render_http_error

    register_api(app)
    register_web(app)

    from federation.runtime import identity as node_identity
    from federation.runtime import routes as np_routes
    from federation.runtime.client import FederationClient
    from federation.runtime.worker import DeliveryWorker

    storage.call(node_identity.register_key, ctx)
    federation_client = FederationClient(
        config, keys.signing_key, node_identity.current_key_id(ctx)
    )
    from federation.runtime import class_mirror, joining_home
    from federation.runtime import joining as np_joining

    federation = np_routes.Federation(ctx, storage, federation_client)
    federation.handlers.update(joining_home.HANDLERS)
    federation.handlers.update(np_joining.HANDLERS)
    federation.handlers.update(class_mirror.HANDLERS)
    from federation.runtime import action_answers  # Answer objects: actionable posts

    federation.handlers.update(action_answers.handlers(federation.handlers))
    from federation.runtime import erasure  # Delete of a person: a guardian erased at home

    federation.handlers.update(erasure.handlers(federation.handlers))
    delivery_worker = DeliveryWorker(federation)
    federation.wake_delivery = delivery_worker.wake
    app.extensions["carnet_delivery"] = delivery_worker
    anti_entropy: list[asyncio.Task[None]] = []
    app.extensions["carnet_anti_entropy"] = anti_entropy
    np_routes.register(app, federation)

    sms_worker = SmsWorker(config, storage, ctx)
    app.extensions["carnet_sms"] = sms_worker
    housekeeping_worker = HousekeepingWorker(storage, ctx)
    app.extensions["carnet_housekeeping"] = housekeeping_worker
    push_worker = PushWorker(config, storage, ctx, keys.vapid_key)
    app.extensions["carnet_push"] = push_worker
    live_hub = LiveHub()
    app.extensions["carnet_live"] = live_hub

    def wake_workers() -> None:
        """Something was committed that workers may have to send: now, not at their next poll."""
        push_worker.wake()
        delivery_worker.wake()
        sms_worker.wake()

    # Several processes on one PostgreSQL database hear each other's events and wake-ups.
    bus = (
        None
        if is_sqlite(db)
        else PgBus(config.resolved_database_url, live_hub.publish, wake_workers)
    )
    app.extensions["carnet_bus"] = bus

    def publish(account_ids: Iterable[int], event: Mapping[str, Any]) -> int:
        """After a commit: tell open pages (SSE) and send the queued pushes now."""
        push_worker.wake()
        targets = list(account_ids)
        count = live_hub.publish(targets, event)
        if bus is not None:
            bus.send_event(targets, check_event(event))
        return count

    app.extensions["carnet_live_publish"] = publish

    @app.after_request
    async def _after_write(response: Response) -> Response:
        # a write may have put activities in the outbox (a post, an approval, a
        # reply forwarded by another school): the worker sends them now, not at its
        # next poll; a transaction from another school may have queued notifications
        if request.method not in ("GET", "HEAD", "OPTIONS") and response.status_code < 400:
            delivery_worker.wake()
            if request.blueprint == "np":
                push_worker.wake()
            if bus is not None:  # the workers may run in another process
                bus.send_wake()
        return response

    @app.before_request
    async def _prepare() -> None:
        g.locale = negotiate(
            request.accept_languages, request.cookies.get("carnet_lang"), config.default_locale
        )
        if request.endpoint == "static":  # files need no session: no database round trip
            return
        if request.blueprint == "np":  # other nodes: signed requests, no session, no CSRF
            return
        await load_actor(app)
        await check_csrf(app)

    @app.after_request
    async def _headers(response: Response) -> Response:
        return add_security_headers(app, response)

    @app.errorhandler(CarnetError)
    async def _domain_error(error: CarnetError) -> Any:
        return await render_error(app, error)

    @app.errorhandler(HTTPException)
    async def _http_error(error: HTTPException) -> Any:
        return await render_http_error(app, error)

    @app.before_serving
    async def _start_workers() -> None:
        if bus is not None:
            bus.start()
        if not config.run_workers:
            return
        await sms_worker.start()
        await housekeeping_worker.start()
        await push_worker.start()
        await delivery_worker.start()
        anti_entropy.append(asyncio.create_task(federation.puller.anti_entropy(), name="np-pull"))

    @app.after_serving
    async def _stop_workers() -> None:
        live_hub.close()
        if bus is not None:
            await asyncio.get_running_loop().run_in_executor(None, bus.stop)
        await sms_worker.stop()
        await housekeeping_worker.stop()
        await push_worker.stop()
        await delivery_worker.stop()
        for task in anti_entropy:
            task.cancel()
        await federation.puller.stop()
        await federation_client.aclose()
        await asyncio.get_running_loop().run_in_executor(None, storage.close)

    return app
