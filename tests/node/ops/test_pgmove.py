"""``carnet migrate-to-postgres``: a real SQLite node moves to PostgreSQL and serves as before.

The move needs a PostgreSQL server, which the suite has in its PostgreSQL
phase only (``CARNET_TEST_POSTGRES_DSN``): that test is defined there, and
asks for ``postgres_url`` so the phase keeps it.  The order of the copy
(foreign keys, cycles) is checked on its own, on SQLite, in both phases.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from node.cli import main
from node.datafolder import load_keys
from node.ops import pgmove
from node.ops.common import OpsError
from node.ops.pgmove import plan
from tests.multinode import classes as k
from tests.multinode.nodes import Node, _pg_execute, suite_database
from tests.multinode.waiting import wait_until
from tests.node.ops.school import log_in, node_keys, push_service, pushed_title, set_up_school


def test_copy_order_puts_references_first_and_defers_cycles() -> None:
    db = sqlite3.connect(":memory:")
    db.executescript(
        """
        CREATE TABLE peer (id INTEGER PRIMARY KEY, added_by INTEGER REFERENCES account (id));
        CREATE TABLE account (id INTEGER PRIMARY KEY, home INTEGER REFERENCES peer (id));
        CREATE TABLE message (id INTEGER PRIMARY KEY, author INTEGER NOT NULL REFERENCES account (id),
                              reply_to INTEGER REFERENCES message (id));
        CREATE TABLE schema_version (version INTEGER PRIMARY KEY);
        """
    )
    tables = plan(db)
    order = [t.name for t in tables]
    assert order.index("account") < order.index("message") and "schema_version" not in order
    deferred = {t.name: t.deferred for t in tables}
    # one side of the cycle waits; a table naming its own rows always does
    assert sorted([deferred["peer"], deferred["account"]]) == [[], ["added_by"]] or sorted(
        [deferred["peer"], deferred["account"]]
    ) == [[], ["home"]]
    assert deferred["message"] == ["reply_to"]


def test_a_required_reference_in_a_cycle_cannot_be_copied() -> None:
    db = sqlite3.connect(":memory:")
    db.executescript(
        """
        CREATE TABLE a (id INTEGER PRIMARY KEY, b INTEGER NOT NULL REFERENCES b (id));
        CREATE TABLE b (id INTEGER PRIMARY KEY, a INTEGER NOT NULL REFERENCES a (id));
        """
    )
    with pytest.raises(OpsError, match="required reference forms a cycle"):
        plan(db)


def test_a_sqlite_url_is_refused(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["migrate-to-postgres", "--data", str(data_dir), "--database-url", "sqlite:///x.db"]
    assert main(argv) == 2
    assert "must be a postgresql://" in capsys.readouterr().err


def _sqlite_counts(path: Path) -> dict[str, int]:
    db = sqlite3.connect(path)
    names = [
        r[0]
        for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    counts = {n: db.execute(f'SELECT COUNT(*) FROM "{n}"').fetchone()[0] for n in names}  # noqa: S608
    db.close()
    return counts


def _pg_counts(url: str, names: list[str]) -> dict[str, int]:
    import psycopg2

    connection = psycopg2.connect(url)
    try:
        with connection.cursor() as cursor:
            counts = {}
            for name in names:
                cursor.execute(f'SELECT COUNT(*) FROM "{name}"')  # noqa: S608
                counts[name] = cursor.fetchone()[0]
            return counts
    finally:
        connection.close()


if suite_database() == "postgresql":

    def test_a_sqlite_node_moves_to_postgresql_twice_and_serves_as_before(
        postgres_url: str,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        import psycopg2

        dsn = os.environ["CARNET_TEST_POSTGRES_DSN"].rstrip("/")
        target = f"{dsn}/carnet_ops_move_{os.getpid()}"
        _pg_execute(dsn, f'DROP DATABASE IF EXISTS "{target.rsplit("/", 1)[1]}"')
        _pg_execute(dsn, f'CREATE DATABASE "{target.rsplit("/", 1)[1]}"')
        try:
            with push_service() as push, Node("mv", tmp_path, database="sqlite") as node:
                node.start()
                school = set_up_school(node, push)
                k.post(school.school_class, "Sur SQLite")
                vapid = load_keys(node.data_dir).vapid_public_key
                signing = node_keys(node)
                argv = ["migrate-to-postgres", "--data", str(node.data_dir)]
                argv += ["--database-url", target]
                assert main(argv) == 2  # the node still runs
                assert "stop it first" in capsys.readouterr().err
                node.stop()

                before = _sqlite_counts(node.data_dir / "carnet.sqlite3")
                toml = (node.data_dir / "carnet.toml").read_text()
                tables = [n for n in before if n != "schema_version"]
                with monkeypatch.context() as patched:  # the connection drops half-way
                    copy = pgmove._copy_table

                    def failing(source: Any, cursor: Any, table: Any) -> Any:
                        if table.name == "message":
                            raise psycopg2.OperationalError("server closed the connection")
                        return copy(source, cursor, table)

                    patched.setattr(pgmove, "_copy_table", failing)
                    assert main(argv) == 2
                assert "the copy failed and was undone" in capsys.readouterr().err
                # undone whole: not even the tables copied before the failure kept their rows
                assert _pg_counts(target, ["account", "message"]) == {"account": 0, "message": 0}
                assert (node.data_dir / "carnet.toml").read_text() == toml

                assert main(argv) == 0
                assert "every table's count matches" in capsys.readouterr().out
                assert _pg_counts(target, tables) == {n: before[n] for n in tables}
                assert main(argv) == 0  # again, as after an interrupted or doubted run
                assert "Replaced the previous copy" in capsys.readouterr().out
                assert _pg_counts(target, tables) == {n: before[n] for n in tables}
                assert (node.data_dir / "carnet.toml.sqlite.bak").is_file()
                assert f'database_url = "{target}"' in (node.data_dir / "carnet.toml").read_text()

                node.set_config({"database_url": target})  # the harness rewrites carnet.toml
                node.start()
                assert node_keys(node) == signing
                guardian = log_in(node, school.phone)
                assert [s.text for s in k.read_feed(guardian)] == ["Sur SQLite"]
                seen = len(push.requests)
                post_id = k.post(school.school_class, "Sur PostgreSQL")  # new ids: sequences moved

                def pushed() -> bool:  # with the same VAPID key, to the same subscription
                    opened = [pushed_title(school, r, vapid) for r in push.requests[seen:]]
                    return any(post_id in json.dumps(payload) for payload in opened)

                wait_until(pushed, timeout=30, what="the push of the post made on PostgreSQL")
                node.stop()
                assert main(argv) == 2  # PostgreSQL now holds a post SQLite lacks
                assert "--replace" in capsys.readouterr().err
                assert _pg_counts(target, ["message"])["message"] == before["message"] + 1
                assert main([*argv, "--replace"]) == 0  # the operator means it
                assert _pg_counts(target, tables) == {n: before[n] for n in tables}
        finally:
            _pg_execute(dsn, f'DROP DATABASE IF EXISTS "{target.rsplit("/", 1)[1]}" WITH (FORCE)')
