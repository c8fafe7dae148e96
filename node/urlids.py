"""The ``<id:…>`` URL converter: a positive integer that fits every database.

Werkzeug's plain ``int`` converter accepts any size, and SQLite overflows
past 2**63; ids above 2**53 - 1 (the JSON-safe range) can never exist, so
they are simply "not found".
"""

from __future__ import annotations

from werkzeug.routing import IntegerConverter

MAX_ID = 2**53 - 1


class IdConverter(IntegerConverter):
    def __init__(self, map: object, *args: object, **kwargs: object) -> None:
        super().__init__(map, min=1, max=MAX_ID)  # type: ignore[arg-type]
