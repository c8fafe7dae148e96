"""``carnet restore`` refuses every archive it cannot vouch for, and every target it could spoil.

(Restoring a real node, and it serving as before, is the scenario of ``test_backup.py``.)
"""

from __future__ import annotations

import io
import json
import stat
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from node.cli import main
from node.datafolder import SIGNING_KEY_FILE, load_keys
from node.ops import archive
from node.ops.backup import create_backup
from node.ops.common import OpsError
from node.ops.restore import restore_backup


@pytest.fixture
def backup(data_dir: Path, tmp_path: Path) -> Path:
    (data_dir / "carnet.toml").write_text('school_name = "École A"\n', encoding="utf-8")
    (data_dir / "blobs" / "ab").mkdir()
    (data_dir / "blobs" / "ab" / "abcdef").write_bytes(b"ciphertext")
    return create_backup(data_dir, tmp_path / "backup.tar.gz").path


def _rewrite(
    source: Path, target: Path, change: Callable[[str, bytes], tuple[str, bytes] | None]
) -> Path:
    """Copy an archive member by member through ``change`` (None drops the member)."""
    with tarfile.open(source) as old, tarfile.open(target, "w:gz") as new:
        for member in old.getmembers():
            handle = old.extractfile(member)
            assert handle is not None
            changed = change(member.name, handle.read())
            if changed is None:
                continue
            info = tarfile.TarInfo(changed[0])
            info.size = len(changed[1])
            new.addfile(info, io.BytesIO(changed[1]))
    return target


def test_restore_puts_back_every_file_private(backup: Path, data_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "new" / "node"
    result = restore_backup(backup, target)
    assert result.manifest.school_name == "École A" and result.database_url == ""
    assert (target / "blobs" / "ab" / "abcdef").read_bytes() == b"ciphertext"
    assert (target / SIGNING_KEY_FILE).read_bytes() == (data_dir / SIGNING_KEY_FILE).read_bytes()
    assert load_keys(target).vapid_public_key == load_keys(data_dir).vapid_public_key
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in target.rglob("*") if p.is_file())
    assert not (target / ".carnet-restoring").exists()


def test_restore_refuses_a_non_empty_target_and_leaves_it_alone(
    backup: Path, tmp_path: Path
) -> None:
    target = tmp_path / "busy"
    target.mkdir()
    (target / "carnet.toml").write_text("# someone's node\n")
    with pytest.raises(OpsError, match="is not empty"):
        restore_backup(backup, target)
    assert [p.name for p in target.iterdir()] == ["carnet.toml"]


def test_a_changed_file_fails_its_checksum_and_nothing_is_restored(
    backup: Path, tmp_path: Path
) -> None:
    def swap_key(name: str, data: bytes) -> tuple[str, bytes]:
        return name, (b"A" * 43 + b"\n" if name == f"data/{SIGNING_KEY_FILE}" else data)

    tampered = _rewrite(backup, tmp_path / "tampered.tar.gz", swap_key)
    target = tmp_path / "new"
    with pytest.raises(OpsError, match=f"data/{SIGNING_KEY_FILE} does not match the checksum"):
        restore_backup(tampered, target)
    assert not target.exists()


def test_a_truncated_archive_is_refused_with_the_reason(
    backup: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(backup.read_bytes()[: backup.stat().st_size // 2])
    target = tmp_path / "new"
    assert main(["restore", "--data", str(target), "--from", str(cut)]) == 2
    assert "is truncated or damaged" in capsys.readouterr().err
    assert not target.exists()


def test_missing_or_extra_members_are_refused(backup: Path, tmp_path: Path) -> None:
    def drop_blob(name: str, data: bytes) -> tuple[str, bytes] | None:
        return None if name.startswith("data/blobs/") else (name, data)

    with pytest.raises(OpsError, match="data/blobs/ab/abcdef is missing"):
        restore_backup(_rewrite(backup, tmp_path / "a.tar.gz", drop_blob), tmp_path / "n1")

    def add_file(name: str, data: bytes) -> tuple[str, bytes]:
        return ("data/extra.txt", data) if name == "data/blobs/ab/abcdef" else (name, data)

    with pytest.raises(OpsError, match="does not list"):
        restore_backup(_rewrite(backup, tmp_path / "b.tar.gz", add_file), tmp_path / "n2")

    def no_manifest(name: str, data: bytes) -> tuple[str, bytes] | None:
        return None if name == archive.MANIFEST else (name, data)

    with pytest.raises(OpsError, match="no manifest"):
        restore_backup(_rewrite(backup, tmp_path / "c.tar.gz", no_manifest), tmp_path / "n3")


def test_unsafe_names_are_refused_before_anything_is_written(backup: Path, tmp_path: Path) -> None:
    def escape(name: str, data: bytes) -> tuple[str, bytes]:
        return ("data/../../evil", data) if name == "data/carnet.toml" else (name, data)

    with pytest.raises(OpsError, match="unsafe file name"):
        restore_backup(_rewrite(backup, tmp_path / "evil.tar.gz", escape), tmp_path / "new" / "n")
    assert not (tmp_path / "evil").exists() and not (tmp_path / "new" / "evil").exists()


def test_other_files_and_newer_formats_are_refused(backup: Path, tmp_path: Path) -> None:
    plain = tmp_path / "notes.tar.gz"
    with tarfile.open(plain, "w:gz") as tar:
        info = tarfile.TarInfo("notes.txt")
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(OpsError, match="not a Carnet backup"):
        restore_backup(plain, tmp_path / "n1")
    text = tmp_path / "text.tar.gz"
    text.write_text("hello")
    with pytest.raises(OpsError, match="not a readable backup archive|truncated or damaged"):
        restore_backup(text, tmp_path / "n2")

    def newer(name: str, data: bytes) -> tuple[str, bytes]:
        if name == archive.HEADER:
            return name, json.dumps({"format": "carnet-backup", "version": 99}).encode()
        return name, data

    with pytest.raises(OpsError, match="format version 99, newer than this Carnet release"):
        restore_backup(_rewrite(backup, tmp_path / "v99.tar.gz", newer), tmp_path / "n3")
    with pytest.raises(OpsError, match="does not exist"):
        restore_backup(tmp_path / "nowhere.tar.gz", tmp_path / "n4")


def test_a_sqlite_backup_is_not_restored_into_postgresql(backup: Path, tmp_path: Path) -> None:
    with pytest.raises(OpsError, match="omit --database-url.*migrate-to-postgres"):
        restore_backup(backup, tmp_path / "n", "postgresql://carnet@db.invalid/carnet")
    assert not (tmp_path / "n").exists()


def test_a_target_that_cannot_be_made_is_a_one_line_error(
    backup: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    target = tmp_path / "a-file" / "node"
    assert main(["restore", "--data", str(target), "--from", str(backup)]) == 2
    assert capsys.readouterr().err.startswith(f"carnet: {target}: Not a directory")
