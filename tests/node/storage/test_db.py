"""Storage wiring: SQLite connections live per thread until the node closes."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from node.storage.db import Storage, database_proxy, make_database, ping


def _storage(tmp_path: Path, threads: int = 2) -> tuple[Storage, Path]:
    path = tmp_path / "carnet.sqlite3"
    return Storage(make_database(f"sqlite:///{path}"), threads), path


def _write(n: int) -> None:
    database_proxy.obj.execute_sql("INSERT INTO t (n) VALUES (?)", (n,))


def test_sqlite_keeps_one_connection_per_thread_and_closes_them_all(tmp_path: Path) -> None:
    storage, path = _storage(tmp_path)
    database_proxy.initialize(storage.db)

    async def many() -> None:
        await storage.run(storage.db.execute_sql, "CREATE TABLE t (n INTEGER)")
        await asyncio.gather(*(storage.run(_write, i) for i in range(50)))

    asyncio.run(many())
    assert storage.call(ping)
    opened = list(storage._opened)
    # the pool's two threads and the caller's: never one per call
    assert 1 <= len(opened) <= 3
    # while the node runs, the write-ahead log stays (no checkpoint on every call)
    assert path.with_name(path.name + "-wal").exists()
    storage.close()
    for connection in opened:
        with pytest.raises(sqlite3.ProgrammingError):
            connection.execute("SELECT 1")
    # the last close checkpointed the log into the database file, which has every row
    assert not path.with_name(path.name + "-wal").exists()
    with sqlite3.connect(path) as check:
        assert check.execute("SELECT count(*) FROM t").fetchone() == (50,)
