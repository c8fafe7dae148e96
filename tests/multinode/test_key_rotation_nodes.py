"""A school changes its node's key with ``carnet keys``, and its peer follows: real processes.

Node A rotates (``keys next``, ``keys rotate``) with the command run against
its data folder while it serves, then restarts; B, told by the RotateKey
statement, accepts A's requests signed by the new key and shows it pinned.
Then A revokes its key (``keys revoke``): B pauses A until its admin re-pins.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from federation.keys import fingerprint
from node.datafolder import load_keys
from tests.multinode.cluster import Cluster
from tests.multinode.nodes import REPO_ROOT, Node, child_environment
from tests.multinode.test_peering_nodes import admin_client, signed_post

#: network and process faults, not the database: the SQLite phase runs them (scripts/test)
pytestmark = pytest.mark.transport


def carnet(node: Node, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run ``carnet <argv> --data <node's folder>`` as the operator would."""
    command = [sys.executable, "-m", "node.cli", argv[0], "--data", str(node.data_dir), *argv[1:]]
    return subprocess.run(
        command, cwd=REPO_ROOT, env=child_environment(), capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip


def peer(client: httpx.Client, headers: dict[str, str], other: Node) -> dict[str, Any]:
    added = client.post("/api/v1/admin/peers", json={"origin": other.origin}, headers=headers)
    assert added.status_code == 201, added.text
    shown = [k["fingerprint"] for k in added.json()["keys"] if k["current"]]
    confirmed = client.post(
        f"/api/v1/admin/peers/{added.json()['id']}/confirm", json={"fingerprints": shown},
        headers=headers,
    )  # fmt: skip
    assert confirmed.json()["state"] == "active", confirmed.text
    result: dict[str, Any] = confirmed.json()
    return result


def view_of(client: httpx.Client, origin: str) -> dict[str, Any]:
    [found] = [p for p in client.get("/api/v1/admin/peers").json() if p["origin"] == origin]
    result: dict[str, Any] = found
    return result


def test_a_rotated_key_is_accepted_by_the_peer_and_a_revoked_one_pauses_it(
    make_cluster: Callable[..., Cluster],
) -> None:
    a, b = make_cluster(("a", "b"))
    a_admin, a_headers = admin_client(a)
    b_admin, b_headers = admin_client(b)
    peer(a_admin, a_headers, b)
    peer(b_admin, b_headers, a)
    old = load_keys(a.data_dir).signing_key

    announced = carnet(a, "keys", "next")
    assert announced.returncode == 0, announced.stderr
    rotated = carnet(a, "keys", "rotate", "--skip-notice")
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    assert f"{b.origin}: accepted" in rotated.stdout
    new = load_keys(a.data_dir).signing_key
    assert new.verify_key != old.verify_key
    a.restart()  # A now signs with the new key

    heard = signed_post(a, b, b.origin, "/np/keys", b'{"type": "RotateKey"}')
    assert (heard.status_code, heard.json()["error"]) == (400, "bad_key_statement"), heard.text
    keys = {k["fingerprint"]: k["state"] for k in view_of(b_admin, a.origin)["keys"]}
    assert keys[fingerprint(new.verify_key)] == "pinned"
    # A's document says the old key retired, and when
    document = httpx.get(a.url("/.well-known/carnet-node"), timeout=10).json()
    assert len(document["old_keys"]) == 1 and "expired_at" in document["old_keys"][0]
    status = carnet(a, "keys", "status")
    assert "RotateKey" in status.stdout and "accepted" in status.stdout

    # the new key leaked: A revokes it, B pauses A until its admin re-pins
    revoked = carnet(a, "keys", "revoke", "--yes")
    assert revoked.returncode == 0, revoked.stdout + revoked.stderr
    assert f"{b.origin}: accepted" in revoked.stdout
    replacement = load_keys(a.data_dir).signing_key
    assert f"New fingerprint: {fingerprint(replacement.verify_key)}" in revoked.stdout
    a.restart()
    paused = view_of(b_admin, a.origin)
    assert paused["state"] == "paused"
    assert fingerprint(replacement.verify_key) in paused["last_error"]
    refused = signed_post(a, b, b.origin, "/np/keys", b"{}")
    assert (refused.status_code, refused.json()["error"]) == (401, "unknown_key")


def test_a_peer_that_was_down_during_the_rotation_is_told_when_it_is_back(
    make_cluster: Callable[..., Cluster],
) -> None:
    cluster = make_cluster(("a", "b"))
    a, b = cluster
    a_admin, a_headers = admin_client(a)
    b_admin, b_headers = admin_client(b)
    peer(a_admin, a_headers, b)
    peer(b_admin, b_headers, a)

    b.stop()
    assert carnet(a, "keys", "next").returncode == 0
    rotated = carnet(a, "keys", "rotate", "--skip-notice")
    assert rotated.returncode == 1  # one school could not be told
    assert f"{b.origin}: failed" in rotated.stdout and "retries" in rotated.stdout
    new = load_keys(a.data_dir).signing_key
    a.restart()
    b.start()

    # A's server tells B by itself (signed by the old key B has pinned)
    def told() -> bool:
        keys = {k["fingerprint"]: k["state"] for k in view_of(b_admin, a.origin)["keys"]}
        return keys.get(fingerprint(new.verify_key)) == "pinned"

    cluster.wait_until(told, timeout=60, interval=0.5, what="B pins A's new key")
    heard = signed_post(a, b, b.origin, "/np/keys", b"{}")
    assert (heard.status_code, heard.json()["error"]) == (400, "bad_key_statement"), heard.text
    assert "accepted" in carnet(a, "keys", "status").stdout
