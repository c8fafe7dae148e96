"""The node-to-node endpoints: the node document, and the signed ``/np/`` requests.

Every ``/np/`` request is authenticated before its handler runs
(``authenticate``): profile → peer allow-list (403 before any key fetch) →
key (one refetch of the peer's document, at most once a minute, for an
unknown key id) → clock → Content-Digest → signature.  Refusals are JSON
``{"error", "message"}`` with the NP/1 status, and a structured log line with
the origin, key id, reason and our time.  Handlers then call services.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from quart import Blueprint, Quart, Response, current_app, g, request

from federation.errors import (
    FederationError,
    NoSuchObject,
    NotAMember,
    NotAPeer,
    OriginMismatch,
    SignatureError,
    TooLarge,
    TransactionError,
)
from federation.httpsig import parse_request_signature, verify_request
from federation.runtime import delivery, identity, inbox, media, membership, peers
from federation.runtime.client import FederationClient, FetchError
from federation.runtime.pull import Puller, serve_page
from federation.runtime.throttle import PeerThrottle
from federation.transaction import MAX_BODY_BYTES
from node.services.context import ServiceContext
from node.storage.db import Storage

log = logging.getLogger("carnet.federation")

#: Largest NP/1 request body (NP/1 §1.3).
MAX_BODY = MAX_BODY_BYTES


@dataclass
class Federation:
    """What the routes and workers of one node share."""

    ctx: ServiceContext
    storage: Storage
    client: FederationClient
    #: activity type → handler, applied by the inbox (wired by ``create_app``)
    handlers: dict[str, inbox.Handler] = field(default_factory=dict)
    document: identity.DocumentCache = field(default_factory=identity.DocumentCache)
    #: one document refetch at a time per origin (single flight)
    refetching: dict[str, asyncio.Lock] = field(default_factory=dict)
    #: one inbound transaction at a time per origin (others get 429)
    receiving: dict[str, asyncio.Lock] = field(default_factory=dict)
    #: one fetch at a time per mirrored blob (``media.fetch``)
    fetching: dict[str, asyncio.Lock] = field(default_factory=dict)
    #: wakes the delivery worker (set by ``create_app``)
    wake_delivery: Callable[[], None] = lambda: None
    puller: Puller = field(init=False)
    #: transactions per peer per minute (others get 429)
    throttle: PeerThrottle = field(init=False)

    def __post_init__(self) -> None:
        self.puller = Puller(self, self.handlers)
        self.throttle = PeerThrottle(self.ctx.config.federation_transactions_per_peer_per_minute)


@dataclass(frozen=True)
class Inbound:
    """A request that passed ``authenticate``."""

    peer_id: int
    origin: str
    body: bytes
    created: int


def runtime() -> Federation:
    found: Federation = current_app.extensions["carnet_federation"]
    return found


def _status(error: FederationError) -> int:
    if isinstance(error, NotAPeer | OriginMismatch | NotAMember):
        return 403
    if isinstance(error, TooLarge):
        return 413
    if isinstance(error, NoSuchObject):
        return 404
    if isinstance(error, SignatureError):
        return 401
    return 400


def refusal(error: FederationError) -> Response:
    """The JSON refusal, logged with who asked (as far as we know), why, and our time."""
    now = int(time.time())
    keyid = g.get("np_keyid") or "-"
    log.warning(
        "np refused: origin=%s keyid=%s reason=%s server_time=%d path=%s: %s",
        keyid.split("/.well-known", 1)[0], keyid, error.reason, now, request.path, error,
    )  # fmt: skip
    body: dict[str, Any] = {"error": error.reason, "message": str(error)}
    if error.reason == "stale_signature":
        body["server_time"] = now
    return Response(json.dumps(body), status=_status(error), content_type="application/json")


async def authenticate() -> Inbound:
    """Verify the current request's NP/1 signature; raise a ``FederationError``."""
    fed = runtime()
    body = await request.get_data(cache=True, as_text=False, parse_form_data=False)
    if len(body) > MAX_BODY:
        raise TooLarge(f"request body over {MAX_BODY} bytes")
    headers = list(request.headers.items())
    # the path as sent (percent-encoding intact): what the sender signed
    raw_path = request.scope.get("raw_path") or request.path.encode()
    target = fed.ctx.config.origin + raw_path.decode("ascii", "replace")
    if request.query_string:
        target += "?" + request.query_string.decode("ascii", "replace")
    parsed = parse_request_signature(method=request.method, headers=headers, body=body)
    g.np_keyid = parsed.keyid
    found = await fed.storage.run(peers.transport_key, fed.ctx, parsed.keyid)
    if found.key is None and found.may_refetch:
        lock = fed.refetching.setdefault(found.origin, asyncio.Lock())
        async with lock:
            found = await fed.storage.run(peers.transport_key, fed.ctx, parsed.keyid)
            if found.key is None and found.may_refetch:
                try:
                    document: bytes | None = await fed.client.fetch_document(found.origin)
                except FetchError as error:
                    log.warning("np: refetching %s's document failed: %s", found.origin, error)
                    document = None
                await fed.storage.run(peers.refresh_document, fed.ctx, found.origin, document)
                found = await fed.storage.run(peers.transport_key, fed.ctx, parsed.keyid)
    key = found.key
    verified = verify_request(
        method=request.method, target_uri=target, headers=headers, body=body,
        now=int(time.time()), lookup_key=lambda _keyid: key,
    )  # fmt: skip
    await fed.storage.run(peers.record_contact, fed.ctx, found.peer_id, verified.created)
    if await fed.storage.run(delivery.peer_is_back, fed.ctx, found.peer_id):
        fed.wake_delivery()  # it talks to us: what we hold for it can go now
    return Inbound(found.peer_id, found.origin, body, verified.created)


