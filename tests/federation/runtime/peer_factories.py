"""A simulated peer school for the federation runtime tests: its keys, document and signed requests.

``FakePeer`` plays the other node: its node document is served by
pytest-httpx, and it signs requests to the node under test exactly as a
real node would.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import nacl.signing
from pytest_httpx import HTTPXMock
from quart.typing import TestClientProtocol as Client

from federation.activity import build_activity
from federation.httpsig import sign_request
from federation.keys import fingerprint, key_id
from federation.nodedoc import NodeKey, build_node_document
from federation.transaction import build_transaction
from node.services.context import ServiceContext
from node.storage.db import Storage
from tests.conftest import PUBLIC_URL
from tests.factories import api_login, make_school

B = "https://ecole-b.example"
DOC = B + "/.well-known/carnet-node"


@dataclass
class FakePeer:
    origin: str = B
    keys: dict[str, nacl.signing.SigningKey] = field(
        default_factory=lambda: {"k1": nacl.signing.SigningKey.generate()}
    )
    next_key: NodeKey | None = None

    def document(self, **extra: Any) -> bytes:
        now = int(time.time())
        doc = build_node_document(
            origin=self.origin, name="École B", signing_keys=self.keys,
            valid_from={name: now - 60 for name in self.keys}, issued_at=now,
            valid_until=now + 86400, next_key=self.next_key, **extra,
        )  # fmt: skip
        return json.dumps(doc).encode()

    def fingerprints(self) -> list[str]:
        return [fingerprint(k.verify_key) for k in self.keys.values()]

    def headers(
        self, path: str, body: bytes | None, *, name: str = "k1", created: int | None = None,
        key: nacl.signing.SigningKey | None = None,
    ) -> dict[str, str]:  # fmt: skip
        return sign_request(
            method="POST", target_uri=PUBLIC_URL + path, body=body,
            signing_key=key or self.keys[name], keyid=key_id(self.origin, name),
            created=created or int(time.time()),
        )  # fmt: skip


async def as_admin(
    client: Client, storage: Storage, ctx: ServiceContext, *, school: bool = True
) -> dict[str, str]:
    """Log the school's admin in (making the school first, unless it exists)."""
    if school:
        make_school(storage, ctx)
    token = (await api_login(client, "admin@school.test"))["csrf_token"]
    return {"X-CSRF-Token": token}


async def peered(
    client: Client, storage: Storage, ctx: ServiceContext, httpx_mock: HTTPXMock, peer: FakePeer,
    *, school: bool = True,
) -> dict[str, Any]:  # fmt: skip
    headers = await as_admin(client, storage, ctx, school=school)
    httpx_mock.add_response(url=DOC, content=peer.document())
    added = await client.post("/api/v1/admin/peers", json={"origin": B}, headers=headers)
    assert added.status_code == 201, await added.get_data(as_text=True)
    view = await added.get_json()
    confirmed = await client.post(
        f"/api/v1/admin/peers/{view['id']}/confirm",
        json={"fingerprints": peer.fingerprints()},
        headers=headers,
    )
    assert confirmed.status_code == 200
    result: dict[str, Any] = await confirmed.get_json()
    return result


STREAM = B + "/classes/cm2"
_txn_counter = iter(range(1, 10**6))


def txn_id() -> str:
    """A fresh ULID-shaped transaction id (Crockford base32, 26 characters)."""
    return f"01J8Z6R4{next(_txn_counter):018d}"


def note(peer: FakePeer, n: int, content: str | None = None) -> dict[str, Any]:
    return {
        "id": f"{peer.origin}/posts/{n}",
        "type": "Note",
        "version": 1,
        "attributedTo": f"{peer.origin}/users/teacher",
        "content": content or f"ciphertext {n}",
    }


def activity(
    peer: FakePeer, seq: int, *, type: str = "Create", stream: str = STREAM,
    to: list[str] | None = None, key: nacl.signing.SigningKey | None = None,
    content: str | None = None, object: str | dict[str, Any] | None = None,
    actor: str | None = None, extra: dict[str, Any] | None = None,
) -> dict[str, Any]:  # fmt: skip
    return build_activity(
        id=f"{peer.origin}/np/act/{stream.rsplit('/', 1)[-1]}-{seq}", type=type,
        actor=actor or f"{peer.origin}/users/teacher", stream=stream, seq=seq,
        published=int(time.time()), audience=stream + "#members",
        object=object if object is not None else note(peer, seq, content), extra=extra,
        signing_key=key or peer.keys["k1"], keyid=key_id(peer.origin, "k1"),
        to=to or [PUBLIC_URL + "/users/7"],
    )  # fmt: skip


def transaction(
    peer: FakePeer, txn: str, activities: list[dict[str, Any]],
    streams: dict[str, tuple[int, int]] | None = None,
) -> bytes:  # fmt: skip
    if streams is None:
        seqs = [a["seq"] for a in activities]
        streams = {STREAM: (min(seqs) - 1, max(seqs))}
    return build_transaction(
        txn_id=txn, origin=peer.origin, destination=PUBLIC_URL,
        activities=activities, streams=streams,
    )  # fmt: skip


async def put_transaction(client: Client, peer: FakePeer, txn: str, body: bytes) -> Any:
    path = f"/np/inbox/txn/{txn}"
    headers = sign_request(
        method="PUT", target_uri=PUBLIC_URL + path, body=body, signing_key=peer.keys["k1"],
        keyid=key_id(peer.origin, "k1"), created=int(time.time()),
    )  # fmt: skip
    return await client.put(path, data=body, headers=headers)
