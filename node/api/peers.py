"""Peer schools (federation): list, add, confirm fingerprints, retire. Admins only."""

from __future__ import annotations

from typing import Any

from quart import current_app

from federation.runtime import admin, peers
from node.api import Api, actor, call, ok
from node.api.schema import Body, array, string

NEW_PEER = Body(
    "NewPeer",
    {"origin": string(255, description="the other school's Carnet address, https://…")},
)
CONFIRM_PEER = Body(
    "ConfirmPeer",
    {
        "fingerprints": array(
            "the key fingerprints shown by GET/POST, as compared with the other school",
            max_items=4,
        )
    },
)


def register(api: Api) -> None:
    @api.operation("GET", "/admin/peers", summary="Peer schools and their state", tag="federation")
    async def list_peers() -> Any:
        return ok(await call(peers.list_peers, actor()))

    @api.operation(
        "POST",
        "/admin/peers",
        summary="Add a peer school: fetch its node document, show its key fingerprints",
        body=NEW_PEER,
        tag="federation",
    )
    async def add_peer(data: dict[str, Any]) -> Any:
        fed = current_app.extensions["carnet_federation"]
        return ok(await admin.add_peer(fed, actor(), data["origin"]), 201)

    @api.operation("GET", "/admin/peers/<id:peer_id>", summary="One peer school", tag="federation")
    async def get_peer(peer_id: int) -> Any:
        return ok(await call(peers.get_peer, actor(), peer_id))

    @api.operation(
        "POST",
        "/admin/peers/<id:peer_id>/confirm",
        summary="Confirm the fingerprints compared with the other school: pin its keys",
        body=CONFIRM_PEER,
        tag="federation",
    )
    async def confirm_peer(data: dict[str, Any], peer_id: int) -> Any:
        return ok(await call(peers.confirm_peer, actor(), peer_id, data["fingerprints"]))

    @api.operation(
        "DELETE",
        "/admin/peers/<id:peer_id>",
        summary="Stop federating with a peer school",
        tag="federation",
    )
    async def retire_peer(peer_id: int) -> Any:
        return ok(await call(peers.retire_peer, actor(), peer_id))
