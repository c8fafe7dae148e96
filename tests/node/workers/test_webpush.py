"""Web Push requests without I/O: RFC 8291 encryption against the RFC's own example, VAPID token reuse.

Crypto in threes: a known-good vector, a round trip through an independent
implementation (``http_ece``, what browsers' code was checked against), and
tampering that must fail.
"""

from __future__ import annotations

import json

import http_ece
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from node.push import webpush
from node.push.webpush import (
    MAX_PLAINTEXT,
    TOKEN_LIFETIME,
    TOKEN_RENEW_BEFORE,
    VapidSigner,
    audience,
    build_request,
    encrypt,
    encrypt_with,
    unb64url,
)
from tests.push_factories import FakeBrowser, vapid_claims

# RFC 8291 §5 and Appendix A
RFC_PLAINTEXT = b"When I grow up, I want to be a watermelon"
RFC_UA_PUBLIC = (
    "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
)
RFC_UA_PRIVATE = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"
RFC_AUTH = "BTBZMqHH6r4Tts7J_aSIgg"
RFC_AS_PRIVATE = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"
RFC_SALT = "DGv6ra1nlYgDCS1FRnbzlw"
RFC_BODY = (
    "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6Tlz"
    "AC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
)


def key_from(private: str) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int.from_bytes(unb64url(private), "big"), ec.SECP256R1())


def test_encryption_matches_the_rfc_8291_example_byte_for_byte() -> None:
    body = encrypt_with(
        unb64url(RFC_UA_PUBLIC),
        unb64url(RFC_AUTH),
        RFC_PLAINTEXT,
        key_from(RFC_AS_PRIVATE),
        unb64url(RFC_SALT),
    )
    assert body == unb64url(RFC_BODY)
    # and the browser of the example opens it
    opened = http_ece.decrypt(
        body,
        private_key=key_from(RFC_UA_PRIVATE),
        auth_secret=unb64url(RFC_AUTH),
        version="aes128gcm",
    )
    assert opened == RFC_PLAINTEXT


def test_every_message_gets_a_fresh_key_and_salt_and_only_the_browser_opens_it() -> None:
    browser = FakeBrowser("https://push.example/x")
    data = json.dumps({"kind": "alert"}).encode()
    first, second = (
        encrypt(browser.p256dh, browser.auth, data),
        encrypt(browser.p256dh, browser.auth, data),
    )
    # header: salt (16) | record size (4) | key id length (1) | sender's public key (65)
    assert first[:16] != second[:16] and first[21:86] != second[21:86]
    for body in (first, second):
        request = httpx.Request("POST", browser.endpoint, content=body)
        assert browser.open(request) == {"kind": "alert"}
    stranger = FakeBrowser("https://push.example/y")  # another browser's key: cannot open it
    with pytest.raises(http_ece.ECEException):
        stranger.open(httpx.Request("POST", browser.endpoint, content=first))
    tampered = bytearray(first)
    tampered[-1] ^= 1
    with pytest.raises(http_ece.ECEException):
        browser.open(httpx.Request("POST", browser.endpoint, content=bytes(tampered)))


def test_what_cannot_be_encrypted_is_refused() -> None:
    browser = FakeBrowser("https://push.example/x")
    body = encrypt(browser.p256dh, browser.auth, b"x" * MAX_PLAINTEXT)
    assert len(body) == 4096  # what every push service must accept (RFC 8030 §7.2)
    with pytest.raises(ValueError, match="at most"):
        encrypt(browser.p256dh, browser.auth, b"x" * (MAX_PLAINTEXT + 1))
    with pytest.raises(ValueError):  # not a point on P-256
        encrypt("BA" + "A" * 85, browser.auth, b"{}")
    with pytest.raises(ValueError):
        encrypt(browser.p256dh, "c2hvcnQ", b"{}")  # a 5-byte secret
    with pytest.raises(ValueError):
        encrypt(browser.p256dh, "not*base64", b"{}")


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_one_vapid_token_per_push_service_renewed_an_hour_before_it_expires(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    clock = Clock(1_800_000_000)
    signer = VapidSigner(key, "https://ecole.example", clock=clock)
    signed: list[dict[str, object]] = []
    real_sign = signer._sign

    def counting(claims: dict[str, object]) -> str:
        signed.append(dict(claims))
        return real_sign(claims)

    monkeypatch.setattr(signer, "_sign", counting)
    fcm = [signer.authorization(f"https://fcm.googleapis.com/fcm/send/d{n}") for n in range(500)]
    mozilla = signer.authorization("https://updates.push.services.mozilla.com/wpush/v2/x")
    assert len(set(fcm)) == 1 and mozilla != fcm[0]
    assert [c["aud"] for c in signed] == [
        "https://fcm.googleapis.com",
        "https://updates.push.services.mozilla.com",
    ]
    assert signed[0]["exp"] == clock.now + TOKEN_LIFETIME <= clock.now + 24 * 3600

    clock.now += TOKEN_LIFETIME - TOKEN_RENEW_BEFORE - 1  # more than an hour left: kept
    assert signer.authorization("https://fcm.googleapis.com/fcm/send/d1") == fcm[0]
    clock.now += 1  # an hour left: renewed, a push service never sees an expired token
    renewed = signer.authorization("https://fcm.googleapis.com/fcm/send/d1")
    assert renewed != fcm[0] and len(signed) == 3
    assert signed[2]["exp"] == clock.now + TOKEN_LIFETIME

    # what a push service checks: the node's key signed it, for its origin
    request = httpx.Request(
        "POST", "https://fcm.googleapis.com/x", headers={"Authorization": renewed}
    )
    claims = vapid_claims(request, signer.public_key)
    assert claims == {
        "aud": "https://fcm.googleapis.com",
        "exp": signed[2]["exp"],
        "sub": "https://ecole.example",
    }


def test_the_audience_is_the_origin_without_a_default_port() -> None:
    assert audience("https://fcm.googleapis.com:443/fcm/send/x") == "https://fcm.googleapis.com"
    assert audience("https://push.example:8443/x") == "https://push.example:8443"
    assert audience("http://127.0.0.1:9/push/d") == "http://127.0.0.1:9"


def test_a_request_carries_ttl_urgency_and_the_encrypted_json() -> None:
    browser = FakeBrowser("https://push.example/x")
    signer = VapidSigner(ec.generate_private_key(ec.SECP256R1()), "https://ecole.example")
    payload = {"kind": "alert", "title": "École"}
    request = build_request(
        signer, browser.endpoint, browser.p256dh, browser.auth, payload, urgency="high"
    )
    assert (
        request.headers["Urgency"] == "high" and int(request.headers["TTL"]) == webpush.DEFAULT_TTL
    )
    assert request.headers["Content-Encoding"] == "aes128gcm"
    sent = httpx.Request("POST", request.url, headers=request.headers, content=request.body)
    assert browser.open(sent) == payload
    same = build_request(
        signer, browser.endpoint, browser.p256dh, browser.auth, webpush.payload_bytes(payload)
    )
    assert browser.open(httpx.Request("POST", same.url, content=same.body)) == payload
