"""No form can send a secret or a message in the clear before its page's script takes it over.

Carnet's forms are driven by scripts: they encrypt, derive keys, or call the
JSON API.  A form shown before its module script has loaded can be submitted
the browser's default way, a GET with every named field in the URL: the
passphrase, the phone number and the access code, or a message that should
only leave the browser encrypted, would reach the server, its logs and the
browser's history.  So any form with such a field is ``hidden`` in the
template and its script shows it once it has bound the submit handler.
"""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest

TEMPLATES = Path(__file__).resolve().parents[2] / "web" / "templates"
SENSITIVE_TYPES = {"password", "tel", "file"}
SENSITIVE_NAMES = {"login", "passphrase", "code", "phone", "text", "body", "message"}


class _Forms(HTMLParser):
    """Collects each form outside ``<template>`` with whether it is hidden and its risky fields."""

    def __init__(self) -> None:
        super().__init__()
        self.in_template = 0
        self.stack: list[dict[str, object]] = []
        self.forms: list[dict[str, object]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "template":
            self.in_template += 1
        elif tag == "form" and not self.in_template:
            form: dict[str, object] = {
                "id": values.get("id") or values.get("class") or "?",
                "hidden": "hidden" in values,
                # POST puts fields in the body; a dialog form only closes its dialog
                "no_url": (values.get("method") or "").lower() in ("post", "dialog"),
                "risky": [],
            }
            self.stack.append(form)
            self.forms.append(form)
        elif self.stack and tag in ("input", "textarea"):
            kind = (values.get("type") or ("textarea" if tag == "textarea" else "text")).lower()
            name = values.get("name") or ""
            if kind in SENSITIVE_TYPES or tag == "textarea" or name in SENSITIVE_NAMES:
                risky = self.stack[-1]["risky"]
                assert isinstance(risky, list)
                risky.append(f"{tag} {name or values.get('id') or kind}")

    def handle_endtag(self, tag: str) -> None:
        if tag == "template":
            self.in_template -= 1
        elif tag == "form" and self.stack:
            self.stack.pop()


def _forms(path: Path) -> list[dict[str, object]]:
    parser = _Forms()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser.forms


TEMPLATE_FILES = sorted(TEMPLATES.rglob("*.html"))


def test_the_templates_have_forms_to_check() -> None:
    forms = [form for path in TEMPLATE_FILES for form in _forms(path)]
    assert len(forms) > 10
    assert any(form["risky"] for form in forms)


@pytest.mark.parametrize("path", TEMPLATE_FILES, ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_a_form_with_a_secret_or_a_message_is_hidden_until_its_script_runs(path: Path) -> None:
    exposed = [
        f"{form['id']}: {', '.join(form['risky'])}"  # type: ignore[arg-type]
        for form in _forms(path)
        if form["risky"] and not form["hidden"] and not form["no_url"]
    ]
    assert not exposed, (
        f"shown before its script, these forms would send fields in a URL: {exposed}"
    )


def test_the_login_form_is_hidden_in_the_page_the_node_serves() -> None:
    forms = {form["id"]: form for form in _forms(TEMPLATES / "auth" / "login.html")}
    assert forms["login-form"]["hidden"] is True
