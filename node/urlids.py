"""URL converters: ``<id:…>``, a positive integer that fits every database, and
``<pubid:…>``, a random public id (base64url text) chosen by a client.

Werkzeug's plain ``int`` converter accepts any size, and SQLite overflows
past 2**63; ids above 2**53 - 1 (the JSON-safe range) can never exist, so
they are simply "not found".
"""

from __future__ import annotations

from werkzeug.routing import BaseConverter, IntegerConverter

MAX_ID = 2**53 - 1


class IdConverter(IntegerConverter):
    def __init__(self, map: object, *args: object, **kwargs: object) -> None:
        super().__init__(map, min=1, max=MAX_ID)  # type: ignore[arg-type]


class PublicIdConverter(BaseConverter):
    """Base64url text up to 64 characters; the service says "not found" for unknown ones."""

    regex = r"[A-Za-z0-9_-]{1,64}"


def parse_id(raw: str) -> int | None:
    """An id written in a query string, or None when it is not one.

    ``str.isdigit`` alone lets through digits ``int`` refuses (superscripts
    like "²") and numbers past its 4,300-digit limit: both raised ValueError,
    a 500 instead of a clear 400.
    """
    if not (raw.isascii() and raw.isdigit()) or len(raw) > len(str(MAX_ID)):
        return None
    value = int(raw)
    return value if 0 < value <= MAX_ID else None
