"""Plain-function factories for the NP/1 tests: fixed keys, nodes, documents, activities."""

from __future__ import annotations

import hashlib
from typing import Any

import nacl.signing

from federation.activity import build_activity
from federation.keys import key_id
from federation.nodedoc import NodeKey, build_node_document

A = "https://ecole-a.example"
B = "https://ecole-b.example"
C = "http://127.0.0.1:8003"
NOW = 1_756_713_600  # 2025-09-01T08:00:00Z
DAY = 24 * 3600
TXN_ID = "01J8Z6R4ABCDEFGHJKMNPQRSTV"


def signing_key(label: str) -> nacl.signing.SigningKey:
    """A deterministic Ed25519 key per label (never random: failures must reproduce)."""
    return nacl.signing.SigningKey(hashlib.sha256(label.encode()).digest())


def kid(origin: str = A, name: str = "k1") -> str:
    return key_id(origin, name)


def node_document(
    origin: str = A,
    *,
    keys: dict[str, nacl.signing.SigningKey] | None = None,
    issued_at: int = NOW,
    valid_for: int = 7 * DAY,
    **extra: Any,
) -> dict[str, Any]:
    keys = keys if keys is not None else {"k1": signing_key(origin + "#k1")}
    return build_node_document(
        origin=origin,
        name="École A",
        signing_keys=keys,
        valid_from={name: issued_at - DAY for name in keys},
        issued_at=issued_at,
        valid_until=issued_at + valid_for,
        **extra,
    )


def old_key(origin: str = A, name: str = "k0", expired_at: int = NOW - DAY) -> NodeKey:
    return NodeKey(key_id(origin, name), signing_key(origin + "#" + name).verify_key, expired_at)


def note(origin: str = A, *, version: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"{origin}/posts/01J8Z6R3",
        "type": "Note",
        "version": version,
        "attributedTo": f"{origin}/users/t-martin",
        "content": "ciphertext-base64url",
        **extra,
    }


def activity(
    *,
    origin: str = A,
    destination: str = B,
    type: str = "Create",
    seq: int = 1,
    obj: Any = None,
    key: nacl.signing.SigningKey | None = None,
    keyid: str | None = None,
    to: list[str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A signed activity of ``origin``'s class stream, addressed to one parent on ``destination``."""
    stream = f"{origin}/classes/cm2-b"
    return build_activity(
        id=f"{origin}/act/{seq:026d}",
        type=type,
        actor=f"{origin}/users/t-martin",
        stream=stream,
        seq=seq,
        published=NOW,
        audience=stream + "#members",
        object=note(origin) if obj is None else obj,
        signing_key=key or signing_key(origin + "#k1"),
        keyid=keyid or kid(origin),
        to=to if to is not None else [f"{destination}/users/p-durand"],
        extra=extra or None,
    )
