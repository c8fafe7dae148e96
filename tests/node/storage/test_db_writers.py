"""SQLite write transactions of one process take turns instead of racing in SQLite's busy handler."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import peewee

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
