"""The node's data folder: configuration, secrets and keys on disk.

Layout (created by ``carnet init``)::

    carnet.toml           school name, public URL, bind address
    node-secret           32 random bytes keying HMACs of access and SMS codes
    node-signing.key      the node's Ed25519 seed (federation NP/1), base64url
    node-signing.next.key the announced next key (``carnet keys next``), until rotated in
    node-signing.NAME.key a retired key, kept while it may still sign its rotation statement
    vapid-private.pem     the node's P-256 key for Web Push (RFC 8292)
    carnet.sqlite3        the database, unless DATABASE_URL points elsewhere
    blobs/                encrypted attachments (ciphertext only)
    sms-outbox.jsonl      texts written by the console SMS backend (development)

Secret files are created with mode 0600 and never overwritten.
"""

from __future__ import annotations

import base64
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import nacl.signing
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

SECRET_FILE = "node-secret"
SIGNING_KEY_FILE = "node-signing.key"
NEXT_SIGNING_KEY_FILE = "node-signing.next.key"
VAPID_KEY_FILE = "vapid-private.pem"


class DataFolderError(RuntimeError):
    """The data folder is missing a file or holds an unreadable one."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _write_secret(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def retired_key_file(name: str) -> str:
    """The data-folder file of a retired signing key named ``name``."""
    return f"node-signing.{name}.key"


def write_signing_key(path: Path, key: nacl.signing.SigningKey) -> None:
    """Write a signing key file (0600); never overwrites one."""
    _write_secret(path, _b64(bytes(key)).encode() + b"\n")


def read_signing_key(path: Path) -> nacl.signing.SigningKey:
    """Read a signing key file; DataFolderError if it is missing or unreadable."""
    try:
        seed_text = path.read_text().strip()
    except FileNotFoundError:
        raise DataFolderError(f"{path} is missing") from None
    try:
        seed = base64.urlsafe_b64decode(seed_text + "=" * (-len(seed_text) % 4))
        return nacl.signing.SigningKey(seed)
    except (ValueError, TypeError) as exc:
        raise DataFolderError(f"{path} is unreadable: {exc}") from None


def install_signing_key(folder: Path, source: Path) -> None:
    """Make ``source`` the node's key file in one atomic rename (same folder), durably."""
    os.replace(source, folder / SIGNING_KEY_FILE)
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def create_keys(folder: Path) -> list[str]:
    """Create every missing secret file; return the names created.  Never overwrites."""
    # Only the node's own user may enter the folder: it holds the database too.
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    (folder / "blobs").mkdir(mode=0o700, exist_ok=True)
    created = []
    if not (folder / SECRET_FILE).exists():
        _write_secret(folder / SECRET_FILE, secrets.token_bytes(32))
        created.append(SECRET_FILE)
    if not (folder / SIGNING_KEY_FILE).exists():
        seed = bytes(nacl.signing.SigningKey.generate())
        _write_secret(folder / SIGNING_KEY_FILE, _b64(seed).encode() + b"\n")
        created.append(SIGNING_KEY_FILE)
    if not (folder / VAPID_KEY_FILE).exists():
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_secret(folder / VAPID_KEY_FILE, pem)
        created.append(VAPID_KEY_FILE)
    return created


@dataclass(frozen=True)
class NodeKeys:
    node_secret: bytes
    signing_key: nacl.signing.SigningKey
    vapid_public_key: str
    #: Signs VAPID tokens (RFC 8292); browsers subscribe with ``vapid_public_key``.
    vapid_key: ec.EllipticCurvePrivateKey

    @property
    def signing_public_key(self) -> str:
        return _b64(bytes(self.signing_key.verify_key))


def load_keys(folder: Path) -> NodeKeys:
    """Read the node's secrets; raise DataFolderError with the fix when one is missing."""
    try:
        node_secret = (folder / SECRET_FILE).read_bytes()
        seed_text = (folder / SIGNING_KEY_FILE).read_text().strip()
        pem = (folder / VAPID_KEY_FILE).read_bytes()
    except FileNotFoundError as exc:
        raise DataFolderError(
            f"{exc.filename} is missing: run `carnet init --data {folder}` first"
        ) from None
    if len(node_secret) != 32:
        raise DataFolderError(f"{folder / SECRET_FILE} must hold 32 bytes")
    try:
        seed = base64.urlsafe_b64decode(seed_text + "=" * (-len(seed_text) % 4))
        signing_key = nacl.signing.SigningKey(seed)
        vapid = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise DataFolderError(f"a key file in {folder} is unreadable: {exc}") from None
    if not isinstance(vapid, ec.EllipticCurvePrivateKey):
        raise DataFolderError(f"{folder / VAPID_KEY_FILE} is not a P-256 key")
    public = vapid.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return NodeKeys(node_secret, signing_key, _b64(public), vapid)
