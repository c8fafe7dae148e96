"""The backup archive's format: its members, its manifest, and reading one back safely.

A backup is one gzip-compressed tar file, mode 0600, whose members come in this order::

    carnet-backup.json        {"format": "carnet-backup", "version": 1}: read first, so
                              a file that is no Carnet backup, or a newer format, is
                              refused before anything is unpacked
    database/carnet.sqlite3   SQLite's online backup of the database, or
    database/carnet.pgdump    pg_dump's custom format (PostgreSQL)
    data/…                    every other file of the data folder: carnet.toml, the key
                              files, blobs/ (encrypted attachments), …
    manifest.json             written last, once every checksum is known: the schema
                              version, the node (public URL, school, signing key), the
                              time, and each member's size and SHA-256

Rule: a reader trusts nothing in an archive until the manifest at its end
has vouched for every member.  Names are plain relative paths (no ``..``, no
links, no devices), so unpacking never writes outside the target folder.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from node.ops.common import OpsError

FORMAT = "carnet-backup"
#: Bumped when a reader of the previous version could not restore an archive.
VERSION = 1
HEADER = "carnet-backup.json"
MANIFEST = "manifest.json"
SQLITE_MEMBER = "database/carnet.sqlite3"
PGDUMP_MEMBER = "database/carnet.pgdump"
DATA_PREFIX = "data/"
#: Bytes read at a time while hashing and copying.
CHUNK = 1 << 20


def header_bytes() -> bytes:
    return json.dumps({"format": FORMAT, "version": VERSION}).encode() + b"\n"


@dataclass
class Entry:
    name: str
    size: int
    sha256: str


@dataclass
class Manifest:
    created_at: str
    carnet_version: str
    database: str  # "sqlite" or "postgresql"
    schema_version: int
    public_url: str
    school_name: str
    signing_key: str
    files: list[Entry] = field(default_factory=list)

    def to_json(self) -> bytes:
        body: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "created_at": self.created_at,
            "carnet_version": self.carnet_version,
            "database": self.database,
            "schema_version": self.schema_version,
            "node": {
                "public_url": self.public_url,
                "school_name": self.school_name,
                "signing_key": self.signing_key,
            },
            "files": [{"name": e.name, "size": e.size, "sha256": e.sha256} for e in self.files],
        }
        return json.dumps(body, ensure_ascii=False, indent=1).encode() + b"\n"

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        try:
            body = json.loads(raw)
            check_format(body)
            node = body["node"]
            return cls(
                created_at=str(body["created_at"]),
                carnet_version=str(body["carnet_version"]),
                database=str(body["database"]),
                schema_version=int(body["schema_version"]),
                public_url=str(node["public_url"]),
                school_name=str(node["school_name"]),
                signing_key=str(node["signing_key"]),
                files=[
                    Entry(str(f["name"]), int(f["size"]), str(f["sha256"])) for f in body["files"]
                ],
            )
        except (ValueError, KeyError, TypeError) as error:
            raise OpsError(f"the backup's manifest is damaged ({error})") from None


def check_format(body: Any) -> None:
    """Refuse what is not a Carnet backup, or one made by a newer format."""
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise OpsError("this file is not a Carnet backup (made by `carnet backup`)")
    version = body.get("version")
    if not isinstance(version, int) or version < 1:
        raise OpsError("the backup's format version is unreadable")
    if version > VERSION:
        raise OpsError(
            f"this backup has format version {version}, newer than this Carnet release "
            f"reads ({VERSION}): restore it with the release that made it, or a newer one"
        )


def safe_name(name: str) -> PurePosixPath:
    """A member name as a relative path inside the target; OpsError for anything else."""
    path = PurePosixPath(name)
    if not name or path.is_absolute() or ".." in path.parts or "\\" in name:
        raise OpsError(f"the backup holds an unsafe file name {name!r}: refused")
    return path


class HashingWriter:
    """Copies a stream into a file while computing its SHA-256 and size."""

    def __init__(self, target: IO[bytes]) -> None:
        self.target = target
        self.digest = hashlib.sha256()
        self.size = 0

    def copy(self, source: IO[bytes], limit: int | None = None) -> None:
        remaining = limit
        while remaining is None or remaining > 0:
            chunk = source.read(CHUNK if remaining is None else min(CHUNK, remaining))
            if not chunk:
                break
            self.target.write(chunk)
            self.digest.update(chunk)
            self.size += len(chunk)
            if remaining is not None:
                remaining -= len(chunk)


def open_archive(path: Path) -> tarfile.TarFile:
    """Open a backup for streaming; OpsError when it is missing or not a gzip tar."""
    try:
        return tarfile.open(path, mode="r|gz")
    except FileNotFoundError:
        raise OpsError(f"{path} does not exist") from None
    except (tarfile.TarError, OSError, EOFError) as error:
        raise OpsError(f"{path} is not a readable backup archive ({error})") from None


def damaged(path: Path, error: BaseException) -> OpsError:
    """The message for an archive that ends early or whose compression is corrupt."""
    return OpsError(
        f"{path} is truncated or damaged ({error or type(error).__name__}): "
        "nothing was restored; use another copy of the backup"
    )
