"""French and English: Babel catalogues read from ``web/translations/<locale>/LC_MESSAGES/messages.po``.

The ``.po`` files are the source of truth and are compiled in memory at
start-up, so no binary ``.mo`` file is committed or built.  English is the
source language; French is the default for a French school.
"""

from __future__ import annotations

import functools
import gettext as stdlib_gettext
import io
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LOCALES = ("fr", "en")
TRANSLATIONS_DIR = Path(__file__).parent / "translations"


@functools.lru_cache(maxsize=8)
def _compiled(po_path: str, locale: str, mtime_ns: int, size: int) -> bytes:
    """A ``.po`` file compiled to ``.mo`` bytes, once per version of the file in a
    process: parsing it is most of what making an app costs (tests make one each)."""
    del mtime_ns, size  # part of the cache key only: an edited file is read again
    with open(po_path, "rb") as handle:
        catalog = read_po(handle, locale=locale)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    return buffer.getvalue()


class Catalogues:
    """Loaded translations, one per locale; English falls back to the msgid."""

    def __init__(self, directory: Path = TRANSLATIONS_DIR) -> None:
        self._by_locale: dict[str, stdlib_gettext.NullTranslations] = {
            "en": stdlib_gettext.NullTranslations()
        }
        for locale in LOCALES:
            po_path = directory / locale / "LC_MESSAGES" / "messages.po"
            if po_path.is_file():
                stat = po_path.stat()
                compiled = _compiled(str(po_path), locale, stat.st_mtime_ns, stat.st_size)
                self._by_locale[locale] = Translations(io.BytesIO(compiled))

    def get(self, locale: str) -> stdlib_gettext.NullTranslations:
        return self._by_locale.get(locale, self._by_locale["en"])

    def translate(self, locale: str, message: str) -> str:
        return self.get(locale).gettext(message)


def negotiate(accept_language: Any, cookie: str | None, default: str) -> str:
    """The cookie wins, then the browser's preference, then the node's default."""
    if cookie in LOCALES:
        return str(cookie)
    if accept_language is not None:
        best = accept_language.best_match(LOCALES)
        if best:
            return str(best)
    return default
