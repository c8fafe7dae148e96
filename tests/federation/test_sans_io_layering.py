"""The NP/1 cores stay sans-IO: standard library, nacl and each other, nothing else."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORES = sorted((ROOT / "federation").glob("*.py"))
# Modules that would mean I/O, a clock or the node's own layers.
FORBIDDEN_STDLIB = {
    "socket",
    "http",
    "urllib.request",
    "asyncio",
    "time",
    "sqlite3",
    "subprocess",
    "os",
}


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_cores_were_found() -> None:
    assert {"httpsig.py", "nodedoc.py", "activity.py", "transaction.py"} <= {p.name for p in CORES}


@pytest.mark.parametrize("path", CORES, ids=lambda p: p.name)
def test_core_imports(path: Path) -> None:
    bad = []
    for name in imports_of(path):
        top = name.split(".")[0]
        if (
            top == "__future__"
            or top == "nacl"
            or name == "federation"
            or name.startswith("federation.")
        ):
            continue
        if (
            top not in sys.stdlib_module_names
            or name in FORBIDDEN_STDLIB
            or top in FORBIDDEN_STDLIB
        ):
            bad.append(name)
    assert bad == []
