"""Encrypted attachment bytes in the data folder: ``blobs/<2 chars>/<blob id>``.

Files are written by appending parts in order (uploads) or whole under a
temporary name, then renamed into place (ciphertext fetched from another
school's node), and read by byte ranges; the node never interprets them
(they are ciphertext).  Names are the blobs'
random public ids, checked against a strict pattern before any path is
built, so no request can reach outside the folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from node.e2e.encoding import b64url_encode

_ID = re.compile(r"[A-Za-z0-9_-]{22}")


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, public_id: str) -> Path:
        if _ID.fullmatch(public_id) is None:
            raise ValueError("bad blob id")
        return self.root / public_id[:2] / public_id

    def append(self, public_id: str, offset: int, data: bytes) -> int:
        """Write ``data`` at ``offset`` (the current end); return the new size."""
        path = self.path(public_id)
        path.parent.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.ftruncate(fd, offset)  # a retried part overwrites a half-written one
            os.pwrite(fd, data, offset)
            os.fsync(fd)
        finally:
            os.close(fd)
        return offset + len(data)

    @contextlib.contextmanager
    def incoming(self, public_id: str) -> Iterator[BinaryIO]:
        """A file written whole, renamed into place when the block ends without error.

        Readers (and a concurrent writer of the same blob) never see it half
        written: each writer has its own temporary name, and the rename is
        atomic.  If the block raises, nothing is kept.
        """
        path = self.path(public_id)
        path.parent.mkdir(mode=0o700, exist_ok=True)
        part = path.with_name(f"{public_id}.{secrets.token_hex(8)}.part")
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            os.replace(part, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                part.unlink()
            raise

    def sha256(self, public_id: str) -> str:
        digest = hashlib.sha256()
        with self.path(public_id).open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return b64url_encode(digest.digest())

    def size(self, public_id: str) -> int:
        try:
            return self.path(public_id).stat().st_size
        except FileNotFoundError:
            return 0

    def read(self, public_id: str, start: int, end: int) -> bytes:
        """Bytes ``start`` … ``end - 1``."""
        with self.path(public_id).open("rb") as f:
            f.seek(start)
            return f.read(end - start)

    def delete(self, public_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(public_id).unlink()

    def stored(self) -> Iterator[tuple[str, Path, float]]:
        """(file name, path, modification time) of every file in the folder.

        A name is a blob id, or ``<id>.<random>.part`` for a file being
        written by ``incoming`` (or left by one cut short).
        """
        if not self.root.is_dir():
            return
        for shard in self.root.iterdir():
            if not shard.is_dir():
                continue
            for path in shard.iterdir():
                with contextlib.suppress(FileNotFoundError):  # deleted meanwhile
                    yield path.name, path, path.stat().st_mtime
