"""Times are stored in UTC and shown in the school's time zone and language."""

from __future__ import annotations

import datetime as dt
from typing import Any

from quart import g

from node.app import create_app


async def test_times_are_shown_in_the_school_time_zone(node_config: dict[str, Any]) -> None:
    app = create_app({**node_config, "timezone": "Asia/Tokyo"})
    async with app.app_context():
        g.locale = "en"
        moment = dt.datetime(2026, 12, 31, 16, 30)  # naive UTC: 1 January, 01:30 in Tokyo
        assert "Jan 1, 2027" in app.jinja_env.filters["datetime"](moment)
        assert app.jinja_env.filters["date"](moment) == "January 1, 2027"
        g.locale = "fr"
        assert app.jinja_env.filters["date"](moment) == "1 janvier 2027"
