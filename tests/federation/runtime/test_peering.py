"""Peering from the admin's side and signed requests from a peer's, through the test client.

The other school is played by ``FakePeer`` (its own keys and node document);
its document is served by pytest-httpx, so every outbound fetch is visible.
"""

from __future__ import annotations

import dataclasses
import json
import time

import nacl.signing
import pytest
from pytest_httpx import HTTPXMock
from quart import Quart
from quart.typing import TestClientProtocol as Client

from federation.httpsig import sign_request
from federation.keys import fingerprint, key_id
from federation.keystatements import build_revocation, build_rotation
from federation.nodedoc import NodeKey, verify_node_document
from federation.runtime.peers import normalize_origin
from node.errors import Invalid
from node.services.context import ServiceContext
from node.storage.db import Storage
from tests.conftest import PUBLIC_URL
from tests.factories import api_login, make_school
from tests.federation.runtime.peer_factories import DOC, B, FakePeer, as_admin, peered


async def test_the_node_serves_a_signed_document_naming_its_key(client: Client, app: Quart) -> None:
    response = await client.get("/.well-known/carnet-node")
    assert response.status_code == 200
    document = verify_node_document(
        await response.get_data(), origin=PUBLIC_URL, now=int(time.time())
    )
    signing_key = app.config["CARNET_KEYS"].signing_key
    assert [k.fingerprint for k in document.keys] == [fingerprint(signing_key.verify_key)]
    assert document.name == "École des Tests"
    again = await client.get("/.well-known/carnet-node")
    assert await again.get_data() == await response.get_data()  # not re-signed per request


async def test_an_admin_adds_a_peer_sees_its_fingerprint_and_confirms(
    client: Client, storage: Storage, ctx: ServiceContext, httpx_mock: HTTPXMock
) -> None:
    peer = FakePeer()
    headers = await as_admin(client, storage, ctx)
    httpx_mock.add_response(url=DOC, content=peer.document())
    added = await client.post(
        "/api/v1/admin/peers", json={"origin": "ecole-b.example/"}, headers=headers
    )
    assert added.status_code == 201
    view = await added.get_json()
    assert (view["origin"], view["name"], view["state"]) == (B, "École B", "pending")
    assert [(k["fingerprint"], k["state"]) for k in view["keys"]] == [
        (peer.fingerprints()[0], "new")
    ]
    wrong = await client.post(
        f"/api/v1/admin/peers/{view['id']}/confirm",
        json={"fingerprints": ["0000 0000 0000 0000 0000 0000 0000 0000"]},
        headers=headers,
    )
    assert wrong.status_code == 409
    assert "changed since they were shown" in (await wrong.get_json())["error"]["message"]
    confirmed = await client.post(
        f"/api/v1/admin/peers/{view['id']}/confirm",
        json={"fingerprints": peer.fingerprints()},
        headers=headers,
    )
    body = await confirmed.get_json()
    assert body["state"] == "active" and body["keys"][0]["state"] == "pinned"
    listed = await (await client.get("/api/v1/admin/peers")).get_json()
    assert [(p["origin"], p["state"], p["backlog"]) for p in listed] == [(B, "active", 0)]


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "Enter the address"),
        ("ftp://ecole-b.example", "address alone"),
        ("https://ecole-b.example/inbox", "address alone"),
        ("http://ecole-b.example", "must start with https://"),
        (PUBLIC_URL, "this school's own address"),
    ],
)
async def test_a_bad_peer_address_is_a_clear_400_and_nothing_is_fetched(
    client: Client, storage: Storage, ctx: ServiceContext, httpx_mock: HTTPXMock,
    typed: str, message: str,
) -> None:  # fmt: skip
    headers = await as_admin(client, storage, ctx)
    response = await client.post("/api/v1/admin/peers", json={"origin": typed}, headers=headers)
    assert response.status_code == 400
    assert message in (await response.get_json())["error"]["message"]
    assert httpx_mock.get_requests() == []


@pytest.mark.parametrize(
    ("public_url", "typed", "result"),
    [
        # the compose demo: schools on *.localhost (RFC 6761: loopback) over plain http
        ("http://a.localhost:8001", "http://b.localhost:8002", "http://b.localhost:8002"),
        ("https://ecole-a.example", "https://ecole-b.localhost", "this machine"),
        ("https://ecole-a.example", "http://ecole-b.localhost:8002", "must start with https://"),
    ],
)
def test_names_under_localhost_are_this_machine(
    ctx: ServiceContext, public_url: str, typed: str, result: str
) -> None:
    node = dataclasses.replace(ctx, config=dataclasses.replace(ctx.config, public_url=public_url))
    if result.startswith("http"):
        assert normalize_origin(node, typed) == result
    else:
        with pytest.raises(Invalid, match=result):
            normalize_origin(node, typed)


