"""``carnet keys``: the node changes its own key, as an operator runs it (no peers here)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from federation.keys import fingerprint
from node.cli import main
from node.datafolder import NEXT_SIGNING_KEY_FILE, SIGNING_KEY_FILE, load_keys, read_signing_key


@pytest.fixture
def data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    folder = tmp_path / "school"
    assert main(["init", "--data", str(folder), "--admin-email", "a@b.test"]) == 0
    capsys.readouterr()
    return folder


def test_next_then_rotate_swaps_the_key_files(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = load_keys(data).signing_key
    assert main(["keys", "--data", str(data), "next"]) == 0
    new = read_signing_key(data / NEXT_SIGNING_KEY_FILE)
    assert stat.S_IMODE((data / NEXT_SIGNING_KEY_FILE).stat().st_mode) == 0o600
    assert fingerprint(new.verify_key) in capsys.readouterr().out
    # too soon after announcing it: refused, nothing changed
    assert main(["keys", "--data", str(data), "rotate"]) == 2
    assert "24 hours" in capsys.readouterr().err
    assert load_keys(data).signing_key.verify_key == old.verify_key
    assert main(["keys", "--data", str(data), "rotate", "--skip-notice"]) == 0
    out = capsys.readouterr().out
    assert "No active peer school" in out and "Restart Carnet" in out
    assert load_keys(data).signing_key.verify_key == new.verify_key
    assert stat.S_IMODE((data / SIGNING_KEY_FILE).stat().st_mode) == 0o600
    assert main(["keys", "--data", str(data), "status"]) == 0
    status = capsys.readouterr().out
    assert "current  " in status and "old      " in status and "valid until" in status


def test_rotate_without_a_next_key_says_what_to_do(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keys", "--data", str(data), "rotate"]) == 2
    assert "carnet keys next" in capsys.readouterr().err


def test_revoke_asks_for_confirmation_then_prints_the_new_fingerprint(
    data: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    leaked = load_keys(data).signing_key
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert main(["keys", "--data", str(data), "revoke"]) == 2
    assert "--yes" in capsys.readouterr().err
    assert load_keys(data).signing_key.verify_key == leaked.verify_key
    assert main(["keys", "--data", str(data), "revoke", "--yes"]) == 0
    out = capsys.readouterr().out
    new = load_keys(data).signing_key
    assert new.verify_key != leaked.verify_key
    assert f"New fingerprint: {fingerprint(new.verify_key)}" in out
    assert main(["keys", "--data", str(data), "status"]) == 0
    assert "revoked " in capsys.readouterr().out
