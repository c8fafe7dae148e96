"""``carnet backup``: one consistent archive of a node, taken while it runs.

Rule: the database is copied with the engine's own consistent snapshot
(SQLite's online backup API, which copies a single read transaction while
the node keeps writing; ``pg_dump``, one repeatable-read transaction), and
*before* the files of the data folder, so that every attachment the copied
database names was already on disk when it was copied (an attachment
deleted in between is simply absent, as it is from the node).  The archive
is written under a temporary name with mode 0600 (it holds the node's
private keys and personal data) and renamed into place only when complete:
a file named like the backup is always a whole backup.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import io
import os
import sqlite3
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from node.config import NodeConfig, load_config
from node.datafolder import load_keys
from node.ops import archive
from node.ops.common import (
    OpsError,
    is_postgres,
    pg_connect,
    pg_tool,
    private_file,
    redacted,
    sqlite_path,
)

#: Files of the data folder that are the SQLite database itself (copied through the API).
_SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")


@dataclass(frozen=True)
class BackupResult:
    path: Path
    files: int
    size: int
    manifest: archive.Manifest


def _schema_version_sqlite(path: Path) -> int:
    with sqlite3.connect(path) as connection:
        row = connection.execute("SELECT MAX(version) FROM schema_version").fetchone()
    connection.close()
    return int(row[0] or 0)


def _copy_sqlite(source: Path, target: Path) -> int:
    """SQLite's online backup into ``target``; the copied database's schema version."""
    if not source.is_file():
        raise OpsError(f"the database {source} does not exist: is this the node's data folder?")
    src = sqlite3.connect(source, timeout=30.0)
    dst = sqlite3.connect(target)
    try:
        # pages=-1: the whole database in one step, i.e. one read transaction, so
        # the copy is one consistent state however much the node writes meanwhile
        src.backup(dst, pages=-1)
    except sqlite3.Error as error:
        raise OpsError(f"SQLite could not back up {source}: {error}") from None
    finally:
        dst.close()
        src.close()
    os.chmod(target, 0o600)
    return _schema_version_sqlite(target)


def _copy_postgres(url: str, target: Path) -> int:
    """``pg_dump`` in its custom format into ``target``; the dumped schema version."""
    connection = pg_connect(url)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT MAX(version) FROM schema_version")
            row = cursor.fetchone()
    except Exception as error:  # psycopg2.Error: a database Carnet never migrated
        raise OpsError(f"{redacted(url)} is not a Carnet database ({error})") from None
    finally:
        connection.close()
    command = [pg_tool("pg_dump"), "--format=custom", "--no-owner", "--no-acl"]
    command += ["--file", str(target), "--dbname", url]
    # the tool found by pg_tool, the operator's own database URL as one argument
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise OpsError(f"pg_dump failed: {done.stderr.strip()[-500:]}")
    os.chmod(target, 0o600)
    return int(row[0] or 0) if row else 0


def _folder_files(config: NodeConfig, out: Path) -> Iterator[tuple[str, Path]]:
    """(member name, path) of every regular file of the data folder but the database."""
    folder = config.data_dir.resolve()
    skip: set[Path] = {out.resolve()}
    url = config.resolved_database_url
    if not is_postgres(url):
        db_file = sqlite_path(url).resolve()
        skip |= {db_file.with_name(db_file.name + suffix) for suffix in _SQLITE_SUFFIXES}
    # followlinks: an operator may keep blobs/ on a larger disk through a symlink
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs.sort()
        for name in sorted(files):
            path = Path(root) / name
            # an upload being written under its temporary name is not an attachment yet
            if path.resolve() in skip or name.endswith(".part") or not path.is_file():
                continue
            yield archive.DATA_PREFIX + path.relative_to(folder).as_posix(), path


def _add(
    tar: tarfile.TarFile, name: str, source: io.BufferedReader | io.BytesIO, spool_dir: Path
) -> archive.Entry:
    """Add one member: copied (and hashed) first, as an upload in progress may still grow."""
    with tempfile.TemporaryFile(dir=spool_dir) as spool:
        writer = archive.HashingWriter(spool)
        writer.copy(source)
        spool.seek(0)
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = writer.size, 0o600, int(time.time())
        tar.addfile(info, spool)
    return archive.Entry(name, writer.size, writer.digest.hexdigest())


def _node_facts(config: NodeConfig) -> tuple[str, str]:
    keys = load_keys(config.data_dir)
    return keys.signing_public_key, config.school_name


def create_backup(data_dir: Path, out: Path) -> BackupResult:
    """Write the backup of the node in ``data_dir`` to ``out`` (which must not exist)."""
    config = load_config({"data_dir": str(data_dir)})
    if not config.data_dir.is_dir():
        raise OpsError(f"{config.data_dir} is not a folder: give the node's data folder")
    out = out.absolute()
    if out.exists():
        raise OpsError(
            f"{out} already exists: choose a new file name (backups are never overwritten)"
        )
    if out.resolve().is_relative_to(config.data_dir.resolve()):
        raise OpsError("write the backup outside the data folder (it would contain itself)")
    if not out.parent.is_dir():
        raise OpsError(f"the folder {out.parent} does not exist")
    signing_key, school = _node_facts(config)
    url = config.resolved_database_url
    partial = out.with_name(f".{out.name}.partial")
    partial.unlink(missing_ok=True)  # left by an interrupted run: never a whole backup
    staging = Path(tempfile.mkdtemp(prefix=".carnet-backup-", dir=out.parent))
    try:
        if is_postgres(url):
            db_member, db_file = archive.PGDUMP_MEMBER, staging / "carnet.pgdump"
            schema = _copy_postgres(url, db_file)
        else:
            db_member, db_file = archive.SQLITE_MEMBER, staging / "carnet.sqlite3"
            schema = _copy_sqlite(sqlite_path(url), db_file)
        manifest = archive.Manifest(
            created_at=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
            carnet_version=importlib.metadata.version("carnet"),
            database="postgresql" if is_postgres(url) else "sqlite",
            schema_version=schema,
            public_url=config.public_url,
            school_name=school,
            signing_key=signing_key,
        )
        with os.fdopen(private_file(partial), "wb") as raw:
            # level 1: attachments are ciphertext, which no level compresses; the
            # database still shrinks well, and a large node's backup stays fast
            with tarfile.open(fileobj=raw, mode="w:gz", compresslevel=1) as tar:
                _add(tar, archive.HEADER, io.BytesIO(archive.header_bytes()), staging)
                with db_file.open("rb") as source:
                    manifest.files.append(_add(tar, db_member, source, staging))
                db_file.unlink()
                for name, path in _folder_files(config, out):
                    try:
                        source_file = path.open("rb")
                    except FileNotFoundError:
                        continue  # deleted since the database was copied: gone there too
                    with source_file:
                        manifest.files.append(_add(tar, name, source_file, staging))
                _add(tar, archive.MANIFEST, io.BytesIO(manifest.to_json()), staging)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(partial, out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        for leftover in staging.iterdir():
            leftover.unlink()
        staging.rmdir()
    return BackupResult(out, len(manifest.files), out.stat().st_size, manifest)
