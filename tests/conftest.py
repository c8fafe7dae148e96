"""Shared fixtures: a fresh node per test, on SQLite or on PostgreSQL.

The backend is chosen by ``CARNET_TEST_DB`` (``sqlite``, the default, or
``postgresql``); with PostgreSQL, ``CARNET_TEST_POSTGRES_DSN`` names a server
where each xdist worker gets its own database, emptied between tests.
``scripts/test`` starts a throwaway cluster and runs the suite on both.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import peewee
import pytest
from quart import Quart
from quart.testing.app import TestApp
from quart.typing import TestClientProtocol as Client

from node.app import create_app
from node.datafolder import create_keys
from node.services.context import ServiceContext
from node.storage.db import Storage

PUBLIC_URL = "http://127.0.0.1:8000"


def backend() -> str:
    return os.environ.get("CARNET_TEST_DB", "sqlite")


#: tests that reach the database without the ``postgres_url`` fixture: the migrations'
#: own fresh databases, and real nodes started on the suite's backend
_DATABASE_BY_PATH = ("tests/multinode/", "tests/node/test_migrations.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On PostgreSQL, run only the tests that touch the database; on SQLite, not PostgreSQL's own.

    The others (protocol cores, the crypto suite, pure helpers) have nothing to
    learn from a second engine; ``scripts/test`` runs them once, on SQLite.
    Tests marked ``postgresql_only`` (several processes on one database, a
    move to PostgreSQL) run in the PostgreSQL phase.
    """
    if backend() != "postgresql":
        only_pg = [item for item in items if item.get_closest_marker("postgresql_only")]
        if only_pg:
            config.hook.pytest_deselected(items=only_pg)
            items[:] = [item for item in items if item not in only_pg]
        return
    keep, drop = [], []
    for item in items:
        touches = "postgres_url" in getattr(item, "fixturenames", ()) or item.nodeid.startswith(
            _DATABASE_BY_PATH
        )
        (keep if touches else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def postgres_url(worker_id: str) -> Iterator[str | None]:
    """One database per xdist worker on the test cluster, created once."""
    if backend() != "postgresql":
        yield None
        return
    dsn = os.environ["CARNET_TEST_POSTGRES_DSN"].rstrip("/")
    name = f"carnet_test_{worker_id}".replace("-", "_")
    admin = peewee.PostgresqlDatabase("postgres", **_pg_params(dsn))
    admin.connect()
    admin.connection().autocommit = True
    admin.execute_sql(f'DROP DATABASE IF EXISTS "{name}"')
    admin.execute_sql(f'CREATE DATABASE "{name}"')
    admin.close()
    yield f"{dsn}/{name}"


def _pg_params(dsn: str) -> dict[str, Any]:
    from urllib.parse import urlsplit

    parts = urlsplit(dsn)
    return {
        "user": parts.username,
        "password": parts.password,
        "host": parts.hostname,
        "port": parts.port,
    }


def _empty_postgres(url: str) -> None:
    db = peewee.PostgresqlDatabase(url.rsplit("/", 1)[1], **_pg_params(url.rsplit("/", 1)[0]))
    with db.connection_context():
        tables = [t for t in db.get_tables() if t != "schema_version"]
        if not tables:
            return
        # What TRUNCATE ... RESTART IDENTITY does, ten times faster on the few rows a
        # test leaves (TRUNCATE makes new files for all 58 tables: 0.12 s a test):
        # DELETE with foreign-key triggers off (the test cluster's superuser may),
        # then the tables' own sequences back to 1.
        with db.atomic():
            db.execute_sql("SET LOCAL session_replication_role = replica")
            db.execute_sql("; ".join(f'DELETE FROM "{t}"' for t in tables))
            db.execute_sql(
                "SELECT setval(s.oid, 1, false) FROM pg_class s"
                " JOIN pg_depend d ON d.objid = s.oid AND d.deptype = 'a'"
                " JOIN pg_class t ON t.oid = d.refobjid"
                " WHERE s.relkind = 'S' AND t.relname = ANY(%s)",
                (tables,),
            )


def pytest_configure(config: pytest.Config) -> None:
    _share_route_builders()
    _memoize_password_hashing()


def _memoize_password_hashing() -> None:
    """Compute each slow password hash once per test process.

    The node hashes every login secret with Argon2id and a browser derives it
    with PBKDF2 at 600,000 rounds, with the production settings the node
    enforces (about 60 ms and 250 ms).  The factories reuse one client account
    per login (``tests/factories.py``), so each test pays again for the same
    inputs: a third of a service test's time.  Both functions are pure for
    given inputs (Argon2id's salt aside, and any of its salts is valid), so a
    memo changes no result.  Checking a secret is not memoized: a wrong
    passphrase still fails as it would, and PBKDF2's known-answer vectors
    (``tests/node/e2e/test_e2e_vectors.py``) are computed.
    """
    import functools

    import nacl.pwhash

    from node.e2e import primitives

    primitives.pbkdf2_sha256 = functools.lru_cache(maxsize=4096)(primitives.pbkdf2_sha256)  # type: ignore[assignment]
    nacl.pwhash.argon2id.str = functools.lru_cache(maxsize=4096)(nacl.pwhash.argon2id.str)  # type: ignore[assignment]


def _share_route_builders() -> None:
    """Compile each distinct URL builder once per test process instead of once per app.

    Werkzeug compiles two Python functions for every route of every app it
    binds: about half of ``create_app``'s time, and the suite makes an app per
    test.  The compiled function depends only on the rule's parsed parts and
    defaults (it reads its converters from the rule it is bound to), so a
    function compiled for one app's rule serves the same rule in the next app.
    """
    from werkzeug.routing.rules import Rule

    original = Rule._compile_builder
    if getattr(original, "carnet_shared", False):
        return
    compiled: dict[Any, Any] = {}

    def shared(self: Rule, append_unknown: bool = True) -> Any:
        key = (tuple(self._trace), repr(sorted((self.defaults or {}).items())), append_unknown)
        builder = compiled.get(key)
        if builder is None:
            builder = compiled[key] = original(self, append_unknown)
        return builder

    shared.carnet_shared = True  # type: ignore[attr-defined]
    Rule._compile_builder = shared  # type: ignore[method-assign]


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty database at the latest schema, copied for each test (migrating is 40 ms)."""
    from node.storage.db import open_database
    from node.storage.migrations import migrate

    path = tmp_path_factory.mktemp("template") / "carnet.sqlite3"
    db = open_database(f"sqlite:///{path}")
    with db.connection_context():
        migrate(db)
    db.close()
    return path


@pytest.fixture
def data_dir(tmp_path: Path, migrated_sqlite: Path) -> Path:
    folder = tmp_path / "node"
    create_keys(folder)
    if backend() == "sqlite":
        shutil.copyfile(migrated_sqlite, folder / "carnet.sqlite3")
    return folder


@pytest.fixture
def node_config(data_dir: Path, postgres_url: str | None) -> dict[str, Any]:
    config: dict[str, Any] = {
        "data_dir": str(data_dir),
        "public_url": PUBLIC_URL,
        "school_name": "École des Tests",
        "default_locale": "en",
    }
    if postgres_url:
        _empty_postgres(postgres_url)
        config["database_url"] = postgres_url
    return config


@pytest.fixture
async def app(node_config: dict[str, Any]) -> AsyncIterator[Quart]:
    application = create_app(node_config)
    # Quart gives starting and stopping 6 s each; on the shared 2-core CI machine a
    # node stopping its workers and closing its database connections can take longer
    async with TestApp(application, startup_timeout=30, shutdown_timeout=30):
        # No anti-entropy pass: it pulls every followed stream 3 s after start-up,
        # a request to a (mocked) peer that a slow test had not planned for.  The
        # pass is tested on its own (tests/federation/runtime/test_inbox.py).
        for task in application.extensions["carnet_anti_entropy"]:
            task.cancel()
        yield application


@pytest.fixture
def client(app: Quart) -> Client:
    return app.test_client()


@pytest.fixture
def ctx(app: Quart) -> ServiceContext:
    context: ServiceContext = app.config["CARNET_CTX"]
    return context


@pytest.fixture
def storage(app: Quart) -> Storage:
    store: Storage = app.config["CARNET_STORAGE"]
    return store
