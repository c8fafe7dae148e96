"""SQLite write transactions of one process take turns instead of racing in SQLite's busy handler."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import peewee
import pytest

from node.storage import db as db_module
from node.storage.db import SQLITE_PRAGMAS, Storage, database_proxy, write_transaction

#: a write holding the lock this long, with writers allowed to wait a quarter of it
HOLD = 0.02
BUSY_MS = 5


def _slow_write(n: int) -> None:
    with write_transaction():
        database_proxy.obj.execute_sql("INSERT INTO t (n) VALUES (?)", (n,))
        time.sleep(HOLD)  # a transaction doing real work (checks, many rows, fsync)


def test_eight_threads_writing_slowly_never_see_database_is_locked(tmp_path: Path) -> None:
    # busy_timeout shorter than one transaction: any writer that waited on SQLite's
    # lock rather than on this process's queue would fail with "database is locked"
    db = peewee.SqliteDatabase(
        str(tmp_path / "carnet.sqlite3"),
        pragmas={**SQLITE_PRAGMAS, "busy_timeout": BUSY_MS},
        check_same_thread=False,
    )
    database_proxy.initialize(db)
    storage = Storage(db, 8)

    async def many() -> None:
        await storage.run(db.execute_sql, "CREATE TABLE t (n INTEGER)")
        await asyncio.gather(*(storage.run(_slow_write, i) for i in range(40)))

    try:
        asyncio.run(many())
        assert storage.call(lambda: db.execute_sql("SELECT count(*) FROM t").fetchone()) == (40,)
    finally:
        storage.close()


def test_a_nested_write_transaction_is_a_savepoint_of_the_same_turn(tmp_path: Path) -> None:
    db = peewee.SqliteDatabase(str(tmp_path / "carnet.sqlite3"), pragmas=SQLITE_PRAGMAS)
    database_proxy.initialize(db)
    with db.connection_context():
        db.execute_sql("CREATE TABLE t (n INTEGER)")
        with write_transaction():
            db.execute_sql("INSERT INTO t (n) VALUES (1)")
            try:
                with write_transaction():
                    db.execute_sql("INSERT INTO t (n) VALUES (2)")
                    raise RuntimeError("undo the inner one only")
            except RuntimeError:
                pass
        assert db.execute_sql("SELECT n FROM t").fetchall() == [(1,)]


def test_a_writer_whose_turn_never_comes_fails_instead_of_hanging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = peewee.SqliteDatabase(
        str(tmp_path / "carnet.sqlite3"), pragmas=SQLITE_PRAGMAS, check_same_thread=False
    )
    database_proxy.initialize(db)
    monkeypatch.setattr(db_module, "SQLITE_TURN_SECONDS", 0.05)
    holding, done = threading.Event(), threading.Event()

    def stuck() -> None:  # a transaction that does not end (a bug elsewhere)
        with db.connection_context(), write_transaction():
            holding.set()
            done.wait(5)

    other = threading.Thread(target=stuck)
    other.start()
    try:
        assert holding.wait(5)
        with db.connection_context(), pytest.raises(peewee.OperationalError, match="no turn"):
            with write_transaction():
                pass
    finally:
        done.set()
        other.join()
