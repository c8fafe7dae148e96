"""RFC 9421 request signatures, NP/1 profile (federation.httpsig).

Known answers: RFC 9421 Appendix B.2.6 (Ed25519) and the B.4 transformation
example, with the key of Appendix B.1.4. Oracle: the ``http-message-signatures``
package, in both directions.
"""

from __future__ import annotations

import base64
import datetime
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import nacl.signing
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from http_message_signatures import (
    HTTPMessageSigner,
    HTTPMessageVerifier,
    InvalidSignature,
    MappingKeyResolver,
    algorithms,
)

from federation import httpsig
from federation.digest import content_digest
from federation.errors import (
    BadSignature,
    DigestMismatch,
    NotAPeer,
    SignatureMalformed,
    SignatureMissing,
    SignatureStale,
    UnknownKey,
)
from tests.federation.factories import NOW, A, B, kid, signing_key

# RFC 9421 Appendix B.1.4, test-key-ed25519 (PKCS#8 / SPKI PEM bodies).
RFC_PRIVATE_PEM = "MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF"
RFC_PUBLIC_PEM = "MCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs="
RFC_KEY = nacl.signing.SigningKey(base64.b64decode(RFC_PRIVATE_PEM)[-32:])

# RFC 9421 Appendix B.2: test-request, and §B.2.6.
RFC_HEADERS = [
    ("Host", "example.com"),
    ("Date", "Tue, 20 Apr 2021 02:07:55 GMT"),
    ("Content-Type", "application/json"),
    (
        "Content-Digest",
        "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+"
        "AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:",
    ),
    ("Content-Length", "18"),
]
B26_INPUT = (
    'sig-b26=("date" "@method" "@path" "@authority" "content-type" '
    '"content-length");created=1618884473;keyid="test-key-ed25519"'
)
B26_SIGNATURE = (
    "sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1"
    "u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:"
)
B26_BASE = (
    b'"date": Tue, 20 Apr 2021 02:07:55 GMT\n'
    b'"@method": POST\n'
    b'"@path": /foo\n'
    b'"@authority": example.com\n'
    b'"content-type": application/json\n'
    b'"content-length": 18\n'
    b'"@signature-params": ("date" "@method" "@path" "@authority" "content-type" '
    b'"content-length");created=1618884473;keyid="test-key-ed25519"'
)

URI = f"{B}/np/inbox/txn/01J8Z6R4ABCDEFGHJKMNPQRSTV"
BODY = b'{"activities":[],"np":1}'
KEY = signing_key(A + "#k1")


def sign(**overrides: object) -> dict[str, str]:
    args: dict[str, object] = {
        "method": "PUT",
        "target_uri": URI,
        "body": BODY,
        "signing_key": KEY,
        "keyid": kid(A),
        "created": NOW,
    }
    args.update(overrides)
    return httpsig.sign_request(**args)  # type: ignore[arg-type]


def lookup(
    keys: dict[str, nacl.signing.VerifyKey] | None = None,
) -> Callable[[str], nacl.signing.VerifyKey | None]:
    table = keys if keys is not None else {kid(A): KEY.verify_key}
    return table.get


def verify(headers: object, **overrides: object) -> httpsig.VerifiedSignature:
    args: dict[str, object] = {
        "method": "PUT",
        "target_uri": URI,
        "headers": headers,
        "body": BODY,
        "now": NOW,
        "lookup_key": lookup(),
    }
    args.update(overrides)
    return httpsig.verify_request(**args)  # type: ignore[arg-type]


# -- RFC 9421 known answers ---------------------------------------------------


def test_rfc_key_pair_matches_appendix_b14() -> None:
    assert bytes(RFC_KEY.verify_key) == base64.b64decode(RFC_PUBLIC_PEM)[-32:]


