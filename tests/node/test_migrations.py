"""Schema migrations: applied once, in order, atomically, and matching the peewee models.

Runs on the backend chosen by ``CARNET_TEST_DB``: a fresh SQLite file, or a
fresh database on the PostgreSQL test cluster (``CARNET_TEST_POSTGRES_DSN``).
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import peewee
import pytest

import node.storage
import node.storage.accounts
import node.storage.directory
import node.storage.onboarding
from node.storage import migrations
from node.storage.db import BaseModel, open_database
from node.storage.migrations import Migration, available_migrations, current_version, migrate

VERSION_TABLE = "schema_version"


def _postgres_admin(dsn: str) -> peewee.PostgresqlDatabase:
    parts = urlsplit(dsn)
    return peewee.PostgresqlDatabase(
        "postgres",
        user=parts.username,
        password=parts.password,
        host=parts.hostname,
        port=parts.port,
    )


@pytest.fixture
def empty_db(tmp_path: Path) -> Iterator[peewee.Database]:
    """A connected database with nothing in it, bound to the models."""
    if os.environ.get("CARNET_TEST_DB", "sqlite") != "postgresql":
        db = open_database(f"sqlite:///{tmp_path / 'empty.sqlite3'}")
        with db.connection_context():
            yield db
        return
    dsn = os.environ["CARNET_TEST_POSTGRES_DSN"].rstrip("/")
    name = f"carnet_migrations_{uuid.uuid4().hex[:12]}"
    admin = _postgres_admin(dsn)
    admin.connect()
    admin.connection().autocommit = True
    admin.execute_sql(f'CREATE DATABASE "{name}"')
    try:
        db = open_database(f"{dsn}/{name}")
        with db.connection_context():
            yield db
        # The node pools PostgreSQL connections: close them all before DROP DATABASE.
        db.close_all()
    finally:
        admin.execute_sql(f'DROP DATABASE IF EXISTS "{name}"')
        admin.close()


def _app_tables(db: peewee.Database) -> set[str]:
    return {t for t in db.get_tables() if t != VERSION_TABLE and not t.startswith("sqlite_")}


def _all_models() -> list[type[BaseModel]]:
    """Every peewee model of the node: those of each ``node.storage`` module."""
    for module in pkgutil.iter_modules(node.storage.__path__, "node.storage."):
        importlib.import_module(module.name)
    found: list[type[BaseModel]] = []
    pending = list(BaseModel.__subclasses__())
    while pending:
        model = pending.pop()
        pending.extend(model.__subclasses__())
        if model.__module__.startswith("node.storage."):
            found.append(model)
    return sorted(found, key=lambda m: m._meta.table_name)


def test_migrations_are_numbered_without_gaps() -> None:
    found = available_migrations()
    assert found, "at least the initial migration ships"
    assert [m.version for m in found] == list(range(1, len(found) + 1))
    assert all(m.sql.strip() for m in found)


def test_migrate_creates_the_schema_on_an_empty_database(empty_db: peewee.Database) -> None:
    assert _app_tables(empty_db) == set()
    assert current_version(empty_db) == 0
    latest = len(available_migrations())

    applied = migrate(empty_db)

    assert applied == list(range(1, latest + 1))
    assert current_version(empty_db) == latest
    rows = empty_db.execute_sql(
        f"SELECT version, name, applied_at FROM {VERSION_TABLE} ORDER BY version"
    ).fetchall()
    assert [r[0] for r in rows] == list(range(1, latest + 1))
    assert [r[1] for r in rows] == [m.name for m in available_migrations()]
    assert all(r[2] is not None for r in rows)
    for model in (
        node.storage.accounts.Account,
        node.storage.directory.Child,
        node.storage.onboarding.SmsMessage,
    ):
        assert model._meta.table_name in _app_tables(empty_db)


def test_migrate_twice_applies_nothing_the_second_time(empty_db: peewee.Database) -> None:
    first = migrate(empty_db)
    tables = _app_tables(empty_db)

    assert migrate(empty_db) == []

    assert _app_tables(empty_db) == tables
    count = empty_db.execute_sql(f"SELECT COUNT(*) FROM {VERSION_TABLE}").fetchone()[0]
    assert count == len(first)


def test_migrate_stops_at_the_target_version(empty_db: peewee.Database) -> None:
    assert migrate(empty_db, target=0) == []
    assert current_version(empty_db) == 0
    assert _app_tables(empty_db) == set()


def test_refuses_a_database_newer_than_the_code(empty_db: peewee.Database) -> None:
    migrate(empty_db)
    future = len(available_migrations()) + 1
    empty_db.execute_sql(
        f"INSERT INTO {VERSION_TABLE} (version, name, applied_at) "
        f"VALUES ({empty_db.param}, {empty_db.param}, CURRENT_TIMESTAMP)",
        (future, "from_the_future"),
    )
    with pytest.raises(RuntimeError, match=rf"schema version {future}, newer"):
        migrate(empty_db)
    assert current_version(empty_db) == future


def test_a_failing_migration_leaves_the_previous_version(
    empty_db: peewee.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = available_migrations()
    broken = Migration(
        len(real) + 1,
        "broken",
        "CREATE TABLE half_done (id {pk});\nINSERT INTO no_such_table VALUES (1);",
    )
    monkeypatch.setattr(migrations, "available_migrations", lambda: [*real, broken])

    with pytest.raises(peewee.DatabaseError):
        migrate(empty_db)

    assert current_version(empty_db) == len(real)
    assert "half_done" not in empty_db.get_tables()


def test_every_model_matches_its_migrated_table(empty_db: peewee.Database) -> None:
    migrate(empty_db)
    _assert_models_match(empty_db)


def _assert_models_match(db: peewee.Database) -> None:
    tables = _app_tables(db)
    models = _all_models()
    names = {m.__name__ for m in models}
    assert {"Account", "Session", "SetupLink", "SchoolClass", "Child"} <= names
    assert {"GuardianInvitation", "Guardianship", "LoginAttempt", "SmsMessage"} <= names

    for model in models:
        table = model._meta.table_name
        assert table in tables, f"{model.__name__}: no table {table!r} after migrating"
        columns = {c.name: c for c in db.get_columns(table)}
        fields = {f.column_name: f for f in model._meta.sorted_fields}
        assert set(fields) == set(columns), (
            f"{model.__name__} ({table}): only in the model {sorted(set(fields) - set(columns))}, "
            f"only in the table {sorted(set(columns) - set(fields))}"
        )
        for name, field in fields.items():
            if field.primary_key:
                continue
            assert columns[name].null == field.null, (
                f"{model.__name__}.{field.name}: the model says null={field.null}, "
                f"the table says null={columns[name].null}"
            )


def test_an_engine_marked_statement_runs_on_that_engine_only() -> None:
    script = (
        "CREATE TABLE a (id {pk});\n/*postgresql*/ ALTER TABLE a ADD x INT;\n/*sqlite*/ SELECT 1"
    )
    sqlite = migrations.dialect_sql(script, peewee.SqliteDatabase(":memory:"))
    postgres = migrations.dialect_sql(script, peewee.PostgresqlDatabase("unused"))
    assert sqlite == ["CREATE TABLE a (id INTEGER PRIMARY KEY AUTOINCREMENT)", "SELECT 1"]
    assert postgres == ["CREATE TABLE a (id BIGSERIAL PRIMARY KEY)", "ALTER TABLE a ADD x INT"]


# -- upgrades: from every schema version to the latest ------------------------------------


def _drop_everything(db: peewee.Database) -> None:
    if isinstance(db, peewee.SqliteDatabase):
        db.execute_sql("PRAGMA foreign_keys = OFF")
        for table in db.get_tables():
            if not table.startswith("sqlite_"):
                db.execute_sql(f'DROP TABLE "{table}"')
        db.execute_sql("PRAGMA foreign_keys = ON")
    else:
        db.execute_sql("DROP SCHEMA public CASCADE")
        db.execute_sql("CREATE SCHEMA public")
    assert _app_tables(db) == set() and VERSION_TABLE not in db.get_tables()


def test_a_node_at_any_older_schema_upgrades_to_one_the_code_reads(
    empty_db: peewee.Database,
) -> None:
    """An operator upgrading from any earlier version gets the schema the models expect."""
    latest = len(available_migrations())
    for start in range(1, latest):
        _drop_everything(empty_db)
        migrate(empty_db, target=start)
        assert current_version(empty_db) == start
        assert migrate(empty_db) == list(range(start + 1, latest + 1)), f"from {start}"
        _assert_models_match(empty_db)


V1_ROWS = [
    "INSERT INTO account (id, role, display_name, login, email, status, created_at)"
    " VALUES (1, 'teacher', 'Mme Dubois', 'dubois@ecole.test', 'dubois@ecole.test', 'active',"
    " '2025-09-01 08:00:00')",
    "INSERT INTO account (id, role, display_name, login, phone, status, created_at)"
    " VALUES (2, 'guardian', 'Parent Martin', '+33639980001', '+33639980001', 'active',"
    " '2025-09-02 18:00:00')",
    "INSERT INTO session (id, token_hash, account_id, created_at, last_seen_at, expires_at)"
    " VALUES (1, 'h1', 2, '2025-09-02 18:00:00', '2025-09-02 18:00:00', '2025-11-01 18:00:00')",
    "INSERT INTO school_class (id, name, school_year, teacher_id, created_at)"
    " VALUES (1, 'CE1 B', '2025-2026', 1, '2025-09-01 08:00:00')",
    "INSERT INTO child (id, class_id, first_name, last_name, created_at)"
    " VALUES (1, 1, 'Léa', 'Martin', '2025-09-01 08:05:00')",
    "INSERT INTO guardian_invitation (id, child_id, issued_by_id, display_name, phone,"
    " created_at, used_at, account_id) VALUES (1, 1, 1, 'Parent Martin', '+33639980001',"
    " '2025-09-01 08:06:00', '2025-09-02 18:00:00', 2)",
    "INSERT INTO guardianship (id, child_id, account_id, invitation_id, created_at)"
    " VALUES (1, 1, 2, 1, '2025-09-02 18:00:00')",
]


def test_a_school_s_data_from_the_first_schema_survives_every_upgrade(
    empty_db: peewee.Database,
) -> None:
    """One version at a time, as successive releases would: nothing stored is lost."""
    migrate(empty_db, target=1)
    with empty_db.atomic():
        for statement in V1_ROWS:
            empty_db.execute_sql(statement)
    if not isinstance(empty_db, peewee.SqliteDatabase):  # rows were given their ids
        for table in ("account", "session", "school_class", "child", "guardian_invitation"):
            empty_db.execute_sql(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), 10)")
    for version in range(2, len(available_migrations()) + 1):
        assert migrate(empty_db, target=version) == [version]
        counts = [
            empty_db.execute_sql(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("account", "session", "school_class", "child", "guardianship")
        ]
        assert counts == [2, 1, 1, 1, 1], f"after migration {version}"
    # the code of the latest version reads them through its models
    from node.storage.accounts import Account
    from node.storage.directory import Child, Guardianship

    with empty_db.bind_ctx([Account, Child, Guardianship]):
        guardian = Account.get(Account.login == "+33639980001")
        assert (guardian.role, guardian.display_name) == ("guardian", "Parent Martin")
        child = Child.get_by_id(1)
        assert (child.first_name, child.school_class.name) == ("Léa", "CE1 B")
        assert Guardianship.get(Guardianship.account == guardian).child_id == 1
        # and writes: a new account gets the next id
        made = Account.create(
            role="teacher", display_name="M. Petit", login="petit@ecole.test", status="active",
            created_at=child.created_at,
        )  # fmt: skip
        assert made.id > 2
