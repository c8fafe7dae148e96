"""Build Web Push requests: a VAPID ``Authorization`` header and an aes128gcm body.

- Encryption (RFC 8291, ``Content-Encoding: aes128gcm``, RFC 8188) is done
  by ``pywebpush``, which wraps ``http_ece``: an ephemeral P-256 key per
  message, ECDH with the browser's ``p256dh`` key, the browser's ``auth``
  secret.  Only the browser can read the payload; the push service cannot.
- VAPID (RFC 8292) is an ES256 JWT signed with the node's P-256 key
  (``vapid-private.pem``), whose ``aud`` is the push service's origin,
  ``exp`` at most 24 hours ahead and ``sub`` a contact URL, sent as
  ``Authorization: vapid t=<jwt>, k=<public key>``.  Browsers bind a
  subscription to the public key, so the push service refuses anyone else.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from pywebpush import WebPusher

#: Lifetime of a VAPID token; RFC 8292 allows at most 24 hours.
TOKEN_LIFETIME = 12 * 3600
#: A cached token is renewed when less than this remains.
TOKEN_RENEW_BEFORE = 3600
#: How long a push service keeps a notice for a device that is offline (RFC 8030 TTL).
DEFAULT_TTL = 24 * 3600


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def audience(endpoint: str) -> str:
    """The origin of a push endpoint, the JWT ``aud`` (RFC 8292 §2)."""
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc}"


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


def encrypt(p256dh: str, auth: str, data: bytes) -> bytes:
    """The aes128gcm body for one browser (RFC 8291): only its private key opens it."""
    pusher = WebPusher({"endpoint": "unused:", "keys": {"p256dh": p256dh, "auth": auth}})
    body: bytes = pusher.encode(data, "aes128gcm")["body"]
    return body


@dataclass(frozen=True)
class PushRequest:
    url: str
    headers: dict[str, str]
    body: bytes


def build_request(
    signer: VapidSigner,
    endpoint: str,
    p256dh: str,
    auth: str,
    payload: Mapping[str, Any],
    *,
    urgency: str = "normal",
    ttl: int = DEFAULT_TTL,
    topic: str | None = None,
) -> PushRequest:
    """The POST that delivers ``payload`` (JSON) to one browser through its push service."""
    data = json.dumps(dict(payload), ensure_ascii=False, separators=(",", ":")).encode()
    headers = {
        "Authorization": signer.authorization(endpoint),
        "Content-Encoding": "aes128gcm",
        "Content-Type": "application/octet-stream",
        "TTL": str(ttl),
        "Urgency": urgency,
    }
    if topic is not None:
        headers["Topic"] = topic  # replaces an undelivered notice with the same topic
    return PushRequest(endpoint, headers, encrypt(p256dh, auth, data))


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
    if value.isdigit():
        return int(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    moment = now or dt.datetime.now(dt.UTC)
    return max(0, int((when - moment).total_seconds()))
