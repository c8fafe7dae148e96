"""Database wiring: one peewee proxy, SQLite (WAL) or PostgreSQL, and write transactions.

Storage rule: modules under ``node.storage`` hold peewee models and the small
functions that read and write them.  They import nothing from quart, httpx,
``federation`` or ``web``.  Code on the event loop never calls them directly:
it goes through ``Storage.run`` (a thread pool), so a slow query or a
passphrase hash never blocks the loop that serves pages.

One node per process: the models are bound to the module-level proxy, which
``open_database`` initializes.  Multi-node tests run real processes.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar
from urllib.parse import unquote, urlsplit

import peewee
from playhouse.pool import PooledPostgresqlDatabase

#: The database every model is bound to; ``open_database`` initializes it.
database_proxy = peewee.DatabaseProxy()

P = ParamSpec("P")
T = TypeVar("T")

#: Per-connection SQLite settings.  ``synchronous=FULL`` makes every commit
#: durable (accounts, codes and, later, alerts must survive power loss);
#: ``busy_timeout`` lets writers queue instead of failing with "database is locked".
SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "synchronous": "full",
    "foreign_keys": 1,
    "busy_timeout": 5000,
}


def make_database(url: str) -> peewee.Database:
    """Build (without connecting) the peewee database for a ``sqlite://`` or ``postgresql://`` URL."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        # sqlite:///relative/file or sqlite:////absolute/file (SQLAlchemy's convention).
        if not url.startswith("sqlite:///") or len(url) == len("sqlite:///"):
            raise ValueError("a SQLite URL looks like sqlite:///path/to/carnet.sqlite3")
        path = unquote(url[len("sqlite:///") :])
        return peewee.SqliteDatabase(path, pragmas=SQLITE_PRAGMAS, check_same_thread=False)
    if parts.scheme in ("postgresql", "postgres"):
        # Pooled: ``connection_context`` then returns the connection to the pool
        # instead of paying a new PostgreSQL handshake on every storage call.
        return PooledPostgresqlDatabase(
            unquote(parts.path.lstrip("/")),
            max_connections=32,
            stale_timeout=300,
            user=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            host=parts.hostname,
            port=parts.port,
            # Keep a dropped server from hanging a worker thread forever.
            keepalives=1,
            keepalives_idle=30,
            connect_timeout=10,
        )
    raise ValueError(f"unsupported database URL scheme {parts.scheme!r}")


def is_sqlite(db: peewee.Database | None = None) -> bool:
    target = db if db is not None else database_proxy.obj
    return isinstance(target, peewee.SqliteDatabase)


#: One write transaction at a time per process on SQLite (reentrant: nested ones are
#: savepoints).  SQLite allows one writer anyway; without this, the storage threads
#: waiting for it poll in SQLite's busy handler (sleeps of up to 100 ms, first come not
#: first served), and under load one of them waited past ``busy_timeout`` while others
#: kept taking the lock: "database is locked" (``scripts/soak``).  Queued here, they
#: take turns; another process on the same file still queues through ``busy_timeout``.
_sqlite_writer = threading.RLock()
#: A turn that does not come in this long is an error, not a hang (a stuck transaction).
SQLITE_TURN_SECONDS = 60.0


@contextmanager
def write_transaction() -> Iterator[None]:
    """A transaction that intends to write.

    On SQLite it starts with ``BEGIN IMMEDIATE`` so that a transaction that
    reads and then writes cannot fail with SQLITE_BUSY half-way (the classic
    WAL footgun), once this process's other writers are done; PostgreSQL
    needs nothing special.
    """
    db = database_proxy.obj
    if is_sqlite(db):
        if not _sqlite_writer.acquire(timeout=SQLITE_TURN_SECONDS):
            raise peewee.OperationalError(
                f"database is locked: no turn to write in {SQLITE_TURN_SECONDS:g} s"
            )
        try:
            with db.atomic("IMMEDIATE"):
                yield
        finally:
            _sqlite_writer.release()
    else:
        with db.atomic():
            yield


