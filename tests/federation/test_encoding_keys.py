"""Wire text forms (federation.encoding) and node key texts (federation.keys)."""

from __future__ import annotations

import hashlib

import pytest

from federation.encoding import (
    b58decode,
    b58encode,
    check_origin,
    check_url,
    format_timestamp,
    is_on_origin,
    origin_of,
    parse_timestamp,
)
from federation.errors import EncodingError
from federation.keys import (
    decode_public_key,
    decode_secret_key,
    encode_public_key,
    encode_secret_key,
    fingerprint,
    key_id,
    key_id_origin,
)
from tests.federation.factories import signing_key

# W3C vc-di-eddsa test key pair (§A, eddsa-jcs-2022 test vectors).
W3C_SECRET = "z3u2en7t5LR2WtQH5PfFqMqwVHBeXouLzo6haApm8XHqvjxq"
W3C_PUBLIC = "z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"


def test_base58_known_values_and_leading_zeros() -> None:
    assert b58encode(b"Hello World!") == "2NEpo7TZRRrLZSi2U"
    assert b58encode(b"\0\0\x01") == "112"
    assert b58decode("112") == b"\0\0\x01"
    assert b58decode(b58encode(bytes(range(40)))) == bytes(range(40))


@pytest.mark.parametrize("bad", ["", "0OIl", "abc+", 12])
def test_base58_rejects_foreign_characters(bad: object) -> None:
    with pytest.raises(EncodingError):
        b58decode(bad)  # type: ignore[arg-type]


def test_w3c_multikey_pair_round_trips() -> None:
    key = decode_secret_key(W3C_SECRET)
    assert encode_public_key(key.verify_key) == W3C_PUBLIC
    assert encode_secret_key(key) == W3C_SECRET
    assert bytes(decode_public_key(W3C_PUBLIC)) == bytes(key.verify_key)


@pytest.mark.parametrize(
    "bad",
    [
        "u" + W3C_PUBLIC[1:],  # another multibase
        W3C_SECRET,  # a secret key where a public key belongs
        W3C_PUBLIC[:-2],  # truncated
        "z" + "1" + W3C_PUBLIC[1:],  # leading zero byte: not canonical / wrong prefix
        None,
        "z" + "2" * 70,
    ],
)
def test_public_multikey_rejects(bad: object) -> None:
    with pytest.raises(EncodingError):
        decode_public_key(bad)


def test_timestamps_have_one_spelling() -> None:
    assert format_timestamp(0) == "1970-01-01T00:00:00Z"
    assert parse_timestamp("2025-09-01T08:15:00Z") == 1756714500
    assert format_timestamp(parse_timestamp("2025-09-01T08:15:00Z")) == "2025-09-01T08:15:00Z"


@pytest.mark.parametrize(
    "bad",
    [
        "2025-09-01T08:15:00+00:00",
        "2025-09-01T08:15:00.5Z",
        "2025-09-01 08:15:00Z",
        "2025-02-30T08:15:00Z",
        "2025-09-01T08:15:00z",
        1756714500,
        None,
    ],
)
def test_timestamps_reject_other_spellings(bad: object) -> None:
    with pytest.raises(EncodingError):
        parse_timestamp(bad)


def test_format_timestamp_refuses_floats_and_bools() -> None:
    with pytest.raises(EncodingError):
        format_timestamp(1.5)  # type: ignore[arg-type]
    with pytest.raises(EncodingError):
        format_timestamp(True)


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://ecole-a.example/act/1", "https://ecole-a.example"),
        ("http://127.0.0.1:8003/classes/c#members", "http://127.0.0.1:8003"),
        ("https://[::1]:8443/x?y=1", "https://[::1]:8443"),
    ],
)
def test_origin_of(url: str, origin: str) -> None:
    assert origin_of(url) == origin
    assert is_on_origin(url, origin)
    assert check_url(url) == url


@pytest.mark.parametrize(
    "bad",
    [
        "HTTPS://ecole-a.example/x",
        "https://Ecole-A.example/x",
        "https://ecole-a.example:443/x",
        "http://ecole-a.example:80/x",
        "https://user@ecole-a.example/x",
        "https://ecole-b.example@ecole-a.example/x",
        "https://ecole-a.example/a b",
        "https://ecole-a.example\\@evil.example/",
        "ftp://ecole-a.example/x",
        "https://ecole-a.example:99999/x",
        "//ecole-a.example/x",
        "https://école.example/x",
        "https://ecole-a.example/" + "a" * 2100,
    ],
)
def test_non_canonical_urls_are_refused(bad: str) -> None:
    with pytest.raises(EncodingError):
        origin_of(bad)
    assert not is_on_origin(bad, "https://ecole-a.example")


def test_check_url_needs_a_path_and_check_origin_refuses_one() -> None:
    for bare in (
        "https://ecole-a.example",
        "https://ecole-a.example/",
        "https://ecole-a.example/#x",
    ):
        with pytest.raises(EncodingError, match="path"):
            check_url(bare)
    assert check_origin("https://ecole-a.example") == "https://ecole-a.example"
    with pytest.raises(EncodingError):
        check_origin("https://ecole-a.example/np")


def test_key_ids_and_their_origin() -> None:
    keyid = key_id("https://ecole-a.example", "k2025b")
    assert keyid == "https://ecole-a.example/.well-known/carnet-node#k2025b"
    assert key_id_origin(keyid) == "https://ecole-a.example"
    for bad in (
        "https://ecole-a.example/users/x#k1",
        "https://ecole-a.example/.well-known/carnet-node",
        "https://ecole-a.example/.well-known/carnet-node#",
        "https://ecole-a.example/.well-known/carnet-node#k 1",
        "test-key-ed25519",
    ):
        with pytest.raises(EncodingError):
            key_id_origin(bad)
    with pytest.raises(EncodingError):
        key_id("https://ecole-a.example", "bad name")


def test_fingerprint_is_domain_separated_sha256_in_groups() -> None:
    key = decode_public_key(W3C_PUBLIC)
    digest = hashlib.sha256(b"carnet-np1/node-key\0" + bytes(key)).hexdigest().upper()
    text = fingerprint(key)
    assert text.replace(" ", "") == digest[:32]
    assert text == "99D5 609E F95E 0C5C F16D B0BC D76C D62F"  # the vector in np1.md §2.1
    assert [len(group) for group in text.split(" ")] == [4] * 8
    assert text != fingerprint(signing_key("y").verify_key)


def test_ulid_known_answer_round_trip_and_order() -> None:
    from federation.encoding import ulid

    # the ULID spec's example time (1469918176385 ms) with zero entropy
    assert ulid(1469918176385, bytes(10)) == "01ARYZ6S410000000000000000"
    assert ulid(2**48 - 1, b"\xff" * 10) == "7ZZZZZZZZZZZZZZZZZZZZZZZZZ"
    assert ulid(1, bytes(10)) < ulid(2, bytes(10))
    with pytest.raises(EncodingError):
        ulid(2**48, bytes(10))
    with pytest.raises(EncodingError):
        ulid(0, bytes(9))
