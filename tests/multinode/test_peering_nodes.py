"""Peering between real nodes, through fault proxies: what only real processes can show.

Admins peer the schools through the JSON API; the test then signs requests
with a node's own key (read from its data folder) and sends them through
the link's proxy, so the receiving hypercorn server checks the signature
against its configured public URL while the bytes went elsewhere.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from federation.httpsig import sign_request
from federation.keys import fingerprint, key_id
from federation.runtime.identity import key_name
from node.datafolder import load_keys
from node.refclient import credentials_json, new_account
from tests.multinode.cluster import Cluster
from tests.multinode.faultproxy import FaultProxy
from tests.multinode.nodes import Node

#: network and process faults, not the database: the SQLite phase runs them (scripts/test)
pytestmark = pytest.mark.transport
PASSPHRASE = "peering passphrase for carnet"


def admin_client(node: Node) -> tuple[httpx.Client, dict[str, str]]:
    """The node's first admin, set up through the API, and their CSRF header."""
    assert node.admin_email and node.admin_setup_url
    token = node.admin_setup_url.rsplit("/setup/", 1)[1]
    client = node.client()
    csrf = client.get("/api/v1/session").json()["csrf_token"]
    account = new_account(node.admin_email, PASSPHRASE)
    response = client.post(
        f"/api/v1/setup/{token}", json=credentials_json(account.credentials),
        headers={"X-CSRF-Token": csrf},
    )  # fmt: skip
    assert response.status_code == 201, response.text
    return client, {"X-CSRF-Token": client.get("/api/v1/session").json()["csrf_token"]}


def peer_with(node: Node, other: Node) -> dict[str, Any]:
    client, headers = admin_client(node)
    added = client.post("/api/v1/admin/peers", json={"origin": other.origin}, headers=headers)
    assert added.status_code == 201, added.text
    view = added.json()
    shown = [k["fingerprint"] for k in view["keys"] if k["current"]]
    assert shown == [fingerprint(load_keys(other.data_dir).signing_key.verify_key)]
    confirmed = client.post(
        f"/api/v1/admin/peers/{view['id']}/confirm", json={"fingerprints": shown}, headers=headers
    )
    assert confirmed.json()["state"] == "active"
    result: dict[str, Any] = confirmed.json()
    return result


def signed_post(sender: Node, receiver: Node, via: str, path: str, body: bytes) -> httpx.Response:
    """A request signed with ``sender``'s own key for ``receiver``'s origin, sent to ``via``."""
    key = load_keys(sender.data_dir).signing_key
    headers = sign_request(
        method="POST", target_uri=receiver.origin + path, body=body, signing_key=key,
        keyid=key_id(sender.origin, key_name(key.verify_key)), created=int(time.time()),
    )  # fmt: skip
    with httpx.Client(trust_env=False, timeout=10) as http:
        return http.post(via + path, content=body, headers=headers)


def test_schools_peer_through_proxies_and_only_peers_are_heard(
    make_cluster: Callable[..., Cluster], link: Callable[..., FaultProxy]
) -> None:
    cluster = make_cluster(("a", "b", "c"), start=False)
    a, b, c = cluster
    a_to_b, b_to_a, a_to_c = link(a, b), link(b, a), link(a, c)
    c_to_a = link(c, a, route=False)
    cluster.start()
    peer_with(a, b)  # a fetches b's document through the a→b proxy
    assert [r.path for r in a_to_b.requests] == ["/.well-known/carnet-node"]
    peer_with(b, a)
    assert [r.path for r in b_to_a.requests] == ["/.well-known/carnet-node"]

    # b, a peer of a, is heard through its proxy: the transport signature holds
    # (a checks it against its own public URL, not the proxy's Host)
    heard = signed_post(b, a, b_to_a.url, "/np/keys", b'{"type": "RotateKey"}')
    assert (heard.status_code, heard.json()["error"]) == (400, "bad_key_statement")

    # c is no peer of a: refused before a fetches anything from c
    stranger = signed_post(c, a, c_to_a.url, "/np/keys", b"{}")
    assert (stranger.status_code, stranger.json()["error"]) == (403, "not_peer")
    assert a_to_c.requests == []

    # peering survives a crash of a
    a.kill()
    a.restart()
    again = signed_post(b, a, b_to_a.url, "/np/keys", b'{"type": "RotateKey"}')
    assert again.json()["error"] == "bad_key_statement"
