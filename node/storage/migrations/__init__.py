"""Numbered schema migrations and the ``schema_version`` table.

Each migration is a file ``NNNN_name.sql`` in this folder, written once and
never edited after release.  The SQL is portable between SQLite and
PostgreSQL except for two placeholders (``{pk}``, ``{blob}``) that
``dialect_sql`` fills in, and statements marked ``/*postgresql*/`` or
``/*sqlite*/`` that run on that engine only.  Every migration runs in its own transaction
(both engines have transactional DDL) together with its ``schema_version``
row, so a crash leaves the database at the previous version, never between.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from importlib import resources

import peewee

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_DIALECT = {
    "sqlite": {"pk": "INTEGER PRIMARY KEY AUTOINCREMENT", "blob": "BLOB"},
    "postgresql": {"pk": "BIGSERIAL PRIMARY KEY", "blob": "BYTEA"},
}


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available_migrations() -> list[Migration]:
    """Every migration shipped with this release, in version order."""
    found = []
    for entry in resources.files(__package__).iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migrations must be numbered 1..N without gaps, found {versions}")
    return found


def dialect_sql(sql: str, db: peewee.Database) -> list[str]:
    """Fill the placeholders for ``db`` and split the script into statements."""
    kind = "sqlite" if isinstance(db, peewee.SqliteDatabase) else "postgresql"
    body = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    body = body.format(**_DIALECT[kind])
    statements = []
    for stmt in (s.strip() for s in body.split(";")):
        # ``/*postgresql*/ …`` or ``/*sqlite*/ …``: a statement for that engine only
        only = re.match(r"/\*(sqlite|postgresql)\*/\s*", stmt)
        if only:
            if only[1] != kind:
                continue
            stmt = stmt[only.end() :]
        if stmt:
            statements.append(stmt)
    return statements


def _ensure_version_table(db: peewee.Database) -> None:
    db.execute_sql(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " version INTEGER PRIMARY KEY, name VARCHAR(100) NOT NULL, applied_at TIMESTAMP NOT NULL)"
    )


def current_version(db: peewee.Database) -> int:
    """The highest applied migration, 0 for an empty database."""
    _ensure_version_table(db)
    row = db.execute_sql("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(db: peewee.Database, target: int | None = None) -> list[int]:
    """Apply every pending migration up to ``target`` (default: the latest).

    Returns the versions applied.  Refuses to run on a database newer than
    this release, which would mean an accidental downgrade.
    """
    migrations = available_migrations()
    latest = migrations[-1].version if migrations else 0
    target = latest if target is None else target
    applied: list[int] = []
    with db.atomic():
        version = current_version(db)
    if version > latest:
        raise RuntimeError(
            f"the database is at schema version {version}, newer than this Carnet "
            f"release knows ({latest}); install the newer release instead"
        )
    for migration in migrations:
        if migration.version <= version or migration.version > target:
            continue
        with db.atomic():
            for statement in dialect_sql(migration.sql, db):
                db.execute_sql(statement)
            db.execute_sql(
                "INSERT INTO schema_version (version, name, applied_at) VALUES (%s, %s, %s)"
                if not isinstance(db, peewee.SqliteDatabase)
                else "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, dt.datetime.now(dt.UTC).replace(tzinfo=None)),
            )
        applied.append(migration.version)
    return applied
