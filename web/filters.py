"""Template globals and filters: dates and durations in the reader's language, the CSRF token, the actor."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from babel.dates import format_date, format_datetime, format_timedelta
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

    @app.template_filter("ago")
    def _ago(value: dt.datetime | None) -> str:
        """How long ago, in words ("3 minutes ago", "il y a 3 minutes"); never in the future."""
        if value is None:
            return ""
        # At least a second: Babel words zero (or a peer's clock ahead) as "in 0 seconds".
        elapsed = max(app.config["CARNET_CTX"].now() - value, dt.timedelta(seconds=1))
        return format_timedelta(-elapsed, add_direction=True, locale=g.get("locale", "en"))

    @app.template_filter("duration")
    def _duration(seconds: int | float) -> str:
        """A length of time in words, in the next unit only past ten of it ("95 seconds", "12 minutes")."""
        return format_timedelta(
            dt.timedelta(seconds=abs(seconds)), threshold=10, locale=g.get("locale", "en")
        )

    @app.context_processor
    def _globals() -> dict[str, Any]:
        return {
            "actor": g.get("actor"),
            "locale": g.get("locale", "en"),
            "csrf_token": lambda: csrf_token(app),
            "school_name": app.config["CARNET"].school_name,
            "node_url": app.config["CARNET"].public_url,
        }