@functools.lru_cache(maxsize=64)
def _insert_rows_sql(
    database: int, model: type[peewee.Model], fields: tuple[str, ...], n: int
) -> str:
    shape = [tuple(0 for _ in fields)] * n
    columns = [getattr(model, name) for name in fields]
    sql: str = model.insert_many(shape, fields=columns).sql()[0]
    return sql


def insert_rows(
    model: type[peewee.Model],
    fields: tuple[str, ...],
    rows: list[tuple[Any, ...]],
    chunk: int = 400,
) -> None:
    """INSERT many rows of plain values (ints, text, None: what the driver takes as is).

    The statement for a chunk size is built once: peewee spends ~0.15 ms per
    row turning values into SQL, which for the thousands of rows an alert
    writes would be most of the time of the request that sends it.
    """
    db = database_proxy.obj
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        sql = _insert_rows_sql(id(db), model, fields, len(part))
        db.execute_sql(sql, [value for row in part for value in row])


def locked(query: Any, lock: bool = True, of: Any = None) -> Any:
    """``SELECT … FOR UPDATE`` on PostgreSQL, so concurrent requests on one row queue.

    SQLite needs nothing: a write transaction there (``BEGIN IMMEDIATE``)
    already holds the whole database, and it has no ``FOR UPDATE``.
    """
    if not lock or is_sqlite():
        return query
    return query.for_update(of=of) if of is not None else query.for_update()


class Storage:
    """Runs synchronous storage work off the event loop, in a pool of threads.

    ``run`` copies the caller's context variables into the worker thread (as
    Quart's ``run_sync`` does).  Connections:

    * PostgreSQL: one from peewee's pool per call, returned after it;
    * SQLite: one per thread, kept open until ``close``.  Opening and closing
      a connection per call would be cheap, but when the last connection to a
      WAL database closes SQLite checkpoints the whole log into the database
      file and deletes it, with ``synchronous=FULL`` fsyncs, so an idle node
      paid a checkpoint on every write and every read re-applied the pragmas.
    """

    def __init__(self, db: peewee.Database, threads: int) -> None:
        self.db = db
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="carnet-db")
        self._keep_open = is_sqlite(db)
        #: SQLite connections opened by any thread, closed together by ``close``
        self._opened: list[Any] = []
        self._opened_lock = threading.Lock()

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        ctx = contextvars.copy_context()
        call = functools.partial(ctx.run, self._call, fn, *args, **kwargs)  # type: ignore[arg-type]
        result: T = await loop.run_in_executor(self._executor, call)
        return result

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if not self._keep_open:
            with self.db.connection_context():
                return fn(*args, **kwargs)
        if self.db.is_closed():  # peewee keeps one connection state per thread
            self.db.connect()
            with self._opened_lock:
                self._opened.append(self.db.connection())
        return fn(*args, **kwargs)

    def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """The synchronous twin of ``run`` for the CLI and scripts."""
        return self._call(fn, *args, **kwargs)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        if isinstance(self.db, PooledPostgresqlDatabase):
            self.db.close_all()
            return
        if not self.db.is_closed():
            self.db.close()
        # the pool's threads have ended; their connections are closed from here
        # (opened with check_same_thread=False), the last one checkpointing the WAL
        with self._opened_lock:
            opened, self._opened = self._opened, []
        for connection in opened:
            connection.close()


def ping() -> bool:
    """One round trip to the database; raises when it is unreachable."""
    row = database_proxy.obj.execute_sql("SELECT 1").fetchone()
    return bool(row and row[0] == 1)


def open_database(url: str) -> peewee.Database:
    """Create the database for ``url`` and bind every model to it."""
    db = make_database(url)
    database_proxy.initialize(db)
    return db


class BaseModel(peewee.Model):
    """Every model lives in the node's one database."""

    # peewee creates these at class creation; declared so type checkers know them.
    id: int

    class Meta:
        database = database_proxy
        legacy_table_names = False
