"""Template globals and filters: dates in the reader's language, the CSRF token, the actor."""

from __future__ import annotations

import datetime as dt
from typing import Any

from babel.dates import format_date, format_datetime
from quart import Quart, g

from node.security import csrf_token


def register_filters(app: Quart) -> None:
    @app.template_filter("date")
    def _date(value: dt.datetime | dt.date | None) -> str:
        if value is None:
            return ""
        return format_date(value, format="long", locale=g.get("locale", "en"))

    @app.template_filter("datetime")
    def _datetime(value: dt.datetime | None) -> str:
        if value is None:
            return ""
        return format_datetime(value, format="medium", tzinfo=dt.UTC, locale=g.get("locale", "en"))

    @app.context_processor
    def _globals() -> dict[str, Any]:
        return {
            "actor": g.get("actor"),
            "locale": g.get("locale", "en"),
            "csrf_token": lambda: csrf_token(app),
            "school_name": app.config["CARNET"].school_name,
            "node_url": app.config["CARNET"].public_url,
        }
