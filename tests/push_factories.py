"""A browser's side of Web Push, for tests: subscriber keys, decrypting what arrives, reading VAPID.

``FakeBrowser`` plays what ``PushManager.subscribe`` makes in a real
browser: a P-256 key pair and a 16-byte auth secret.  Its endpoint is on
127.0.0.1, which the node accepts only because the test node itself runs
on http://127.0.0.1; pytest-httpx stands in for the push service.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
from dataclasses import dataclass, field
from typing import Any

import http_ece
import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from node.services import notifications
from node.services.context import Actor, ServiceContext
from node.storage.db import Storage
from node.storage.feed import Message
from node.storage.groups import E2eGroup


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class FakeBrowser:
    endpoint: str
    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth_secret: bytes = field(default_factory=lambda: os.urandom(16))

    @property
    def p256dh(self) -> str:
        raw = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return b64(raw)

    @property
    def auth(self) -> str:
        return b64(self.auth_secret)

    def subscribe(
        self, storage: Storage, ctx: ServiceContext, actor: Actor
    ) -> notifications.SubscriptionView:
        return storage.call(
            notifications.subscribe, ctx, actor, self.endpoint, self.p256dh, self.auth, "Firefox"
        )

    def open(self, request: httpx.Request) -> dict[str, Any]:
        """Decrypt a push message as the browser does (RFC 8291) and parse its JSON."""
        plain = http_ece.decrypt(
            request.content,
            private_key=self.private_key,
            auth_secret=self.auth_secret,
            version="aes128gcm",
        )
        payload: dict[str, Any] = json.loads(plain)
        return payload


def fake_browser(n: int = 1) -> FakeBrowser:
    return FakeBrowser(f"http://127.0.0.1:9/push/device-{n}-{os.urandom(4).hex()}")


def vapid_claims(request: httpx.Request, node_public_key: str) -> dict[str, Any]:
    """Check the VAPID header as a push service does (RFC 8292) and return the JWT claims."""
    scheme, _, params = request.headers["Authorization"].partition(" ")
    assert scheme == "vapid"
    fields = dict(part.strip().split("=", 1) for part in params.split(","))
    assert fields["k"] == node_public_key
    header_b64, claims_b64, signature_b64 = fields["t"].split(".")
    assert json.loads(unb64(header_b64)) == {"typ": "JWT", "alg": "ES256"}
    signature = unb64(signature_b64)
    assert len(signature) == 64
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64(node_public_key))
    # raises InvalidSignature when the token was not signed by the node's key
    public.verify(der, f"{header_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    claims: dict[str, Any] = json.loads(unb64(claims_b64))
    return claims


def make_message(
    storage: Storage, class_id: int, author_id: int, ciphertext: str = "c2VjcmV0"
) -> tuple[int, str]:
    """A post row as the feed stores it (the real feed's services are tested on their own)."""

    def create() -> tuple[int, str]:
        now = dt.datetime(2026, 1, 15, 12, 0)
        group = E2eGroup.get_or_none(E2eGroup.school_class == class_id) or E2eGroup.create(
            public_id="G" * 22,
            school_class=class_id,
            admins="[]",
            head_seq=0,
            head_hash="h" * 43,
            created_at=now,
        )
        public_id = os.urandom(11).hex()[:22]
        row = Message.create(
            group=group,
            public_id=public_id,
            kind="post",
            author=author_id,
            author_member="m",
            epoch=0,
            version=1,
            header="{}",
            ct=ciphertext,
            sig="s",
            created_at=now,
            updated_at=now,
        )
        return row.id, public_id

    return storage.call(create)
