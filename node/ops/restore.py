"""``carnet restore``: a backup made by ``carnet backup`` into a new, empty data folder.

Rule: nothing is put in place until the whole archive has been read and
every member matched the manifest's size and SHA-256 (a truncated, damaged
or altered archive is refused and leaves nothing behind); the target
folder must be empty, and a PostgreSQL target database must have no
tables, so a restore never mixes with, or overwrites, a node's data.  The
restored node has the same keys: the same signing key (peer schools still
recognize it) and the same VAPID key (devices' push subscriptions keep
working), and the same ``node-secret`` (access and SMS codes stay valid).
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import tarfile
import tomllib
import zlib
from dataclasses import dataclass
from pathlib import Path

from node.config import dump_toml
from node.datafolder import load_keys
from node.ops import archive
from node.ops.common import OpsError, is_postgres, pg_connect, pg_tables, pg_tool, redacted

#: Largest manifest accepted (a node with a million attachments stays far below).
_MANIFEST_LIMIT = 256 << 20
_STAGING = ".carnet-restoring"


@dataclass(frozen=True)
class RestoreResult:
    manifest: archive.Manifest
    database_url: str


def _empty_target(target: Path) -> bool:
    """Make sure ``target`` is an empty folder; True when this call created it."""
    if target.exists():
        if not target.is_dir():
            raise OpsError(f"{target} is a file, not a folder")
        if any(target.iterdir()):
            raise OpsError(
                f"{target} is not empty: restore into a new folder (a restore never "
                "overwrites a node's data)"
            )
        os.chmod(target, 0o700)
        return False
    target.mkdir(mode=0o700, parents=True)
    return True


def _unpack(source: Path, staging: Path) -> archive.Manifest:
    """Read every member into ``staging`` and check it against the manifest."""
    seen: dict[str, archive.Entry] = {}
    manifest_raw: bytes | None = None
    tar = archive.open_archive(source)
    try:
        first = True
        for member in tar:
            if first:
                if member.name != archive.HEADER or not member.isfile():
                    raise OpsError(f"{source} is not a Carnet backup (made by `carnet backup`)")
                handle = tar.extractfile(member)
                assert handle is not None
                try:
                    archive.check_format(json.loads(handle.read(4096)))
                except ValueError:
                    raise OpsError(
                        f"{source} is not a Carnet backup (its header is unreadable)"
                    ) from None
                first = False
                continue
            if manifest_raw is not None:
                raise OpsError(f"{source} has files after its manifest: refused")
            if not member.isfile():
                raise OpsError(
                    f"the backup holds {member.name!r}, which is not a plain file: refused"
                )
            relative = archive.safe_name(member.name)
            handle = tar.extractfile(member)
            assert handle is not None
            if member.name == archive.MANIFEST:
                if member.size > _MANIFEST_LIMIT:
                    raise OpsError("the backup's manifest is too large: refused")
                manifest_raw = handle.read()
                continue
            if member.name in seen:
                raise OpsError(f"the backup holds {member.name!r} twice: refused")
            path = staging / relative
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                writer = archive.HashingWriter(out)
                writer.copy(handle)
            seen[member.name] = archive.Entry(member.name, writer.size, writer.digest.hexdigest())
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as error:
        # (other OSErrors, e.g. a full disk, are the target's: they keep their own message)
        raise archive.damaged(source, error) from None
    finally:
        tar.close()
    if first:
        raise OpsError(f"{source} is empty")
    if manifest_raw is None:
        raise archive.damaged(source, EOFError("no manifest at its end"))
    manifest = archive.Manifest.from_json(manifest_raw)
    listed = {entry.name: entry for entry in manifest.files}
    for name in sorted(set(seen) - set(listed)):
        raise OpsError(f"the backup holds {name}, which its manifest does not list: refused")
    for name in sorted(listed):
        if name not in seen:
            raise archive.damaged(source, EOFError(f"{name} is missing"))
        if seen[name] != listed[name]:
            raise OpsError(
                f"{name} does not match the checksum in the manifest: the backup was "
                "damaged or altered; nothing was restored"
            )
    return manifest


def _restore_postgres(dump: Path, url: str) -> None:
    connection = pg_connect(url)
    try:
        tables = pg_tables(connection)
    finally:
        connection.close()
    if tables:
        raise OpsError(
            f"the database {redacted(url)} already has tables ({', '.join(tables[:3])}…): "
            "restore into a new, empty database (createdb)"
        )
    command = [pg_tool("pg_restore"), "--no-owner", "--no-acl", "--exit-on-error"]
    command += ["--single-transaction", "--dbname", url, str(dump)]
    # the tool found by pg_tool, the operator's own URL and file as single arguments
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise OpsError(f"pg_restore failed (nothing was restored): {done.stderr.strip()[-500:]}")


def _rewrite_database_url(config_file: Path, url: str | None) -> None:
    """Point ``carnet.toml`` at the restored database (none: the data folder's SQLite file)."""
    if not config_file.is_file():
        return
    values = tomllib.loads(config_file.read_text(encoding="utf-8"))
    if url:
        values["database_url"] = url
    else:
        values.pop("database_url", None)
    config_file.write_text(dump_toml(values), encoding="utf-8")
    os.chmod(config_file, 0o600)  # it may hold the database password


def _database_url(manifest: archive.Manifest, staging: Path, given: str) -> str:
    """The database to restore into: ``--database-url``, else the one the backup's toml names."""
    toml = staging / archive.DATA_PREFIX / "carnet.toml"
    configured = ""
    if toml.is_file():
        configured = str(tomllib.loads(toml.read_text(encoding="utf-8")).get("database_url", ""))
    if manifest.database == "sqlite":
        if given:
            raise OpsError(
                "this backup holds a SQLite database, restored into the data folder: omit "
                "--database-url (then `carnet migrate-to-postgres` moves it to PostgreSQL)"
            )
        return ""
    url = given or configured
    if not is_postgres(url):
        raise OpsError(
            "this backup holds a PostgreSQL database: give --database-url "
            "postgresql://user:password@host/database of a new, empty database"
        )
    return url


def restore_backup(source: Path, target: Path, database_url: str = "") -> RestoreResult:
    """Restore the backup ``source`` into the new data folder ``target``."""
    created = _empty_target(target)
    staging = target / _STAGING
    try:
        staging.mkdir(mode=0o700)
        manifest = _unpack(source, staging)
        url = _database_url(manifest, staging, database_url)
        if manifest.database == "postgresql":
            _restore_postgres(staging / archive.PGDUMP_MEMBER, url)
        else:
            os.replace(staging / archive.SQLITE_MEMBER, target / "carnet.sqlite3")
        data = staging / archive.DATA_PREFIX.rstrip("/")
        if data.is_dir():
            for entry in data.iterdir():
                os.replace(entry, target / entry.name)
        shutil.rmtree(staging)
        # attachments go in blobs/<2 letters>/: the node creates the subfolders, not this one
        (target / "blobs").mkdir(mode=0o700, exist_ok=True)
        _rewrite_database_url(target / "carnet.toml", url or None)
        keys = load_keys(target)
        if keys.signing_public_key != manifest.signing_key:
            raise OpsError("the restored signing key differs from the manifest's: refused")
    except BaseException:
        # leave the target as it was: empty (or absent, if this call made it)
        if created:
            shutil.rmtree(target, ignore_errors=True)
        else:
            for entry in target.iterdir():
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        raise
    return RestoreResult(manifest, url)
