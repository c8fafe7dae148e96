"""A short run of ``scripts/soak``: writers and readers in two processes, never "database is locked".

The script runs for 60 s by default (docs/benchmarks.md, "Faults and
crashes"); here a few seconds, with fewer tasks, keep it from rotting and
catch a write path that stopped queueing behind ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Iterator
from importlib.machinery import SourceFileLoader
from pathlib import Path
from types import ModuleType

import pytest

from tests.factories import client_account

pytestmark = pytest.mark.transport

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def soak() -> Iterator[ModuleType]:
    loader = SourceFileLoader("carnet_soak", str(ROOT / "scripts/soak"))
    spec = importlib.util.spec_from_loader("carnet_soak", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["carnet_soak"] = module  # dataclasses look their module up while the file runs
    try:
        loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("carnet_soak", None)


def test_two_processes_of_writers_and_readers_never_see_database_is_locked(
    soak: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the suite's client keys, made once per process (the script makes its own: PBKDF2, slow)
    monkeypatch.setattr(soak, "new_account", lambda login, passphrase, _: client_account(login))
    options = argparse.Namespace(seconds=3.0, processes=2, writers=2, readers=2, families=1)
    result = soak.run(options)
    print(result)
    assert result["locked"] == 0 and result["other_errors"] == 0, "\n".join(result["errors"])
    assert result["integrity"] == "ok"
    # writes and reads both ran (how many depends on the machine; a kind that failed
    # would show in the errors above)
    assert set(result["ops"]) & {kind for kind, _ in soak.WRITES}
    assert set(result["ops"]) & {kind for kind, _ in soak.READS}


def test_the_options_are_checked(soak: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        soak.main(["--seconds", "0"])
    assert exit_.value.code == 2
    assert "--seconds must be positive" in capsys.readouterr().err
