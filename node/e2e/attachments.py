"""Chunked attachment encryption (carnet-e2e-1, docs/protocol/e2e-groups.md §6).

A file is cut into 64 KiB chunks, each sealed with AES-256-GCM under a
random per-file key; the nonce is a random 7-byte prefix, the chunk index
(4 bytes, big-endian) and a final flag, so chunks cannot be reordered,
dropped or the file truncated without detection.  The associated data binds
the plaintext size.  An empty file is one final, empty chunk.  The
descriptor (key, prefix, size, name, type) travels only inside the
encrypted message.  Sans-IO.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator

from federation.canonical import canonical_json
from node.e2e import primitives as p
from node.e2e.encoding import b64url_encode
from node.e2e.groups import SUITE

CHUNK_SIZE = 65536
TAG = 16
PREFIX_LEN = 7


class AttachmentError(ValueError):
    """A chunk is missing, reordered, truncated or altered."""


def chunk_count(size: int) -> int:
    return max(1, -(-size // CHUNK_SIZE))


def ciphertext_size(size: int) -> int:
    return size + TAG * chunk_count(size)


def chunk_nonce(prefix: bytes, index: int, final: bool) -> bytes:
    if len(prefix) != PREFIX_LEN or not 0 <= index < 2**32:
        raise ValueError("bad chunk prefix or index")
    return prefix + index.to_bytes(4, "big") + (b"\x01" if final else b"\x00")


def attachment_aad(size: int) -> bytes:
    return canonical_json({"size": size, "suite": SUITE, "type": "attachment"})


def new_file_key() -> tuple[bytes, bytes]:
    """A fresh (key, nonce prefix) pair; never reuse one for another file or an edit."""
    return secrets.token_bytes(32), secrets.token_bytes(PREFIX_LEN)


def encrypt_chunks(key: bytes, prefix: bytes, data: bytes) -> Iterator[bytes]:
    aad = attachment_aad(len(data))
    count = chunk_count(len(data))
    for index in range(count):
        chunk = data[index * CHUNK_SIZE : (index + 1) * CHUNK_SIZE]
        yield p.aes256gcm_encrypt(key, chunk_nonce(prefix, index, index == count - 1), chunk, aad)


def encrypt_file(key: bytes, prefix: bytes, data: bytes) -> bytes:
    return b"".join(encrypt_chunks(key, prefix, data))


def decrypt_chunk(key: bytes, prefix: bytes, size: int, index: int, chunk: bytes) -> bytes:
    """Decrypt chunk ``index`` of a file of ``size`` bytes (for ranged reads)."""
    count = chunk_count(size)
    if not 0 <= index < count:
        raise AttachmentError("chunk index out of range")
    expected = min(CHUNK_SIZE, size - index * CHUNK_SIZE) + TAG
    if len(chunk) != expected:
        raise AttachmentError(f"chunk {index} is truncated or too long")
    try:
        return p.aes256gcm_decrypt(
            key, chunk_nonce(prefix, index, index == count - 1), chunk, attachment_aad(size)
        )
    except ValueError as exc:
        raise AttachmentError(f"chunk {index} was altered or moved") from exc


def decrypt_file(key: bytes, prefix: bytes, size: int, blob: bytes) -> bytes:
    if len(blob) != ciphertext_size(size):
        raise AttachmentError("the file is truncated or has extra bytes")
    step = CHUNK_SIZE + TAG
    return b"".join(
        decrypt_chunk(key, prefix, size, i, blob[i * step : (i + 1) * step])
        for i in range(chunk_count(size))
    )


def sha256_b64(data: bytes) -> str:
    return b64url_encode(hashlib.sha256(data).digest())
