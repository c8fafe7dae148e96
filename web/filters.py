"""Template globals and filters: dates in the reader's language, the CSRF token, the actor."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from babel.dates import format_date, format_datetime
from quart import Quart, g

from node.security import csrf_token


def register_filters(app: Quart) -> None:
    school_zone = zoneinfo.ZoneInfo(app.config["CARNET"].timezone)

    def local(value: dt.datetime) -> dt.datetime:
        """Stored times are naive UTC; people read them in the school's time zone."""
        return value.replace(tzinfo=dt.UTC).astimezone(school_zone)

    @app.template_filter("date")
    def _date(value: dt.datetime | dt.date | None) -> str:
        if value is None:
            return ""
        if isinstance(value, dt.datetime):
            value = local(value)
        return format_date(value, format="long", locale=g.get("locale", "en"))

    @app.template_filter("datetime")
    def _datetime(value: dt.datetime | None) -> str:
        if value is None:
            return ""
        return format_datetime(local(value), format="medium", locale=g.get("locale", "en"))

    @app.context_processor
    def _globals() -> dict[str, Any]:
        return {
            "actor": g.get("actor"),
            "locale": g.get("locale", "en"),
            "csrf_token": lambda: csrf_token(app),
            "school_name": app.config["CARNET"].school_name,
            "node_url": app.config["CARNET"].public_url,
        }
