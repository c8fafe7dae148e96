"""A guardian's private calendar feed: who gets a link, what the .ics holds, and its RFC 5545 form."""

from __future__ import annotations

import re

import pytest

from node.errors import NotFound, PermissionDenied
from node.services import calendar
from node.storage.db import Storage
from tests.action_factories import post_action
from tests.feed_factories import ClassFeed, make_class_feed


@pytest.fixture
def cf(storage: Storage, ctx) -> ClassFeed:  # type: ignore[no-untyped-def]
    return make_class_feed(storage, ctx, families=2)


def token_of(cf: ClassFeed, index: int = 0) -> str:
    link = cf.storage.call(calendar.new_link, cf.ctx, cf.guardians[index].actor)
    match = re.fullmatch(r".*/calendar/([A-Za-z0-9_-]+)\.ics", link.url)
    assert match
    return match[1]


def unfold(text: str) -> list[str]:
    return text.replace("\r\n ", "").split("\r\n")


def events(text: str) -> list[dict[str, str]]:
    found, current = [], None
    for line in unfold(text):
        if line == "BEGIN:VEVENT":
            current = {}
        elif line == "END:VEVENT" and current is not None:
            found.append(current)
            current = None
        elif current is not None:
            name, _, value = line.partition(":")
            current[name] = value
    return found


def test_the_feed_lists_the_guardians_events_with_generic_titles(cf: ClassFeed) -> None:
    timed = post_action(cf, "event")
    all_day = post_action(cf, "event", all_day=True, starts_at="2026-12-18", ends_at="2026-12-19")
    post_action(cf, "poll")  # not an event: not in the calendar
    other = post_action(cf, "event", children=[cf.guardians[1].child_id])  # not for this family
    text = cf.storage.call(calendar.feed, cf.ctx, token_of(cf))

    found = {e["UID"].split("@")[0]: e for e in events(text)}
    assert set(found) == {timed, all_day} and other not in found
    assert found[timed]["DTSTART"] == "20261212T140000Z"
    assert found[timed]["DTEND"] == "20261212T170000Z"
    assert found[all_day]["DTSTART;VALUE=DATE"] == "20261218"
    assert found[all_day]["DTEND;VALUE=DATE"] == "20261220"  # exclusive end
    assert found[timed]["SUMMARY"] == "Class event — CE1 A"
    assert found[timed]["URL"].endswith(f"/classes/{cf.class_id}/feed#m-{timed}")
    assert "Fête" not in text  # the encrypted title never reaches the node's feed


def test_the_ics_is_well_formed_rfc_5545(cf: ClassFeed) -> None:
    post_action(cf, "event")
    text = cf.storage.call(calendar.feed, cf.ctx, token_of(cf))
    assert text.startswith("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n")
    assert text.endswith("END:VCALENDAR\r\n")
    assert "\n" not in text.replace("\r\n", "")  # every line ends with CRLF
    for line in text.split("\r\n"):
        assert len(line.encode("utf-8")) <= 75
    event = events(text)[0]
    assert {"UID", "DTSTAMP", "DTSTART", "DTEND", "SUMMARY"} <= set(event)
    assert re.fullmatch(r"\d{8}T\d{6}Z", event["DTSTAMP"])


def test_long_lines_fold_at_75_octets_without_splitting_a_character() -> None:
    line = "DESCRIPTION:" + "é" * 100
    folded = calendar.fold(line)
    parts = folded.split("\r\n")
    assert all(len(p.encode("utf-8")) <= 75 for p in parts)
    assert all(p.startswith(" ") for p in parts[1:])
    assert "".join(p[1:] if i else p for i, p in enumerate(parts)) == line


def test_a_new_link_replaces_the_old_one(cf: ClassFeed) -> None:
    first = token_of(cf)
    second = token_of(cf)
    with pytest.raises(NotFound):
        cf.storage.call(calendar.feed, cf.ctx, first)
    assert cf.storage.call(calendar.feed, cf.ctx, second).startswith("BEGIN:VCALENDAR")
    info = cf.storage.call(calendar.link_info, cf.ctx, cf.guardians[0].actor)
    assert info.url is None and info.created_at is not None  # the link is shown once


@pytest.mark.parametrize("token", ["", "x", "A" * 43, "A" * 200])
def test_an_unknown_token_opens_nothing(cf: ClassFeed, token: str) -> None:
    with pytest.raises(NotFound):
        cf.storage.call(calendar.feed, cf.ctx, token)


def test_calendar_links_are_for_guardians(cf: ClassFeed) -> None:
    with pytest.raises(PermissionDenied):
        cf.storage.call(calendar.new_link, cf.ctx, cf.teacher.actor)


def test_a_guardian_not_yet_approved_sees_no_event(storage: Storage, ctx) -> None:  # type: ignore[no-untyped-def]
    cf = make_class_feed(storage, ctx, families=1, approve=False)
    text = cf.storage.call(calendar.feed, cf.ctx, token_of(cf))
    assert events(text) == []
