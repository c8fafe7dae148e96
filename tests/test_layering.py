"""The import rules of DESIGN §2 and style.md §4, enforced on every module.

- ``node.services`` and ``node.storage`` import nothing from quart, httpx,
  ``federation`` or ``web`` (and nothing from the HTTP side of ``node``);
- pages (``web``) and the JSON API (``node.api``) never import ``node.storage``:
  routes go through services;
- the sans-IO cores (``federation.canonical``, ``node.e2e``) import only the
  standard library, nacl (and ``cryptography`` for the AES-GCM fallback);
- only ``node.app`` wires ``node.api`` and ``web`` together.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("node", "federation", "web")


def modules() -> dict[str, set[str]]:
    """Every module of the three packages → the absolute names it imports."""
    found: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            imports: set[str] = set()
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    imports.update(alias.name for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    imports.add(node.module)
            found[name] = imports
    return found


MODULES = modules()


def offending(prefixes: tuple[str, ...], forbidden: tuple[str, ...]) -> list[str]:
    bad = []
    for name, imports in MODULES.items():
        if name.startswith(prefixes):
            bad += [f"{name} imports {imp}" for imp in imports if imp.startswith(forbidden)]
    return bad


def test_modules_were_found() -> None:
    assert {"node.app", "node.services.accounts", "node.storage.db", "web.views.teacher"} <= set(
        MODULES
    )


def test_services_and_storage_stay_free_of_http_and_protocols() -> None:
    forbidden = (
        "quart",
        "httpx",
        "hypercorn",
        "federation",
        "web",
        "node.api",
        "node.security",
        "node.app",
        "werkzeug",
    )
    assert offending(("node.services", "node.storage"), forbidden) == []


def test_routes_never_touch_storage() -> None:
    assert offending(("web", "node.api"), ("node.storage", "peewee")) == []


@pytest.mark.parametrize("core", ["federation.canonical", "node.e2e"])
def test_sans_io_cores_import_only_stdlib_and_crypto(core: str) -> None:
    allowed_third_party = ("nacl", "cryptography", "federation.canonical", "node.e2e")
    bad = []
    for name, imports in MODULES.items():
        if name == core or name.startswith(core + "."):
            for imp in imports:
                top = imp.split(".")[0]
                if top in sys.stdlib_module_names or top == "__future__":
                    continue
                if not imp.startswith(allowed_third_party):
                    bad.append(f"{name} imports {imp}")
    assert bad == []


def test_only_the_composition_root_wires_api_and_pages() -> None:
    importers = {
        name
        for name, imports in MODULES.items()
        if any(i == "web" or i.startswith("web.") for i in imports)
    }
    assert {n for n in importers if not n.startswith("web")} == {"node.app"}