def test_rfc9421_b26_signature_base_and_signature() -> None:
    (label, (params, signature)), *_ = httpsig.parse_signature_fields(
        B26_INPUT, B26_SIGNATURE
    ).items()
    assert label == "sig-b26"
    assert params.serialize() == B26_INPUT.removeprefix("sig-b26=")
    base = httpsig.signature_base(
        method="POST",
        target_uri="https://example.com/foo?param=Value&Pet=dog",
        headers=RFC_HEADERS,
        params=params,
    )
    assert base == B26_BASE
    assert RFC_KEY.sign(base).signature == signature  # Ed25519 is deterministic: every byte
    httpsig.verify_signature(
        method="POST",
        target_uri="https://example.com/foo?param=Value&Pet=dog",
        headers=RFC_HEADERS,
        params=params,
        signature=signature,
        key=RFC_KEY.verify_key,
    )


def test_rfc9421_b26_tampered_fails() -> None:
    (params, signature) = httpsig.parse_signature_fields(B26_INPUT, B26_SIGNATURE)["sig-b26"]
    tampered = [(n, "19" if n == "Content-Length" else v) for n, v in RFC_HEADERS]
    with pytest.raises(BadSignature):
        httpsig.verify_signature(
            method="POST",
            target_uri="https://example.com/foo?param=Value&Pet=dog",
            headers=tampered,
            params=params,
            signature=signature,
            key=RFC_KEY.verify_key,
        )


def test_rfc9421_b26_is_not_an_np1_signature() -> None:
    # A valid RFC 9421 signature that lacks the NP/1 tag, alg and components.
    headers = [*RFC_HEADERS, ("Signature-Input", B26_INPUT), ("Signature", B26_SIGNATURE)]
    with pytest.raises(SignatureMissing, match='tag="np1"'):
        httpsig.verify_request(
            method="POST",
            target_uri="https://example.com/foo?param=Value&Pet=dog",
            headers=headers,
            body=b'{"hello": "world"}',
            now=1618884473,
            lookup_key=lambda _: RFC_KEY.verify_key,
        )


def test_rfc9421_b4_transformations_combine_repeated_fields() -> None:
    sig_input = 'transform=("@method" "@path" "@authority" "accept");created=1618884473;keyid="test-key-ed25519"'
    signature = "transform=:ZT1kooQsEHpZ0I1IjCqtQppOmIqlJPeo7DHR3SoMn0s5JZ1eRGS0A+vyYP9t/LXlh5QMFFQ6cpLt2m0pmj3NDA==:"
    params, sig = httpsig.parse_signature_fields(sig_input, signature)["transform"]
    uri = "https://example.org/demo?name1=Value1&Name2=value2"
    two_lines = [("Host", "example.org"), ("Accept", "application/json"), ("Accept", "*/*")]
    one_line = [("Accept", "application/json, */*")]
    for headers in (two_lines, one_line):
        httpsig.verify_signature(
            method="GET",
            target_uri=uri,
            headers=headers,
            params=params,
            signature=sig,
            key=RFC_KEY.verify_key,
        )
    swapped = [("Accept", "*/*"), ("Accept", "application/json")]
    with pytest.raises(BadSignature):
        httpsig.verify_signature(
            method="GET",
            target_uri=uri,
            headers=swapped,
            params=params,
            signature=sig,
            key=RFC_KEY.verify_key,
        )
    with pytest.raises(BadSignature):
        httpsig.verify_signature(
            method="POST",
            target_uri=uri,
            headers=two_lines,
            params=params,
            signature=sig,
            key=RFC_KEY.verify_key,
        )


# -- NP/1 round trip ------------------------------------------------------------


def test_round_trip() -> None:
    headers = sign(nonce="n-1")
    assert headers["Content-Digest"] == content_digest(BODY)
    assert headers["Signature-Input"] == (
        'np=("@method" "@target-uri" "content-digest");created=1756713600;'
        'keyid="https://ecole-a.example/.well-known/carnet-node#k1";alg="ed25519";nonce="n-1";tag="np1"'
    )
    result = verify(headers)
    assert result == httpsig.VerifiedSignature(
        kid(A), A, NOW, None, "n-1", ("@method", "@target-uri", "content-digest")
    )