async def test_an_unreachable_or_lying_peer_is_explained(
    client: Client, storage: Storage, ctx: ServiceContext, httpx_mock: HTTPXMock
) -> None:
    headers = await as_admin(client, storage, ctx)
    httpx_mock.add_response(url=DOC, status_code=404)
    missing = await client.post("/api/v1/admin/peers", json={"origin": B}, headers=headers)
    assert missing.status_code == 502
    assert "could not be reached" in (await missing.get_json())["error"]["message"]
    other = FakePeer(origin="https://ecole-c.example")  # a document for another origin
    httpx_mock.add_response(url=DOC, content=other.document())
    lying = await client.post("/api/v1/admin/peers", json={"origin": B}, headers=headers)
    assert lying.status_code == 400
    assert "invalid node document" in (await lying.get_json())["error"]["message"]
    assert await (await client.get("/api/v1/admin/peers")).get_json() == []


async def test_only_an_admin_adds_peers_and_nothing_is_fetched_for_others(
    client: Client, storage: Storage, ctx: ServiceContext, httpx_mock: HTTPXMock
) -> None:
    make_school(storage, ctx)
    token = (await api_login(client, "dubois@school.test"))["csrf_token"]
    response = await client.post(
        "/api/v1/admin/peers", json={"origin": B}, headers={"X-CSRF-Token": token}
    )
    assert response.status_code == 403
    assert httpx_mock.get_requests() == []
    assert (await client.get("/api/v1/admin/peers")).status_code == 403


async def test_a_non_peer_is_refused_before_any_key_fetch(
    client: Client, httpx_mock: HTTPXMock
) -> None:
    stranger = FakePeer()
    body = b"{}"
    response = await client.post("/np/keys", data=body, headers=stranger.headers("/np/keys", body))
    assert response.status_code == 403
    assert (await response.get_json())["error"] == "not_peer"
    assert httpx_mock.get_requests() == []
    unsigned = await client.post("/np/keys", data=body)
    assert unsigned.status_code == 401
    assert (await unsigned.get_json())["error"] == "missing_signature"


async def test_signature_failures_from_a_peer_get_their_reason(
    client: Client, storage: Storage, ctx: ServiceContext, httpx_mock: HTTPXMock
) -> None:
    peer = FakePeer()
    await peered(client, storage, ctx, httpx_mock, peer)
    body = b'{"type": "RotateKey"}'
    stale = await client.post(
        "/np/keys",
        data=body,
        headers=peer.headers("/np/keys", body, created=int(time.time()) - 400),
    )
    answer = await stale.get_json()
    assert (stale.status_code, answer["error"]) == (401, "stale_signature")
    assert abs(answer["server_time"] - time.time()) < 60
    headers = peer.headers("/np/keys", body)
    tampered = await client.post(
        "/np/keys", data=body.replace(b"Rotate", b"Revoke"), headers=headers
    )
    assert (tampered.status_code, (await tampered.get_json())["error"]) == (401, "digest_mismatch")
    wrong_url = peer.headers("/np/inbox", body)
    moved = await client.post("/np/keys", data=body, headers=wrong_url)
    assert (moved.status_code, (await moved.get_json())["error"]) == (401, "bad_signature")
    forged = peer.headers("/np/keys", body, key=nacl.signing.SigningKey.generate())
    bad = await client.post("/np/keys", data=body, headers=forged)
    assert (bad.status_code, (await bad.get_json())["error"]) == (401, "bad_signature")
    # a signed but meaningless statement: verified transport, refused content
    ok_transport = await client.post("/np/keys", data=body, headers=peer.headers("/np/keys", body))
    assert ok_transport.status_code == 400
    assert (await ok_transport.get_json())["error"] == "bad_key_statement"
    contact = await (await client.get("/api/v1/admin/peers")).get_json()
    assert contact[0]["last_contact_at"] is not None and abs(contact[0]["clock_skew"]) < 60


async def test_an_unknown_key_refetches_the_document_at_most_once_a_minute(
    client: Client, storage: Storage, ctx: ServiceContext, httpx_mock: HTTPXMock
) -> None:
    peer = FakePeer()
    await peered(client, storage, ctx, httpx_mock, peer)
    body = b"{}"
    unknown = nacl.signing.SigningKey.generate()
    httpx_mock.add_response(url=DOC, content=peer.document(), is_reusable=True)
    for _ in range(3):
        response = await client.post(
            "/np/keys", data=body,
            headers=sign_request(
                method="POST", target_uri=PUBLIC_URL + "/np/keys", body=body,
                signing_key=unknown, keyid=key_id(B, "k9"), created=int(time.time()),
            ),
        )  # fmt: skip
        assert (response.status_code, (await response.get_json())["error"]) == (
            401,
            "unknown_key",
        )
    # one fetch when the peer was added, one refetch for the three requests
    assert len(httpx_mock.get_requests(url=DOC)) == 2


