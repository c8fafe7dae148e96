"""Build Web Push requests: a VAPID ``Authorization`` header and an aes128gcm body.

- Encryption (RFC 8291, ``Content-Encoding: aes128gcm``, RFC 8188) is done
  here with ``cryptography``: a fresh P-256 key pair and a fresh salt for
  every message (every device of every notification), ECDH with the
  browser's ``p256dh`` key, HKDF keyed by the browser's ``auth`` secret,
  AES-128-GCM over one record.  Only the browser can read the payload; the
  push service cannot.  ``encrypt_with`` reproduces the RFC's own example
  (§5, Appendix A), which the tests check byte for byte.
- VAPID (RFC 8292) is an ES256 JWT signed with the node's P-256 key
  (``vapid-private.pem``), whose ``aud`` is the push service's origin,
  ``exp`` at most 24 hours ahead and ``sub`` a contact URL, sent as
  ``Authorization: vapid t=<jwt>, k=<public key>``.  Browsers bind a
  subscription to the public key, so the push service refuses anyone else.
  One token serves every push to an origin until an hour before it expires
  (``VapidSigner``): a fan-out to 2,000 devices signs once, not 2,000 times.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import email.utils
import hmac
import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

#: Lifetime of a VAPID token; RFC 8292 allows at most 24 hours.
TOKEN_LIFETIME = 12 * 3600
#: A cached token is renewed when less than this remains.
TOKEN_RENEW_BEFORE = 3600
#: Tokens kept at once (one per push service origin).
MAX_AUDIENCES = 1000
#: How long a push service keeps a notice for a device that is offline (RFC 8030 TTL).
DEFAULT_TTL = 24 * 3600
#: The record size the aes128gcm header announces (RFC 8188 §2.1): the whole message is one record.
RECORD_SIZE = 4096
#: Push services need accept only 4,096-octet bodies (RFC 8030 §7.2): 86 octets of header,
#: 16 of tag and the 1-octet padding delimiter leave this much for the JSON.
MAX_PLAINTEXT = RECORD_SIZE - 86 - 16 - 1


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def audience(endpoint: str) -> str:
    """The origin of a push endpoint, the JWT ``aud`` (RFC 8292 §2): no default port."""
    parts = urlsplit(endpoint)
    netloc = parts.netloc
    if (parts.scheme, parts.port) in (("https", 443), ("http", 80)):
        netloc = netloc.rsplit(":", 1)[0]
    return f"{parts.scheme}://{netloc}"


class VapidSigner:
    """Signs VAPID tokens with the node's key, one per push service origin, cached.

    Thread-safe: the worker builds requests in a thread.
    """

    def __init__(
        self,
        private_key: ec.EllipticCurvePrivateKey,
        subject: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = private_key
        self._subject = subject
        self._clock = clock
        self._cache: dict[str, tuple[int, str]] = {}
        self._lock = threading.Lock()
        raw = private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        #: The application server key browsers subscribe with (base64url, 65 bytes).
        self.public_key = b64url(raw)

    def token(self, aud: str) -> str:
        """A JWT for ``aud``, reused until an hour before it expires."""
        now = int(self._clock())
        with self._lock:
            cached = self._cache.get(aud)
            if cached is not None and cached[0] - now > TOKEN_RENEW_BEFORE:
                return cached[1]
            expires = now + TOKEN_LIFETIME
            token = self._sign({"aud": aud, "exp": expires, "sub": self._subject})
            if len(self._cache) >= MAX_AUDIENCES:  # a handful of push services in practice
                self._cache.clear()
            self._cache[aud] = (expires, token)
            return token

    def authorization(self, endpoint: str) -> str:
        return f"vapid t={self.token(audience(endpoint))}, k={self.public_key}"

    def _sign(self, claims: Mapping[str, Any]) -> str:
        header = b64url(json.dumps({"typ": "JWT", "alg": "ES256"}, separators=(",", ":")).encode())
        body = b64url(json.dumps(dict(claims), separators=(",", ":")).encode())
        signing_input = f"{header}.{body}".encode()
        der = self._key.sign(signing_input, ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        # JWS ES256 wants the raw 64-byte r || s, not DER (RFC 7518 §3.4).
        return f"{header}.{body}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def unb64url(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, binascii.Error):
        raise ValueError("not base64url") from None


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.digest(key, message, "sha256")


def encrypt(p256dh: str, auth: str, data: bytes) -> bytes:
    """The aes128gcm body for one browser (RFC 8291): only its private key opens it.

    A new ephemeral key pair and salt for every message, as RFC 8291 §2
    describes ("when sending a message, an application server generates an
    ECDH key pair and a random salt"): reusing either across devices or
    notifications is not allowed, and would save little (the ECDH with each
    browser's key is the cost, and it is per device anyway).

    Raises:
        ValueError: a malformed browser key or secret, or ``data`` longer
            than ``MAX_PLAINTEXT``.
    """
    return encrypt_with(
        unb64url(p256dh),
        unb64url(auth),
        data,
        ec.generate_private_key(ec.SECP256R1()),
        os.urandom(16),
    )


def encrypt_with(
    ua_public: bytes,
    auth_secret: bytes,
    data: bytes,
    as_private: ec.EllipticCurvePrivateKey,
    salt: bytes,
) -> bytes:
    """RFC 8291 §3.4 with the sender's key pair and salt given (the RFC's example fixes both).

    Only ``encrypt`` should call this outside tests: a key pair or salt
    used twice breaks the scheme.
    """
    if len(data) > MAX_PLAINTEXT:
        raise ValueError(f"push payload of {len(data)} bytes; at most {MAX_PLAINTEXT} fit")
    if len(auth_secret) != 16 or len(salt) != 16:
        raise ValueError("the auth secret and the salt are 16 bytes")
    # checks that the point is on the curve (a bad key must not reach ECDH)
    browser = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), ua_public)
    as_public = as_private.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    ecdh_secret = as_private.exchange(ec.ECDH(), browser)
    # HKDF (RFC 5869) with outputs of at most 32 bytes is one HMAC per step:
    # Extract(salt, ikm) = HMAC(salt, ikm); Expand(prk, info, n) = HMAC(prk, info || 0x01)[:n].
    prk_key = _hmac(auth_secret, ecdh_secret)
    ikm = _hmac(prk_key, b"WebPush: info\x00" + ua_public + as_public + b"\x01")
    prk = _hmac(salt, ikm)
    cek = _hmac(prk, b"Content-Encoding: aes128gcm\x00\x01")[:16]
    nonce = _hmac(prk, b"Content-Encoding: nonce\x00\x01")[:12]
    header = salt + RECORD_SIZE.to_bytes(4, "big") + bytes([len(as_public)]) + as_public
    # one record, the last: the plaintext, then the 0x02 delimiter and no padding (RFC 8188 §2)
    return header + AESGCM(cek).encrypt(nonce, data + b"\x02", None)


def payload_bytes(payload: Mapping[str, Any]) -> bytes:
    """The JSON a notification's service worker receives, encoded once for all its devices."""
    return json.dumps(dict(payload), ensure_ascii=False, separators=(",", ":")).encode()


@dataclass(frozen=True)
class PushRequest:
    url: str
    headers: dict[str, str]
    body: bytes


def request_headers(
    signer: VapidSigner,
    endpoint: str,
    *,
    urgency: str = "normal",
    ttl: int = DEFAULT_TTL,
    topic: str | None = None,
) -> dict[str, str]:
    """The headers of a push to ``endpoint``: VAPID, the body's encoding, TTL, urgency."""
    headers = {
        "Authorization": signer.authorization(endpoint),
        "Content-Encoding": "aes128gcm",
        "Content-Type": "application/octet-stream",
        "TTL": str(ttl),
        "Urgency": urgency,
    }
    if topic is not None:
        headers["Topic"] = topic  # replaces an undelivered notice with the same topic
    return headers


def build_request(
    signer: VapidSigner,
    endpoint: str,
    p256dh: str,
    auth: str,
    payload: Mapping[str, Any] | bytes,
    *,
    urgency: str = "normal",
    ttl: int = DEFAULT_TTL,
    topic: str | None = None,
) -> PushRequest:
    """The POST that delivers ``payload`` (JSON, or ``payload_bytes``) to one browser.

    Raises:
        ValueError: a malformed subscription key, or a payload too long.
    """
    data = payload if isinstance(payload, bytes) else payload_bytes(payload)
    headers = request_headers(signer, endpoint, urgency=urgency, ttl=ttl, topic=topic)
    return PushRequest(endpoint, headers, encrypt(p256dh, auth, data))


def encrypt_all(items: list[tuple[str, str, bytes]]) -> list[bytes | ValueError]:
    """``encrypt`` for each (p256dh, auth, JSON): a body, or the ValueError that push raised."""
    out: list[bytes | ValueError] = []
    for p256dh, auth, data in items:
        try:
            out.append(encrypt(p256dh, auth, data))
        except ValueError as error:
            out.append(error)
    return out


def classify(status: int, retry_after: str | None = None) -> tuple[str, int | None]:
    """What a push service's status code means for the subscription and the notice.

    Returns ``(outcome, seconds)``: ``ok`` (2xx); ``gone`` (404, 410: the
    browser unsubscribed, delete it); ``retry`` (429, 5xx, with the
    ``Retry-After`` delay if given); ``rejected`` (any other answer: do not
    resend this notice).
    """
    if 200 <= status < 300:
        return "ok", None
    if status in (404, 410):
        return "gone", None
    if status == 429 or status >= 500:
        return "retry", parse_retry_after(retry_after)
    return "rejected", None


def parse_retry_after(value: str | None, now: dt.datetime | None = None) -> int | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # not "²": int() refuses it
        return int(value[:9])
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    moment = now or dt.datetime.now(dt.UTC)
    return max(0, int((when - moment).total_seconds()))