def test_get_without_body_covers_no_digest() -> None:
    uri = f"{A}/np/streams/classes/c?after=5"
    headers = httpsig.sign_request(
        method="GET", target_uri=uri, body=None, signing_key=KEY, keyid=kid(A), created=NOW
    )
    assert "Content-Digest" not in headers
    result = verify(headers, method="GET", target_uri=uri, body=b"")
    assert result.components == ("@method", "@target-uri")


def test_headers_as_lines_and_any_case() -> None:
    lines = [(name.lower(), value) for name, value in sign().items()]
    assert verify(lines).keyid == kid(A)


# -- The oracle, both directions -------------------------------------------------


@dataclass
class OracleRequest:
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)


def oracle_keys() -> MappingKeyResolver:
    return MappingKeyResolver(
        public_keys={kid(A): ed25519.Ed25519PublicKey.from_public_bytes(bytes(KEY.verify_key))},
        private_keys={kid(A): ed25519.Ed25519PrivateKey.from_private_bytes(bytes(KEY))},
    )


def test_our_signature_verifies_with_the_oracle() -> None:
    # The oracle reads the real clock: sign "now" for it (no timing is asserted).
    now = int(time.time())
    request = OracleRequest("PUT", URI, sign(created=now, nonce="abc"))
    verifier = HTTPMessageVerifier(
        signature_algorithm=algorithms.ED25519, key_resolver=oracle_keys()
    )
    (result,) = verifier.verify(
        request,
        expect_tag="np1",
        require_components=("@method", "@target-uri", "content-digest"),
        body=BODY,
    )
    assert result.parameters["keyid"] == kid(A) and result.nonce == "abc"
    request.headers["Content-Digest"] = content_digest(BODY + b" ")
    with pytest.raises(InvalidSignature):
        verifier.verify(request, expect_tag="np1", body=BODY)


def test_oracle_signature_verifies_with_ours() -> None:
    request = OracleRequest("PUT", URI)
    HTTPMessageSigner(signature_algorithm=algorithms.ED25519, key_resolver=oracle_keys()).sign(
        request,
        key_id=kid(A),
        created=datetime.datetime.fromtimestamp(NOW, datetime.UTC),
        nonce="oracle-nonce",
        tag="np1",
        label="sig1",
        covered_component_ids=("@method", "@target-uri"),
        body=BODY,
    )
    result = verify(request.headers)
    assert result.nonce == "oracle-nonce"
    assert set(result.components) == {"@method", "@target-uri", "content-digest"}
    with pytest.raises(BadSignature):
        verify(request.headers, target_uri=URI + "x")


# -- Clock window, replay-relevant parameters ----------------------------------


@pytest.mark.parametrize("offset", [-300, -299, 0, 299, 300])
def test_created_within_300_seconds_is_accepted(offset: int) -> None:
    assert verify(sign(created=NOW + offset)).created == NOW + offset


@pytest.mark.parametrize("offset", [-301, 301, -600, 600])
def test_created_outside_300_seconds_is_stale(offset: int) -> None:
    with pytest.raises(SignatureStale) as info:
        verify(sign(created=NOW + offset))
    assert info.value.server_time == NOW and info.value.reason == "stale_signature"


def test_expired_signature_is_stale() -> None:
    with pytest.raises(SignatureStale, match="expired"):
        verify(sign(created=NOW - 200, expires=NOW - 400))
    assert verify(sign(created=NOW - 10, expires=NOW + 60)).expires == NOW + 60


def test_nonce_and_created_are_signed() -> None:
    headers = sign(nonce="first")
    for old, new in (
        ('nonce="first"', 'nonce="second"'),
        ("created=1756713600", "created=1756713601"),
    ):
        tampered = {**headers, "Signature-Input": headers["Signature-Input"].replace(old, new)}
        with pytest.raises(BadSignature):
            verify(tampered)


