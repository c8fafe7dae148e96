"""Server-rendered pages (Jinja2) and static files.

Rule: views parse forms, call ``node.services`` through storage's thread
pool, and render templates; they never query models.  Crypto happens in the
browser (``static/js/e2e``); pages that need it load small ES modules.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from quart import Quart, g

from web.filters import register_filters

STATIC_DIR = Path(__file__).parent / "static"
TEMPLATES_DIR = Path(__file__).parent / "templates"


def register(app: Quart) -> None:
    from web.views import absences as absence_pages
    from web.views import account, admin, auth, feed, guardian, joins, pages, peers, push, teacher
    from web.views import alerts as alert_pages
    from web.views import audit as audit_pages
    from web.views import calendar as calendar_feed
    from web.views import chat as chat_pages
    from web.views import export as export_page
    from web.views import school_year as school_year_page

    app.static_folder = str(STATIC_DIR)
    app.static_url_path = "/static"
    app.add_url_rule("/static/<path:filename>", "static", app.send_static_file)
    app.jinja_loader = jinja2.FileSystemLoader(str(TEMPLATES_DIR))
    app.jinja_options = {**app.jinja_options, "autoescape": True}
    app.jinja_env.add_extension("jinja2.ext.i18n")
    catalogues = app.config["CARNET_CATALOGUES"]

    def _gettext(message: str, **params: Any) -> str:
        text: str = catalogues.get(g.get("locale", "en")).gettext(message)
        return text % params if params else text

    def _ngettext(singular: str, plural: str, n: int, **params: Any) -> str:
        text: str = catalogues.get(g.get("locale", "en")).ngettext(singular, plural, n)
        return text % {"num": n, **params}

    app.jinja_env.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]
    register_filters(app)
    for module in (pages, auth, account, admin, peers, teacher, guardian, joins, feed, push):
        app.register_blueprint(module.blueprint)
    app.register_blueprint(alert_pages.blueprint)
    app.register_blueprint(absence_pages.blueprint)
    app.register_blueprint(calendar_feed.blueprint)
    app.register_blueprint(chat_pages.blueprint)
    app.register_blueprint(audit_pages.blueprint)
    app.register_blueprint(export_page.blueprint)
    app.register_blueprint(school_year_page.blueprint)
