"""``carnet migrate-to-postgres``: move a stopped SQLite node to PostgreSQL.

Rules:

* The node must be stopped (nothing answers on its bind address), and the
  SQLite database is read in one read transaction: the copy is one state.
* The target gets Carnet's schema from the migrations (as ``carnet serve``
  would make it), then every table is copied in foreign-key order, in
  batches, **inside one PostgreSQL transaction** that first empties the
  target's tables: an interrupted run leaves the target as it was, and a
  second run replaces what a first run copied.  The counts of rows are
  compared table by table before committing; sequences are set past the
  highest ids, so new rows get fresh ids.
* A target that holds *other* data than this SQLite database (a node has
  used it since) is refused unless ``replace`` is given: the copy would
  erase it.
* Only then is ``carnet.toml`` pointed at PostgreSQL; the old file is kept
  as ``carnet.toml.sqlite.bak`` and the SQLite database is left untouched
  (moving back is restoring that toml).
* Table and column names in the SQL come from the SQLite file's own
  schema (``sqlite_master``, checked against PostgreSQL's columns) and are
  quoted; every value is a query parameter.
* Foreign keys that form a cycle (an account's home school and the school
  that added it name each other) are copied as NULL, then set once every
  row exists; the same for a table naming its own rows.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from node.config import dump_toml, load_config
from node.ops.common import (
    OpsError,
    is_postgres,
    node_answers,
    pg_connect,
    pg_tables,
    redacted,
    sqlite_path,
)
from node.storage.db import make_database
from node.storage.migrations import migrate

#: Rows sent to PostgreSQL per INSERT statement.
BATCH = 500
TOML_BACKUP = "carnet.toml.sqlite.bak"


@dataclass(frozen=True)
class Table:
    name: str
    columns: list[str]
    keys: list[str]  # primary key columns, to set the deferred foreign keys afterwards
    #: foreign-key columns copied as NULL first, set once every table is copied
    deferred: list[str]


@dataclass(frozen=True)
class MoveResult:
    counts: dict[str, int]
    replaced: bool
    toml_backup: Path


def _sqlite_tables(source: sqlite3.Connection) -> list[str]:
    rows = source.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        " AND name != 'schema_version' ORDER BY name"
    ).fetchall()
    return [row[0] for row in rows]


def plan(source: sqlite3.Connection) -> list[Table]:
    """The tables in an order where each row's foreign keys are already copied.

    When only a cycle remains, the table with the fewest unmet references goes
    next and those references are deferred (they must be nullable, as they are).
    """
    names = _sqlite_tables(source)
    info = {n: source.execute(f"PRAGMA table_info('{n}')").fetchall() for n in names}
    refs: dict[str, dict[str, str]] = {}
    for name in names:
        refs[name] = {
            row[3]: row[2] for row in source.execute(f"PRAGMA foreign_key_list('{name}')")
        }
    done: list[Table] = []
    placed: set[str] = set()
    while len(placed) < len(names):
        waiting = [n for n in names if n not in placed]

        def unmet(n: str) -> list[str]:
            return [col for col, to in refs[n].items() if to not in placed or to == n]

        ready = [n for n in waiting if not [c for c in unmet(n) if refs[n][c] != n]]
        name = ready[0] if ready else min(waiting, key=lambda n: len(unmet(n)))
        deferred = sorted(unmet(name))
        notnull = {row[1] for row in info[name] if row[3]}
        if set(deferred) & notnull:
            raise OpsError(f"cannot order the copy of {name}: a required reference forms a cycle")
        columns = [row[1] for row in info[name]]
        keys = [row[1] for row in sorted(info[name], key=lambda r: r[5]) if row[5]]
        if deferred and not keys:
            raise OpsError(f"cannot copy {name}: it has no primary key to finish its references")
        done.append(Table(name, columns, keys, deferred))
        placed.add(name)
    return done


def _pg_column_types(cursor: Any, table: str) -> dict[str, str]:
    cursor.execute(
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = %s",
        (table,),
    )
    return {name: kind for name, kind in cursor.fetchall()}


def _converter(kind: str) -> Callable[[Any], Any] | None:
    """SQLite stores booleans as 0/1 and blobs as bytes; PostgreSQL wants its own types."""
    if kind == "boolean":
        return lambda v: None if v is None else bool(v)
    if kind == "bytea":
        return lambda v: None if v is None else (v.encode() if isinstance(v, str) else bytes(v))
    return None


def _count(cursor: Any, table: str) -> int:
    cursor.execute(f'SELECT COUNT(*) FROM "{table}"')  # noqa: S608
    return int(cursor.fetchone()[0])


def _target_differs(cursor: Any, tables: list[Table], counts: dict[str, int]) -> str | None:
    """Why the target's data is not a previous copy of this database (None when it is)."""
    for table in tables:
        there = _count(cursor, table.name)
        if there and there != counts[table.name]:
            return f"{table.name} has {there} rows there, {counts[table.name]} here"
    return None


def _copy_table(source: sqlite3.Connection, cursor: Any, table: Table) -> list[tuple[Any, ...]]:
    """Insert every row (deferred references as NULL); the (keys…, references…) to set later."""
    from psycopg2.extras import execute_values

    types = _pg_column_types(cursor, table.name)
    missing = [c for c in table.columns if c not in types]
    if missing:
        raise OpsError(
            f"the PostgreSQL table {table.name} has no column {missing[0]}: both databases must "
            "be at the same schema version"
        )
    convert = [_converter(types[c]) for c in table.columns]
    deferred_at = [table.columns.index(c) for c in table.deferred]
    key_at = [table.columns.index(c) for c in table.keys]
    later: list[tuple[Any, ...]] = []
    column_list = ", ".join(f'"{c}"' for c in table.columns)
    statement = f'INSERT INTO "{table.name}" ({column_list}) VALUES %s'  # noqa: S608
    rows = source.execute(f'SELECT {column_list} FROM "{table.name}"')  # noqa: S608
    while batch := rows.fetchmany(BATCH):
        values = []
        for row in batch:
            out = [v if f is None else f(v) for v, f in zip(row, convert, strict=True)]
            if deferred_at:
                refs = tuple(out[i] for i in deferred_at)
                if any(r is not None for r in refs):
                    later.append(tuple(out[i] for i in key_at) + refs)
                for i in deferred_at:
                    out[i] = None
            values.append(tuple(out))
        execute_values(cursor, statement, values, page_size=BATCH)
    return later