def test_same_request_twice_verifies_twice_for_the_caller_to_dedupe() -> None:
    # Replays inside the window are the inbox's business (idempotent txn ids and
    # the nonce); the verifier returns what it needs to detect them.
    headers = sign(nonce="once")
    assert verify(headers) == verify(headers)


# -- Keys ---------------------------------------------------------------------------


def test_wrong_key_fails() -> None:
    with pytest.raises(BadSignature):
        verify(sign(), lookup_key=lookup({kid(A): signing_key("other").verify_key}))


def test_unknown_key() -> None:
    with pytest.raises(UnknownKey):
        verify(sign(), lookup_key=lookup({}))


def test_non_peer_is_refused_by_the_lookup_before_anything_else() -> None:
    calls: list[str] = []

    def refuse(keyid: str) -> nacl.signing.VerifyKey | None:
        calls.append(keyid)
        raise NotAPeer(f"{keyid} is not a peer")

    with pytest.raises(NotAPeer):
        verify(sign(created=NOW - 10_000), lookup_key=refuse)  # stale too, but 403 comes first
    assert calls == [kid(A)]
    calls.clear()
    with pytest.raises(SignatureMalformed):
        verify({**sign(), "Signature-Input": "np=("}, lookup_key=refuse)
    assert calls == []  # a malformed request never reaches the key lookup


# -- What the signature binds ---------------------------------------------------------


def test_wrong_method_fails() -> None:
    with pytest.raises(BadSignature):
        verify(sign(), method="POST")


def test_wrong_target_uri_fails() -> None:
    # The same captured request presented to another node, or another path.
    for other in (f"{A}/np/inbox/txn/01J8Z6R4ABCDEFGHJKMNPQRSTV", URI.replace("01J8", "01J9")):
        with pytest.raises(BadSignature):
            verify(sign(), target_uri=other)


def test_body_tamper_fails_on_the_digest() -> None:
    with pytest.raises(DigestMismatch):
        verify(sign(), body=BODY + b" ")


def test_body_and_digest_tamper_fails_on_the_signature() -> None:
    forged_body = b'{"activities":[1],"np":1}'
    headers = {**sign(), "Content-Digest": content_digest(forged_body)}
    with pytest.raises(BadSignature):
        verify(headers, body=forged_body)


def test_missing_digest_header_fails() -> None:
    headers = sign()
    del headers["Content-Digest"]
    with pytest.raises(DigestMismatch):
        verify(headers)


# -- Missing components and malformed headers ---------------------------------------


def resign(sig_input: str) -> dict[str, str]:
    """Headers whose Signature-Input is ``sig_input``, correctly signed over it."""
    (params, _), *_ = httpsig.parse_signature_fields(sig_input, "np=:" + "A" * 86 + "==:").values()
    headers = {"Content-Digest": content_digest(BODY)}
    base = httpsig.signature_base(method="PUT", target_uri=URI, headers=headers, params=params)
    signature = base64.b64encode(KEY.sign(base).signature).decode()
    return {**headers, "Signature-Input": sig_input, "Signature": f"np=:{signature}:"}


PARAMS = f';created={NOW};keyid="{kid(A)}";alg="ed25519";tag="np1"'


