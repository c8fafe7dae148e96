"""Times and dates at their edges: the French clock changes, 29 February, skewed clocks.

Europe/Paris (the school's zone in config) goes from 02:00 to 03:00 on
28 March 2027 and from 03:00 back to 02:00 on 31 October 2027.  What depends
on the school's wall clock: the daily digest's time, quiet hours, and the
school's "today" that bounds absence notes, and the school year a new class
is in by default.  Everything else (SMS codes,
sessions, setup links, the audit log's 12 months) is stored and compared in
UTC, so a clock change cannot stretch or shorten it; the server clock jumping
during an SMS code's life is tested over HTTP (test_bad_inputs_auth_time).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from node.config import NodeConfig
from node.errors import Invalid
from node.services import absences, actions, directory
from node.services.context import ServiceContext
from node.services.notifications import after_quiet_hours, next_digest

PARIS = zoneinfo.ZoneInfo("Europe/Paris")
SPRING = dt.date(2027, 3, 28)
AUTUMN = dt.date(2027, 10, 31)
UTC = dt.datetime


def at(moment: dt.datetime) -> ServiceContext:
    """A node in Paris whose clock is stopped at ``moment`` (naive UTC)."""
    return ServiceContext(NodeConfig(timezone="Europe/Paris"), b"\0" * 32, clock=lambda: moment)


def wall(moment: dt.datetime) -> str:
    """A naive UTC time as the school's wall clock shows it."""
    return moment.replace(tzinfo=dt.UTC).astimezone(PARIS).strftime("%Y-%m-%d %H:%M %Z")


# --- The daily digest --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "digest_at", "expected"),
    [
        (UTC(2027, 3, 27, 12, 0), "18:00", "2027-03-27 18:00 CET"),
        (UTC(2027, 3, 28, 10, 0), "18:00", "2027-03-28 18:00 CEST"),
        # 02:30 does not exist that night: it is read as 03:30 summer time
        (UTC(2027, 3, 28, 0, 45), "02:30", "2027-03-28 03:30 CEST"),
        # at 03:10 summer time that 03:30 has not come yet (wall clock said "02:30 passed")
        (UTC(2027, 3, 28, 1, 10), "02:30", "2027-03-28 03:30 CEST"),
        (UTC(2027, 10, 30, 12, 0), "18:00", "2027-10-30 18:00 CEST"),
        (UTC(2027, 10, 31, 12, 0), "18:00", "2027-10-31 18:00 CET"),
        # 02:30 comes twice: the first one is the digest's
        (UTC(2027, 10, 31, 0, 10), "02:30", "2027-10-31 02:30 CEST"),
        # at the second 02:15 the first 02:30 has passed: tomorrow (it used to be the past)
        (UTC(2027, 10, 31, 1, 15), "02:30", "2027-11-01 02:30 CET"),
        (UTC(2028, 2, 28, 20, 0), "18:00", "2028-02-29 18:00 CET"),
        (UTC(2028, 2, 29, 18, 0), "18:00", "2028-03-01 18:00 CET"),
    ],
)
def test_the_digest_comes_at_its_wall_clock_time_across_clock_changes(
    now: dt.datetime, digest_at: str, expected: str
) -> None:
    assert wall(next_digest(now, PARIS, digest_at)) == expected


def _nights() -> list[dt.datetime]:
    """Every 20 minutes of the two nights clocks change and of 28–29 February 2028."""
    out = []
    for day in (SPRING, AUTUMN, dt.date(2028, 2, 29)):
        start = dt.datetime.combine(day - dt.timedelta(days=1), dt.time(12, 0))
        out += [start + dt.timedelta(minutes=20 * i) for i in range(3 * 24)]
    return out


def test_the_next_digest_is_always_ahead_and_within_a_day() -> None:
    times = [f"{h:02d}:00" for h in range(24)] + ["01:59", "02:30", "02:59", "03:01"]
    for now in _nights():
        for digest_at in times:
            when = next_digest(now, PARIS, digest_at)
            case = (now, digest_at, when)
            assert now < when <= now + dt.timedelta(hours=25), case
            shown = wall(when)[11:16]
            assert shown == digest_at or (when.date() == SPRING and shown[:2] == "03"), case


# --- Quiet hours -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "quiet", "expected"),
    [
        (UTC(2027, 3, 27, 22, 0), ("21:00", "07:00"), "2027-03-28 07:00 CEST"),
        (UTC(2027, 10, 30, 22, 0), ("21:00", "07:00"), "2027-10-31 07:00 CET"),
        (UTC(2027, 10, 31, 1, 30), ("21:00", "07:00"), "2027-10-31 07:00 CET"),
        # ending at 02:30, which does not exist: the hours end at 03:30 summer time
        (UTC(2027, 3, 28, 0, 30), ("01:00", "02:30"), "2027-03-28 03:30 CEST"),
        # ending at 02:30, which comes twice: at the first 02:15, the first 02:30...
        (UTC(2027, 10, 31, 0, 15), ("01:00", "02:30"), "2027-10-31 02:30 CEST"),
        # ...at the second 02:15, the second one (it used to be the past)
        (UTC(2027, 10, 31, 1, 15), ("01:00", "02:30"), "2027-10-31 02:30 CET"),
        (UTC(2028, 2, 28, 22, 0), ("21:00", "07:00"), "2028-02-29 07:00 CET"),
    ],
)
def test_quiet_hours_end_at_their_wall_clock_time_across_clock_changes(
    now: dt.datetime, quiet: tuple[str, str], expected: str
) -> None:
    assert wall(after_quiet_hours(now, PARIS, *quiet)) == expected


