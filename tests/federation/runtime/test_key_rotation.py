"""This node changes its own key and tells its peers (NP/1 §2.5, §2.6), as ``carnet keys`` does it.

pytest-httpx plays the peer school: what it is sent must verify as NP/1 says
(transport signature by the retiring key, a statement signed by both keys),
and a peer that could not be told is told later.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import stat
import time
from typing import Any

import httpx
import nacl.signing
import pytest
from pytest_httpx import HTTPXMock
from quart import Quart
from quart.typing import TestClientProtocol as Client

from federation.httpsig import verify_request
from federation.keys import fingerprint, key_id
from federation.keystatements import build_rotation, verify_revocation, verify_rotation
from federation.nodedoc import NodeKey, build_node_document, verify_node_document
from federation.runtime import keyrotation, peers
from federation.runtime.client import FederationClient
from federation.runtime.identity import key_name
from node import cli_keys
from node.datafolder import (
    NEXT_SIGNING_KEY_FILE,
    SIGNING_KEY_FILE,
    read_signing_key,
    retired_key_file,
)
from node.services.context import ServiceContext
from node.storage import key_statements
from node.storage.db import Storage
from tests.conftest import PUBLIC_URL
from tests.federation.runtime.peer_factories import B, FakePeer, peered

KEYS_URL = B + "/np/keys"
US = PUBLIC_URL


async def document(client: Client) -> dict[str, Any]:
    response = await client.get("/.well-known/carnet-node")
    text = await response.get_data(as_text=True)
    verify_node_document(text.encode(), origin=US, now=int(time.time()))
    found: dict[str, Any] = json.loads(text)
    return found


def transport_keyid(request: httpx.Request, key: nacl.signing.SigningKey) -> str:
    verified = verify_request(
        method=request.method, target_uri=str(request.url), headers=list(request.headers.items()),
        body=request.content, now=int(time.time()), lookup_key=lambda _: key.verify_key,
    )  # fmt: skip
    return verified.keyid


async def announce_and_rotate(
    ctx: ServiceContext, storage: Storage, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    assert await asyncio.to_thread(cli_keys.keys_next, ctx, storage) == 0
    code = await asyncio.to_thread(cli_keys.keys_rotate, ctx, storage, skip_notice=True)
    return code, capsys.readouterr().out


async def test_next_announces_a_key_then_rotate_sends_a_statement_signed_by_both(
    client: Client, app: Quart, storage: Storage, ctx: ServiceContext, httpx_mock: HTTPXMock,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    await peered(client, storage, ctx, httpx_mock, FakePeer())
    folder = ctx.config.data_dir
    old = read_signing_key(folder / SIGNING_KEY_FILE)
    old_id = key_id(US, key_name(old.verify_key))
    await document(client)  # cached: a key change must still show at once

    assert await asyncio.to_thread(cli_keys.keys_next, ctx, storage) == 0
    new = read_signing_key(folder / NEXT_SIGNING_KEY_FILE)
    assert stat.S_IMODE((folder / NEXT_SIGNING_KEY_FILE).stat().st_mode) == 0o600
    announced = await document(client)
    assert announced["next_key"]["id"] == key_id(US, key_name(new.verify_key))
    assert [k["id"] for k in announced["keys"]] == [old_id]
    assert fingerprint(new.verify_key) in capsys.readouterr().out

    httpx_mock.add_response(url=KEYS_URL, method="POST", json={"applied": "RotateKey"})
    code = await asyncio.to_thread(cli_keys.keys_rotate, ctx, storage, skip_notice=True)
    out = capsys.readouterr().out
    assert code == 0 and f"{B}: accepted" in out and "Restart Carnet" in out

    sent = httpx_mock.get_request(url=KEYS_URL)
    assert sent is not None
    assert transport_keyid(sent, old) == old_id  # peers have pinned the old key
    rotation = verify_rotation(
        sent.content, origin=US, pinned={old_id: old.verify_key}, now=int(time.time()),
        announced_next=None,
    )  # fmt: skip
    assert bytes(rotation.new_key.public_key) == bytes(new.verify_key)
    assert rotation.expired_at - int(time.time()) > 13 * 86400

    # the files: the new key is the node's key, the old one kept (0600), no next key left
    assert read_signing_key(folder / SIGNING_KEY_FILE).verify_key == new.verify_key
    retired = folder / retired_key_file(key_name(old.verify_key))
    assert read_signing_key(retired).verify_key == old.verify_key
    assert stat.S_IMODE(retired.stat().st_mode) == 0o600
    assert not (folder / NEXT_SIGNING_KEY_FILE).exists()
    # the document (this process still has the old key loaded): new current, old retired
    after = await document(client)
    assert [k["id"] for k in after["keys"]] == [key_id(US, key_name(new.verify_key))]
    assert [k["id"] for k in after["old_keys"]] == [old_id]
    assert "next_key" not in after
    rows = await storage.run(key_statements.select_all)
    assert [r.delivered_at is not None for r in rows] == [True]


async def test_rotate_needs_an_announced_key_and_24_hours_notice(
    client: Client, storage: Storage, ctx: ServiceContext
) -> None:
    with pytest.raises(keyrotation.KeyChangeError, match="carnet keys next"):
        await asyncio.to_thread(cli_keys.keys_rotate, ctx, storage)
    await asyncio.to_thread(cli_keys.keys_next, ctx, storage)
    with pytest.raises(keyrotation.KeyChangeError, match="24 hours"):
        await asyncio.to_thread(cli_keys.keys_rotate, ctx, storage)
    # announcing again keeps the same next key
    before = read_signing_key(ctx.config.data_dir / NEXT_SIGNING_KEY_FILE)
    await asyncio.to_thread(cli_keys.keys_next, ctx, storage)
    again = read_signing_key(ctx.config.data_dir / NEXT_SIGNING_KEY_FILE)
    assert again.verify_key == before.verify_key


async def test_a_peer_that_was_down_is_told_later_under_the_old_key(
    client: Client, app: Quart, storage: Storage, ctx: ServiceContext, httpx_mock: HTTPXMock,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    view = await peered(client, storage, ctx, httpx_mock, FakePeer())
    old = read_signing_key(ctx.config.data_dir / SIGNING_KEY_FILE)
    httpx_mock.add_exception(httpx.ConnectError("down"), url=KEYS_URL)
    code, out = await announce_and_rotate(ctx, storage, capsys)
    assert code == 1
    assert f"{B}: failed — {B} could not be reached" in out and "retries" in out
    [row] = await storage.run(key_statements.select_all)
    assert row.delivered_at is None and row.attempts == 1 and row.next_attempt_at is not None

    # not due yet: the delivery worker's pass sends nothing
    worker = app.extensions["carnet_delivery"]
    fed = worker._fed
    loader = keyrotation.data_folder_keys(ctx.config.data_dir, ctx.signing_key)
    assert await keyrotation.send_statements(storage, ctx, fed.client, loader) == []
    # the peer contacts us again: it is back, so it is told at once (signed by the old key)
    await storage.run(peers.record_contact, ctx, view["id"], int(time.time()))
    httpx_mock.add_response(url=KEYS_URL, method="POST", json={"applied": "RotateKey"})
    [outcome] = await keyrotation.send_statements(storage, ctx, fed.client, loader)
    assert outcome.accepted and outcome.origin == B
    retried = httpx_mock.get_requests(url=KEYS_URL)[-1]
    assert transport_keyid(retried, old) == key_id(US, key_name(old.verify_key))
    [row] = await storage.run(key_statements.select_all)
    assert row.delivered_at is not None and row.attempts == 2
    assert await keyrotation.send_statements(storage, ctx, fed.client, loader) == []


async def test_a_refusing_peer_is_retried_with_backoff_until_the_old_key_expires(
    client: Client, storage: Storage, ctx: ServiceContext, httpx_mock: HTTPXMock,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    await peered(client, storage, ctx, httpx_mock, FakePeer())
    httpx_mock.add_response(
        url=KEYS_URL, method="POST", status_code=503, json={"error": "busy", "message": "later"}
    )
    code, out = await announce_and_rotate(ctx, storage, capsys)
    assert code == 1 and "HTTP 503 busy: later" in out
    loader = keyrotation.data_folder_keys(ctx.config.data_dir, ctx.signing_key)
    client_ = FederationClient(
        ctx.config, read_signing_key(ctx.config.data_dir / SIGNING_KEY_FILE), "k"
    )
    # the backoff ended: due again
    later = ctx.now() + dt.timedelta(minutes=5)
    shifted = ServiceContext(
        config=ctx.config, node_secret=ctx.node_secret, clock=lambda: later,
        signing_key=ctx.signing_key,
    )  # fmt: skip
    httpx_mock.add_response(url=KEYS_URL, method="POST", json={"applied": "RotateKey"})
    [outcome] = await keyrotation.send_statements(storage, shifted, client_, loader)
    assert outcome.accepted
    # past the old key's window nothing is sent any more: the statement is dropped
    await storage.run(lambda: key_statements.KeyStatementOut.update(delivered_at=None).execute())
    gone = ctx.now() + dt.timedelta(days=16)
    past = ServiceContext(
        config=ctx.config, node_secret=ctx.node_secret, clock=lambda: gone,
        signing_key=ctx.signing_key,
    )  # fmt: skip
    assert await keyrotation.send_statements(storage, past, client_, loader) == []
    [row] = await storage.run(key_statements.select_all)
    assert row.dropped_at is not None
    await client_.aclose()


async def test_revoke_switches_to_a_fresh_key_and_tells_the_peers(
    client: Client, storage: Storage, ctx: ServiceContext, httpx_mock: HTTPXMock,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    await peered(client, storage, ctx, httpx_mock, FakePeer())
    folder = ctx.config.data_dir
    leaked = read_signing_key(folder / SIGNING_KEY_FILE)
    leaked_id = key_id(US, key_name(leaked.verify_key))
    await asyncio.to_thread(cli_keys.keys_next, ctx, storage)  # made on the same machine: dropped
    httpx_mock.add_response(url=KEYS_URL, method="POST", json={"applied": "RevokeKey"})
    assert await asyncio.to_thread(cli_keys.keys_revoke, ctx, storage) == 0
    out = capsys.readouterr().out
    new = read_signing_key(folder / SIGNING_KEY_FILE)
    assert f"New fingerprint: {fingerprint(new.verify_key)}" in out
    assert f"{B}: accepted" in out and "call the admin" in out
    sent = httpx_mock.get_request(url=KEYS_URL)
    assert sent is not None and transport_keyid(sent, leaked) == leaked_id
    revocation = verify_revocation(
        sent.content, origin=US, known={leaked_id: leaked.verify_key}, now=int(time.time())
    )
    assert revocation.replacement is not None
    assert bytes(revocation.replacement.public_key) == bytes(new.verify_key)
    after = await document(client)
    assert [k["id"] for k in after["revoked"]] == [leaked_id]
    assert [k["id"] for k in after["keys"]] == [key_id(US, key_name(new.verify_key))]
    assert "next_key" not in after and not (folder / NEXT_SIGNING_KEY_FILE).exists()


async def test_a_peer_that_missed_the_rotation_keeps_our_old_key_until_it_is_told(
    client: Client, storage: Storage, ctx: ServiceContext, httpx_mock: HTTPXMock
) -> None:
    """The receiving side: our document now names a key the peer has not pinned.

    Signed by that new key it proves nothing, but it says our pinned key is
    retired: the peer keeps it (until ``expired_at`` + 24 h) so that the
    rotation statement, signed by it, can still be accepted.
    """
    peer = FakePeer()
    view = await peered(client, storage, ctx, httpx_mock, peer)
    old, new = peer.keys["k1"], nacl.signing.SigningKey.generate()
    now = int(time.time())
    # the document it stored expired while it was away; the school already switched
    stale = build_node_document(
        origin=B, name="École B", signing_keys={"k1": old}, valid_from={"k1": now - 30 * 86400},
        issued_at=now - 8 * 86400, valid_until=now - 86400,
    )  # fmt: skip
    await storage.run(lambda: peers.store.Peer.update(document=json.dumps(stale)).execute())
    peer.keys = {"k2": new}
    rotated = peer.document(old_keys=[NodeKey(key_id(B, "k1"), old.verify_key, now + 86400)])
    await storage.run(peers.refresh_document, ctx, B, rotated)
    statement = build_rotation(
        origin=B, old_name="k1", old_key=old, new_name="k2", new_key=new,
        expired_at=now + 86400, published=now,
    )  # fmt: skip
    body = json.dumps(statement).encode()
    signer = FakePeer(keys={"k1": old})
    applied = await client.post("/np/keys", data=body, headers=signer.headers("/np/keys", body))
    assert applied.status_code == 200, await applied.get_data(as_text=True)
    [listed] = await (await client.get("/api/v1/admin/peers")).get_json()
    assert listed["id"] == view["id"] and listed["state"] == "active"
    states = {k["fingerprint"]: k["state"] for k in listed["keys"]}
    assert states[fingerprint(new.verify_key)] == "pinned"
    # and the school's requests signed by its new key are accepted now
    later = await client.post(
        "/np/keys", data=b"{}", headers=peer.headers("/np/keys", b"{}", name="k2")
    )
    assert (await later.get_json())["error"] == "bad_key_statement"  # transport accepted


async def test_the_admin_page_shows_a_key_pinned_by_a_rotation_before_the_document_is_refetched(
    client: Client, storage: Storage, ctx: ServiceContext, httpx_mock: HTTPXMock
) -> None:
    peer = FakePeer()
    await peered(client, storage, ctx, httpx_mock, peer)
    old, new = peer.keys["k1"], nacl.signing.SigningKey.generate()
    now = int(time.time())
    await asyncio.sleep(1.1)  # the pin comes after the stored document's issued_at
    statement = build_rotation(
        origin=B, old_name="k1", old_key=old, new_name="k2", new_key=new,
        expired_at=now + 86400, published=now,
    )  # fmt: skip
    body = json.dumps(statement).encode()
    applied = await client.post("/np/keys", data=body, headers=peer.headers("/np/keys", body))
    assert applied.status_code == 200
    [listed] = await (await client.get("/api/v1/admin/peers")).get_json()
    states = {k["fingerprint"]: k["state"] for k in listed["keys"]}
    assert states == {fingerprint(old.verify_key): "pinned", fingerprint(new.verify_key): "pinned"}
