"""``carnet backup`` while a real node serves and writes, then ``carnet restore`` on a wiped machine.

The scenario runs on the suite's engine (SQLite, or PostgreSQL in the
PostgreSQL phase: the ``engine`` fixture asks for ``postgres_url`` so that
phase keeps it); the cheaper checks of the archive itself run once.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tarfile
import threading
from pathlib import Path

import pytest

from node.cli import main
from node.datafolder import SIGNING_KEY_FILE, VAPID_KEY_FILE, load_keys
from node.ops.backup import create_backup
from node.ops.common import OpsError
from node.ops.doctor import run_doctor
from tests.multinode import classes as k
from tests.multinode.nodes import Node, _pg_execute, suite_database
from tests.multinode.waiting import wait_until
from tests.node.ops.school import log_in, node_keys, push_service, pushed_title, set_up_school


@pytest.fixture
def engine(postgres_url: str | None) -> str:
    return suite_database()


def test_backup_while_serving_then_restore_serves_signs_and_pushes_as_before(
    engine: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = tmp_path / "carnet-backup.tar.gz"
    restored_db = ""
    with push_service() as push, Node("ops", tmp_path) as node:
        node.start()
        school = set_up_school(node, push)
        vapid = load_keys(node.data_dir).vapid_public_key
        signing = node_keys(node)
        k.post(school.school_class, "Avant la sauvegarde")
        assert pushed_title(school, push.wait_for(1)[0], vapid)

        # the teacher keeps posting, from before the backup starts until it has ended
        started, finished = threading.Event(), threading.Event()
        sent: list[str] = []

        def keep_posting() -> None:
            while not finished.is_set() and len(sent) < 50:
                sent.extend(k.post_many(school.school_class, [f"Pendant {len(sent)}"]))
                started.set()

        posting = threading.Thread(target=keep_posting)
        posting.start()
        assert started.wait(30)
        assert main(["backup", "--data", str(node.data_dir), "--out", str(archive)]) == 0
        finished.set()
        posting.join()
        out = capsys.readouterr().out
        assert "0600" in out and "private keys" in out
        assert stat.S_IMODE(archive.stat().st_mode) == 0o600

        node.stop()
        shutil.rmtree(node.data_dir)  # the machine is gone
        if engine == "postgresql":
            old = node.database_url
            _pg_execute(
                old.rsplit("/", 1)[0], f'DROP DATABASE "{old.rsplit("/", 1)[1]}" WITH (FORCE)'
            )
            restored_db = f"{old}_restored"
            _pg_execute(old.rsplit("/", 1)[0], f'CREATE DATABASE "{restored_db.rsplit("/", 1)[1]}"')
        try:
            argv = ["restore", "--data", str(node.data_dir), "--from", str(archive)]
            if restored_db:
                argv += ["--database-url", restored_db]
                node.set_config({"database_url": restored_db})
            assert main(argv) == 0
            assert "Every checksum matched" in capsys.readouterr().out
            node.start()

            assert node_keys(node) == signing  # peer schools still verify it
            lines = [c.line() for c in run_doctor(node.data_dir)]
            assert any(
                line.startswith("✓ database reachable, migrations current") for line in lines
            )
            assert any(line.endswith("reachable and serving this node") for line in lines), lines
            assert load_keys(node.data_dir).vapid_public_key == vapid
            guardian = log_in(node, school.phone)  # a new login: the account came back
            shown = [item.text for item in k.read_feed(guardian)]
            assert "Avant la sauvegarde" in shown
            during = [t for t in shown if t.startswith("Pendant")]
            # whatever the snapshot caught of the concurrent posts came back whole, in order
            assert during == [f"Pendant {i}" for i in range(len(during) - 1, -1, -1)]

            assert during  # the first concurrent post was answered before the backup began
            seen = len(push.requests)
            post_id = k.post(school.school_class, "Après la restauration")  # the session survived

            def pushed_after_restore() -> bool:
                # signed with the same VAPID key, encrypted to the device's subscription
                opened = [pushed_title(school, r, vapid) for r in push.requests[seen:]]
                return any(post_id in json.dumps(payload) for payload in opened)

            wait_until(pushed_after_restore, timeout=30, what="the push of the new post")
        finally:
            node.stop()
            if restored_db:
                _pg_execute(
                    restored_db.rsplit("/", 1)[0],
                    f'DROP DATABASE IF EXISTS "{restored_db.rsplit("/", 1)[1]}" WITH (FORCE)',
                )


def _members(path: Path) -> list[str]:
    with tarfile.open(path) as tar:
        return tar.getnames()


def test_archive_holds_header_database_keys_blobs_and_manifest_last(
    data_dir: Path, tmp_path: Path
) -> None:
    (data_dir / "carnet.toml").write_text('school_name = "École A"\n', encoding="utf-8")
    (data_dir / "blobs" / "ab").mkdir()
    (data_dir / "blobs" / "ab" / "abcdef").write_bytes(b"ciphertext")
    (data_dir / "blobs" / "ab" / "abcdef.0123.part").write_bytes(b"half")
    result = create_backup(data_dir, tmp_path / "b.tar.gz")
    names = _members(result.path)
    assert names[0] == "carnet-backup.json" and names[-1] == "manifest.json"
    assert "database/carnet.sqlite3" in names and "data/blobs/ab/abcdef" in names
    assert f"data/{SIGNING_KEY_FILE}" in names and f"data/{VAPID_KEY_FILE}" in names
    assert "data/carnet.sqlite3" not in names  # the database goes through SQLite's backup API
    assert not any(n.endswith(".part") for n in names)  # an upload being written
    with tarfile.open(result.path) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert manifest["format"] == "carnet-backup" and manifest["version"] == 1
    assert manifest["node"]["signing_key"] == load_keys(data_dir).signing_public_key
    assert manifest["schema_version"] >= 1
    assert {f["name"] for f in manifest["files"]} == set(names[1:-1])
    assert not list(tmp_path.glob(".carnet-backup-*")) and not list(tmp_path.glob(".*.partial"))


def test_backup_refuses_to_overwrite_or_write_inside_the_data_folder(
    data_dir: Path, tmp_path: Path
) -> None:
    existing = tmp_path / "old.tar.gz"
    existing.write_bytes(b"an older backup")
    with pytest.raises(OpsError, match="already exists"):
        create_backup(data_dir, existing)
    assert existing.read_bytes() == b"an older backup"
    with pytest.raises(OpsError, match="outside the data folder"):
        create_backup(data_dir, data_dir / "b.tar.gz")
    with pytest.raises(OpsError, match="does not exist"):
        create_backup(data_dir, tmp_path / "missing" / "b.tar.gz")


def test_backup_of_a_folder_without_keys_says_what_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    assert main(["backup", "--data", str(folder), "--out", str(tmp_path / "b.tar.gz")]) == 2
    assert "is missing: run `carnet init" in capsys.readouterr().err
    assert not (tmp_path / "b.tar.gz").exists()


def test_pg_dump_missing_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from node.ops import common

    monkeypatch.setattr(common, "PG_BIN_DIRS", ())
    monkeypatch.setenv("PATH", os.devnull)
    with pytest.raises(OpsError, match="pg_dump was not found.*postgresql-client"):
        common.pg_tool("pg_dump")
