"""What the operator commands share: their error, the PostgreSQL tools and connections.

Rule of ``node.ops``: these modules run from the ``carnet`` command line,
beside or instead of ``carnet serve``, never inside it.  They work on the
data folder and the database as files and connections (``sqlite3``,
``psycopg2``, ``pg_dump``), not through the node's models, so that a backup
or a copy sees every table exactly as stored, including those a newer
service added.  Every failure is an :class:`OpsError` whose message says
what to do; nothing is half-written where the operator would find it.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

#: Where Debian and Ubuntu install the server's tools when they are not on PATH.
PG_BIN_DIRS = (
    "/usr/lib/postgresql/17/bin",
    "/usr/lib/postgresql/16/bin",
    "/usr/lib/postgresql/15/bin",
)


class OpsError(RuntimeError):
    """An operator command cannot go on; the message says why and what to do."""


def pg_tool(name: str) -> str:
    """The path of ``pg_dump``/``pg_restore``: on PATH, else PostgreSQL's own folder."""
    found = shutil.which(name)
    if found:
        return found
    for folder in PG_BIN_DIRS:
        candidate = Path(folder) / name
        if os.access(candidate, os.X_OK):
            return str(candidate)
    raise OpsError(
        f"{name} was not found on PATH nor in /usr/lib/postgresql/*/bin: install the "
        "PostgreSQL client tools (Debian: apt install postgresql-client-15)"
    )


def is_postgres(url: str) -> bool:
    return urlsplit(url).scheme in ("postgresql", "postgres")


def sqlite_path(url: str) -> Path:
    """The file of a ``sqlite:///…`` URL (the convention of ``node.storage.db``)."""
    return Path(unquote(url[len("sqlite:///") :]))


def redacted(url: str) -> str:
    """A database URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":•••@")
    return parts._replace(netloc=netloc).geturl()


def pg_connect(url: str) -> Any:
    """A psycopg2 connection to ``url``; OpsError (with the URL, no password) when it fails."""
    import psycopg2

    try:
        return psycopg2.connect(url, connect_timeout=10)
    except psycopg2.Error as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise OpsError(f"cannot connect to {redacted(url)}: {first}") from None


def pg_tables(connection: Any) -> list[str]:
    """The tables of the connection's current schema (``public`` for Carnet)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
        )
        return sorted(row[0] for row in cursor.fetchall())


def sqlite_readonly(path: Path) -> sqlite3.Connection:
    """Open an existing SQLite database for reading; OpsError when it is missing."""
    if not path.is_file():
        raise OpsError(f"{path} does not exist: is this the node's data folder?")
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
    # peewee's models live elsewhere: read rows as stored (text dates, 0/1 booleans)
    connection.execute("PRAGMA busy_timeout = 5000")
    return connection


def node_answers(bind: str) -> bool:
    """Whether something accepts connections on the node's bind address (a running node)."""
    host, _, port = bind.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if host in ("0.0.0.0", "::"):  # noqa: S104  (a comparison: nothing binds here)
        host = "127.0.0.1"  # a node bound to every address also answers on loopback
    try:
        with socket.create_connection((host, int(port)), timeout=1.0):
            return True
    except (OSError, ValueError):
        return False


def private_file(path: Path) -> int:
    """Create ``path`` for writing with mode 0600 (refuses an existing file); its descriptor."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
