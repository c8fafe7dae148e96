"""Chunked attachment encryption (docs/protocol/e2e-groups.md §6).

Round trips (the empty file included), ranged reads, a known answer
recomputed with another AES-GCM implementation, and tampering: altered,
truncated, dropped, reordered or foreign chunks and a wrong claimed size.
"""

from __future__ import annotations

import hashlib
import os
import random

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as hs

from node.e2e import attachments as att
from node.e2e.encoding import b64url_encode

PROPERTY = settings(max_examples=50, deadline=None, database=None)
STEP = att.CHUNK_SIZE + att.TAG  # 65 552: where chunk i starts in the blob


def content(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def encrypted(size: int, seed: int = 0) -> tuple[bytes, bytes, bytes, bytes]:
    """(key, prefix, plaintext, blob) of a fresh file of ``size`` bytes."""
    key, prefix = att.new_file_key()
    data = content(size, seed)
    return key, prefix, data, att.encrypt_file(key, prefix, data)


def chunks(blob: bytes) -> list[bytes]:
    return [blob[i : i + STEP] for i in range(0, len(blob), STEP)]


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("size", [0, 1, 15, 16, 65535, 65536, 65537, 131072, 3 * 65536 + 5])
def test_round_trip_and_sizes(size: int) -> None:
    key, prefix, data, blob = encrypted(size, size)
    n = max(1, -(-size // 65536))
    assert att.chunk_count(size) == n
    assert len(blob) == att.ciphertext_size(size) == size + 16 * n
    assert len(chunks(blob)) == n
    assert att.decrypt_file(key, prefix, size, blob) == data
    assert b"".join(att.encrypt_chunks(key, prefix, data)) == blob


def test_empty_file_is_one_final_empty_chunk() -> None:
    key, prefix, data, blob = encrypted(0)
    assert data == b"" and len(blob) == 16
    assert att.decrypt_file(key, prefix, 0, blob) == b""
    assert att.decrypt_chunk(key, prefix, 0, 0, blob) == b""
    assert AESGCM(key).decrypt(att.chunk_nonce(prefix, 0, True), blob, att.attachment_aad(0)) == b""
    with pytest.raises(att.AttachmentError):
        att.decrypt_file(key, prefix, 0, b"")
    with pytest.raises(att.AttachmentError):
        att.decrypt_file(key, prefix, 0, bytes(16))
    with pytest.raises(att.AttachmentError):
        att.decrypt_file(key, prefix, 1, blob)  # an empty file passed off as one byte
    _, _, _, other_blob = encrypted(0)
    with pytest.raises(att.AttachmentError):
        att.decrypt_file(key, prefix, 0, other_blob)  # another empty file


def test_ranged_reads_decrypt_any_chunk_alone() -> None:
    size = 3 * 65536 + 100
    key, prefix, data, blob = encrypted(size)
    for i in range(att.chunk_count(size)):
        piece = blob[i * STEP : (i + 1) * STEP]
        assert att.decrypt_chunk(key, prefix, size, i, piece) == data[i * 65536 : (i + 1) * 65536]
    with pytest.raises(att.AttachmentError, match="out of range"):
        att.decrypt_chunk(key, prefix, size, 4, blob[:STEP])
    with pytest.raises(att.AttachmentError, match="out of range"):
        att.decrypt_chunk(key, prefix, size, -1, blob[:STEP])


def test_file_keys_are_fresh() -> None:
    pairs = {att.new_file_key() for _ in range(20)}
    assert len(pairs) == 20
    assert all(len(k) == 32 and len(p) == 7 for k, p in pairs)


# --------------------------------------------------------------------------- known answers


def test_chunk_layout_known_answer() -> None:
    key, prefix = bytes(range(32)), bytes.fromhex("01020304050607")
    data = content(65536 + 10)
    aad = b'{"size":65546,"suite":"carnet-e2e-1","type":"attachment"}'
    assert att.attachment_aad(65546) == aad
    assert att.chunk_nonce(prefix, 0, False) == prefix + bytes.fromhex("00000000") + b"\x00"
    assert att.chunk_nonce(prefix, 1, True) == prefix + bytes.fromhex("00000001") + b"\x01"
    assert att.chunk_nonce(prefix, 2**32 - 1, False)[7:11] == b"\xff\xff\xff\xff"
    expected = AESGCM(key).encrypt(prefix + bytes(4) + b"\x00", data[:65536], aad)
    expected += AESGCM(key).encrypt(prefix + b"\x00\x00\x00\x01\x01", data[65536:], aad)
    blob = att.encrypt_file(key, prefix, data)
    assert blob == expected
    assert att.sha256_b64(blob) == b64url_encode(hashlib.sha256(blob).digest())
    assert att.sha256_b64(b"") == "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"


@pytest.mark.parametrize(
    ("prefix", "index"), [(bytes(6), 0), (bytes(8), 0), (bytes(7), -1), (bytes(7), 2**32)]
)
def test_bad_nonce_inputs_are_refused(prefix: bytes, index: int) -> None:
    with pytest.raises(ValueError, match="prefix or index"):
        att.chunk_nonce(prefix, index, False)


# --------------------------------------------------------------------------- tampering


def test_a_tampered_byte_in_any_chunk_is_refused() -> None:
    size = 2 * 65536 + 7
    key, prefix, _, blob = encrypted(size)
    for where in (0, 100, STEP - 1, STEP, 2 * STEP + 3, len(blob) - 1):
        bad = bytearray(blob)
        bad[where] ^= 0x01
        with pytest.raises(att.AttachmentError, match="altered"):
            att.decrypt_file(key, prefix, size, bytes(bad))


def test_truncated_chunk_or_extra_bytes_are_refused() -> None:
    size = 65536 + 100
    key, prefix, _, blob = encrypted(size)
    for bad in (blob[:-1], blob + b"\x00", blob[:STEP] + blob[STEP + 1 :]):
        with pytest.raises(att.AttachmentError, match="truncated"):
            att.decrypt_file(key, prefix, size, bad)
    with pytest.raises(att.AttachmentError, match="truncated or too long"):
        att.decrypt_chunk(key, prefix, size, 1, blob[STEP:-1])
    with pytest.raises(att.AttachmentError, match="truncated or too long"):
        att.decrypt_chunk(key, prefix, size, 0, blob[: STEP - 1])


def test_extra_bytes_after_a_full_final_chunk_are_refused() -> None:
    size = 2 * 65536  # the final chunk is full: only the total length shows the extra bytes
    key, prefix, data, blob = encrypted(size)
    for extra in (b"\x00", bytes(16), blob[:STEP]):
        with pytest.raises(att.AttachmentError, match="extra bytes"):
            att.decrypt_file(key, prefix, size, blob + extra)
    assert att.decrypt_file(key, prefix, size, blob) == data


def test_a_dropped_final_chunk_is_refused_even_with_a_matching_size() -> None:
    size = 2 * 65536
    key, prefix, data, blob = encrypted(size)
    first = blob[:STEP]
    with pytest.raises(att.AttachmentError, match="truncated"):
        att.decrypt_file(key, prefix, size, first)
    # the node also claims the size of one chunk: the size and the final flag are authenticated
    with pytest.raises(att.AttachmentError, match="altered"):
        att.decrypt_file(key, prefix, 65536, first)
    with pytest.raises(att.AttachmentError, match="altered"):
        att.decrypt_chunk(key, prefix, 65536, 0, first)
    assert att.decrypt_file(key, prefix, size, blob) == data


def test_reordered_chunks_are_refused() -> None:
    size = 3 * 65536
    key, prefix, _, blob = encrypted(size)
    a, b, c = chunks(blob)
    for bad in (b + a + c, a + c + b, c + b + a):
        with pytest.raises(att.AttachmentError, match="altered or moved"):
            att.decrypt_file(key, prefix, size, bad)
    with pytest.raises(att.AttachmentError, match="chunk 0"):
        att.decrypt_chunk(key, prefix, size, 0, b)


def test_a_wrong_claimed_size_is_refused() -> None:
    size = 65540
    key, prefix, _, blob = encrypted(size)
    for claimed in (size - 1, size + 1, 0, 65536, 2 * 65536):
        with pytest.raises(att.AttachmentError):
            att.decrypt_file(key, prefix, claimed, blob)
    # a blob re-cut to fit a smaller claim still fails: the size is in every chunk's AAD
    with pytest.raises(att.AttachmentError, match="altered"):
        att.decrypt_file(key, prefix, size - 1, blob[:-1])


def test_chunks_from_another_file_or_key_are_refused() -> None:
    size = 65536 + 50
    key, prefix, _, blob = encrypted(size, 1)
    other = att.encrypt_file(key, bytes(7) if prefix != bytes(7) else b"\x01" * 7, content(size))
    spliced = blob[:STEP] + other[STEP:]
    with pytest.raises(att.AttachmentError, match="chunk 1"):
        att.decrypt_file(key, prefix, size, spliced)
    with pytest.raises(att.AttachmentError):
        att.decrypt_file(os.urandom(32), prefix, size, blob)
    with pytest.raises(att.AttachmentError):
        att.decrypt_file(key, os.urandom(7), size, blob)


# --------------------------------------------------------------------------- properties


# sizes anywhere up to 300 000 bytes, and many around chunk boundaries
_SIZES = hs.integers(0, 300_000) | hs.builds(
    lambda n, d: min(300_000, max(0, n * att.CHUNK_SIZE + d)),
    hs.integers(0, 4),
    hs.integers(-17, 17),
)


@PROPERTY
@given(size=_SIZES, seed=hs.integers(0, 2**32), data=hs.data())
def test_random_sizes_round_trip_and_any_flipped_byte_fails(
    size: int, seed: int, data: hs.DataObject
) -> None:
    key, prefix, plain, blob = encrypted(size, seed)
    assert len(blob) == att.ciphertext_size(size)
    assert att.decrypt_file(key, prefix, size, blob) == plain
    where = data.draw(hs.integers(0, len(blob) - 1))
    bad = bytearray(blob)
    bad[where] ^= data.draw(hs.integers(1, 255))
    with pytest.raises(att.AttachmentError, match=f"chunk {where // STEP} was altered"):
        att.decrypt_file(key, prefix, size, bytes(bad))