def test_quiet_hours_never_send_into_the_past_nor_hold_outside_them() -> None:
    hours = [("21:00", "07:00"), ("01:00", "02:30"), ("02:15", "02:45"), ("22:00", "03:00")]
    for now in _nights():
        for start, end in hours:
            when = after_quiet_hours(now, PARIS, start, end)
            case = (now, start, end, when)
            assert now <= when <= now + dt.timedelta(hours=11), case
            if when > now:  # held: until the end of the hours, as the wall clock reads it
                shown = wall(when)[11:16]
                assert shown == end or (when.date() == SPRING and shown[:2] == "03"), case


# --- The school's date: absence notes ---------------------------------------------------


@pytest.mark.parametrize(
    ("now", "school_date"),
    [
        (UTC(2027, 3, 27, 22, 59), "2027-03-27"),  # 23:59 winter time
        (UTC(2027, 3, 27, 23, 30), "2027-03-28"),  # 00:30 winter time: UTC is still the 27th
        (UTC(2027, 3, 28, 21, 59), "2027-03-28"),  # 23:59 summer time
        (UTC(2027, 3, 28, 22, 30), "2027-03-29"),
        (UTC(2027, 10, 30, 22, 30), "2027-10-31"),
        (UTC(2027, 10, 31, 22, 30), "2027-10-31"),  # 23:30 winter time
        (UTC(2027, 10, 31, 23, 0), "2027-11-01"),
        (UTC(2028, 2, 28, 23, 0), "2028-02-29"),
        (UTC(2028, 2, 29, 23, 0), "2028-03-01"),
    ],
)
def test_today_is_the_schools_date(now: dt.datetime, school_date: str) -> None:
    assert absences.today(at(now)).isoformat() == school_date


def check(now: dt.datetime, first: str, last: str | None = None) -> tuple[str, str]:
    _, first_day, last_day = absences.check_days(at(now), "absent", first, last)
    return first_day.isoformat(), last_day.isoformat()


def refused(now: dt.datetime, first: str, last: str | None, message: str, field: str) -> None:
    with pytest.raises(Invalid) as caught:
        absences.check_days(at(now), "absent", first, last)
    assert caught.value.message == message
    assert caught.value.field == field
    assert caught.value.status == 400


def test_absence_days_around_29_february() -> None:
    leap_day = UTC(2028, 2, 29, 9, 0)
    assert check(leap_day, "2028-02-29") == ("2028-02-29", "2028-02-29")
    assert check(leap_day, "2028-02-28", "2028-03-01") == ("2028-02-28", "2028-03-01")
    refused(leap_day, "2027-02-29", None, "This date does not exist.", "first_day")
    refused(leap_day, "2028-02-28", "2028-02-30", "This date does not exist.", "last_day")
    assert check(leap_day, "2028-02-22")[0] == "2028-02-22"  # 7 days ago
    refused(leap_day, "2028-02-21", None, "An absence note can start at most %(days)d days ago.", "first_day")  # fmt: skip
    # counted in days of the calendar: 29 February is one of them
    a_week_after = UTC(2028, 3, 5, 9, 0)
    assert check(a_week_after, "2028-02-27")[0] == "2028-02-27"
    refused(a_week_after, "2028-02-26", None, "An absence note can start at most %(days)d days ago.", "first_day")  # fmt: skip
    assert check(leap_day, "2028-04-29")[0] == "2028-04-29"  # 60 days ahead
    refused(leap_day, "2028-04-30", None, "An absence note can start at most %(days)d days ahead.", "first_day")  # fmt: skip


def test_absence_days_are_bounded_by_the_schools_date_not_the_devices() -> None:
    """The browser sends days only; the node checks them against its own date in
    the school's zone, so a phone a day fast or slow cannot move the limits."""
    # 00:30 in Paris on 28 March: UTC (and a device a day slow) still says the 27th
    just_after_midnight = UTC(2027, 3, 27, 23, 30)
    assert check(just_after_midnight, "2027-03-21")[0] == "2027-03-21"
    refused(just_after_midnight, "2027-03-20", None, "An absence note can start at most %(days)d days ago.", "first_day")  # fmt: skip
    assert check(just_after_midnight, "2027-05-27")[0] == "2027-05-27"
    refused(just_after_midnight, "2027-05-28", None, "An absence note can start at most %(days)d days ahead.", "first_day")  # fmt: skip


@pytest.mark.parametrize(
    ("now", "year"),
    [
        (UTC(2027, 7, 31, 21, 59), "2026-2027"),  # 23:59 on 31 July in Paris
        (UTC(2027, 7, 31, 22, 30), "2027-2028"),  # 00:30 on 1 August: UTC says 31 July
        (UTC(2028, 2, 29, 12, 0), "2027-2028"),
    ],
)
def test_the_school_year_turns_over_on_the_schools_1_august(now: dt.datetime, year: str) -> None:
    assert directory.school_year_now(at(now)) == year


# --- A device's clock in a signed answer --------------------------------------------------


@pytest.mark.parametrize("skew", [-86_400, 86_400, -601, 601])
def test_a_slip_signed_by_a_device_a_day_or_ten_minutes_off_is_refused(skew: int) -> None:
    """The time a parent's device signs a permission slip with is checked against the
    node's clock (10 minutes either way) before anything else is looked at."""
    now = UTC(2027, 10, 31, 1, 30)  # in the hour that comes twice: UTC does not care
    ctx = at(now)
    signed_at = int(now.replace(tzinfo=dt.UTC).timestamp()) + skew
    with pytest.raises(Invalid) as caught:
        actions._check_slip(ctx, None, None, 1, "agree", "x" * 86, signed_at, relayed=False)  # type: ignore[arg-type]
    assert caught.value.message == "This device's clock is wrong: set it and sign again."
    assert caught.value.field == "at"