async def test_a_rotation_signed_by_both_keys_pins_the_new_key(
    client: Client, storage: Storage, ctx: ServiceContext, httpx_mock: HTTPXMock
) -> None:
    peer = FakePeer()
    await peered(client, storage, ctx, httpx_mock, peer)
    old, new = peer.keys["k1"], nacl.signing.SigningKey.generate()
    now = int(time.time())
    statement = build_rotation(
        origin=B, old_name="k1", old_key=old, new_name="k2", new_key=new,
        expired_at=now, published=now,
    )  # fmt: skip
    one_key = dict(statement, proof=statement["proof"][:1])
    body = json.dumps(one_key).encode()
    refused = await client.post("/np/keys", data=body, headers=peer.headers("/np/keys", body))
    assert (await refused.get_json())["error"] == "bad_key_statement"
    body = json.dumps(statement).encode()
    applied = await client.post("/np/keys", data=body, headers=peer.headers("/np/keys", body))
    assert applied.status_code == 200, await applied.get_data(as_text=True)
    # the school now signs with the new key; its document lists it, signed by it alone
    peer.keys = {"k2": new}
    httpx_mock.add_response(url=DOC, content=peer.document())
    later = await client.post(
        "/np/keys", data=b"{}", headers=peer.headers("/np/keys", b"{}", name="k2")
    )
    assert (await later.get_json())["error"] == "bad_key_statement"  # transport accepted
    view = (await (await client.get("/api/v1/admin/peers")).get_json())[0]
    states = {k["fingerprint"]: k["state"] for k in view["keys"]}
    assert states[fingerprint(new.verify_key)] == "pinned"


async def test_a_revocation_pauses_the_peer_until_an_admin_re_pins(
    client: Client, storage: Storage, ctx: ServiceContext, httpx_mock: HTTPXMock
) -> None:
    peer = FakePeer()
    view = await peered(client, storage, ctx, httpx_mock, peer)
    stolen, replacement = peer.keys["k1"], nacl.signing.SigningKey.generate()
    now = int(time.time())
    statement = build_revocation(
        origin=B, revoked_name="k1", revoked_key=stolen, revoked_at=now, published=now,
        replacement=NodeKey(key_id(B, "k2"), replacement.verify_key),
    )  # fmt: skip
    body = json.dumps(statement).encode()
    applied = await client.post("/np/keys", data=body, headers=peer.headers("/np/keys", body))
    assert applied.status_code == 200
    after = await client.post("/np/keys", data=b"{}", headers=peer.headers("/np/keys", b"{}"))
    assert (after.status_code, (await after.get_json())["error"]) == (401, "unknown_key")
    paused = (await (await client.get("/api/v1/admin/peers")).get_json())[0]
    assert paused["state"] == "paused"
    assert fingerprint(replacement.verify_key) in paused["last_error"]
    # the admin adds the school again, compares the new fingerprint, confirms
    peer.keys = {"k2": replacement}
    headers = {"X-CSRF-Token": (await api_login(client, "admin@school.test"))["csrf_token"]}
    httpx_mock.add_response(url=DOC, content=peer.document())
    again = await client.post("/api/v1/admin/peers", json={"origin": B}, headers=headers)
    assert again.status_code == 201 and (await again.get_json())["id"] == view["id"]
    confirmed = await client.post(
        f"/api/v1/admin/peers/{view['id']}/confirm",
        json={"fingerprints": peer.fingerprints()},
        headers=headers,
    )
    assert (await confirmed.get_json())["state"] == "active"
    # the thief signs with the revoked key: unknown, even after the refetch it causes
    httpx_mock.add_response(url=DOC, content=peer.document())
    stolen_again = await client.post(
        "/np/keys", data=b"{}", headers=FakePeer(keys={"k1": stolen}).headers("/np/keys", b"{}")
    )
    assert (await stolen_again.get_json())["error"] == "unknown_key"


async def test_a_peer_whose_keys_changed_can_be_added_again_and_waits_for_the_admin(
    client: Client, storage: Storage, ctx: ServiceContext, httpx_mock: HTTPXMock
) -> None:
    peer = FakePeer()
    view = await peered(client, storage, ctx, httpx_mock, peer)
    headers = {"X-CSRF-Token": (await api_login(client, "admin@school.test"))["csrf_token"]}
    httpx_mock.add_response(url=DOC, content=peer.document())
    same = await client.post("/api/v1/admin/peers", json={"origin": B}, headers=headers)
    assert same.status_code == 409  # nothing changed: nothing to confirm
    peer.keys = {"k9": nacl.signing.SigningKey.generate()}  # the school rebuilt its server
    httpx_mock.add_response(url=DOC, content=peer.document())
    again = await client.post("/api/v1/admin/peers", json={"origin": B}, headers=headers)
    assert again.status_code == 201
    body = await again.get_json()
    assert (body["id"], body["state"]) == (view["id"], "pending")
    assert [(k["fingerprint"], k["state"]) for k in body["keys"] if k["current"]] == [
        (peer.fingerprints()[0], "new")
    ]
    # until the admin confirms, the school's requests are refused
    refused = await client.post(
        "/np/keys", data=b"{}", headers=peer.headers("/np/keys", b"{}", name="k9")
    )
    assert refused.status_code == 403