@pytest.mark.parametrize(
    ("sig_input", "match"),
    [
        ('np=("@method" "@target-uri")' + PARAMS, "content-digest"),
        ('np=("@method" "content-digest")' + PARAMS, "@target-uri"),
        ('np=("@target-uri" "content-digest")' + PARAMS, "@method"),
        (
            'np=("@method" "@target-uri" "content-digest")'
            + PARAMS.replace('"ed25519"', '"rsa-pss-sha512"'),
            "alg",
        ),
        (
            'np=("@method" "@target-uri" "content-digest")' + PARAMS.replace(f";created={NOW}", ""),
            "created",
        ),
        ('np=("@method" "@target-uri" "content-digest")' + PARAMS + ";foo=1", "not allowed"),
        (
            'np=("@method" "@target-uri" "content-digest")'
            + PARAMS.replace(f"={NOW}", f'="{NOW}"'),
            "created",
        ),
        ('np=("@method" "@target-uri" "@method" "content-digest")' + PARAMS, "repeated"),
        ('np=("@method" "@target-uri" "content-digest";sf)' + PARAMS, "parameters"),
        (
            'np=("@method" "@target-uri" "content-digest")'
            + PARAMS.replace(kid(A), "test-key-ed25519"),
            "key id",
        ),
    ],
)
def test_profile_violations_are_malformed(sig_input: str, match: str) -> None:
    with pytest.raises(SignatureMalformed, match=match):
        verify(resign(sig_input))


def test_wrong_tag_means_no_np1_signature() -> None:
    with pytest.raises(SignatureMissing):
        verify(
            resign(
                'np=("@method" "@target-uri" "content-digest")' + PARAMS.replace('"np1"', '"np2"')
            )
        )


def test_missing_headers() -> None:
    headers = sign()
    for name in ("Signature", "Signature-Input"):
        with pytest.raises(SignatureMissing):
            verify({k: v for k, v in headers.items() if k != name})


def test_duplicate_label_across_repeated_lines_is_malformed() -> None:
    headers = sign()
    lines = [
        *headers.items(),
        ("Signature-Input", headers["Signature-Input"]),
        ("Signature", headers["Signature"]),
    ]
    with pytest.raises(SignatureMalformed):
        verify(lines)


def test_two_np1_signatures_are_ambiguous() -> None:
    headers = sign()
    other = sign(created=NOW - 1)
    lines = [
        ("Content-Digest", headers["Content-Digest"]),
        ("Signature-Input", headers["Signature-Input"]),
        ("Signature-Input", other["Signature-Input"].replace("np=", "np2=", 1)),
        ("Signature", headers["Signature"]),
        ("Signature", other["Signature"].replace("np=", "np2=", 1)),
    ]
    with pytest.raises(SignatureMalformed, match="2 signatures"):
        verify(lines)


def test_other_tagged_signatures_are_ignored() -> None:
    headers = sign()
    lines = [
        ("Content-Digest", headers["Content-Digest"]),
        (
            "Signature-Input",
            headers["Signature-Input"] + ', proxy=("@method");created=1;keyid="x";tag="edge"',
        ),
        ("Signature", headers["Signature"] + ", proxy=:AAAA:"),
    ]
    assert verify(lines).keyid == kid(A)


@pytest.mark.parametrize(
    "change",
    [
        {"Signature": "np=:AAAA:"},  # not 64 bytes
        {"Signature": "np=abc"},  # not a byte sequence
        {"Signature": "other=:AAAA:"},  # labels differ
        {"Signature-Input": "np=@method"},
        {"Signature-Input": 'np="@method"'},
        {"Signature-Input": 'np=("@method" "@target-uri" "content-digest");created=1;créé=2'},
    ],
)
def test_malformed_headers(change: dict[str, str]) -> None:
    with pytest.raises(SignatureMalformed):
        verify({**sign(), **change})


def test_unsupported_component_is_malformed() -> None:
    sig_input = 'np=("@method" "@target-uri" "content-digest" "@status")' + PARAMS
    with pytest.raises(SignatureMalformed, match="@status"):
        verify(resign(sig_input))


def test_sign_request_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match="body"):
        sign(body=None)
    with pytest.raises(ValueError, match="upper-case"):
        sign(method="put")
    with pytest.raises(ValueError, match="target URI"):
        sign(target_uri="https://Ecole-B.example/np/inbox")
    with pytest.raises(ValueError, match="fragment"):
        sign(target_uri=URI + "#x")
    with pytest.raises(ValueError):
        sign(keyid="test-key-ed25519")