Handler = Callable[..., Awaitable[Any]]


def signed(handler: Handler) -> Handler:
    """Run ``handler(inbound, **kwargs)`` only for an authenticated peer request."""

    async def view(**kwargs: Any) -> Any:
        try:
            inbound = await authenticate()
            return await handler(inbound, **kwargs)
        except FederationError as error:
            return refusal(error)

    view.__name__ = handler.__name__
    return view


def _busy(message: str, retry_after: int) -> Response:
    return Response(
        json.dumps({"error": "busy", "message": message}), status=429,
        content_type="application/json", headers={"Retry-After": str(retry_after)},
    )  # fmt: skip


def register(app: Quart, fed: Federation) -> None:
    blueprint = Blueprint("np", __name__)
    app.extensions["carnet_federation"] = fed

    @blueprint.get("/.well-known/carnet-node")
    async def node_document() -> Response:
        text = await fed.storage.run(identity.node_document, fed.ctx, fed.document)
        response = Response(text, content_type="application/json")
        response.headers["Cache-Control"] = "public, max-age=3600"
        return response

    @blueprint.put("/np/inbox/txn/<txn_id>")
    @signed
    async def transaction(inbound: Inbound, txn_id: str) -> Response:
        lock = fed.receiving.setdefault(inbound.origin, asyncio.Lock())
        if lock.locked():
            return _busy("a transaction from your node is being applied", 1)
        wait = fed.throttle.admit(inbound.origin)
        if wait is not None:
            return _busy("your node sent too many transactions this minute", wait)
        async with lock:
            received = await fed.storage.run(
                inbox.receive_transaction, fed.ctx, fed.handlers, inbound.peer_id,
                inbound.origin, txn_id, inbound.body,
            )  # fmt: skip
        for stream in received.gaps:
            fed.puller.schedule(inbound.peer_id, inbound.origin, stream)
        for url in received.drift:
            fed.puller.run(url, membership.reconcile(fed, inbound.peer_id, inbound.origin, url))
        return Response(json.dumps(received.response), content_type="application/json")

    @blueprint.get("/np/streams/classes/<int:class_id>/members")
    @signed
    async def class_members(inbound: Inbound, class_id: int) -> Response:
        page = await fed.storage.run(membership.members_page, fed.ctx, inbound.peer_id, class_id)
        return Response(json.dumps(page), content_type="application/json")

    @blueprint.get("/np/streams/<path:path>")
    @signed
    async def stream_page(inbound: Inbound, path: str) -> Response:
        try:
            after = int(request.args.get("after", "0"))
            limit = int(request.args.get("limit", "100"))
        except ValueError:
            raise TransactionError("after and limit must be integers") from None
        page = await fed.storage.run(
            serve_page, fed.ctx, inbound.peer_id, f"{fed.ctx.config.origin}/{path}", after, limit
        )
        return Response(json.dumps(page), content_type="application/json")

    @blueprint.get("/np/media/<blob_id>")
    @signed
    async def media_blob(inbound: Inbound, blob_id: str) -> Response:
        blob = await fed.storage.run(media.servable, fed.ctx, inbound.peer_id, blob_id)
        response = Response(media.serve(fed, blob), mimetype="application/octet-stream")
        response.headers["Content-Length"] = str(blob.size)
        # ciphertext for one peer: no shared cache keeps it
        response.headers["Cache-Control"] = "no-store"
        return response

    @blueprint.post("/np/keys")
    @signed
    async def key_statement(inbound: Inbound) -> Response:
        kind = await fed.storage.run(
            peers.apply_key_statement, fed.ctx, inbound.peer_id, inbound.body
        )
        log.info("np: %s from %s applied", kind, inbound.origin)
        return Response(json.dumps({"applied": kind}), content_type="application/json")

    from federation.runtime import joining

    join_endpoints = joining.register(blueprint, fed)
    app.register_blueprint(blueprint)
    # Peers sign every request and send no cookie: CSRF does not apply to them.
    signed_endpoints = {"np.key_statement", "np.transaction"} | join_endpoints
    app.config["CARNET_CSRF_EXEMPT"] = (
        frozenset(app.config["CARNET_CSRF_EXEMPT"]) | signed_endpoints
    )
