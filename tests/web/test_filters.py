"""Times are stored in UTC and shown in the school's time zone and language."""

from __future__ import annotations

import dataclasses
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


async def test_times_ago_and_durations_are_words_in_the_readers_language(
    node_config: dict[str, Any],
) -> None:
    app = create_app(node_config)
    now = dt.datetime(2026, 12, 31, 16, 30)
    app.config["CARNET_CTX"] = dataclasses.replace(app.config["CARNET_CTX"], clock=lambda: now)
    ago, duration = app.jinja_env.filters["ago"], app.jinja_env.filters["duration"]
    async with app.app_context():
        g.locale = "en"
        assert ago(now - dt.timedelta(minutes=3)) == "3 minutes ago"
        assert ago(now) == ago(now + dt.timedelta(seconds=5)) == "1 second ago"  # never "in …"
        assert ago(None) == ""
        assert (duration(95), duration(-700)) == ("95 seconds", "12 minutes")
        g.locale = "fr"
        assert ago(now - dt.timedelta(hours=2)) == "il y a 2 heures"
        assert duration(45) == "45\xa0secondes"  # Babel keeps number and unit together