def _finish_references(cursor: Any, table: Table, later: list[tuple[Any, ...]]) -> None:
    from psycopg2.extras import execute_batch

    sets = ", ".join(f'"{c}" = %s' for c in table.deferred)
    where = " AND ".join(f'"{c}" = %s' for c in table.keys)
    width = len(table.keys)
    params = [row[width:] + row[:width] for row in later]
    execute_batch(
        cursor,
        f'UPDATE "{table.name}" SET {sets} WHERE {where}',  # noqa: S608
        params,
        page_size=BATCH,
    )


def _reset_sequences(cursor: Any, tables: list[Table]) -> None:
    for table in tables:
        if "id" not in table.columns:
            continue
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", (f'"{table.name}"',))
        sequence = cursor.fetchone()[0]
        if sequence:
            cursor.execute(
                f'SELECT setval(%s, COALESCE(MAX(id), 1), MAX(id) IS NOT NULL) FROM "{table.name}"',  # noqa: S608
                (sequence,),
            )


def _prepare_target(url: str) -> None:
    """Create Carnet's schema in the target (the migrations, as ``carnet serve`` does)."""
    db = make_database(url)
    try:
        with db.connection_context():
            migrate(db)
    except Exception as error:  # peewee/psycopg2: unreachable, or no right to create tables
        raise OpsError(f"cannot prepare {redacted(url)}: {str(error).strip()[:300]}") from None
    finally:
        if hasattr(db, "close_all"):
            db.close_all()


def move_to_postgres(data_dir: Path, url: str, *, replace: bool = False) -> MoveResult:
    """Copy the node's SQLite database into ``url`` and point ``carnet.toml`` at it."""
    if not is_postgres(url):
        raise OpsError("--database-url must be a postgresql://user:password@host/database URL")
    config = load_config({"data_dir": str(data_dir), "database_url": ""})
    if node_answers(config.bind):
        raise OpsError(
            f"a node answers on {config.bind}: stop it first (systemctl stop carnet); "
            "a copy taken while it writes would lose what it writes"
        )
    source_path = sqlite_path(config.resolved_database_url)
    if not source_path.is_file():
        raise OpsError(f"{source_path} does not exist: there is no SQLite database to move")
    # bring the SQLite database to this release's schema, as the target will be
    source_db = make_database(config.resolved_database_url)
    with source_db.connection_context():
        migrate(source_db)
    _prepare_target(url)
    source = sqlite3.connect(source_path, timeout=30.0)
    source.isolation_level = None
    target = pg_connect(url)
    try:
        source.execute("BEGIN")  # one read transaction: one consistent state of the node
        tables = plan(source)
        counts = {
            t.name: int(source.execute(f'SELECT COUNT(*) FROM "{t.name}"').fetchone()[0])  # noqa: S608
            for t in tables
        }
        with target, target.cursor() as cursor:  # one transaction: committed whole or not at all
            extra = sorted(set(pg_tables(target)) - {t.name for t in tables} - {"schema_version"})
            if extra:
                raise OpsError(
                    f"{redacted(url)} has tables Carnet does not know ({extra[0]}): refused"
                )
            differs = _target_differs(cursor, tables, counts)
            if differs and not replace:
                raise OpsError(
                    f"{redacted(url)} already holds other data ({differs}): a node has used it. "
                    "Add --replace to erase it with this SQLite database's content"
                )
            replaced = any(_count(cursor, t.name) for t in tables)
            names = ", ".join(f'"{t.name}"' for t in tables)
            cursor.execute(f"TRUNCATE {names} RESTART IDENTITY")
            pending = [(t, _copy_table(source, cursor, t)) for t in tables]
            for table, later in pending:
                if later:
                    _finish_references(cursor, table, later)
            _reset_sequences(cursor, tables)
            for table in tables:
                copied = _count(cursor, table.name)
                if copied != counts[table.name]:
                    raise OpsError(
                        f"{table.name}: {copied} rows copied instead of {counts[table.name]}; "
                        "nothing was changed"
                    )
    except OpsError:
        raise
    except Exception as error:  # psycopg2.Error: a value PostgreSQL refused, a lost connection
        raise OpsError(f"the copy failed and was undone: {str(error).strip()[:500]}") from None
    finally:
        source.close()
        target.close()
    toml_backup = _point_config_at(config.data_dir, url)
    return MoveResult(counts, replaced, toml_backup)


def _point_config_at(folder: Path, url: str) -> Path:
    config_file = folder / "carnet.toml"
    backup = folder / TOML_BACKUP
    values: dict[str, Any] = {}
    if config_file.is_file():
        values = tomllib.loads(config_file.read_text(encoding="utf-8"))
        if not backup.exists() or not is_postgres(str(values.get("database_url", ""))):
            shutil.copy2(config_file, backup)  # the SQLite-era file, kept once
    values["database_url"] = url
    config_file.write_text(dump_toml(values), encoding="utf-8")
    os.chmod(config_file, 0o600)  # it holds the database password now
    return backup
