"""The French catalogue covers every message of the code, and pages follow the reader's language.

The extraction runs in-process with babel.cfg's method map and the keywords
``scripts/i18n extract`` passes (``-k N_ -k _``), so a string added to a
template, a view or a service without a French translation fails here with
the list of msgids to translate (``scripts/i18n extract && scripts/i18n update``,
then translate the new entries of ``web/translations/fr/LC_MESSAGES/messages.po``).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from babel.messages.catalog import Catalog, Message
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from quart.typing import TestClientProtocol as Client

ROOT = Path(__file__).resolve().parents[2]
FRENCH_PO = ROOT / "web" / "translations" / "fr" / "LC_MESSAGES" / "messages.po"

# %(name)s / %(num)d in templates and Python; {name} in service messages (str.format).
PERCENT = re.compile(r"%\((\w+)\)[-#0 +]*\d*(?:\.\d+)?[sdifr]")
BRACES = re.compile(r"\{(\w+)\}")

Msgid = str | tuple[str, ...]


@functools.cache
def extracted() -> dict[Msgid, list[str]]:
    """Every msgid in node/, web/ and the templates, with where it was found."""
    with (ROOT / "babel.cfg").open(encoding="utf-8") as handle:
        method_map, options_map = parse_mapping_cfg(handle, filename="babel.cfg")  # type: ignore[no-untyped-call]
    keywords = {**DEFAULT_KEYWORDS, "N_": None, "_": None}
    found: dict[Msgid, list[str]] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=keywords
    ):
        key = tuple(message) if isinstance(message, (list, tuple)) else message
        found.setdefault(key, []).append(f"{filename}:{lineno}")
    return found


@functools.cache
def french() -> Catalog:
    with FRENCH_PO.open("rb") as handle:
        return read_po(handle, locale="fr")


def forms(value: str | tuple[str, ...] | list[str] | None) -> list[str]:
    if isinstance(value, (tuple, list)):
        return list(value)
    return [value or ""]


def translated(message: Message | None) -> bool:
    return message is not None and not message.fuzzy and all(forms(message.string))


def placeholders(text: str) -> tuple[set[str], set[str]]:
    return set(PERCENT.findall(text)), set(BRACES.findall(text))


def stray(text: str) -> str:
    """Characters that would break %-formatting or str.format once placeholders are removed."""
    rest = BRACES.sub("", PERCENT.sub("", text.replace("%%", "")))
    return "".join(sorted(c for c in rest if c in "%{}"))


def test_extraction_finds_templates_views_and_service_messages() -> None:
    found = extracted()
    assert "Log in to Carnet" in found  # a template
    assert "This page does not exist." in found  # web/errors.py, N_()
    assert "Wrong code. Tries left: {left}." in found  # node/services, N_()
    assert ("Print the slip", "Print the %(num)d slips") in found  # ngettext in a template


def test_every_extracted_msgid_has_a_french_translation() -> None:
    catalogue = french()
    missing = [
        f"{msgid!r}  ({', '.join(where[:2])})"
        for msgid, where in sorted(extracted().items(), key=lambda item: str(item[0]))
        if not translated(catalogue.get(msgid))
    ]
    assert not missing, (
        f"{len(missing)} msgid(s) without a non-fuzzy French translation in {FRENCH_PO.relative_to(ROOT)}"
        " (run scripts/i18n extract && scripts/i18n update, then translate them):\n"
        + "\n".join(missing)
    )


def test_french_translations_keep_the_placeholders() -> None:
    wrong = []
    for message in french():
        if not message.id or not translated(message):
            continue
        sources = forms(message.id)
        wanted_percent = set().union(*(placeholders(text)[0] for text in sources))
        wanted_braces = set().union(*(placeholders(text)[1] for text in sources))
        targets = forms(message.string)
        got_percent = set().union(*(placeholders(text)[0] for text in targets))
        got_braces = set().union(*(placeholders(text)[1] for text in targets))
        if (got_percent, got_braces) != (wanted_percent, wanted_braces):
            wrong.append(f"{message.id!r} -> {message.string!r}")
            continue
        for text in targets:
            # Jinja's new-style gettext always applies %, services always str.format.
            if stray(text) != stray(sources[-1]):
                wrong.append(f"{message.id!r} -> {text!r}: stray % or brace")
    assert not wrong, "French placeholders differ from the msgid:\n" + "\n".join(wrong)


async def page(client: Client, path: str, headers: dict[str, str]) -> str:
    response = await client.get(path, headers=headers)
    assert response.status_code == 200
    return await response.get_data(as_text=True)


async def test_login_page_follows_accept_language(client: Client) -> None:
    text = await page(client, "/login", {"Accept-Language": "fr"})
    assert '<html lang="fr">' in text
    assert "Connexion à Carnet" in text
    assert "Log in to Carnet" not in text

    text = await page(client, "/login", {"Accept-Language": "en"})
    assert '<html lang="en">' in text
    assert "Log in to Carnet" in text
    assert "Connexion à Carnet" not in text

    text = await page(client, "/login", {"Accept-Language": "de-DE,fr;q=0.8,en;q=0.5"})
    assert "Connexion à Carnet" in text


async def test_the_language_cookie_overrides_accept_language(client: Client) -> None:
    text = await page(client, "/login", {"Accept-Language": "fr", "Cookie": "carnet_lang=en"})
    assert '<html lang="en">' in text
    assert "Log in to Carnet" in text

    text = await page(client, "/login", {"Accept-Language": "en", "Cookie": "carnet_lang=fr"})
    assert '<html lang="fr">' in text
    assert "Connexion à Carnet" in text


async def test_error_messages_are_translated_on_pages_and_in_the_api(client: Client) -> None:
    response = await client.get("/no-such-page", headers={"Accept-Language": "fr"})
    assert response.status_code == 404
    assert "Cette page n’existe pas." in await response.get_data(as_text=True)

    response = await client.get("/api/v1/no-such-thing", headers={"Accept-Language": "fr"})
    assert response.status_code == 404
    body = await response.get_json()
    assert body["error"]["message"] == "Cette page n’existe pas."
