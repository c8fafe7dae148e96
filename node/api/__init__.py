"""JSON API ``/api/v1``: parse → call a service → serialize.  No queries, no rules here.

Every operation is declared with ``Api.operation`` so the OpenAPI document
(``GET /api/v1/openapi.json``) is generated from the same declarations that
validate requests.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from quart import Blueprint, Quart, current_app, g, jsonify, request

from federation.canonical import CanonicalJSONError, parse_json_strict
from node.api.schema import Body, Param, parse_query
from node.errors import N_, Invalid, Unauthenticated
from node.services.context import Actor, ServiceContext

Handler = Callable[..., Awaitable[Any]]


@dataclasses.dataclass
class Operation:
    method: str
    path: str
    summary: str
    body: Body | None
    auth: str
    tag: str
    #: a non-JSON body the handler reads itself (e.g. ``application/octet-stream``)
    raw_body: str | None = None
    #: the media type of a success answer when it is not JSON (a file, an event stream)
    produces: str = "application/json"
    #: the query parameters, by name: the handler gets them parsed as ``query``
    query: Mapping[str, Param] = dataclasses.field(default_factory=dict)
    #: a file download that honours ``Range: bytes=…`` (206, or 416 with Content-Range)
    ranges: bool = False


class Api:
    def __init__(self) -> None:
        self.blueprint = Blueprint("api", __name__, url_prefix="/api/v1")
        self.operations: list[Operation] = []
        #: Endpoints called by machines with a shared secret instead of a session.
        self.csrf_exempt: set[str] = set()

    def operation(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        body: Body | None = None,
        auth: str = "session",
        tag: str = "general",
        raw_body: str | None = None,
        produces: str = "application/json",
        query: Mapping[str, Param] | None = None,
        ranges: bool = False,
    ) -> Callable[[Handler], Handler]:
        """Register a handler.

        ``auth`` is ``session`` (logged in), ``none`` (public, CSRF-checked) or
        ``provider``: a machine caller authenticated by a shared secret in the
        handler, exempt from CSRF because it never carries browser cookies.

        ``query`` declares the query parameters: they are checked before the
        handler runs and given to it as ``query`` (None for an absent one).
        Handlers never read ``request.args``: the OpenAPI document lists these
        declarations, so what it says is what the code accepts.
        """

        def decorator(fn: Handler) -> Handler:
            async def view(**kwargs: Any) -> Any:
                if auth == "session" and g.get("actor") is None:
                    raise Unauthenticated(N_("Log in first."))
                if query is not None:
                    kwargs["query"] = parse_query(query, request.args)
                if body is not None:
                    kwargs["data"] = body.validate(await _json_body())
                return await fn(**kwargs)

            view.__name__ = fn.__name__
            self.blueprint.add_url_rule(
                path, endpoint=fn.__name__, view_func=view, methods=[method]
            )
            self.operations.append(
                Operation(
                    method,
                    path,
                    summary,
                    body,
                    auth,
                    tag,
                    raw_body,
                    produces,
                    query=dict(query or {}),
                    ranges=ranges,
                )  # fmt: skip
            )
            if auth == "provider":
                self.csrf_exempt.add(f"{self.blueprint.name}.{fn.__name__}")
            return fn

        return decorator


async def _json_body() -> Any:
    """The body as strict JSON: no duplicate keys, NaN, floats, or nesting past 64 levels."""
    if request.mimetype != "application/json":
        raise Invalid(N_("Send the request body as application/json."))
    raw = await request.get_data(as_text=False)
    assert isinstance(raw, bytes)
    try:
        return parse_json_strict(raw)
    except CanonicalJSONError:
        raise Invalid(N_("The request body is not valid JSON.")) from None


def ctx() -> ServiceContext:
    context: ServiceContext = current_app.config["CARNET_CTX"]
    return context


def actor() -> Actor:
    who: Actor = g.actor
    return who


async def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a service off the event loop with the node's context as first argument."""
    return await current_app.config["CARNET_STORAGE"].run(fn, ctx(), *args, **kwargs)


def to_json(value: Any) -> Any:
    """Service views (dataclasses) to JSON-ready values; datetimes as ISO-8601 UTC."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: to_json(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, dt.datetime):
        return value.replace(microsecond=0).isoformat() + "Z"
    return value


def ok(value: Any, status: int = 200) -> Any:
    return jsonify(to_json(value)), status


def openapi_path(path: str) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", path)


def register(app: Quart) -> None:
    from node.api import (
        absences,
        actions,
        alerts,
        audit,
        auth,
        conversations,
        directory,
        events,
        export,
        feed,
        joins,
        notifications,
        onboarding,
        openapi,
        peers,
        sms,
    )

    api = Api()
    auth.register(api)
    onboarding.register(api)
    directory.register(api)
    feed.register(api)
    notifications.register(api)
    events.register(api)
    openapi.register(api)
    sms.register(api)
    peers.register(api)
    alerts.register(api)
    joins.register(api)
    actions.register(api)
    absences.register(api)
    conversations.register(api)
    export.register(api)
    audit.register(api)
    app.register_blueprint(api.blueprint)
    app.extensions["carnet_api"] = api
    app.config["CARNET_CSRF_EXEMPT"] = frozenset(api.csrf_exempt)
