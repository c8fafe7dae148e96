"""RFC 9530 Content-Digest (federation.digest), with http-message-signatures as an oracle."""

from __future__ import annotations

import pytest
from http_message_signatures import ContentDigest, InvalidSignature

from federation.digest import content_digest, parse_content_digest, verify_content_digest
from federation.errors import DigestError

# RFC 9530 §2 and Appendix B (and RFC 9421's test-request): the body and its digests.
HELLO = b'{"hello": "world"}'
HELLO_SHA256 = "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
HELLO_SHA512 = (
    "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+"
    "AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:"
)
# RFC 9530 Appendix B: an empty body (e.g. the answer to a HEAD request).
EMPTY_SHA256 = "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:"


def test_rfc9530_known_answers() -> None:
    assert content_digest(HELLO) == HELLO_SHA256
    assert content_digest(HELLO, "sha-512") == HELLO_SHA512
    assert content_digest(b"") == EMPTY_SHA256


def test_round_trip_and_both_algorithms_accepted() -> None:
    assert verify_content_digest(content_digest(HELLO), HELLO) == ("sha-256",)
    assert verify_content_digest(HELLO_SHA512, HELLO) == ("sha-512",)
    both = f"{HELLO_SHA512}, {HELLO_SHA256}"
    assert verify_content_digest(both, HELLO) == ("sha-512", "sha-256")


def test_unknown_algorithms_are_ignored_but_not_alone() -> None:
    assert verify_content_digest(f"md5=:AAAAAAAAAAAAAAAAAAAAAA==:, {HELLO_SHA256}", HELLO) == (
        "sha-256",
    )
    with pytest.raises(DigestError) as info:
        verify_content_digest("md5=:AAAAAAAAAAAAAAAAAAAAAA==:, sha-1=:AAAA:", HELLO)
    assert info.value.reason == "digest_unsupported"


@pytest.mark.parametrize("body", [HELLO + b" ", b"", b'{"hello": "World"}'])
def test_tampered_body_fails(body: bytes) -> None:
    with pytest.raises(DigestError) as info:
        verify_content_digest(HELLO_SHA256, body)
    assert info.value.reason == "digest_mismatch"


def test_one_wrong_member_fails_even_if_another_matches() -> None:
    wrong256 = content_digest(b"other")
    with pytest.raises(DigestError, match="sha-256 does not match"):
        verify_content_digest(f"{HELLO_SHA512}, {wrong256}", HELLO)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "sha-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=",  # token, not bytes
        'sha-256="X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE="',
        "sha-256=:AAAA:",  # wrong length
        "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:, sha-256=:AAAA:",  # duplicate
        "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE:",  # unpadded
        "md5=?1, " + HELLO_SHA256,  # unknown member, but not a byte sequence
        "sha-256",
    ],
)
def test_malformed_values_are_refused(value: str) -> None:
    with pytest.raises(DigestError) as info:
        verify_content_digest(value, HELLO)
    assert info.value.reason == "digest_malformed"


def test_parse_returns_every_member() -> None:
    parsed = parse_content_digest(f"{HELLO_SHA256}, x-new=:AQ==:")
    assert set(parsed) == {"sha-256", "x-new"} and parsed["x-new"] == b"\x01"


def test_unsupported_algorithm_for_creation() -> None:
    with pytest.raises(DigestError):
        content_digest(HELLO, "md5")


def test_oracle_in_both_directions() -> None:
    body = b'{"activities": [], "np": 1}'
    ContentDigest.verify(content_digest(body), body)  # ours → oracle
    with pytest.raises(InvalidSignature):
        ContentDigest.verify(content_digest(body), body + b"x")
    assert verify_content_digest(ContentDigest.create(body), body) == ("sha-256",)  # oracle → ours
