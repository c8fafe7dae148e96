"""The ``carnet`` command: init, admin tasks and the demo, as an operator runs them."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from node.cli import main
from node.datafolder import SECRET_FILE, SIGNING_KEY_FILE, VAPID_KEY_FILE, load_keys


def test_init_creates_private_keys_and_prints_admin_link(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "school"
    code = main(
        [
            "init",
            "--data",
            str(data),
            "--school",
            "École A",
            "--url",
            "https://carnet.ecole-a.test",
            "--admin-email",
            "Direction@Ecole-A.test",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert re.search(r"https://carnet\.ecole-a\.test/setup/[A-Za-z0-9_-]{43}", out)
    for name in (SECRET_FILE, SIGNING_KEY_FILE, VAPID_KEY_FILE):
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o600
    assert 'school_name = "École A"' in (data / "carnet.toml").read_text()
    keys = load_keys(data)
    assert len(keys.vapid_public_key) == 87  # 65-byte uncompressed P-256 point, base64url


def test_init_again_keeps_config_and_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "school"
    main(["init", "--data", str(data), "--admin-email", "a@b.test"])
    before = (data / SIGNING_KEY_FILE).read_bytes()
    capsys.readouterr()
    assert (
        main(["init", "--data", str(data), "--school", "Other", "--admin-email", "c@d.test"]) == 0
    )
    out = capsys.readouterr().out
    assert "Kept the existing" in out and "An admin already exists" in out
    assert (data / SIGNING_KEY_FILE).read_bytes() == before
    assert "Other" not in (data / "carnet.toml").read_text()


def test_init_refuses_a_bad_url_without_writing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "school"
    assert main(["init", "--data", str(data), "--url", "ftp://school.test"]) == 2
    assert "public_url must be an http(s) URL" in capsys.readouterr().err
    assert not (data / "carnet.toml").exists()


def test_admin_commands_mask_contacts_and_disable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "school"
    main(["init", "--data", str(data), "--admin-email", "direction@ecole.test"])
    assert (
        main(
            [
                "admin",
                "--data",
                str(data),
                "create-teacher",
                "--name",
                "M. Dubois",
                "--email",
                "dubois@ecole.test",
            ]
        )
        == 0
    )
    assert main(["admin", "--data", str(data), "list-staff"]) == 0
    out = capsys.readouterr().out
    assert "M. Dubois" in out and "d•••@e•••" in out
    assert "dubois@ecole.test" not in out.split("Setup link")[-1].split("\n", 1)[1]
    assert main(["admin", "--data", str(data), "disable", "dubois@ecole.test"]) == 0
    assert main(["admin", "--data", str(data), "setup-link", "nobody@ecole.test"]) == 2
    assert "No such account" in capsys.readouterr().err


def test_demo_seeds_once_and_prints_logins(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "demo"
    main(["init", "--data", str(data)])
    capsys.readouterr()
    assert main(["demo", "--data", str(data)]) == 0
    first = capsys.readouterr().out
    codes = re.findall(r"code ([A-Z0-9]{4}(?:-[A-Z0-9]{1,4}){4})", first)
    assert len(codes) == 2
    assert "dubois@demo.carnet.test" in first and "06 39 98 00 01" in first
    assert main(["demo", "--data", str(data)]) == 0
    assert capsys.readouterr().out == first


def test_init_creates_a_private_data_folder(tmp_path: Path) -> None:
    data = tmp_path / "new-school"
    assert main(["init", "--data", str(data), "--admin-email", "a@b.test"]) == 0
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
